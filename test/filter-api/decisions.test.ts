import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeaderList, reject, tempfail, toDecision, quarantine, defineFilter } from '../../src/filter-api/index.js';

test('replies are checked when the decision is made', () => {
  assert.deepEqual(reject(), { kind: 'reject', reply: { code: '550', xcode: '5.7.1', lines: ['Message refused by mail filter'] } });
  assert.deepEqual(tempfail(['a', 'b'], { code: '421' }), { kind: 'tempfail', reply: { code: '421', lines: ['a', 'b'] } });
  assert.throws(() => reject('x', { code: '450' }), /needs a 5xx code/);
  assert.throws(() => tempfail('x', { code: '451', xcode: '5.1.1' }), /does not match/);
  assert.throws(() => reject(['x'.repeat(981)]), /longer than 980/);
  assert.throws(() => quarantine('two\nlines'), /one non-empty line/);
});

test('toDecision: nothing is continue; anything else that is not a decision is an error', () => {
  assert.deepEqual(toDecision(undefined), { kind: 'continue' });
  assert.throws(() => toDecision('accept'), /not a decision/);
  assert.throws(() => toDecision({ kind: 'reject' }), /needs a reply/);
});

test('defineFilter refuses malformed definitions', () => {
  assert.throws(() => defineFilter({ name: 'no hooks' } as never), /name of letters/);
  assert.throws(() => defineFilter({ name: 'nohooks' }), /at least one hook/);
  assert.throws(() => defineFilter({ name: 'x', edits: ['everything' as never], message: () => undefined }), /unknown edit kind/);
});

test('header occurrences count the header as it is now', () => {
  const headers = HeaderList.received([
    { name: 'Received', value: 'one' },
    { name: 'Subject', value: 's' },
    { name: 'received', value: 'two' },
    { name: 'Received', value: 'three' },
  ]);
  assert.equal(headers.delete('Received', 1), true);
  assert.equal(headers.get('Received', 1), 'two');
  assert.equal(headers.delete('Received', 1), true);
  assert.equal(headers.change('Received', 1, 'THREE'), true);
  assert.equal(headers.change('Received', 2, 'none'), false);
  headers.insert(0, 'X-First', 'folded\n\tvalue');
  assert.throws(() => headers.add('Bad Name', 'x'), /colon, space or control/);
  assert.throws(() => headers.add('X-Bad', 'a\nb'), /folding/);
  assert.deepEqual([...headers], [
    { name: 'X-First', value: 'folded\n\tvalue' },
    { name: 'Subject', value: 's' },
    { name: 'Received', value: 'THREE' },
  ]);
});
