/**
 * The complete message as the message hook sees it: the header as earlier filters left it
 * (editable), the body as a stream, a buffer or — where the front-end has one — a file path, and
 * a MIME parse made on demand.
 *
 * @packageDocumentation
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import PostalMime, { type Email } from 'postal-mime';
import { bufferStream, type Draft } from './draft.js';
import type { HeaderField, HeaderList } from './headers.js';

/** The body as a front-end hands it over: in memory or in a file. */
export type BodyStore = { readonly kind: 'buffer'; readonly data: Buffer } | { readonly kind: 'file'; readonly path: string; readonly size: number };

/** What a front-end hands the chain at end of message. */
export interface MessageContent {
  /** The header as received (values without the one leading space). */
  readonly headers: readonly HeaderField[];
  readonly body: BodyStore;
}

/** The message as a filter's message hook sees it. */
export class MessageView {
  private parsedMessage: Promise<Email> | undefined;

  /** @internal */
  constructor(
    private readonly content: MessageContent,
    private readonly draft: Draft,
  ) {}

  /** The header as earlier filters left it; edit it here (the filter must declare `headers` edits). */
  get headers(): HeaderList {
    return this.draft.headers!;
  }

  /** True once an earlier filter (or this one) replaced the body. */
  get bodyReplaced(): boolean {
    return this.draft.body !== undefined;
  }

  /** Size of the body in bytes. */
  get bodySize(): number {
    if (this.draft.body !== undefined) return this.draft.body.length;
    return this.content.body.kind === 'buffer' ? this.content.body.data.length : this.content.body.size;
  }

  /**
   * Path of a file holding exactly the body (CRLF line ends), where the front-end has one and no
   * filter replaced the body; for scanners that read files (ClamAV's `SCAN`).
   */
  get bodyPath(): string | undefined {
    return this.draft.body === undefined && this.content.body.kind === 'file' ? this.content.body.path : undefined;
  }

  /** The body as a stream of bytes. */
  bodyStream(): Readable {
    if (this.draft.body !== undefined) return bufferStream(this.draft.body);
    return this.content.body.kind === 'buffer' ? bufferStream(this.content.body.data) : createReadStream(this.content.body.path);
  }

  /** The body as one buffer. */
  async bodyBuffer(): Promise<Buffer> {
    if (this.draft.body !== undefined) return this.draft.body;
    return this.content.body.kind === 'buffer' ? this.content.body.data : readFile(this.content.body.path);
  }

  /** The whole message (header as it is now, then the body) with CRLF line ends. */
  async raw(): Promise<Buffer> {
    const lines = [...this.headers].map((field) => `${field.name}: ${field.value.replace(/\n/g, '\r\n')}\r\n`);
    return Buffer.concat([Buffer.from(lines.join('') + '\r\n', 'utf8'), await this.bodyBuffer()]);
  }

  /** The message parsed as MIME (postal-mime): text, html, attachments. Parsed once per filter. */
  parsed(): Promise<Email> {
    this.parsedMessage ??= this.raw().then((raw) => PostalMime.parse(raw));
    return this.parsedMessage;
  }
}
