import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Action, Protocol, negotiate, NegotiationError, formatReplyText, ReplyCodeError } from '../../src/protocol/index.js';

const postfix = (version: number, protocol: number) => ({ version, actions: 0x1ff, protocol });

/** Negotiation cases as data: offer, request, expected reply fields. */
const cases = [
  {
    name: 'v6 MTA: NO bits, NR bits and SKIP granted as asked',
    offer: postfix(6, 0x1fffff),
    request: { requiredActions: Action.ADDHDRS, protocol: Protocol.NOHELO | Protocol.NR_HDR | Protocol.SKIP },
    expect: { version: 6, actions: Action.ADDHDRS, protocol: Protocol.NOHELO | Protocol.NR_HDR | Protocol.SKIP, emulatedNoReply: 0 },
  },
  {
    name: 'v2 MTA: NR wanted but not offered is emulated; version 2 replied',
    offer: postfix(2, 0x7f),
    request: { requiredActions: 0, protocol: Protocol.NR_CONN | Protocol.NR_HDR | Protocol.NOHELO },
    expect: { version: 2, actions: 0, protocol: Protocol.NOHELO, emulatedNoReply: Protocol.NR_CONN | Protocol.NR_HDR },
  },
  {
    name: 'v4 MTA: NODATA offered and granted, SKIP and HDR_LEADSPC not offered are dropped',
    offer: postfix(4, 0x37f),
    request: { requiredActions: 0, protocol: Protocol.NODATA | Protocol.SKIP | Protocol.HDR_LEADSPC },
    expect: { version: 4, actions: 0, protocol: Protocol.NODATA, emulatedNoReply: 0 },
  },
  {
    name: 'optional actions are granted only when offered; an offer of 0 means the v1 set',
    offer: { version: 6, actions: 0, protocol: 0 },
    request: { requiredActions: 0, optionalActions: Action.ADDHDRS | Action.CHGFROM, protocol: Protocol.NOCONNECT },
    expect: { version: 6, actions: Action.ADDHDRS, protocol: Protocol.NOCONNECT, emulatedNoReply: 0 },
  },
  {
    name: 'an MTA newer than 6 gets version 6',
    offer: { version: 8, actions: 0x1ff, protocol: 0x1fffff },
    request: { requiredActions: 0, protocol: 0 },
    expect: { version: 6, actions: 0, protocol: 0, emulatedNoReply: 0 },
  },
];

for (const c of cases) {
  test(`negotiate: ${c.name}`, () => {
    const result = negotiate(c.offer, c.request);
    assert.deepEqual({ version: result.version, actions: result.actions, protocol: result.protocol, emulatedNoReply: result.emulatedNoReply }, c.expect);
    const offered = c.offer.protocol === 0 ? 0x3f : c.offer.protocol;
    assert.equal(result.protocol & ~offered, 0, 'reply protocol is a subset of the offer');
    assert.equal(result.maxPayload, 65535);
  });
}

test('negotiate: a required action the MTA does not offer is a clear error', () => {
  assert.throws(
    () => negotiate({ version: 6, actions: Action.ADDHDRS, protocol: 0x1fffff }, { requiredActions: Action.ADDHDRS | Action.CHGBODY, protocol: 0 }),
    (e: unknown) => e instanceof NegotiationError && /CHGBODY/.test(e.message),
  );
});

test('negotiate: version 1 is refused', () => {
  assert.throws(() => negotiate({ version: 1, actions: 0x1ff, protocol: 0x1fffff }, { requiredActions: 0, protocol: 0 }), NegotiationError);
});

test('negotiate: macro lists are carried with SETSYMLIST when offered, dropped when not', () => {
  const withLists = negotiate(postfix(6, 0x1fffff), { requiredActions: 0, protocol: 0, macros: { 0: 'j' } });
  assert.equal(withLists.actions, Action.SETSYMLIST);
  assert.deepEqual(withLists.macros, { 0: 'j' });
  const without = negotiate({ version: 6, actions: Action.ADDHDRS, protocol: 0x1fffff }, { requiredActions: 0, protocol: 0, macros: { 0: 'j' } });
  assert.equal(without.macros, undefined);
  assert.equal(without.actions, 0);
});

test('negotiate: MDS bits offered by an FFR Sendmail are echoed and raise the outgoing limit', () => {
  const mds = negotiate({ version: 6, actions: 0x1ff, protocol: 0x1fffff | Protocol.MDS_1M | Protocol.MDS_256K }, { requiredActions: 0, protocol: Protocol.MDS_256K });
  assert.equal(mds.protocol, Protocol.MDS_1M, 'the filter cannot set internal bits itself; the library picks 1M');
  assert.equal(mds.maxPayload, 1048575);
  const k256 = negotiate({ version: 6, actions: 0x1ff, protocol: 0x1fffff | Protocol.MDS_256K }, { requiredActions: 0, protocol: 0 });
  assert.equal(k256.protocol, Protocol.MDS_256K);
  assert.equal(k256.maxPayload, 262143);
});

const replyTexts: Array<[string, string | undefined, string[], string]> = [
  ['550', '5.7.1', ['Rejected'], '550 5.7.1 Rejected'],
  ['550', undefined, ['Rejected'], '550 Rejected'],
  ['451', undefined, [], '451 '],
  ['451', '4.7.1', [], '451 4.7.1'],
  ['550', undefined, ['a', 'b'], '550-5.0.0 a\r\n550 5.0.0 b'],
  ['421', '4.3.0', ['x', 'y', 'z'], '421-4.3.0 x\r\n421-4.3.0 y\r\n421 4.3.0 z'],
  ['550', '5.7.1', ['100% spam'], '550 5.7.1 100%% spam'],
];
for (const [code, xcode, lines, text] of replyTexts) {
  test(`formatReplyText(${code}, ${xcode}, ${JSON.stringify(lines)})`, () => {
    assert.equal(formatReplyText(code, xcode, lines), text);
  });
}

const badReplies: Array<[string, string, string | undefined, string[]]> = [
  ['a 2xx code', '250', undefined, ['ok']],
  ['a non-numeric code', '5x0', undefined, []],
  ['a mismatched enhanced code', '550', '4.7.1', []],
  ['a malformed enhanced code', '550', '5.7', []],
  ['CR or LF in a line', '550', '5.7.1', ['a\r\nb']],
  ['a line over 980 bytes', '550', undefined, ['x'.repeat(981)]],
  ['a line that grows over 980 bytes once % is doubled', '550', undefined, ['%'.repeat(491)]],
  ['33 lines', '550', undefined, Array.from({ length: 33 }, () => 'x')],
];
for (const [name, code, xcode, lines] of badReplies) {
  test(`formatReplyText refuses ${name}`, () => {
    assert.throws(() => formatReplyText(code, xcode, lines), ReplyCodeError);
  });
}

test('formatReplyText accepts exactly 32 lines of 980 bytes', () => {
  const text = formatReplyText('550', '5.7.1', Array.from({ length: 32 }, () => 'x'.repeat(980)));
  assert.equal(text.split('\r\n').length, 32);
});
