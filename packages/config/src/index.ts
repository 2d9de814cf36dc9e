/** @hyphae/config — one YAML file plus environment overrides, validated at start. */
export type { HyphaeConfig, TlsConfig, C2sConfig, RegistrationConfig, SmConfig, RosterConfig, MucConfig, Proxy65Config, S2sConfig } from './types.js';
export { ConfigError, loadConfig, defaultConfig } from './load.js';
export type { LoadOptions, DeepPartial, ConfigIssue } from './load.js';
export { describeConfig } from './describe.js';
export type { ConfigKeyDescription } from './describe.js';
export { leaf, FORWARD_SECRET_CIPHERS } from './schema.js';
export type { LeafMeta, ConfigSection } from './schema.js';
export { isLoopbackHost } from './schema.js';
export { moduleOptions } from './sections.js';
