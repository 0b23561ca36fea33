/**
 * MTA macros with their stage lifetimes. Connection macros (stages C and H, and U) live for the
 * connection; envelope and content macros live for one message, and recipient macros are replaced
 * by each recipient. A `D` packet is kept raw and only parsed when a filter looks a macro up:
 * Postfix sends one before every header and every body chunk, and most filters read few macros.
 */
import { Command, checkMacros, copyOf, decodeMacros } from '../protocol/codec.js';

/** Slot per `D` stage byte; the lookup order is latest stage first. */
const slotOrder = [
  Command.BODYEOB,
  Command.BODY,
  Command.EOH,
  Command.HEADER,
  Command.DATA,
  Command.RCPT,
  Command.MAIL,
  Command.UNKNOWN,
  Command.HELO,
  Command.CONNECT,
] as const;
const slotOf = new Map<number, number>(slotOrder.map((code, i) => [code, i]));
/** Slots whose macros belong to one message: every slot before UNKNOWN in lookup order. */
const firstConnectionSlot = slotOf.get(Command.UNKNOWN)!;

type Slot = Buffer | Map<string, Buffer> | undefined;

/**
 * Byte equality by a loop: macro packets are a few dozen bytes, and `Buffer#equals` is a call into
 * Node's C++ that costs more than comparing them here.
 */
function sameBytes(a: Uint8Array, b: Uint8Array, start: number, end: number): boolean {
  if (a.length !== end - start) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[start + i]) return false;
  return true;
}

/** Normalises `{x}` and `x` to one key, as libmilter's smfi_getsymval does. */
export function macroKey(name: string): string {
  return name.length > 2 && name.startsWith('{') && name.endsWith('}') ? name.slice(1, -1) : name;
}

/** The macros an MTA has sent on one connection. */
export class MacroStore {
  private readonly slots: Slot[] = new Array(slotOrder.length).fill(undefined);
  /** The packet each slot was filled from, to tell a repeated packet from a new one. */
  private readonly packets: Array<Buffer | undefined> = new Array(slotOrder.length).fill(undefined);
  /** Set when a message ended: the next message stage starts from a clean message set. */
  private messageEnded = false;

  /**
   * Checks and stores the payload of a `D` packet (stage byte first): `bytes[start, end)`.
   * Unknown stage bytes are accepted and ignored, as libmilter does.
   * @param borrowed `bytes` are overwritten once this returns: the payload is copied if kept.
   * @throws MalformedPacketError if the payload is not a stage byte and name and value pairs.
   */
  store(bytes: Buffer, borrowed = false, start = 0, end = bytes.length): void {
    const stage = end > start ? bytes[start]! : undefined;
    const slot = stage === undefined ? undefined : slotOf.get(stage);
    const startsMessage = slot !== undefined && slot < firstConnectionSlot && (this.messageEnded || stage === Command.MAIL);
    // Postfix sends the same packet before every header and body chunk: a repeat changes nothing,
    // and its shape was checked when it first came.
    const previous = slot === undefined || startsMessage ? undefined : this.packets[slot];
    if (previous !== undefined && sameBytes(previous, bytes, start, end)) return;
    checkMacros(bytes, start, end);
    if (slot === undefined) return;
    if (startsMessage) this.clearMessage();
    const packet = borrowed ? copyOf(bytes, start, end) : start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end);
    this.packets[slot] = packet;
    this.slots[slot] = packet;
  }

  /** Forgets the macros of the current message (ABORT, new MAIL). */
  clearMessage(): void {
    this.forget(0, firstConnectionSlot);
    this.messageEnded = false;
  }

  /** Marks the message as finished: its macros stay readable until the next message starts. */
  endMessage(): void {
    this.messageEnded = true;
  }

  /** Forgets everything (new connection on the same socket). */
  clear(): void {
    this.forget(0, this.slots.length);
    this.messageEnded = false;
  }

  /** Empties slots `from` to `to` (a loop: Array.prototype.fill is a slow builtin here). */
  private forget(from: number, to: number): void {
    for (let i = from; i < to; i++) {
      this.slots[i] = undefined;
      this.packets[i] = undefined;
    }
  }

  /** Raw value of a macro, latest stage first; `i` and `{i}` are the same name. */
  getRaw(name: string): Buffer | undefined {
    const key = macroKey(name);
    for (let i = 0; i < this.slots.length; i++) {
      const value = this.parsed(i)?.get(key);
      if (value !== undefined) return value;
    }
    return undefined;
  }

  /** Value of a macro as text (UTF-8). */
  get(name: string): string | undefined {
    return this.getRaw(name)?.toString('utf8');
  }

  /** Every macro currently defined, later stages overriding earlier ones. */
  all(): Record<string, string> {
    const result: Record<string, string> = {};
    for (let i = this.slots.length - 1; i >= 0; i--) {
      for (const [key, value] of this.parsed(i) ?? []) result[key] = value.toString('utf8');
    }
    return result;
  }

  private parsed(i: number): Map<string, Buffer> | undefined {
    const slot = this.slots[i];
    if (!Buffer.isBuffer(slot)) return slot;
    const map = new Map<string, Buffer>();
    // A D packet was checked for shape when it arrived; parse errors cannot happen here.
    for (const [name, value] of decodeMacros(slot).macros) map.set(macroKey(name.toString('utf8')), value);
    this.slots[i] = map;
    return map;
  }
}
