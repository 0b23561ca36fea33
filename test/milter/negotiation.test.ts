import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Action, Protocol, encodeCommand, stageNames, type Bytes, type MtaCommand, type StageName } from '../../src/protocol/index.js';
import { Milter, type MilterOptions, type NegotiationOffer, type NegotiationRequest } from '../../src/index.js';
import { Driver, connect, header, mail, rcpt, types } from './driver.js';

/** Every NO* step bit. */
const ALL_NO = Protocol.NOCONNECT | Protocol.NOHELO | Protocol.NOMAIL | Protocol.NORCPT | Protocol.NOBODY | Protocol.NOHDRS | Protocol.NOEOH | Protocol.NOUNKNOWN | Protocol.NODATA;

test('a filter with no callbacks asks the MTA to skip every step, and all offered actions', async () => {
  const d = new Driver({ filter: Milter });
  const reply = await d.negotiate();
  assert.deepEqual(reply, { type: 'optneg', version: 6, actions: 0xff, protocol: ALL_NO, macros: {} });
});

test('NO bits are derived from the callbacks a filter implements', async () => {
  class F extends Milter {
    override envrcpt() {}
    override header() {}
    override eom() {}
  }
  const reply = await new Driver({ filter: F }).negotiate();
  assert.equal(reply.type, 'optneg');
  if (reply.type === 'optneg') assert.equal(reply.protocol, ALL_NO & ~Protocol.NORCPT & ~Protocol.NOHDRS);
});

test('the exact OPTNEG reply bytes: actions, NR and flags, and macro lists per stage', async () => {
  class F extends Milter {
    static override options: MilterOptions = {
      actions: ['addHeader', 'changeFrom'],
      noReply: ['header'],
      skip: true,
      rcptRejected: true,
      headerLeadingSpace: true,
      macros: { connect: ['j', '{daemon_name}'], eom: ['i'] },
    };
    override header() {}
    override body() {}
  }
  const d = new Driver({ filter: F });
  await d.send(POSTFIX);
  const protocol = (ALL_NO & ~Protocol.NOHDRS & ~Protocol.NOBODY) | Protocol.NR_HDR | Protocol.SKIP | Protocol.RCPT_REJ | Protocol.HDR_LEADSPC;
  const expected = Buffer.alloc(5 + 12);
  expected.writeUInt32BE(0, 0);
  const lists = [
    [0, 'j {daemon_name}'],
    [5, 'i'],
    [6, ''],
  ] as const;
  const payload = Buffer.concat([
    u32(6),
    u32(Action.ADDHDRS | Action.CHGFROM | Action.SETSYMLIST),
    u32(protocol),
    ...lists.flatMap(([stage, names]) => [u32(stage), Buffer.from(names + '\0')]),
  ]);
  assert.deepEqual(d.written[0], Buffer.concat([u32(payload.length + 1), Buffer.from('O'), payload]));
});

const POSTFIX = { type: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff } as const;
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** MTA versions as Postfix offers them (milter_protocol = 2, 3, 4, 6). */
const mtaOffers: Array<[string, number, number]> = [
  ['v2', 2, 0x7f],
  ['v3', 3, 0x17f],
  ['v4', 4, 0x37f],
  ['v6', 6, 0x1fffff],
];
for (const [name, version, protocol] of mtaOffers) {
  test(`a ${name} MTA gets its own version back and only offered bits`, async () => {
    class F extends Milter {
      static override options: MilterOptions = { noReply: ['header'], skip: true };
      override header() {}
    }
    const reply = await new Driver({ filter: F }).negotiate({ type: 'optneg', version, actions: 0x1ff, protocol });
    assert.equal(reply.type, 'optneg');
    if (reply.type !== 'optneg') return;
    assert.equal(reply.version, version);
    assert.equal(reply.protocol & ~protocol, 0, 'reply protocol is a subset of the offer');
  });
}

test('NR wanted but not offered (v2 MTA): the library answers CONTINUE itself', async () => {
  class F extends Milter {
    static override options: MilterOptions = { noReply: ['header', 'envfrom'] };
    override envfrom() {
      return 'noreply' as const;
    }
    override header() {}
  }
  const d = new Driver({ filter: F });
  const reply = await d.negotiate({ type: 'optneg', version: 2, actions: 0x1ff, protocol: 0x7f });
  assert.ok(reply.type === 'optneg' && (reply.protocol & (Protocol.NR_HDR | Protocol.NR_MAIL)) === 0);
  assert.deepEqual(types(await d.send(connect(), mail(), rcpt(), header('Subject', 'x'))), ['continue', 'continue', 'continue', 'continue']);
});

test('NR negotiated: nothing is ever sent for that stage, whatever the callback returns', async () => {
  class F extends Milter {
    static override options: MilterOptions = { noReply: ['header', 'connect'] };
    override connect() {
      return 'reject' as const;
    }
    override header() {
      return 'reject' as const;
    }
  }
  const d = new Driver({ filter: F });
  await d.negotiate();
  assert.deepEqual(await d.send(connect(), mail(), header('A', '1'), header('B', '2')), [{ type: 'continue' }]);
  assert.ok(d.logger.has('warn', /told not to wait for a reply/));
});

