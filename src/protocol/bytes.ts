/**
 * NUL-terminated byte strings, the string type of the milter protocol. Strings are kept as raw
 * bytes by the codec: 8-bit and UTF-8 data survive unchanged; callers decide how to read them.
 */

// Imported, not the global: Node's global `Buffer` is a getter, called at every use in hot code.
import { Buffer } from 'node:buffer';

/** Text given to an encoder: a JS string (written as UTF-8) or raw bytes (written as they are). */
export type Bytes = string | Uint8Array;

/** A payload that does not have the shape its command requires. */
export class MalformedPacketError extends Error {
  override readonly name = 'MalformedPacketError';
}

/** Byte length of `value` once encoded. */
export function byteLength(value: Bytes): number {
  return typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value.length;
}

/** Writes `value` followed by a NUL at `offset`; returns the offset after the NUL. */
export function writeCString(target: Buffer, offset: number, value: Bytes): number {
  if (typeof value === 'string') offset += target.write(value, offset, 'utf8');
  else {
    target.set(value, offset);
    offset += value.length;
  }
  target[offset] = 0;
  return offset + 1;
}

/** True if `value` contains a NUL byte, which no protocol string may carry. */
export function hasNul(value: Bytes): boolean {
  return typeof value === 'string' ? value.includes('\0') : value.includes(0);
}

/** Converts encoder input to bytes. */
export function toBuffer(value: Bytes): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.length);
}

/**
 * Copies up to this many bytes by a loop rather than `Buffer#copy`; measured, a loop is already
 * dearer for the 100-byte MAIL and RCPT macro packets.
 */
const MAX_LOOP_COPY = 64;

/**
 * A copy of `bytes[start, end)` (default all of it); a short one comes from Node's shared
 * allocation pool (see {@link copyInto} for how it is copied).
 */
export function copyOf(bytes: Buffer, start = 0, end = bytes.length): Buffer {
  const copy = Buffer.allocUnsafe(end - start);
  copyInto(copy, bytes, start, end);
  return copy;
}

/**
 * Copies `bytes[start, end)` to the start of `target`, which must have room. A short range is
 * copied by a loop: `Buffer#copy` from an offset makes a typed array of the source range first,
 * which costs more than copying a few dozen bytes.
 */
export function copyInto(target: Buffer, bytes: Buffer, start: number, end: number): void {
  const length = end - start;
  if (length > MAX_LOOP_COPY) bytes.copy(target, 0, start, end);
  else for (let i = 0; i < length; i++) target[i] = bytes[start + i]!;
}

/**
 * Splits a payload made of NUL-terminated strings back to back (an "argv"). The strings are views
 * of `payload`.
 * @throws MalformedPacketError if the payload does not end with a NUL.
 */
export function splitCStrings(payload: Buffer, what: string): Buffer[] {
  if (payload.length === 0 || payload[payload.length - 1] !== 0) {
    throw new MalformedPacketError(`${what}: payload is not NUL-terminated`);
  }
  const parts: Buffer[] = [];
  let start = 0;
  for (;;) {
    const nul = payload.indexOf(0, start);
    parts.push(payload.subarray(start, nul));
    start = nul + 1;
    if (start >= payload.length) return parts;
  }
}

/**
 * The NUL-terminated strings of a payload decoded as UTF-8: the texts of {@link splitCStrings}'s
 * views, without a view cut for each (cutting a Buffer costs more than decoding a short string).
 * @param start where the payload starts in `bytes` (default 0)
 * @param end where it ends (default the end of `bytes`)
 * @throws MalformedPacketError if the payload does not end with a NUL.
 */
export function cStringTexts(bytes: Buffer, what: string, start = 0, end = bytes.length): string[] {
  if (end === start || bytes[end - 1] !== 0) throw new MalformedPacketError(`${what}: payload is not NUL-terminated`);
  const texts: string[] = [];
  let from = start;
  // A loop, not Buffer#indexOf: these payloads are short, and each indexOf is a call into C++.
  for (let i = start; i < end; i++) {
    if (bytes[i] === 0) {
      texts.push(utf8Text(bytes, from, i));
      from = i + 1;
    }
  }
  return texts;
}

/**
 * Buffer's own UTF-8 decoder, the method `toString('utf8', start, end)` ends in after checking its
 * arguments and looking the encoding up by name on every call. Node has had it on every Buffer for
 * as long as Buffer has existed, but does not document it: where it is missing, toString is used.
 */
const bufferUtf8Slice = (Buffer.prototype as Partial<{ utf8Slice(start: number, end: number): string }>).utf8Slice;

/**
 * `bytes[start, end)` decoded as UTF-8, exactly as `bytes.toString('utf8', start, end)`; both bounds
 * must lie within `bytes`, `start` ≤ `end`. Which of the two it calls is settled once, at start-up.
 */
export const utf8Text: (bytes: Buffer, start: number, end: number) => string =
  bufferUtf8Slice === undefined
    ? (bytes, start, end) => bytes.toString('utf8', start, end)
    : (bytes, start, end) => bufferUtf8Slice.call(bytes, start, end);

/**
 * Reads exactly `count` NUL-terminated strings filling the payload from `offset`.
 * @throws MalformedPacketError if the count or the terminators do not match.
 */
export function readCStrings(payload: Buffer, offset: number, count: number, what: string): Buffer[] {
  const parts = splitCStrings(offset === 0 ? payload : payload.subarray(offset), what);
  if (parts.length !== count) {
    throw new MalformedPacketError(`${what}: expected ${count} strings, found ${parts.length}`);
  }
  return parts;
}

/** Decodes protocol bytes as UTF-8 text (invalid sequences become U+FFFD; the raw bytes stay available to callers). */
export function text(bytes: Buffer): string {
  return bytes.toString('utf8');
}
