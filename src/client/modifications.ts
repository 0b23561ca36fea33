/**
 * The changes a milter asks for at end of message, in a form that is easy to assert on: strings
 * decoded as UTF-8, consecutive REPLBODY packets joined into one body.
 */
import { text, type MilterReply } from '../protocol/index.js';

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
  private bodyParts: Buffer[] | null = null;

  /** Adds a decoded reply that is a modification. */
  add(reply: MilterReply): void {
    if (reply.type === 'replaceBody') {
      // The payload may be a view of a socket buffer: keep a copy.
      const chunk = Buffer.from(reply.chunk);
      if (this.bodyParts === null) this.bodyParts = [chunk];
      else this.bodyParts.push(chunk);
      return;
    }
    this.flushBody();
    const modification = toModification(reply);
    if (modification !== undefined) this.items.push(modification);
  }

  /** The modifications so far, in arrival order. */
  finish(): Modification[] {
    this.flushBody();
    return this.items;
  }

  private flushBody(): void {
    if (this.bodyParts === null) return;
    this.items.push({ type: 'replaceBody', body: Buffer.concat(this.bodyParts), packets: this.bodyParts.length });
    this.bodyParts = null;
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
