/**
 * Header names as strings, decoded once per process rather than once per header. An MTA sends the
 * same few dozen names in every message (Received, From, To, Subject, Message-ID, ...), and
 * decoding one through `Buffer#toString` is a call into Node's C++ that costs more than all the
 * rest of a header's handling; a name seen before is found by its bytes instead.
 *
 * The cache is direct-mapped and fixed in size: a name whose slot holds another one replaces it,
 * so a peer sending endless distinct names costs a miss each, never memory.
 */

/** Slots of the cache, a power of two: ample for the names one site's mail carries. */
const SLOTS = 256;
/** Names longer than this (rare, and never common) are decoded every time. */
const MAX_CACHED_LENGTH = 48;

const slotBytes: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(SLOTS).fill(undefined);
const slotNames: string[] = new Array<string>(SLOTS).fill('');

/** The first `end` bytes of `packet`, decoded as UTF-8: the same string `packet.toString('utf8', 0, end)` gives. */
export function headerName(packet: Buffer, end: number): string {
  if (end > MAX_CACHED_LENGTH) return packet.toString('utf8', 0, end);
  let hash = end;
  for (let i = 0; i < end; i++) hash = (Math.imul(hash, 31) + packet[i]!) | 0;
  const slot = hash & (SLOTS - 1);
  const cached = slotBytes[slot];
  if (cached !== undefined && cached.length === end) {
    let same = 0;
    while (same < end && cached[same] === packet[same]) same++;
    if (same === end) return slotNames[slot]!;
  }
  const name = packet.toString('utf8', 0, end);
  const bytes = new Uint8Array(end);
  for (let i = 0; i < end; i++) bytes[i] = packet[i]!;
  slotBytes[slot] = bytes;
  slotNames[slot] = name;
  return name;
}
