/**
 * Turning the difference between the header as received and as the chain left it into milter
 * header operations, with the index arithmetic each MTA needs (see src/mta/header-edits.ts for
 * the rules, checked against real Postfix and Sendmail):
 *
 * 1. changed received fields: CHGHEADER by their occurrence in the received header;
 * 2. deleted received fields: CHGHEADER with an empty value, highest position first, so that the
 *    occurrences stay right whether the MTA shifts later fields (Postfix) or not (Sendmail);
 * 3. new fields, in final order: ADDHEADER when they go last, else INSHEADER at the index that
 *    puts them right below the field before them, counted the way that MTA counts.
 *
 * The MTA's own entries at the top of its list, which filters never see, are part of the
 * simulation, so new fields never land above them: Postfix's `Received:`; for Sendmail, the
 * default fields of an m4-generated configuration around its `Received:` (conditional ones are
 * not delivered but count for INSHEADER).
 *
 * @packageDocumentation
 */
import type { ModelField } from '../filter-api/headers.js';
import { applyHeaderEdit, type HeaderEditRules, type HeaderEntry } from '../mta/header-edits.js';
import { DEFAULT_FIELDS_AFTER_RECEIVED, DEFAULT_FIELDS_BEFORE_RECEIVED } from '../mta/sendmail.js';

/** One header operation for the MTA. */
export type HeaderOperation =
  | { readonly type: 'change'; readonly name: string; readonly index: number; readonly value: string }
  | { readonly type: 'delete'; readonly name: string; readonly index: number }
  | { readonly type: 'insert'; readonly index: number; readonly name: string; readonly value: string }
  | { readonly type: 'add'; readonly name: string; readonly value: string };

type Tracked = HeaderEntry & { key?: ModelField };

/** The entries each MTA's header list starts with, before the client's fields. */
export function mtaHeaderPrefix(rules: HeaderEditRules): HeaderEntry[] {
  const received: HeaderEntry = { name: 'Received', value: ' by the MTA', origin: 'mta' };
  if (rules === 'postfix') return [received];
  const hidden = (name: string): HeaderEntry => ({ name, value: '', origin: 'mta', hidden: true });
  return [...DEFAULT_FIELDS_BEFORE_RECEIVED.map(hidden), received, ...DEFAULT_FIELDS_AFTER_RECEIVED.map(hidden)];
}

function occurrence(received: readonly { name: string }[], position: number): number {
  const name = received[position]!.name.toLowerCase();
  let count = 0;
  for (let i = 0; i <= position; i++) if (received[i]!.name.toLowerCase() === name) count++;
  return count;
}

/**
 * The common case without simulating the MTA: the received fields all kept, unchanged and in
 * order, and new fields only after them, which ADDHEADER appends on every MTA. Undefined otherwise.
 */
function appendedOnly(received: readonly unknown[], final: readonly ModelField[]): HeaderOperation[] | undefined {
  if (final.length < received.length) return undefined;
  for (let position = 0; position < received.length; position++) {
    const field = final[position]!;
    if (field.received !== position || field.changed) return undefined;
  }
  const operations: HeaderOperation[] = [];
  for (let position = received.length; position < final.length; position++) {
    const field = final[position]!;
    if (field.received !== undefined) return undefined;
    operations.push({ type: 'add', name: field.name, value: field.value });
  }
  return operations;
}

/**
 * Plans the operations that turn `received` into `final` on an MTA following `rules`.
 * @param received the header as the MTA sent it
 * @param final the chain's header model (fields carry their received position)
 */
export function planHeaderOperations(rules: HeaderEditRules, received: readonly { name: string; value: string }[], final: readonly ModelField[]): HeaderOperation[] {
  const appended = appendedOnly(received, final);
  if (appended !== undefined) return appended;
  const operations: Array<HeaderOperation & { type: 'change' | 'delete' }> = [];
  const kept = new Set<number>();
  for (const field of final) {
    if (field.received === undefined) continue;
    kept.add(field.received);
    if (field.changed && field.value !== received[field.received]!.value) {
      operations.push({ type: 'change', name: received[field.received]!.name, index: occurrence(received, field.received), value: field.value });
    }
  }
  for (let position = received.length - 1; position >= 0; position--) {
    if (!kept.has(position)) operations.push({ type: 'delete', name: received[position]!.name, index: occurrence(received, position) });
  }
  const inserts = final.some((field) => field.received === undefined);
  if (!inserts) return operations;
  const placed: HeaderOperation[] = [...operations];

  // Simulate the MTA's header after the changes and deletes, then place each new field.
  const simulated: Tracked[] = mtaHeaderPrefix(rules);
  const top = simulated.length - 1;
  const byPosition = new Map<number, ModelField>(final.filter((f) => f.received !== undefined).map((f) => [f.received!, f]));
  received.forEach((field, position) => simulated.push({ name: field.name, value: ' ' + field.value, origin: 'message', ...(byPosition.has(position) ? { key: byPosition.get(position)! } : {}) }));
  for (const operation of operations) {
    applyHeaderEdit(rules, simulated, { type: 'changeHeader', name: operation.name, index: operation.index, value: operation.type === 'change' ? operation.value : '' }, false);
  }
  let previous: ModelField | undefined;
  for (const field of final) {
    if (field.received === undefined) {
      const after = previous === undefined ? top : simulated.findIndex((entry) => entry.key === previous);
      const last = simulated.findLastIndex((entry) => entry.deleted !== true && entry.hidden !== true);
      let operation: HeaderOperation;
      if (after >= last) {
        operation = { type: 'add', name: field.name, value: field.value };
        applyHeaderEdit(rules, simulated, { type: 'addHeader', name: field.name, value: field.value }, false);
        simulated[simulated.length - 1]!.key = field;
      } else {
        // Postfix puts an insert at position `index`; Sendmail below the entry at `index`.
        const index = rules === 'postfix' ? after + 1 : after;
        operation = { type: 'insert', index, name: field.name, value: field.value };
        applyHeaderEdit(rules, simulated, { type: 'insertHeader', index, name: field.name, value: field.value }, false);
        simulated[after + 1]!.key = field;
      }
      placed.push(operation);
    }
    previous = field;
  }
  return placed;
}
