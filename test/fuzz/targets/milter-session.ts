/**
 * The milter session fed arbitrary MTA byte streams, in reads of random sizes, running a filter
 * that implements every callback and uses every action. How each callback behaves (returns at
 * once, awaits, throws, rejects, answers a verdict, hangs until the connection ends, or past its
 * deadline) is chosen by the bytes it receives, so the fuzzer steers that too.
 *
 * Invariants: `receive` never throws; nothing is written after the transport closed; everything
 * written is a sequence of well-formed replies (body chunks within 65535 bytes, header values
 * without a bare line break that starts a new field); no filter callback runs after `close()`;
 * at the end of the stream the session closes its transport and `closed` resolves.
 */
import assert from 'node:assert/strict';
import { FrameReader, decodeReply, type MilterReply } from '../../../src/protocol/index.js';
import { Milter, type MilterOptions } from '../../../src/index.js';
import { MilterSession } from '../../../src/milter/session.js';
import { silentLogger } from '../../../src/log.js';
import { randomFor, type FuzzTarget } from '../engine.js';
import { postfixConversation, protocolDictionary, sendmailConversation } from './conversations.js';

/** Per run: resolved when the stream has ended, to release callbacks that "hang". */
let connectionEnded: Promise<void> = Promise.resolve();
/** Per run: a callback that ran after `close()`, if any. */
let lateCallback: string | undefined;

type Behaviour = 'sync' | 'async' | 'throw' | 'reject' | 'verdict' | 'hang' | 'later' | 'timeout';
const behaviours: readonly Behaviour[] = ['sync', 'async', 'throw', 'reject', 'verdict', 'hang', 'later', 'sync'];
const verdicts = ['continue', 'accept', 'reject', 'tempfail', 'discard', 'noreply', 'skip'] as const;

/** A cheap digest of what a callback received, deciding its behaviour. */
function digest(values: ReadonlyArray<string | Buffer>): number {
  let sum = 0;
  for (const value of values) for (let i = 0; i < value.length; i++) sum = (sum * 31 + (typeof value === 'string' ? value.charCodeAt(i) : value[i]!)) >>> 0;
  return sum;
}

function behave(milter: EveryAction, name: string, values: ReadonlyArray<string | Buffer>): unknown {
  if (milter.closedCalled) lateCallback ??= name;
  const seed = digest([name, ...values]);
  // One value in 64 hangs past the callback deadline: rare, because each costs that long.
  const behaviour: Behaviour = seed % 64 === 63 ? 'timeout' : behaviours[seed % behaviours.length]!;
  const verdict = verdicts[(seed >>> 3) % verdicts.length];
  switch (behaviour) {
    case 'sync':
      return undefined;
    case 'async':
      return Promise.resolve(verdict === 'skip' ? undefined : 'continue');
    case 'throw':
      throw new Error(`${name} fails`);
    case 'reject':
      return Promise.reject(new Error(`${name} fails later`));
    case 'verdict':
      return verdict;
    case 'hang':
      return connectionEnded.then(() => verdict);
    case 'later':
      return new Promise((resolve) => setImmediate(() => resolve(verdict)));
    case 'timeout':
      return new Promise((resolve) => setTimeout(() => resolve('continue'), CALLBACK_TIMEOUT * 2));
  }
}

const CALLBACK_TIMEOUT = 20;

class EveryAction extends Milter {
  static override options: MilterOptions = { noReply: ['header'], skip: true, rcptRejected: true, macros: { envfrom: ['i', '{auth_authen}'], eom: ['i'] } };
  closedCalled = false;
  private lastHeader: [string, string] = ['X-None', ''];
  private recipient = '<none@example.org>';
  private bodyBytes: Buffer[] = [];

  override connect(hostname: string, family: string, address?: string) {
    return behave(this, 'connect', [hostname, family, address ?? '']) as undefined;
  }
  override helo(name: string) {
    return behave(this, 'helo', [name]) as undefined;
  }
  override envfrom(sender: string, args: string[]) {
    return behave(this, 'envfrom', [sender, ...args]) as undefined;
  }
  override envrcpt(recipient: string, args: string[]) {
    this.recipient = recipient;
    return behave(this, 'envrcpt', [recipient, ...args]) as undefined;
  }
  override data() {
    return behave(this, 'data', []) as undefined;
  }
  override header(name: string, value: string) {
    this.lastHeader = [name, value];
    const result = behave(this, 'header', [name, value]);
    // Header is no-reply: a verdict there would be a misuse the session rejects; keep to continue.
    return result instanceof Promise ? result.then(() => undefined) : undefined;
  }
  override eoh() {
    return behave(this, 'eoh', []) as undefined;
  }
  override body(chunk: Buffer) {
    if (this.bodyBytes.length < 8) this.bodyBytes.push(Buffer.from(chunk));
    return behave(this, 'body', [chunk]) as undefined;
  }
  override unknown(command: string) {
    return behave(this, 'unknown', [command]) as undefined;
  }
  override abort() {
    if (this.closedCalled) lateCallback ??= 'abort';
    this.bodyBytes = [];
  }
  override close() {
    this.closedCalled = true;
  }

