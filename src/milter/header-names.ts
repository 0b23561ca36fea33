/**
 * Header names as strings, decoded once per process rather than once per header. An MTA sends the
 * same few dozen names in every message (Received, From, To, Subject, Message-ID, ...), and
 * decoding one through `Buffer#toString` is a call into Node's C++ that costs more than all the
 * rest of a header's handling; a name seen before is found by its bytes instead.
 *
 * The cache is direct-mapped and fixed in size: a name whose slot holds another one replaces it,
 * so a peer sending endless distinct names costs a miss each, never memory.
 */
import { utf8Text } from '../protocol/codec.js';

/**
 * Slots of the cache, a power of two. Two names in one slot push each other out, so the slots are
 * many against the few dozen names one site's mail carries.
 */
const SLOTS = 1024;
/** Names longer than this (rare, and never common) are decoded every time. */
const MAX_CACHED_LENGTH = 48;

const slotBytes: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(SLOTS).fill(undefined);
const slotNames: string[] = new Array<string>(SLOTS).fill('');

/** Bytes `start` to `end` of `bytes`, decoded as UTF-8: the same string `bytes.toString('utf8', start, end)` gives. */
export function headerName(bytes: Buffer, start: number, end: number): string {
  const length = end - start;
  if (length > MAX_CACHED_LENGTH) return utf8Text(bytes, start, end);
  if (length === 0) return '';
  // The slot comes from the length and four of the name's bytes, not a hash of all of them, so the
  // name is read once (by the comparison below). Among 97 common names, 5 share a slot; a hash of
  // every byte into the 256 slots there were before shared 13.
  const slot =
    (length * 151 + bytes[start + (length >> 2)]! * 131 + bytes[start + (length >> 1)]! * 31 + bytes[start + ((length * 3) >> 2)]! * 7 + bytes[end - 1]!) &
    (SLOTS - 1);
  const cached = slotBytes[slot];
  if (cached !== undefined && cached.length === length) {
    let same = 0;
    while (same < length && cached[same] === bytes[start + same]) same++;
    if (same === length) return slotNames[slot]!;
  }
  const name = utf8Text(bytes, start, end);
  const copy = new Uint8Array(length);
  for (let i = 0; i < length; i++) copy[i] = bytes[start + i]!;
  slotBytes[slot] = copy;
  slotNames[slot] = name;
  return name;
}
