import { configLeaves, type ConfigSection, type LeafInfo } from './schema.js';
import { defaultConfig } from './load.js';

export interface ConfigKeyDescription {
  /** Dotted key as written in YAML, e.g. 'c2s.port'. */
  key: string;
  /** e.g. 'integer', 'integer | null', 'list of string', "one of: info, debug". */
  type: string;
  /** The default, written the way the environment would write it. */
  default: string;
  doc: string;
  /** The variable(s) that set it, the winning one first: 'HYPHAE_NATS_URL, NATS_URL'. */
  env: string;
}

function typeOf(leaf: LeafInfo): string {
  let t: string;
  switch (leaf.kind) {
    case 'enum':
      t = `one of: ${leaf.options?.join(', ') ?? ''}`;
      break;
    case 'list':
      t = leaf.options ? `list of (${leaf.options.join(' | ')})` : 'list of string';
      break;
    default:
      t = leaf.kind;
  }
  return leaf.nullable ? `${t} | null` : t;
}

function render(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? '[]' : value.join(',');
  return String(value);
}

/**
 * One row per configuration key, generated from the schema (for the README's
 * reference table), then one per key of the given module sections.
 */
export function describeConfig(sections: readonly ConfigSection[] = []): Array<ConfigKeyDescription> {
  const defaults = defaultConfig(sections) as unknown as Record<string, unknown>;
  return configLeaves(sections).map((leaf) => {
    let value: unknown = defaults;
    for (const seg of leaf.path) value = (value as Record<string, unknown>)[seg];
    return {
      key: leaf.key,
      type: typeOf(leaf),
      default: leaf.key === 'nodeId' ? '<hostname>-<pid>-<4 hex digits>' : render(value),
      doc: leaf.meta.doc,
      env: [leaf.env, ...(leaf.meta.envAliases ?? [])].join(', '),
    };
  });
}
