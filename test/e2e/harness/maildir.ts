/** The mailbox both MTAs deliver into (see deliver.sh): one file per delivered recipient. */
import { chownSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseMessage, type ParsedMessage } from './message.js';

/** One delivery: the message as the MTA handed it over, and its envelope. */
export interface Delivery extends ParsedMessage {
  id: string;
  /** Envelope sender as the MTA gave it to the delivery program ('' for the null sender). */
  sender: string;
  recipient: string;
}

const SUBDIRS = ['tmp', 'new', 'envelope'] as const;

export class Maildir {
  /** @param owner uid/gid the delivery program runs as (it must be able to write here) */
  constructor(
    readonly path: string,
    private readonly owner: { uid: number; gid: number },
  ) {}

  /** Creates the mailbox, or empties it. */
  reset(): void {
    rmSync(this.path, { recursive: true, force: true });
    mkdirSync(this.path, { mode: 0o755 });
    chownSync(this.path, this.owner.uid, this.owner.gid);
    for (const sub of SUBDIRS) {
      mkdirSync(join(this.path, sub), { mode: 0o755 });
      chownSync(join(this.path, sub), this.owner.uid, this.owner.gid);
    }
  }

  /** Number of completed deliveries. */
  count(): number {
    return readdirSync(join(this.path, 'new')).length;
  }

  /** Every completed delivery, oldest first. */
  deliveries(): Delivery[] {
    const ids = readdirSync(join(this.path, 'new')).sort((a, b) => compareIds(a, b));
    return ids.map((id) => {
      const [sender = '', recipient = ''] = readFileSync(join(this.path, 'envelope', id), 'utf8').split('\n');
      return { id, sender, recipient, ...parseMessage(readFileSync(join(this.path, 'new', id))) };
    });
  }
}

/** Ids are "<nanoseconds>.<pid>"; order by time. */
function compareIds(a: string, b: string): number {
  const [timeA = '0'] = a.split('.');
  const [timeB = '0'] = b.split('.');
  return timeA === timeB ? a.localeCompare(b) : BigInt(timeA) < BigInt(timeB) ? -1 : 1;
}
