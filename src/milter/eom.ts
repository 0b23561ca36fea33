/**
 * The end-of-message reply being built: the modifications in the order the filter asked for
 * them, kept as typed replies, then the replacement body, all before the final verdict. They are
 * encoded only when the reply is written. Body packets are kept together because Postfix refuses
 * body replacement mixed with other modifications.
 */
// Imported, not the global: Node's global `Buffer` is a getter, called at every use in hot code.
import { Buffer } from 'node:buffer';
import { FRAME_HEADER_SIZE, Limits, Reply, writeReply, type Bytes, type Modification } from '../protocol/codec.js';
import { PacketWriter } from '../protocol/writer.js';
import type { BodySource } from './milter.js';

type Emit = (packets: Buffer) => void;

function isBytes(source: BodySource): source is string | Uint8Array {
  return typeof source === 'string' || source instanceof Uint8Array;
}

function toBytes(part: Uint8Array | string): Uint8Array {
  return typeof part === 'string' ? Buffer.from(part, 'utf8') : part;
}

/** Splits bytes into REPLBODY packets of at most 65535 payload bytes (whatever MDS was negotiated). */
class BodyChunker {
  /** Payload bytes of the packet being filled. */
  private filled = 0;
  private packetOpen = false;
  /** True once a packet was started: an empty replacement still needs one empty packet. */
  private started = false;

  constructor(private readonly writer: PacketWriter) {}

  push(bytes: Uint8Array): void {
    let data = bytes;
    while (data.length > 0) {
      if (!this.packetOpen) {
        this.writer.begin(Reply.REPLBODY);
        this.packetOpen = true;
        this.started = true;
        this.filled = 0;
      }
      const take = Math.min(Limits.CHUNK_SIZE - this.filled, data.length);
      this.writer.bytes(take === data.length ? data : data.subarray(0, take));
      this.filled += take;
      data = data.subarray(take);
      if (this.filled === Limits.CHUNK_SIZE) {
        this.writer.end();
        this.packetOpen = false;
      }
    }
  }

  /** Ends the last packet. */
  end(): void {
    if (!this.started) this.writer.begin(Reply.REPLBODY).end();
    else if (this.packetOpen) this.writer.end();
    this.packetOpen = false;
    this.started = true;
  }
}

/** A modification as a log line: its type and fields as text. */
function describe(modification: Modification<Bytes>): string {
  const fields = Object.entries(modification)
    .filter(([key]) => key !== 'type')
    .map(([key, value]) => `${key}=${JSON.stringify(value instanceof Uint8Array ? Buffer.from(value).toString('utf8') : value)}`);
  return `${modification.type} ${fields.join(' ')}`;
}

/** Collects what eom() asks for. */
export class EndOfMessage {
  readonly modifications: Modification<Bytes>[] = [];
  /** Encoded size of the modifications. */
  private modificationBytes = 0;
  private readonly body: BodySource[] = [];
  /** False once eom() has returned: later actions are refused. */
  open = true;
  hasStreamingBody = false;

  /** Queues a modification whose payload is `payloadSize` bytes (so the reply is allocated once, at its size). */
  modify(modification: Modification<Bytes>, payloadSize: number): void {
    this.modifications.push(modification);
    this.modificationBytes += FRAME_HEADER_SIZE + payloadSize;
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
    const described = this.modifications.map(describe);
    if (this.body.length > 0) {
      const sizes = this.body.map((source) => (isBytes(source) ? toBytes(source).length : undefined));
      described.push(sizes.includes(undefined) ? 'replaceBody (streamed)' : `replaceBody ${sizes.reduce((a, b) => a! + b!, 0)} bytes`);
    }
    return described;
  }

  /** Encodes everything, when the body is held in memory, as one buffer; undefined when there is nothing. */
  encode(): Buffer | undefined {
    if (this.modifications.length === 0 && this.body.length === 0) return undefined;
    const writer = this.writeModifications();
    if (this.body.length > 0) {
      const chunker = new BodyChunker(writer);
      for (const source of this.body) chunker.push(toBytes(source as string | Uint8Array));
      chunker.end();
    }
    return writer.take();
  }

  /**
   * Emits everything, reading streamed body parts as it goes: complete packets are written as
   * soon as there are any. Stops reading the body as soon as `writable()` turns false (the
   * connection ended), so nothing is written after that.
   * @returns false when it stopped before the end of the body.
   */
  async stream(emit: Emit, writable: () => boolean): Promise<boolean> {
    const writer = this.writeModifications();
    const chunker = new BodyChunker(writer);
    /** Writes the complete packets; false once the connection can take no more. */
    const send = (): boolean => {
      if (!writable()) return false;
      if (writer.complete > 0) emit(writer.take());
      return true;
    };
    for (const source of this.body) {
      if (!send()) return false;
      if (isBytes(source)) {
        chunker.push(toBytes(source));
        continue;
      }
      for await (const part of source as AsyncIterable<Uint8Array | string>) {
        chunker.push(toBytes(part));
        if (!send()) return false;
      }
    }
    chunker.end();
    return send();
  }

  private writeModifications(): PacketWriter {
    // Body packets go to the same writer: room for one more packet header, the buffer grows for the rest.
    const writer = new PacketWriter(this.modificationBytes + FRAME_HEADER_SIZE);
    for (const modification of this.modifications) writeReply(writer, modification);
    return writer;
  }
}
