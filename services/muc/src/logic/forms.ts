/**
 * The small part of XEP-0004 (Data Forms) the room needs: building forms and
 * results, reading submissions. Internal to logic/.
 */
import { Element } from 'ltx';
import { StanzaError } from '@hyphae/stanza';

export const NS_DATA = 'jabber:x:data';

export type FieldType =
  | 'boolean'
  | 'fixed'
  | 'hidden'
  | 'jid-multi'
  | 'jid-single'
  | 'list-multi'
  | 'list-single'
  | 'text-multi'
  | 'text-private'
  | 'text-single';

export interface FieldSpec {
  var: string;
  type: FieldType;
  label?: string;
  values: readonly string[];
  /** list-single / list-multi only (XEP-0004 §3.2: MUST NOT appear elsewhere). */
  options?: ReadonlyArray<{ label?: string; value: string }>;
}

/** `<x xmlns='jabber:x:data' type=…>[<title/>]<field …/>…</x>` with fields in the given order. */
export function dataForm(type: 'form' | 'result', fields: readonly FieldSpec[], title?: string): Element {
  const x = new Element('x', { xmlns: NS_DATA, type });
  if (title !== undefined) x.c('title').t(title);
  for (const f of fields) {
    const attrs: Record<string, string> = { var: f.var, type: f.type };
    if (f.label !== undefined) attrs.label = f.label;
    const field = x.c('field', attrs);
    for (const v of f.values) field.c('value').t(v);
    for (const o of f.options ?? []) {
      const oAttrs: Record<string, string> = {};
      if (o.label !== undefined) oAttrs.label = o.label;
      field.c('option', oAttrs).c('value').t(o.value);
    }
  }
  return x;
}

/** XEP-0004 §3.3 boolean: "0"/"false" and "1"/"true" (both styles MUST be supported); undefined otherwise. */
export function parseBoolean(s: string): boolean | undefined {
  switch (s.trim()) {
    case '1':
    case 'true':
      return true;
    case '0':
    case 'false':
      return false;
    default:
      return undefined;
  }
}

/**
 * The fields of a submitted form as var → values. Fields without a 'var'
 * (only 'fixed' fields may lack one, XEP-0004 §3.2) are skipped; a 'var'
 * that appears twice is a bad-request (it "uniquely identifies the field").
 */
export function submittedFields(x: Element): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const field of x.getChildren('field', NS_DATA)) {
    const name = field.attrs.var;
    if (typeof name !== 'string' || name === '') continue;
    if (out.has(name)) throw new StanzaError('bad-request', `field ${name} appears more than once`);
    out.set(
      name,
      field.getChildren('value', NS_DATA).map((v) => v.getText()),
    );
  }
  return out;
}

/** The value of a single-valued field ('' when it has no <value/>); more than one value is a bad-request (XEP-0004 §3.2). */
export function singleValue(name: string, values: readonly string[]): string {
  if (values.length > 1) throw new StanzaError('bad-request', `field ${name} takes a single value`);
  return values[0] ?? '';
}
