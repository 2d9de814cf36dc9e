import type { Element } from 'ltx';
import { NS } from './ns.js';
import {
  isStanzaErrorCondition,
  isStanzaErrorType,
  type StanzaErrorCondition,
  type StanzaErrorType,
} from './stanza-error.js';

export interface ParsedStanzaError {
  /**
   * The defined condition, or 'undefined-condition' when the <error/> holds
   * none we know (RFC 6120 §8.3.2 says a recipient that does not understand
   * the condition treats it as undefined-condition).
   */
  condition: StanzaErrorCondition | 'undefined-condition';
  /** The 'type' attribute when it is one of the five of §8.3.2, else null. */
  type: StanzaErrorType | null;
  text?: string;
  by?: string;
  /** Character data of <gone/> or <redirect/> (§8.3.3.5, §8.3.3.14). */
  uri?: string;
  /** The first child element in another namespace (application-specific condition). */
  appCondition?: Element;
}

/**
 * Read the error out of an error stanza (`<message type='error'>…<error/>`),
 * or out of an <error/> element passed directly. Returns null when there is
 * no <error/> element to read.
 */
export function parseStanzaError(el: Element): ParsedStanzaError | null {
  const error = el.getName() === 'error' ? el : el.getChildElements().find((c) => c.getName() === 'error');
  if (!error) return null;

  let condition: StanzaErrorCondition | null = null;
  let conditionEl: Element | undefined;
  let text: string | undefined;
  let appCondition: Element | undefined;
  for (const child of error.getChildElements()) {
    const ns = child.getNS();
    const name = child.getName();
    if (ns === NS.stanzas) {
      if (name === 'text') {
        text ??= child.getText();
      } else if (condition === null && isStanzaErrorCondition(name)) {
        condition = name;
        conditionEl = child;
      }
    } else if (!appCondition) {
      appCondition = child;
    }
  }

  const rawType: unknown = error.attrs.type;
  const result: ParsedStanzaError = {
    condition: condition ?? 'undefined-condition',
    type: isStanzaErrorType(rawType) ? rawType : null,
  };
  if (text !== undefined) result.text = text;
  if (typeof error.attrs.by === 'string') result.by = error.attrs.by;
  if (conditionEl && (condition === 'gone' || condition === 'redirect')) {
    const uri = conditionEl.getText().trim();
    if (uri) result.uri = uri;
  }
  if (appCondition) result.appCondition = appCondition;
  return result;
}
