/**
 * MTA macros with their stage lifetimes. Connection macros (stages C and H, and U) live for the
 * connection; envelope and content macros live for one message, and recipient macros are replaced
 * by each recipient. A `D` packet is kept as it came and only parsed when a filter looks a macro up:
 * Postfix sends one before every header and every body chunk, and most filters read few macros.
 */
import { Buffer } from 'node:buffer';
import { Command, checkMacros, copyInto, decodeMacros } from '../protocol/codec.js';

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
/** The slot of each stage byte, -1 for a byte that names no stage: indexed, as a Map lookup per packet cost more. */
const slotOfStage = new Int8Array(256).fill(-1);
slotOrder.forEach((code, slot) => (slotOfStage[code] = slot));
const SLOT_COUNT = slotOrder.length;
/** Slots whose macros belong to one message: every slot before UNKNOWN in lookup order. */
const firstConnectionSlot = slotOfStage[Command.UNKNOWN]!;
/**
 * The smallest memory a slot keeps its packets in. Most macro packets fit, so a slot allocates
 * once per connection rather than once per packet.
 */
const MIN_SLOT_BYTES = 128;

/** An array of one empty entry per slot, built by a loop (fill is a runtime call). */
function emptySlots<T>(): Array<T | undefined> {
  const slots: Array<T | undefined> = [];
  for (let i = 0; i < SLOT_COUNT; i++) slots.push(undefined);
  return slots;
}

/** Normalises `{x}` and `x` to one key, as libmilter's smfi_getsymval does. */
export function macroKey(name: string): string {
  return name.length > 2 && name.startsWith('{') && name.endsWith('}') ? name.slice(1, -1) : name;
}

/**
 * How many cleared stores of closed sessions are kept for new ones. Building a store and its
 * slots' memory for every connection cost about 8 K instructions per connection (a new connection
 * per message is what Postfix's `non_smtpd_milters` and many Sendmail setups do); a few dozen
 * spares cover the connections that open while others close.
 */
const MAX_SPARE_STORES = 64;
const spareStores: MacroStore[] = [];

/**
 * The macros an MTA has sent on one connection. Each slot copies its latest packet into memory
 * of its own, reused by the next packet of the stage, and parses it only when a macro is looked
 * up; memory whose values were handed out is never overwritten.
 */
export class MacroStore {
  /** Each slot's memory: its packet is the first `lengths[slot]` bytes. */
  private readonly memory = emptySlots<Buffer>();
  /** Bytes of each slot's packet; -1 for an empty slot. */
  private readonly lengths = new Int32Array(SLOT_COUNT);
  /** Each slot's packet parsed, once a macro was looked up; its values are views of the slot's memory. */
  private readonly parsedSlots = emptySlots<Map<string, Buffer>>();
  /** Set when a message ended: the next message stage starts from a clean message set. */
  private messageEnded = false;

  constructor() {
    // A loop, not fill(): fill is a call into the runtime, paid again on every connection.
    for (let i = 0; i < SLOT_COUNT; i++) this.lengths[i] = -1;
  }

  /** An empty store that nothing writes to: what a closed session reads. */
  static readonly none: MacroStore = new MacroStore();

  /** An empty store for a new session: a spare one if there is one (see {@link release}), else a new one. */
  static forSession(): MacroStore {
    return spareStores.pop() ?? new MacroStore();
  }

  /**
   * Empties `store` and keeps it for a later session. The caller must drop every reference to it:
   * memory whose values a filter holds is let go, not reused, so those values stay intact.
   */
  static release(store: MacroStore): void {
    store.clear();
    if (spareStores.length < MAX_SPARE_STORES && store !== MacroStore.none) spareStores.push(store);
  }

  /**
   * Checks and stores the payload of a `D` packet (stage byte first): `bytes[start, end)`.
   * Unknown stage bytes are accepted and ignored, as libmilter does. The packet is copied into
   * the slot's own memory, so `bytes` may be overwritten once this returns.
   * @throws MalformedPacketError if the payload is not a stage byte and name and value pairs.
   */
  store(bytes: Buffer, start = 0, end = bytes.length): void {
    const slot = end > start ? slotOfStage[bytes[start]!]! : -1;
    const startsMessage = slot >= 0 && slot < firstConnectionSlot && (this.messageEnded || bytes[start] === Command.MAIL);
    // Postfix sends the same packet before every header and body chunk: a repeat changes nothing,
    // and its shape was checked when it first came.
    if (slot >= 0 && !startsMessage && this.holds(slot, bytes, start, end)) return;
    checkMacros(bytes, start, end);
    if (slot < 0) return;
    if (startsMessage) this.clearMessage();
    const length = end - start;
    let memory = this.memory[slot];
    // Memory whose values a filter may hold is left to them.
    if (memory === undefined || memory.length < length || this.parsedSlots[slot] !== undefined) {
      memory = Buffer.allocUnsafe(Math.max(MIN_SLOT_BYTES, length));
      this.memory[slot] = memory;
      this.parsedSlots[slot] = undefined;
    }
    copyInto(memory, bytes, start, end);
    this.lengths[slot] = length;
  }

  /** True when `slot` holds exactly `bytes[start, end)` (a byte loop: macro packets are short). */
  private holds(slot: number, bytes: Buffer, start: number, end: number): boolean {
    if (this.lengths[slot] !== end - start) return false;
    const memory = this.memory[slot]!;
    for (let i = start; i < end; i++) if (memory[i - start] !== bytes[i]) return false;
    return true;
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
    this.forget(0, SLOT_COUNT);
    this.messageEnded = false;
  }

  /** Empties slots `from` to `to`; their memory is kept for the next packets unless it was parsed. */
  private forget(from: number, to: number): void {
    for (let i = from; i < to; i++) {
      this.lengths[i] = -1;
      if (this.parsedSlots[i] !== undefined) {
        this.parsedSlots[i] = undefined;
        this.memory[i] = undefined;
      }
    }
  }

  /** Raw value of a macro, latest stage first; `i` and `{i}` are the same name. */
  getRaw(name: string): Buffer | undefined {
    const key = macroKey(name);
    for (let i = 0; i < SLOT_COUNT; i++) {
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
    for (let i = SLOT_COUNT - 1; i >= 0; i--) {
      for (const [key, value] of this.parsed(i) ?? []) result[key] = value.toString('utf8');
    }
    return result;
  }

  private parsed(i: number): Map<string, Buffer> | undefined {
    const length = this.lengths[i]!;
    if (length < 0) return undefined;
    const parsed = this.parsedSlots[i];
    if (parsed !== undefined) return parsed;
    const map = new Map<string, Buffer>();
    // A D packet was checked for shape when it arrived; parse errors cannot happen here.
    for (const [name, value] of decodeMacros(this.memory[i]!.subarray(0, length)).macros) map.set(macroKey(name.toString('utf8')), value);
    this.parsedSlots[i] = map;
    return map;
  }
}
