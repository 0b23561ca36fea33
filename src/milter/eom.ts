/**
 * The end-of-message reply being built: modification packets in the order the filter asked for
 * them, then the replacement body, all before the final verdict. Body packets are kept together
 * because Postfix refuses body replacement mixed with other modifications.
 */
import { Limits, Reply, decodeReply, writeFrameHeader, FRAME_HEADER_SIZE } from '../protocol/codec.js';
import type { BodySource } from './milter.js';

type Emit = (frame: Buffer) => void;

function isBytes(source: BodySource): source is string | Uint8Array {
  return typeof source === 'string' || source instanceof Uint8Array;
}

/** Splits bytes into REPLBODY packets of at most 65535 payload bytes (whatever MDS was negotiated). */
class BodyChunker {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** True once any packet went out: an empty replacement still needs one empty packet. */
  private sent = false;

  constructor(private readonly emit: Emit) {}

  push(bytes: Uint8Array): void {
    let data = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    while (data.length > 0) {
      const room = Limits.CHUNK_SIZE - this.pendingBytes;
      if (this.pendingBytes === 0 && data.length >= Limits.CHUNK_SIZE) {
        this.packet([data.subarray(0, Limits.CHUNK_SIZE)], Limits.CHUNK_SIZE);
        data = data.subarray(Limits.CHUNK_SIZE);
        continue;
      }
      const take = Math.min(room, data.length);
      this.pending.push(data.subarray(0, take));
      this.pendingBytes += take;
      data = data.subarray(take);
      if (this.pendingBytes === Limits.CHUNK_SIZE) this.drain();
    }
  }

  end(): void {
    if (this.pendingBytes > 0 || !this.sent) this.drain();
  }

  private drain(): void {
    this.packet(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
  }

  private packet(parts: Buffer[], size: number): void {
    const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + size);
    let offset = writeFrameHeader(frame, 0, Reply.REPLBODY, size);
    for (const part of parts) {
      part.copy(frame, offset);
      offset += part.length;
    }
    this.sent = true;
    this.emit(frame);
  }
}

/** Collects what eom() asks for. */
export class EndOfMessage {
  private readonly frames: Buffer[] = [];
  private readonly body: BodySource[] = [];
  /** False once eom() has returned: later actions are refused. */
  open = true;
  hasStreamingBody = false;

  modify(frame: Buffer): void {
    this.frames.push(frame);
  }

  replaceBody(source: BodySource): void {
    if (!isBytes(source)) this.hasStreamingBody = true;
    this.body.push(source);
  }

  close(): void {
    this.open = false;
  }

  /** What was asked for, readable, for logs (shadow mode). */
  get changes(): string[] {
    const described = this.frames.map((frame) => {
      const reply = decodeReply(frame[4]!, frame.subarray(FRAME_HEADER_SIZE));
      const fields = Object.entries(reply)
        .filter(([key]) => key !== 'type')
        .map(([key, value]) => `${key}=${JSON.stringify(Buffer.isBuffer(value) ? value.toString('utf8') : value)}`);
      return `${reply.type} ${fields.join(' ')}`;
    });
    if (this.body.length > 0) {
      const sizes = this.body.map((source) => (typeof source === 'string' ? Buffer.byteLength(source) : source instanceof Uint8Array ? source.length : undefined));
      described.push(sizes.includes(undefined) ? 'replaceBody (streamed)' : `replaceBody ${sizes.reduce((a, b) => a! + b!, 0)} bytes`);
    }
    return described;
  }

  /** Emits everything when the body is held in memory. */
  writeTo(emit: Emit): void {
    for (const frame of this.frames) emit(frame);
    if (this.body.length === 0) return;
    const chunker = new BodyChunker(emit);
    for (const source of this.body) chunker.push(typeof source === 'string' ? Buffer.from(source, 'utf8') : (source as Uint8Array));
    chunker.end();
  }

  /** Emits everything, reading streamed body parts as it goes. */
  async stream(emit: Emit): Promise<void> {
    for (const frame of this.frames) emit(frame);
    const chunker = new BodyChunker(emit);
    for (const source of this.body) {
      if (isBytes(source)) {
        chunker.push(typeof source === 'string' ? Buffer.from(source, 'utf8') : source);
        continue;
      }
      for await (const part of source as AsyncIterable<Uint8Array | string>) {
        chunker.push(typeof part === 'string' ? Buffer.from(part, 'utf8') : part);
      }
    }
    chunker.end();
  }
}
