/**
 * One growable buffer that packets are written into back to back. A packet's header (length and
 * command byte) is reserved when it starts and its length filled in when it ends, so encoders
 * never measure a packet before writing it, and several packets leave as one buffer.
 */
// Imported, not the global: Node's global `Buffer` is a getter, called at every use in hot code.
import { Buffer } from 'node:buffer';
import type { Bytes } from './bytes.js';
import { Limits } from './constants.js';

const HEADER_SIZE = Limits.LEN_BYTES + 1;
const EMPTY = Buffer.alloc(0);
/** Largest buffer {@link PacketWriter.reset} keeps for reuse (a shared writer must not pin a large body). */
const MAX_KEPT = 256 * 1024;

/** Writes milter packets into one buffer that grows as needed. */
export class PacketWriter {
  private buffer: Buffer = EMPTY;
  private offset = 0;
  /** Where the packet being written starts, or -1 between packets. */
  private packetStart = -1;

  /** @param initialSize bytes allocated when writing starts (again after each {@link take}); the buffer doubles when full. */
  constructor(private readonly initialSize = 256) {}

  /** Bytes written so far (complete packets and the one in progress). */
  get length(): number {
    return this.offset;
  }

  /** Starts a packet: reserves its length field and writes its command byte. */
  begin(code: number): this {
    if (this.packetStart !== -1) throw new Error('PacketWriter: begin() inside a packet');
    this.ensure(HEADER_SIZE);
    this.packetStart = this.offset;
    this.buffer[this.offset + Limits.LEN_BYTES] = code;
    this.offset += HEADER_SIZE;
    return this;
  }

  /** Ends the packet: fills in its length field. */
  end(): this {
    if (this.packetStart === -1) throw new Error('PacketWriter: end() outside a packet');
    this.buffer.writeUInt32BE(this.offset - this.packetStart - Limits.LEN_BYTES, this.packetStart);
    this.packetStart = -1;
    return this;
  }

  byte(value: number): this {
    this.ensure(1);
    this.buffer[this.offset++] = value;
    return this;
  }

  uint16(value: number): this {
    this.ensure(2);
    this.offset = this.buffer.writeUInt16BE(value, this.offset);
    return this;
  }

  uint32(value: number): this {
    this.ensure(4);
    this.offset = this.buffer.writeUInt32BE(value >>> 0, this.offset);
    return this;
  }

  /** Writes bytes (a string as UTF-8) as they are. */
  bytes(value: Bytes): this {
    if (typeof value === 'string') {
      // A UTF-16 code unit takes at most 3 bytes in UTF-8: reserving that spares measuring the string.
      this.ensure(value.length * 3);
      this.offset += this.buffer.write(value, this.offset, 'utf8');
    } else {
      this.ensure(value.length);
      this.buffer.set(value, this.offset);
      this.offset += value.length;
    }
    return this;
  }

  /** Writes a string followed by its NUL terminator. */
  cstring(value: Bytes): this {
    return this.bytes(value).byte(0);
  }

  /** Bytes of the complete packets written so far. */
  get complete(): number {
    return this.packetStart === -1 ? this.offset : this.packetStart;
  }

  /**
   * Hands out the complete packets as a buffer of their own and starts afresh; a packet in
   * progress moves to the new buffer. The bytes are given away rather than copied: the writer
   * goes on in a new buffer.
   */
  take(): Buffer {
    const complete = this.complete;
    const old = this.buffer;
    const open = this.offset - complete;
    // The next buffer is allocated when something is written: a writer used once allocates once.
    this.buffer = open > 0 ? Buffer.allocUnsafe(Math.max(this.initialSize, open)) : EMPTY;
    if (open > 0) old.copy(this.buffer, 0, complete, this.offset);
    if (this.packetStart !== -1) this.packetStart = 0;
    this.offset = open;
    return old.subarray(0, complete);
  }

  /**
   * Copies out the complete packets, exactly sized, and starts afresh in the same buffer: for
   * encoders of single packets, which share one writer instead of allocating a buffer each.
   */
  copy(): Buffer {
    if (this.packetStart !== -1) throw new Error('PacketWriter: copy() inside a packet');
    const out = Buffer.allocUnsafe(this.offset);
    this.buffer.copy(out, 0, 0, this.offset);
    this.reset();
    return out;
  }

  /** Drops whatever was written, a packet in progress included; a buffer grown large is released. */
  reset(): void {
    this.offset = 0;
    this.packetStart = -1;
    if (this.buffer.length > MAX_KEPT) this.buffer = EMPTY;
  }

  private ensure(size: number): void {
    const needed = this.offset + size;
    if (needed <= this.buffer.length) return;
    let capacity = Math.max(this.buffer.length * 2, this.initialSize, 64);
    while (capacity < needed) capacity *= 2;
    const grown = Buffer.allocUnsafe(capacity);
    this.buffer.copy(grown, 0, 0, this.offset);
    this.buffer = grown;
  }
}
