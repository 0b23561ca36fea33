import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMessage, serializeMessage } from '../../src/mta/index.js';
import { applyHeaderEdit, finishHeaderEdits, type HeaderEdit, type HeaderEditRules, type HeaderEntry } from '../../src/mta/header-edits.js';
import { toCrlf } from '../../src/mta/message.js';

/** Received (the MTA's), then A, B, A, C from the message. */
function header(): HeaderEntry[] {
  return [
    { name: 'Received', value: ' by mta', origin: 'mta' },
    { name: 'A', value: ' a1', origin: 'message' },
    { name: 'B', value: ' b1', origin: 'message' },
    { name: 'A', value: ' a2', origin: 'message' },
    { name: 'C', value: ' c1', origin: 'message' },
  ];
}

function apply(rules: HeaderEditRules, edits: HeaderEdit[], leadingSpace = false): string[] {
  const fields = header();
  for (const edit of edits) applyHeaderEdit(rules, fields, edit, leadingSpace);
  return finishHeaderEdits(fields).map((f) => `${f.name}:${f.value}`);
}

test('INSHEADER 0 goes above the MTA Received in Postfix and just below it in Sendmail', () => {
  const edit: HeaderEdit = { type: 'insertHeader', index: 0, name: 'X', value: 'x' };
  assert.deepEqual(apply('postfix', [edit]).slice(0, 2), ['X: x', 'Received: by mta']);
  assert.deepEqual(apply('sendmail', [edit]).slice(0, 2), ['Received: by mta', 'X: x']);
});

test('INSHEADER with an index past the end appends', () => {
  for (const rules of ['postfix', 'sendmail'] as const) {
    assert.equal(apply(rules, [{ type: 'insertHeader', index: 99, name: 'X', value: 'x' }]).at(-1), 'X: x', rules);
  }
});

test('CHGHEADER counts per name from 1, index 0 acts as 1, and the MTA field is not counted', () => {
  for (const rules of ['postfix', 'sendmail'] as const) {
    assert.deepEqual(apply(rules, [{ type: 'changeHeader', index: 2, name: 'a', value: 'new' }]), ['Received: by mta', 'A: a1', 'B: b1', 'A: new', 'C: c1'], rules);
    assert.deepEqual(apply(rules, [{ type: 'changeHeader', index: 0, name: 'A', value: 'new' }])[1], 'A: new', rules);
    assert.deepEqual(apply(rules, [{ type: 'changeHeader', index: 1, name: 'Received', value: '' }])[0], 'Received: by mta', rules);
  }
});

test('changing a missing field appends it; deleting a missing field does nothing', () => {
  for (const rules of ['postfix', 'sendmail'] as const) {
    assert.equal(apply(rules, [{ type: 'changeHeader', index: 3, name: 'A', value: 'x' }]).at(-1), 'A: x');
    assert.equal(apply(rules, [{ type: 'changeHeader', index: 1, name: 'Z', value: '' }]).length, 5);
  }
});

test('deleting in forward order: Postfix shifts later indexes, Sendmail keeps deleted fields counted', () => {
  // A milter that deletes A #1 then A #2 (the wrong order the OpenDKIM CVE was about).
  const forward: HeaderEdit[] = [
    { type: 'changeHeader', index: 1, name: 'A', value: '' },
    { type: 'changeHeader', index: 2, name: 'A', value: '' },
  ];
  assert.deepEqual(apply('postfix', forward), ['Received: by mta', 'B: b1', 'A: a2', 'C: c1']);
  assert.deepEqual(apply('sendmail', forward), ['Received: by mta', 'B: b1', 'C: c1']);
  // From the highest index down, both end the same.
  const backward = [...forward].reverse();
  assert.deepEqual(apply('postfix', backward), apply('sendmail', backward));
});

test('Postfix skips the first field of the header, whichever it is, when counting for CHGHEADER', () => {
  const edits: HeaderEdit[] = [
    { type: 'insertHeader', index: 0, name: 'A', value: 'top' },
    { type: 'changeHeader', index: 1, name: 'A', value: 'changed' },
  ];
  assert.deepEqual(apply('postfix', edits).slice(0, 3), ['A: top', 'Received: by mta', 'A: changed']);
});

test('without HDR_LEADSPC the MTA puts one space before the value; with it the value is verbatim', () => {
  assert.equal(apply('postfix', [{ type: 'addHeader', name: 'X', value: 'v' }]).at(-1), 'X: v');
  assert.equal(apply('postfix', [{ type: 'addHeader', name: 'X', value: 'v' }], true).at(-1), 'X:v');
  assert.equal(apply('sendmail', [{ type: 'addHeader', name: 'X', value: '\tv' }], true).at(-1), 'X:\tv');
});

test('messages parse with CRLF or LF, keep folding with LF, and come back with CRLF', () => {
  const lf = 'From ignored@mbox  Mon Jan  1 00:00:00 2024\nSubject: a\n  folded\nX-Empty:\nNo-Space:x\n\nline 1\nline 2';
  const message = parseMessage(lf);
  assert.deepEqual(message.headers, [
    { name: 'Subject', value: ' a\n  folded' },
    { name: 'X-Empty', value: '' },
    { name: 'No-Space', value: 'x' },
  ]);
  assert.equal(message.body.toString(), 'line 1\r\nline 2\r\n');
  assert.equal(serializeMessage(message).toString(), 'Subject: a\r\n  folded\r\nX-Empty:\r\nNo-Space:x\r\n\r\nline 1\r\nline 2\r\n');
  assert.deepEqual(parseMessage(serializeMessage(message)), message);
});

test('a line that is not a header field ends the header and starts the body', () => {
  const message = parseMessage('Subject: x\r\nthis is not a header\r\nmore\r\n');
  assert.deepEqual(message.headers, [{ name: 'Subject', value: ' x' }]);
  assert.equal(message.body.toString(), 'this is not a header\r\nmore\r\n');
});

test('CRLF conversion drops a CR before LF, keeps other CRs, and ends the last line', () => {
  assert.equal(toCrlf(Buffer.from('a\r\nb\nc\rd')).toString(), 'a\r\nb\r\nc\rd\r\n');
  assert.equal(toCrlf(Buffer.alloc(0)).length, 0);
});
