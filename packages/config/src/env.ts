/**
 * Environment overrides. Each key has a generated variable, HYPHAE_ + its
 * path with segments joined by `__` and camelCase written as UPPER_SNAKE
 * (c2s.requireTls → HYPHAE_C2S__REQUIRE_TLS), plus a few conventional
 * aliases (NATS_URL, REDIS_URL, HYPHAE_LOG_LEVEL) that the generated name wins over.
 */
import { ConfigError, type ConfigIssue } from './errors.js';
import { camelSegment, configLeaves, type ConfigSection, type LeafInfo } from './schema.js';

export interface EnvValue {
  path: string[];
  value: unknown;
  /** The variable it came from. */
  variable: string;
}

/**
 * Text → the schema's type. Values that do not convert are passed through as
 * strings so that validation reports them with the key's expectation.
 */
export function coerce(leaf: LeafInfo, raw: string): unknown {
  const text = raw.trim();
  if (text === 'null') return null;
  switch (leaf.kind) {
    case 'integer':
      return /^[+-]?\d+$/.test(text) ? Number(text) : text;
    case 'boolean':
      if (/^true$/i.test(text)) return true;
      if (/^false$/i.test(text)) return false;
      return text;
    case 'list':
      // '[]' is the only way to say "empty list": an empty variable means unset.
      if (text === '[]') return [];
      return text
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    default:
      return text;
  }
}

/**
 * Read every configuration variable from `env`, in application order
 * (aliases first, generated names last so they win).
 *
 * Empty values count as unset: compose files and Helm templates often write
 * `NATS_URL=${NATS_URL}` with nothing behind it.
 *
 * Unknown HYPHAE_* variables with a single segment are ignored, because
 * Kubernetes injects HYPHAE_<SERVICE>_PORT, HYPHAE_<SERVICE>_SERVICE_HOST, …
 * for every Service whose name starts with "hyphae". Unknown variables with a
 * `__` (which Kubernetes never generates) are typos and are errors.
 */
export function readEnv(env: Record<string, string | undefined>, sections: readonly ConfigSection[] = []): EnvValue[] {
  const out: EnvValue[] = [];
  const leaves = configLeaves(sections);
  for (const leaf of leaves) {
    for (const alias of leaf.meta.envAliases ?? []) {
      const raw = env[alias];
      if (raw !== undefined && raw.trim() !== '') out.push({ path: leaf.path, value: coerce(leaf, raw), variable: alias });
    }
  }
  for (const leaf of leaves) {
    const raw = env[leaf.env];
    if (raw !== undefined && raw.trim() !== '') out.push({ path: leaf.path, value: coerce(leaf, raw), variable: leaf.env });
  }

  const known = new Set<string>(['HYPHAE_CONFIG']);
  for (const leaf of leaves) {
    known.add(leaf.env);
    for (const a of leaf.meta.envAliases ?? []) known.add(a);
  }
  const issues: ConfigIssue[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('HYPHAE_') || known.has(name) || !name.includes('__')) continue;
    const key = name.slice('HYPHAE_'.length).split('__').map(camelSegment).join('.');
    issues.push({
      key,
      source: `env ${name}`,
      message: `unknown key '${key}' (from env ${name})${hint(closestKey(key, sections), true)}`,
    });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return out;
}

/** A key to suggest: a leaf, or a module's section (which has no variable of its own). */
export type Suggestion = Pick<LeafInfo, 'key'> & { env?: string };

/** The known key closest to a misspelt one, if close enough to be a likely typo. */
export function closestKey(key: string, sections: readonly ConfigSection[] = []): Suggestion | undefined {
  let best: Suggestion | undefined;
  let bestDistance = Infinity;
  // Sections count too: 'modules.carbon' is far from every leaf of 'modules.carbons'.
  const sectionKeys = sections.map((s): Suggestion => ({ key: `modules.${s.key}` }));
  for (const known of [...configLeaves(sections), ...sectionKeys]) {
    const d = distance(key.toLowerCase(), known.key.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = known;
    }
  }
  if (!best || bestDistance > Math.max(2, Math.floor(key.length / 4))) return undefined;
  return best;
}

/** Levenshtein distance. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** "; did you mean 'c2s.port'?" */
export function hint(known: Suggestion | undefined, env: boolean): string {
  if (!known) return '';
  return env && known.env ? `; did you mean ${known.env} (${known.key})?` : `; did you mean '${known.key}'?`;
}
