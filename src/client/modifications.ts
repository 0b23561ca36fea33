/**
 * The changes a milter asks for at end of message, in a form that is easy to assert on: strings
 * decoded as UTF-8, consecutive REPLBODY packets joined into one body. What is collected is
 * bounded: a milter that sends an endless body replacement fails the exchange, it does not fill
 * the client's memory.
 */
import { text, type MilterReply } from '../protocol/codec.js';
import { MilterProtocolError } from './errors.js';

/** How much the client collects from a milter at end of message. */
export interface ModificationLimits {
  /** Payload bytes of all modifications of one message, the body replacement included. */
  maxBytes: number;
  /** Number of modifications of one message (a run of REPLBODY packets counts once). */
  maxCount: number;
}

/**
 * Default limits: far above what a real filter sends (a replaced body the size of the largest
 * message an MTA takes by default; every recipient of a large list), far below what hurts.
 */
export const DEFAULT_MODIFICATION_LIMITS: Readonly<ModificationLimits> = Object.freeze({
  maxBytes: 64 * 1024 * 1024,
  maxCount: 100_000,
});

/** One change requested by the milter at end of message, in arrival order. */
export type Modification =
  | { type: 'addHeader'; name: string; value: string }
  /** `index` is 0-based over the whole header as the MTA holds it. */
  | { type: 'insertHeader'; index: number; name: string; value: string }
  /** `index` is the 1-based occurrence of `name`; an empty `value` deletes the header. */
  | { type: 'changeHeader'; index: number; name: string; value: string }
  | { type: 'addRecipient'; recipient: string; args?: string }
  | { type: 'deleteRecipient'; recipient: string }
  | { type: 'changeFrom'; sender: string; args?: string }
  /** The new body, joined from `packets` consecutive REPLBODY packets. */
  | { type: 'replaceBody'; body: Buffer; packets: number }
  | { type: 'quarantine'; reason: string };

/**
 * Collects the modifications of one end-of-message exchange. REPLBODY packets in a row become one
 * `replaceBody`; a later REPLBODY after another change starts a new one (Postfix refuses that).
 */
export class ModificationCollector {
  private readonly items: Modification[] = [];
  private readonly limits: ModificationLimits;
  private body: GrowingBuffer | null = null;
  private bytes = 0;

  constructor(limits: Partial<ModificationLimits> = {}) {
    this.limits = { ...DEFAULT_MODIFICATION_LIMITS, ...limits };
  }

  /**
   * Adds a decoded reply that is a modification.
   * @param payloadBytes the size of the packet's payload
   * @returns a `MODIFICATION_LIMIT` error, and the reply is dropped, when it would exceed a limit
   */
  add(reply: MilterReply, payloadBytes: number): MilterProtocolError | undefined {
    this.bytes += payloadBytes;
    if (this.bytes > this.limits.maxBytes) {
      return new MilterProtocolError('MODIFICATION_LIMIT', `milter sent more than ${this.limits.maxBytes} bytes of modifications at end of message, the most this client collects`, 'eom');
    }
    const startsItem = reply.type !== 'replaceBody' || this.body === null;
    if (startsItem && this.items.length + (this.body === null ? 0 : 1) >= this.limits.maxCount) {
      return new MilterProtocolError('MODIFICATION_LIMIT', `milter sent more than ${this.limits.maxCount} modifications at end of message, the most this client collects`, 'eom');
    }
    if (reply.type === 'replaceBody') {
      // Copied into one growing buffer: the payload may be a view of a socket buffer, and many
      // small packets must not cost an object each.
      this.body ??= new GrowingBuffer();
      this.body.append(reply.chunk);
      return undefined;
    }
    this.flushBody();
    const modification = toModification(reply);
    if (modification !== undefined) this.items.push(modification);
    return undefined;
  }

  /** The modifications so far, in arrival order. */
  finish(): Modification[] {
    this.flushBody();
    return this.items;
  }

  private flushBody(): void {
    if (this.body === null) return;
    this.items.push({ type: 'replaceBody', body: this.body.contents(), packets: this.body.parts });
    this.body = null;
  }
}

/** Bytes appended in parts, kept in one buffer that doubles when full. */
class GrowingBuffer {
  private buffer = Buffer.alloc(0);
  private length = 0;
  /** How many parts were appended. */
  parts = 0;

  append(chunk: Uint8Array): void {
    const needed = this.length + chunk.length;
    if (needed > this.buffer.length) {
      const larger = Buffer.allocUnsafe(Math.max(needed, this.buffer.length * 2, 4096));
      this.buffer.copy(larger, 0, 0, this.length);
      this.buffer = larger;
    }
    this.buffer.set(chunk, this.length);
    this.length = needed;
    this.parts++;
  }

  /** The bytes appended so far, in a buffer of their exact size. */
  contents(): Buffer {
    return this.length === this.buffer.length ? this.buffer : Buffer.from(this.buffer.subarray(0, this.length));
  }
}

function toModification(reply: MilterReply): Modification | undefined {
  switch (reply.type) {
    case 'addHeader':
      return { type: 'addHeader', name: text(reply.name), value: text(reply.value) };
    case 'insertHeader':
      return { type: 'insertHeader', index: reply.index, name: text(reply.name), value: text(reply.value) };
    case 'changeHeader':
      return { type: 'changeHeader', index: reply.index, name: text(reply.name), value: text(reply.value) };
    case 'addRcpt':
      return { type: 'addRecipient', recipient: text(reply.rcpt) };
    case 'addRcptPar':
      return reply.args === undefined
        ? { type: 'addRecipient', recipient: text(reply.rcpt) }
        : { type: 'addRecipient', recipient: text(reply.rcpt), args: text(reply.args) };
    case 'delRcpt':
      return { type: 'deleteRecipient', recipient: text(reply.rcpt) };
    case 'changeFrom':
      return reply.args === undefined
        ? { type: 'changeFrom', sender: text(reply.sender) }
        : { type: 'changeFrom', sender: text(reply.sender), args: text(reply.args) };
    case 'quarantine':
      return { type: 'quarantine', reason: text(reply.reason) };
    default:
      return undefined;
  }
}

/** One line describing a modification, for people. */
export function describeModification(modification: Modification): string {
  switch (modification.type) {
    case 'addHeader':
      return `add header ${modification.name}${showValue(modification.value)}`;
    case 'insertHeader':
      return `insert header at ${modification.index}: ${modification.name}${showValue(modification.value)}`;
    case 'changeHeader':
      return modification.value === ''
        ? `delete header ${modification.name} #${modification.index}`
        : `change header ${modification.name} #${modification.index} to${showValue(modification.value)}`;
    case 'addRecipient':
      return `add recipient ${modification.recipient}${modification.args === undefined ? '' : ` ${modification.args}`}`;
    case 'deleteRecipient':
      return `delete recipient ${modification.recipient}`;
    case 'changeFrom':
      return `change sender to ${modification.sender}${modification.args === undefined ? '' : ` ${modification.args}`}`;
    case 'replaceBody':
      return `replace body (${modification.body.length} bytes in ${modification.packets} packet${modification.packets === 1 ? '' : 's'})`;
    case 'quarantine':
      return `quarantine: ${modification.reason}`;
  }
}

/** Quoted so that leading space and line breaks show. */
function showValue(value: string): string {
  return ' ' + JSON.stringify(value);
}