  override async eom() {
    const [name, value] = this.lastHeader;
    const seed = digest([name, value, this.recipient]);
    const attempt = (action: () => void): void => {
      try {
        action();
      } catch {
        // Refusals (an action not negotiated, a bad argument) are the API's answer, not a defect.
      }
    };
    attempt(() => this.addHeader(name, value));
    attempt(() => this.insertHeader(seed % 5, `X-${name}`, `${value}\nInjected: yes`));
    attempt(() => this.changeHeader(name, 1 + (seed % 3), value.toUpperCase()));
    attempt(() => this.deleteHeader('Received', 1));
    attempt(() => this.addRecipient(this.recipient, seed % 2 === 0 ? 'NOTIFY=NEVER' : undefined));
    attempt(() => this.deleteRecipient(this.recipient));
    attempt(() => this.changeFrom(`<${name}@example.org>`, value));
    attempt(() => this.quarantine(value || 'held'));
    attempt(() => this.progress());
    const parts = this.bodyBytes;
    attempt(() =>
      this.replaceBody(
        seed % 3 === 0
          ? Buffer.concat(parts)
          : (async function* () {
              for (const part of parts) {
                await null;
                yield part;
              }
            })(),
      ),
    );
    attempt(() => this.setReply(seed % 2 === 0 ? '550' : '451', seed % 2 === 0 ? '5.7.1' : '4.7.1', value, name));
    return behave(this, 'eom', [name, value]) as undefined;
  }
}

const MAX_CHUNK = 65535;

/** Checks what the session wrote: whole, well-formed replies. */
function checkWritten(written: Buffer): void {
  const reader = new FrameReader(MAX_CHUNK + 1024);
  const replies: MilterReply[] = [];
  reader.push(written, (code, payload) => replies.push(decodeReply(code, Buffer.from(payload))));
  reader.end();
  for (const reply of replies) {
    if (reply.type === 'replaceBody') assert.ok(reply.chunk.length <= MAX_CHUNK, `a body chunk of ${reply.chunk.length} bytes`);
    if (reply.type === 'addHeader' || reply.type === 'insertHeader' || reply.type === 'changeHeader') {
      assert.ok(!/\n(?![ \t])/.test(reply.value.toString('latin1')), `header value ${JSON.stringify(reply.value.toString('latin1'))} starts a new header field`);
    }
  }
}

export const milterSession: FuzzTarget = {
  name: 'milter-session',
  description: 'milter session on arbitrary MTA streams with a filter using every callback and action (sync, async, throwing, hanging): never throws, never writes after close, writes well-formed replies, no callback after close(), always ends',
  seeds: () => [postfixConversation, sendmailConversation],
  dictionary: protocolDictionary,
  async run(input) {
    let endStream!: () => void;
    connectionEnded = new Promise((resolve) => (endStream = resolve));
    lateCallback = undefined;
    const random = randomFor(input);
    const written: Buffer[] = [];
    let transportClosed = false;
    let writesAfterClose = 0;
    const session = new MilterSession(
      { filter: EveryAction, logger: silentLogger, maxPayload: 64 * 1024, callbackTimeout: CALLBACK_TIMEOUT, progressInterval: 5 },
      {
        write: (data) => {
          if (transportClosed) writesAfterClose++;
          else written.push(Buffer.from(data));
        },
        close: () => {
          transportClosed = true;
        },
      },
    );
    for (let offset = 0; offset < input.length; ) {
      const size = 1 + Math.floor(random() * 256);
      session.receive(input.subarray(offset, offset + size));
      offset += size;
      if (random() < 0.2) await new Promise((resolve) => setImmediate(resolve));
    }
    session.end();
    endStream();
    await session.closed;
    assert.ok(transportClosed, 'the session ended without closing its transport');
    assert.equal(writesAfterClose, 0, 'the session wrote after closing its transport');
    assert.equal(lateCallback, undefined, `${lateCallback} ran after close()`);
    checkWritten(Buffer.concat(written));
  },
};