/** One message with every step; each answered step's reply names the step, by its reply's position. */
const everyStep: Array<[StageName, MtaCommand<Bytes>]> = [
  ['connect', connect()],
  ['helo', { type: 'helo', name: 'client.example' }],
  ['unknown', { type: 'unknown', line: 'XCMD' }],
  ['envfrom', mail()],
  ['envrcpt', rcpt()],
  ['data', { type: 'data' }],
  ['header', header('Subject', 'x')],
  ['eoh', { type: 'eoh' }],
  ['body', { type: 'body', chunk: 'text' }],
];

for (const silent of stageNames) {
  test(`NR negotiated for ${silent} alone: every step but ${silent} is answered`, async () => {
    const answered: StageName[] = [];
    class F extends Milter {
      static override options: MilterOptions = { noReply: [silent] };
      override connect() {}
      override helo() {}
      override unknown() {}
      override envfrom() {}
      override envrcpt() {}
      override data() {}
      override header() {}
      override eoh() {}
      override body() {}
    }
    const d = new Driver({ filter: F });
    await d.negotiate();
    for (const [stage, command] of everyStep) if (types(await d.send(command)).length > 0) answered.push(stage);
    assert.deepEqual(answered, everyStep.map(([stage]) => stage).filter((stage) => stage !== silent));
    assert.deepEqual(types(await d.send({ type: 'eob' })), ['continue'], 'end of message is always answered');
  });
}

test('a required action the MTA does not offer ends the session with a clear error and no reply', async () => {
  class F extends Milter {
    static override options: MilterOptions = { actions: ['replaceBody'] };
  }
  const d = new Driver({ filter: F });
  const replies = await d.send({ type: 'optneg', version: 6, actions: Action.ADDHDRS, protocol: 0x1fffff });
  assert.deepEqual(replies, []);
  assert.ok(d.closedByMilter);
  assert.ok(d.logger.has('error', /does not offer the actions this filter requires: CHGBODY/));
});

test('negotiate() may return all-options or reject the MTA', async () => {
  class All extends Milter {
    override negotiate() {
      return 'all-options' as const;
    }
  }
  const all = await new Driver({ filter: All }).negotiate();
  assert.ok(all.type === 'optneg' && all.actions === 0x1ff && all.protocol === (ALL_NO | Protocol.SKIP));

  const offers: NegotiationOffer[] = [];
  class Refuse extends Milter {
    override async negotiate(offer: NegotiationOffer, _request: NegotiationRequest) {
      offers.push(offer);
      return 'reject' as const;
    }
  }
  const d = new Driver({ filter: Refuse });
  assert.deepEqual(await d.send(POSTFIX), []);
  assert.ok(d.closedByMilter);
  assert.deepEqual(offers, [{ version: 6, actions: 0x1ff, protocol: 0x1fffff }]);
});

test('a second OPTNEG, or any command before OPTNEG, ends the session', async () => {
  const d = new Driver({ filter: Milter });
  await d.negotiate();
  assert.deepEqual(await d.send(POSTFIX), []);
  assert.ok(d.closedByMilter && d.logger.has('error', /second OPTNEG/));
  const early = new Driver({ filter: Milter });
  assert.deepEqual(await early.send(encodeCommand(connect())), []);
  assert.ok(early.closedByMilter && early.logger.has('error', /expected OPTNEG first/));
});

test('each connection gets the OPTNEG reply of its own negotiation, whatever the one before got', async () => {
  class Headers extends Milter {
    override header() {}
  }
  class Macros extends Milter {
    static override options: MilterOptions = { macros: { connect: ['j'] } };
    override header() {}
  }
  const offers = [
    { type: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff },
    { type: 'optneg', version: 6, actions: 0x03, protocol: 0x1fffff },
    { type: 'optneg', version: 2, actions: 0x03, protocol: 0x7f },
  ] as const;
  const cases = [Headers, Macros].flatMap((filter) => offers.map((offer) => ({ filter, offer })));
  // The same negotiations in two orders: a reply carried over from the connection before would
  // differ between them.
  const replies = new Map<(typeof cases)[number], unknown>();
  for (const order of [cases, [...cases].reverse(), cases.flatMap((c) => [c, c])]) {
    for (const entry of order) {
      const reply = await new Driver({ filter: entry.filter }).negotiate(entry.offer);
      assert.equal(reply.type, 'optneg');
      if (reply.type !== 'optneg') continue;
      if (replies.has(entry)) assert.deepEqual(reply, replies.get(entry));
      else replies.set(entry, reply);
    }
  }
  assert.ok(new Set([...replies.values()].map((reply) => JSON.stringify(reply))).size >= 4, 'the negotiations here end in several ways');
});
