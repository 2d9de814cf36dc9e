/**
 * The compliance table (docs/compliance.md) and the DOAP file xmpp.org lists
 * servers from, generated from what modules and services declare — as
 * MongooseIM's xep_tool does from its `-xep` attributes — so neither can
 * drift from the code (a test compares them with the files).
 */
import type { ModuleDefinition, Spec, SpecStatus } from './types.js';

/** The static part of a module, or what a service declares of itself. */
export type Declaration = Pick<ModuleDefinition<unknown>, 'name' | 'description' | 'specs' | 'config' | 'stores' | 'metrics'> & {
  /** 'module' (packages/modules, …) or 'service' (services/c2s, …). */
  kind?: 'module' | 'service';
};

interface Row {
  spec: Spec;
  owner: Declaration;
}

/** 'XEP-0030' → 30, 'RFC 6120 §4' → RFC 6120; sorts RFCs first, then XEPs by number. */
function specKey(spec: string): [number, number, string] {
  const xep = /^XEP-(\d{4})/.exec(spec);
  if (xep) return [1, Number(xep[1]), spec];
  const rfc = /^RFC (\d+)/.exec(spec);
  return rfc ? [0, Number(rfc[1]), spec] : [2, 0, spec];
}

function compareSpecs(a: string, b: string): number {
  const [ka, na, sa] = specKey(a);
  const [kb, nb, sb] = specKey(b);
  return ka - kb || na - nb || sa.localeCompare(sb);
}

function rows(declarations: readonly Declaration[]): Row[] {
  return declarations
    .flatMap((owner) => owner.specs.map((spec) => ({ spec, owner })))
    .sort((a, b) => compareSpecs(a.spec.spec, b.spec.spec) || a.owner.name.localeCompare(b.owner.name));
}

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const status = (s: SpecStatus | undefined): SpecStatus => s ?? 'complete';

/** Where a spec's text lives. */
export function specUrl(spec: string): string | null {
  const xep = /^XEP-(\d{4})/.exec(spec);
  if (xep) return `https://xmpp.org/extensions/xep-${xep[1]}.html`;
  const rfc = /^RFC (\d+)/.exec(spec);
  return rfc ? `https://www.rfc-editor.org/rfc/rfc${rfc[1]}` : null;
}

/** docs/compliance.md: every spec with its version, status and the module that implements it; then each module. */
export function complianceMarkdown(declarations: readonly Declaration[]): string {
  const out: string[] = [
    '# Compliance',
    '',
    'Generated from the declarations of the modules (`packages/modules`, `packages/admin`) and services',
    '(`services/*`) by `node scripts/compliance.mjs`; a test fails when this file is not current.',
    '',
    '| specification | version | status | where | notes |',
    '|---|---|---|---|---|',
  ];
  for (const { spec, owner } of rows(declarations)) {
    const url = specUrl(spec.spec);
    const name = url ? `[${spec.spec}](${url})` : spec.spec;
    const where = `${owner.kind === 'service' ? 'service' : 'module'} \`${owner.name}\``;
    out.push(`| ${name} | ${spec.version ?? ''} | ${status(spec.status)} | ${where} | ${cell(spec.note ?? '')} |`);
  }
  out.push('', '## Modules and services', '');
  for (const d of [...declarations].sort((a, b) => a.name.localeCompare(b.name))) {
    out.push(`### ${d.name}${d.kind === 'service' ? ' (service)' : ''}`, '', d.description, '');
    const facts: string[] = [];
    if (d.config) facts.push(`- config: \`modules.${d.config.key}\``);
    if (d.stores?.length) facts.push(`- stores: ${d.stores.map((s) => `${s.kind} \`${s.name}\``).join(', ')}`);
    if (d.metrics?.length) facts.push(`- metrics: ${d.metrics.map((m) => `\`${m}\``).join(', ')}`);
    if (d.specs.length) facts.push(`- implements: ${d.specs.map((s) => s.spec).join(', ')}`);
    if (facts.length) out.push(...facts, '');
  }
  return out.join('\n');
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The DOAP description (RDF/XML with the xmpp.org `xmpp:SupportedXep` vocabulary). */
export function complianceDoap(declarations: readonly Declaration[], project: { name: string; shortdesc: string; version: string }): string {
  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<rdf:RDF xmlns="http://usefulinc.com/ns/doap#" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"',
    '         xmlns:foaf="http://xmlns.com/foaf/0.1/" xmlns:xmpp="https://linkmauve.fr/ns/xmpp-doap#">',
    '  <Project>',
    `    <name>${esc(project.name)}</name>`,
    `    <shortdesc xml:lang="en">${esc(project.shortdesc)}</shortdesc>`,
    '    <programming-language>TypeScript</programming-language>',
    '    <category rdf:resource="https://linkmauve.fr/ns/xmpp-doap#category-server"/>',
    `    <release><Version><revision>${esc(project.version)}</revision></Version></release>`,
  ];
  const seen = new Set<string>();
  for (const { spec, owner } of rows(declarations)) {
    const url = specUrl(spec.spec);
    if (!url || seen.has(url)) continue;
    seen.add(url);
    if (spec.spec.startsWith('RFC')) {
      out.push(`    <implements rdf:resource="${url}"/>`);
      continue;
    }
    out.push('    <implements>', '      <xmpp:SupportedXep>', `        <xmpp:xep rdf:resource="${url}"/>`);
    out.push(`        <xmpp:status>${status(spec.status)}</xmpp:status>`);
    if (spec.version) out.push(`        <xmpp:version>${esc(spec.version)}</xmpp:version>`);
    out.push(`        <xmpp:note xml:lang="en">${esc([owner.name, spec.note].filter(Boolean).join(': '))}</xmpp:note>`);
    out.push('      </xmpp:SupportedXep>', '    </implements>');
  }
  out.push('  </Project>', '</rdf:RDF>', '');
  return out.join('\n');
}
