/**
 * Header modifications applied the way each MTA applies them (milter-protocol.md §6.2). The two
 * MTAs disagree on what the indexes count:
 *
 * | | Postfix | Sendmail |
 * |---|---|---|
 * | INSHEADER index | 0-based over the whole header, its own `Received:` included (0 = above it) | walks its internal list, which starts with the configuration's default fields (a conditional `Return-Path:`, `Received:`, seven more conditional ones), and links the field *after* the entry reached: 0 lands above `Received:` |
 * | CHGHEADER index | 1-based among fields of that name, the first field of the header (its own `Received:`) skipped; 0 acts as 1 | 1-based among fields of that name that came from the client or a milter; 0 acts as 1 |
 * | delete | the field is gone: later indexes shift | the field stays counted until the end of the message |
 * | change of a missing field | appended (nothing for a delete) | appended (nothing for a delete) |
 *
 * Without HDR_LEADSPC both MTAs put one space before every value a milter sets.
 */
import { withValue, type HeaderField } from './message.js';

/** Which MTA's rules apply. */
export type HeaderEditRules = 'postfix' | 'sendmail';

/** A header field while edits are applied. */
export interface HeaderEntry extends HeaderField {
  /** `mta`: added by the MTA itself (its `Received:`), never shown to milters. */
  origin: 'mta' | 'message' | 'milter';
  /** An entry of the MTA's list that counts for indexes but is not delivered (Sendmail's conditional default fields). */
  hidden?: boolean;
  /** Sendmail keeps deleted fields in its list (and counted) until the message is written. */
  deleted?: boolean;
}

/** A header modification request. */
export type HeaderEdit =
  | { type: 'addHeader'; name: string; value: string }
  | { type: 'insertHeader'; index: number; name: string; value: string }
  | { type: 'changeHeader'; index: number; name: string; value: string };

function sameName(field: HeaderField, name: string): boolean {
  return field.name.trim().toLowerCase() === name.trim().toLowerCase();
}

/**
 * Applies one header edit to `headers` in place.
 * @param leadingSpace whether HDR_LEADSPC was negotiated (values are then taken verbatim)
 */
export function applyHeaderEdit(rules: HeaderEditRules, headers: HeaderEntry[], edit: HeaderEdit, leadingSpace: boolean): void {
  const value = leadingSpace ? edit.value : ' ' + edit.value;
  const added: HeaderEntry = { name: edit.name, value, origin: 'milter' };
  switch (edit.type) {
    case 'addHeader':
      headers.push(added);
      return;
    case 'insertHeader': {
      const position = rules === 'postfix' ? edit.index : edit.index + 1;
      headers.splice(Math.min(position, headers.length), 0, added);
      return;
    }
    case 'changeHeader': {
      const index = Math.max(edit.index, 1);
      const position = rules === 'postfix' ? findPostfix(headers, edit.name, index) : findSendmail(headers, edit.name, index);
      const deleting = edit.value === '';
      if (position < 0) {
        if (!deleting) headers.push(added);
        return;
      }
      const target = headers[position]!;
      if (!deleting) {
        const changed = withValue(target, value);
        delete changed.deleted;
        headers[position] = changed;
      } else if (rules === 'postfix') {
        headers.splice(position, 1);
      } else {
        target.deleted = true;
      }
      return;
    }
  }
}

/** Postfix counts from the second field of the header, whatever the first is. */
function findPostfix(headers: readonly HeaderEntry[], name: string, index: number): number {
  let seen = 0;
  for (let i = 1; i < headers.length; i++) {
    if (sameName(headers[i]!, name) && ++seen === index) return i;
  }
  return -1;
}

/** Sendmail counts the client's and milters' fields only, deleted ones included. */
function findSendmail(headers: readonly HeaderEntry[], name: string, index: number): number {
  let seen = 0;
  for (let i = 0; i < headers.length; i++) {
    const field = headers[i]!;
    if (field.origin !== 'mta' && sameName(field, name) && ++seen === index) return i;
  }
  return -1;
}

/** The header as delivered: deleted and hidden entries dropped. */
export function finishHeaderEdits(headers: readonly HeaderEntry[]): HeaderField[] {
  return headers
    .filter((field) => field.deleted !== true && field.hidden !== true)
    .map(({ origin: _origin, hidden: _hidden, deleted: _deleted, ...field }) => field);
}
