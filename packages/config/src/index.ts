/** @hyphae/config — one YAML file plus environment overrides, validated at start. */
export type { HyphaeConfig, TlsConfig, C2sConfig, RegistrationConfig, SmConfig } from './types.js';
export { ConfigError, loadConfig, defaultConfig } from './load.js';
export type { LoadOptions } from './load.js';
