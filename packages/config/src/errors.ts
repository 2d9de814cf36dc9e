/** One problem found while loading the configuration. */
export interface ConfigIssue {
  /** Dotted key, e.g. 'c2s.port'; 'file' for problems with the file itself. */
  key: string;
  /** Where the bad value came from: 'file /etc/hyphae.yaml', 'env HYPHAE_C2S__PORT', 'overrides', 'default'. */
  source: string;
  message: string;
}

/**
 * Thrown by loadConfig for any problem. `key` names the first bad key;
 * the message lists every problem found, each naming its key, the bad value,
 * what was expected and where the value came from.
 */
export class ConfigError extends Error {
  readonly key: string;
  readonly source: string;
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    const first = issues[0] ?? { key: 'config', source: 'unknown', message: 'invalid configuration' };
    super(
      issues.length <= 1
        ? `Invalid configuration: ${first.message}`
        : `Invalid configuration (${issues.length} problems):\n${issues.map((i) => `  - ${i.message}`).join('\n')}`,
    );
    this.name = 'ConfigError';
    this.key = first.key;
    this.source = first.source;
    this.issues = issues.length > 0 ? issues : [first];
  }
}
