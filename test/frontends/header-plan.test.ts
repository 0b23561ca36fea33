import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeaderList } from '../../src/filter-api/index.js';
import { mtaHeaderPrefix, planHeaderOperations } from '../../src/frontends/header-plan.js';
import { applyHeaderEdit, finishHeaderEdits, type HeaderEditRules, type HeaderEntry } from '../../src/mta/header-edits.js';

/** Applies planned operations the way each MTA does (the test kit's rules, checked on the real MTAs). */
function deliver(rules: HeaderEditRules, received: Array<{ name: string; value: string }>, list: HeaderList): Array<{ name: string; value: string }> {
  const headers: HeaderEntry[] = [...mtaHeaderPrefix(rules), ...received.map((f) => ({ name: f.name, value: ' ' + f.value, origin: 'message' as const }))];
  for (const op of planHeaderOperations(rules, received, list.fields)) {
    const edit =
      op.type === 'add'
        ? { type: 'addHeader' as const, name: op.name, value: op.value }
        : op.type === 'insert'
          ? { type: 'insertHeader' as const, index: op.index, name: op.name, value: op.value }
          : { type: 'changeHeader' as const, index: op.index, name: op.name, value: op.type === 'change' ? op.value : '' };
    applyHeaderEdit(rules, headers, edit, false);
  }
  const delivered = finishHeaderEdits(headers).map((f) => ({ name: f.name, value: f.value.slice(1) }));
  // Nothing may land above the MTA's own field.
  assert.deepEqual(delivered[0], { name: 'Received', value: 'by the MTA' });
  return delivered.slice(1);
}

/** A small deterministic generator, so failures can be replayed from the seed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

const NAMES = ['Received', 'Subject', 'X-Tag', 'DKIM-Signature'];

for (const rules of ['postfix', 'sendmail'] as const) {
  test(`${rules}: planned operations deliver exactly the chain's header, over 500 random edit sequences`, () => {
    for (let seed = 1; seed <= 500; seed++) {
      const next = random(seed);
      const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
      const received = Array.from({ length: 1 + Math.floor(next() * 6) }, (_, i) => ({ name: pick(NAMES), value: `r${i}` }));
      const list = HeaderList.received(received);
      for (let step = 0; step < 1 + Math.floor(next() * 6); step++) {
        const name = pick(NAMES);
        const occurrence = 1 + Math.floor(next() * 3);
        const kind = pick(['add', 'insert', 'change', 'delete'] as const);
        if (kind === 'add') list.add(name, `a${step}`);
        else if (kind === 'insert') list.insert(Math.floor(next() * (list.length + 1)), name, `i${step}`);
        else if (kind === 'change') list.change(name, occurrence, `c${step}`);
        else list.delete(name, occurrence);
      }
      assert.deepEqual(deliver(rules, received, list), [...list], `seed ${seed}`);
    }
  });
}

test('deletes of same-name fields go highest first; new fields go right below their neighbour', () => {
  const received = [
    { name: 'Received', value: 'a' },
    { name: 'Received', value: 'b' },
    { name: 'Subject', value: 's' },
  ];
  const list = HeaderList.received(received);
  list.delete('Received', 1);
  list.delete('Received', 1);
  list.insert(0, 'X-Top', 'top');
  assert.deepEqual(planHeaderOperations('postfix', received, list.fields), [
    { type: 'delete', name: 'Received', index: 2 },
    { type: 'delete', name: 'Received', index: 1 },
    { type: 'insert', index: 1, name: 'X-Top', value: 'top' },
  ]);
  // Sendmail links the field after the entry at the index: the last of its nine default entries.
  assert.deepEqual(planHeaderOperations('sendmail', received, list.fields).at(-1), { type: 'insert', index: 8, name: 'X-Top', value: 'top' });
});

test('fields added below an untouched header are plain appends on both MTAs', () => {
  const received = [
    { name: 'Subject', value: 's' },
    { name: 'X-Tag', value: 't' },
  ];
  for (const rules of ['postfix', 'sendmail'] as const) {
    const list = HeaderList.received(received);
    list.add('X-One', '1');
    list.add('X-Two', '2');
    assert.deepEqual(planHeaderOperations(rules, received, list.fields), [
      { type: 'add', name: 'X-One', value: '1' },
      { type: 'add', name: 'X-Two', value: '2' },
    ]);
    // An insert above the last received field is not an append.
    list.insert(1, 'X-Middle', 'm');
    assert.equal(planHeaderOperations(rules, received, list.fields).filter((op) => op.type === 'insert').length, 1);
    assert.deepEqual(deliver(rules, received, list), [...list]);
  }
});
