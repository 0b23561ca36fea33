/**
 * One growable buffer that packets are written into back to back. A packet's header (length and
 * command byte) is reserved when it starts and its length filled in when it ends, so encoders
 * never measure a packet before writing it, and several packets leave as one buffer.
 */
import type { Bytes } from './bytes.js';
import { Limits } from './constants.js';

const HEADER_SIZE = Limits.LEN_BYTES + 1;

/** Writes milter packets into one buffer that grows as needed. */
export class PacketWriter {
  private buffer: Buffer;
  private offset = 0;
  /** Where the packet being written starts, or -1 between packets. */
  private packetStart = -1;

  /** @param initialSize bytes allocated at first and again after each {@link take}. */
  constructor(private readonly initialSize = 256) {
    this.buffer = Buffer.allocUnsafe(initialSize);
  }

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
      this.ensure(Buffer.byteLength(value, 'utf8'));
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
    this.buffer = Buffer.allocUnsafe(Math.max(this.initialSize, open));
    if (open > 0) old.copy(this.buffer, 0, complete, this.offset);
    if (this.packetStart !== -1) this.packetStart = 0;
    this.offset = open;
    return old.subarray(0, complete);
  }

  private ensure(size: number): void {
    const needed = this.offset + size;
    if (needed <= this.buffer.length) return;
    let capacity = Math.max(this.buffer.length * 2, 64);
    while (capacity < needed) capacity *= 2;
    const grown = Buffer.allocUnsafe(capacity);
    this.buffer.copy(grown, 0, 0, this.offset);
    this.buffer = grown;
  }
}
