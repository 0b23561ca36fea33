/**
 * The message as the chain has edited it so far: header, envelope, body and quarantine. Each hook
 * works on a copy ({@link Draft.fork}) that replaces the committed draft only when the hook
 * finishes without error and its filter is not in testing mode, so a failed or testing filter
 * leaves no trace.
 *
 * @packageDocumentation
 */
import { Readable } from 'node:stream';
import { HeaderList } from './headers.js';
import { bareAddress, dsnArgs, sameAddress, type DsnParameters, type Recipient, type Sender } from './transaction.js';

/** Kinds of edits a filter declares in its definition (the milter front-end negotiates them). */
export type EditKind = 'headers' | 'recipients' | 'sender' | 'body' | 'quarantine';

/** An edit the filter did not declare or that is not possible here. */
export class EditError extends Error {
  override readonly name = 'EditError';
}

/**
 * Envelope and body edits a front-end cannot make (the sender on Courier, which is asked after
 * DATA), each with the reason. A hook that tries one fails with that reason, so that its
 * filter's `onError` applies as for any other failure.
 */
export type UnsupportedEdits = Readonly<Partial<Record<'recipients' | 'sender' | 'body', string>>>;

/** A replacement body as a filter may give it. */
export type BodyInput = Buffer | string | AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>;

/** A recipient as the draft keeps it. */
export interface DraftRecipient extends Recipient {
  /** True for recipients that came with the envelope. */
  readonly received: boolean;
  /** The front-end's handle on a received recipient (the same address may be there twice). */
  readonly key?: unknown;
}

/** The edited state of one message. */
export class Draft {
  /** The header, once the message hook stage is reached. */
  headers: HeaderList | undefined;
  recipients: DraftRecipient[];
  sender: Sender | undefined;
  senderChanged = false;
  /** The replacement body, when a filter replaced it. */
  body: Buffer | undefined;

  constructor(recipients: DraftRecipient[] = [], sender?: Sender) {
    this.recipients = recipients;
    this.sender = sender;
  }

  /** A copy whose edits do not touch this draft. */
  fork(): Draft {
    const copy = new Draft([...this.recipients], this.sender);
    copy.headers = this.headers?.clone();
    copy.senderChanged = this.senderChanged;
    copy.body = this.body;
    return copy;
  }
}

/** Limits applied to edits. */
export interface EditLimits {
  /** Largest replacement body, in bytes. */
  readonly maxBodyBytes: number;
  /** Most recipients a message may end up with. */
  readonly maxRecipients: number;
}

/**
 * The edits a hook may make, on its own copy of the draft; only the kinds its filter declared.
 * Header edits go through `message.headers` in the message hook.
 */
export class Edits {
  /** @internal */
  constructor(
    private readonly draft: Draft,
    private readonly allowed: ReadonlySet<EditKind>,
    private readonly limits: EditLimits,
    private readonly filterName: string,
    private readonly unsupported: UnsupportedEdits = {},
  ) {}

  private require(kind: keyof UnsupportedEdits, what: string): void {
    if (!this.allowed.has(kind)) throw new EditError(`filter "${this.filterName}" did not declare "${kind}" in its edits, so it cannot ${what}`);
    const reason = this.unsupported[kind];
    if (reason !== undefined) throw new EditError(`filter "${this.filterName}" cannot ${what}: ${reason}`);
  }

  /** Adds a recipient, with DSN parameters if wanted. Adding one already present does nothing. */
  addRecipient(address: string, dsn?: DsnParameters): void {
    this.require('recipients', 'add recipients');
    const bare = bareAddress(address);
    if (bare === '' || /[\s<>\0]/.test(bare)) throw new EditError(`not a recipient address: "${address}"`);
    if (this.draft.recipients.some((r) => sameAddress(r.address, bare))) return;
    if (this.draft.recipients.length >= this.limits.maxRecipients) throw new EditError(`a message may have at most ${this.limits.maxRecipients} recipients`);
    this.draft.recipients.push({ address: bare, args: dsnArgs(dsn), received: false });
  }

  /**
   * Removes, in one pass, every recipient for which `remove` returns true (called once per
   * recipient, in envelope order); returns how many were removed.
   */
  removeRecipientsWhere(remove: (recipient: Recipient) => boolean): number {
    this.require('recipients', 'remove recipients');
    const before = this.draft.recipients.length;
    this.draft.recipients = this.draft.recipients.filter((r) => !remove({ address: r.address, args: r.args }));
    return before - this.draft.recipients.length;
  }

  /** The envelope recipients as edited so far (by earlier filters and this one). */
  get recipients(): readonly Recipient[] {
    return this.draft.recipients.map(({ address, args }) => ({ address, args }));
  }

  /**
   * Removes a recipient: the `occurrence`-th (1-based) one with this address, for envelopes that
   * name a mailbox twice. False when there is none.
   */
  removeRecipient(address: string, occurrence = 1): boolean {
    this.require('recipients', 'remove recipients');
    let seen = 0;
    const index = this.draft.recipients.findIndex((r) => sameAddress(r.address, address) && ++seen === occurrence);
    if (index < 0) return false;
    this.draft.recipients.splice(index, 1);
    return true;
  }

  /** Changes the envelope sender (`''` for the null sender), with ESMTP parameters if wanted. */
  changeSender(address: string, args: readonly string[] = []): void {
    this.require('sender', 'change the sender');
    const bare = bareAddress(address);
    if (/[\s<>\0]/.test(bare)) throw new EditError(`not a sender address: "${address}"`);
    this.draft.sender = { address: bare, args: [...args] };
    this.draft.senderChanged = true;
  }

  /** Replaces the message body (use CRLF line ends); a stream is read to the end first. */
  async replaceBody(body: BodyInput): Promise<void> {
    this.require('body', 'replace the body');
    const chunks: Buffer[] = [];
    let size = 0;
    const source = typeof body === 'string' || Buffer.isBuffer(body) ? [body] : body;
    for await (const chunk of source as AsyncIterable<Uint8Array | string>) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      size += bytes.length;
      if (size > this.limits.maxBodyBytes) throw new EditError(`the replacement body is larger than ${this.limits.maxBodyBytes} bytes`);
      chunks.push(bytes);
    }
    this.draft.body = Buffer.concat(chunks, size);
  }
}

/** A readable stream over a buffer. */
export function bufferStream(buffer: Buffer): Readable {
  return Readable.from([buffer], { objectMode: false });
}
