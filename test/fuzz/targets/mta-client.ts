/**
 * The MTA side fed arbitrary milter replies: a whole Postfix or Sendmail transaction (the virtual
 * MTA over the client connection) whose milter answers with the fuzz input, delivered in pieces of
 * random size — some inside `write()`, as an in-process milter would, the rest between turns of
 * the event loop — and then closes.
 *
 * Invariants: the transaction always ends, with a report or a typed client error; nothing is
 * written after the client closed its transport; what is collected stays within the limits.
 */
import assert from 'node:assert/strict';
import { MilterClientError, MilterConnection } from '../../../src/client/index.js';
import { MtaSession, postfixProfile, sendmailProfile, type MtaProfile } from '../../../src/mta/index.js';
import { encodeReply, type Bytes, type MilterReply } from '../../../src/protocol/index.js';
import { randomFor, type FuzzTarget } from '../engine.js';
import { everyReply, protocolDictionary } from './conversations.js';

const message = Buffer.from('From: <a@example.org>\r\nTo: <b@example.net>\r\nSubject: fuzz\r\nReceived: by mx\r\n\r\nHello\r\n');
const limits = { maxBytes: 8192, maxCount: 32 };

const encode = (replies: ReadonlyArray<MilterReply<Bytes>>): Buffer => Buffer.concat(replies.map((reply) => encodeReply(reply)));
const continues = (n: number): Array<MilterReply<Bytes>> => Array.from({ length: n }, () => ({ type: 'continue' }));
const modifications = everyReply.filter((reply) => !['optneg', 'continue', 'accept', 'reject', 'tempfail', 'discard', 'skip', 'shutdown', 'connFail', 'replyCode'].includes(reply.type));

/** First byte: the profile (bit 0) and whether replies may come inside write() (bit 1); the rest is what the milter sends. */
const seeds = (): Buffer[] => [
  Buffer.concat([Buffer.from([0]), encode([{ type: 'optneg', version: 6, actions: 0x1ff, protocol: 0 }, ...continues(9), ...modifications, { type: 'accept' }])]),
  Buffer.concat([Buffer.from([3]), encode([{ type: 'optneg', version: 2, actions: 0x3f, protocol: 0 }, ...continues(6), { type: 'replaceBody', chunk: 'new\r\n' }, { type: 'continue' }])]),
  Buffer.concat([Buffer.from([2]), encode([{ type: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1ff000 }, ...continues(3), { type: 'replyCode', text: '550 5.7.1 no' }])]),
];

export const mtaClient: FuzzTarget = {
  name: 'mta-client',
  description: 'virtual MTA and client connection on arbitrary milter replies, some answered inside write(): always ends with a report or a typed error, never writes after close, collects within limits',
  seeds,
  dictionary: protocolDictionary,
  async run(input) {
    const mode = input[0] ?? 0;
    const replies = input.subarray(1);
    const profile: MtaProfile = mode & 1 ? sendmailProfile : postfixProfile;
    const insideWrite = (mode & 2) !== 0;
    const random = randomFor(input);
    let offset = 0;
    let closed = false;
    let writesAfterClose = 0;
    let connection!: MilterConnection;
    /** Hands the client the next piece of the milter's answer, or the end of the stream. */
    const deliver = (): void => {
      if (offset >= replies.length) {
        connection.end();
        return;
      }
      const size = 1 + Math.floor(random() * 128);
      connection.receive(replies.subarray(offset, offset + size));
      offset += size;
    };
    const { connectTimeout: _unused, ...client } = profile.client;
    connection = new MilterConnection(
      {
        write: () => {
          if (closed) writesAfterClose++;
          else if (insideWrite && random() < 0.5) deliver();
        },
        close: () => {
          closed = true;
        },
      },
      { ...client, modificationLimits: limits },
    );
    const session = new MtaSession(connection, profile, { client: { address: '192.0.2.1', hostname: 'client.example.org' } });
    let settled = false;
    const outcome = session.deliver(message, {}).then(
      async (report) => {
        await session.close();
        return report;
      },
    );
    outcome.finally(() => (settled = true)).catch(() => undefined);
    while (!settled && offset < replies.length) {
      deliver();
      await new Promise((resolve) => setImmediate(resolve));
    }
    connection.end();
    let report;
    try {
      report = await outcome;
    } catch (error) {
      if (!(error instanceof MilterClientError)) throw error;
    }
    assert.equal(writesAfterClose, 0, 'the client wrote after closing its transport');
    if (report !== undefined) {
      assert.ok(['accept', 'reject', 'tempfail', 'discard'].includes(report.verdict), `verdict ${report.verdict}`);
      assert.ok(report.modifications.length <= limits.maxCount, `${report.modifications.length} modifications collected`);
      if (report.error !== undefined) assert.ok(report.error instanceof MilterClientError, `report error ${String(report.error)}`);
    }
  },
};
