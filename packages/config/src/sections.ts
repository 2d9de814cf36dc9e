/**
 * Module sections: each feature module declares its piece of the schema
 * (a ConfigSection) and the loader validates it at `modules.<key>`. The
 * sections are passed in on every call, never registered globally, so two
 * loads with different module lists cannot see each other's keys.
 */
import { z } from 'zod';
import { checkSections, type ConfigSection } from './schema.js';
import type { HyphaeConfig } from './types.js';

/** The `modules` mapping: one entry per section; any other key is an unknown key. */
export function modulesSchema(sections: readonly ConfigSection[]): z.ZodType<Record<string, unknown>> {
  checkSections(sections);
  // prefault, not default: zod 4 returns a default as is, and {} must go through the section's own defaults.
  const shape = Object.fromEntries(sections.map((s) => [s.key, s.schema.prefault({})]));
  return z.strictObject(shape).prefault({});
}

/** Every section's defaults, by key (what an absent section parses to). */
export function moduleDefaults(sections: readonly ConfigSection[]): Record<string, unknown> {
  checkSections(sections);
  return Object.fromEntries(sections.map((s) => [s.key, s.schema.parse({})]));
}

/**
 * A module's own section of the configuration, typed by its schema. It is
 * parsed again so that a configuration built by hand (tests), where the
 * section is absent or partial, gets its defaults; this is safe because leaves
 * are plain values whose checks (trim, lowercase, bounds) hold on their own output.
 */
export function moduleOptions<T>(config: HyphaeConfig, section: ConfigSection<T>): T {
  // `?.`: fixtures cast from objects written before `modules` existed have none.
  const modules = config.modules as HyphaeConfig['modules'] | undefined;
  return section.schema.parse(modules?.[section.key] ?? {});
}
