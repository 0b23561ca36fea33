/**
 * The complete message as the message hook sees it: the header as earlier filters left it
 * (editable), the body as a stream or a buffer (CRLF line ends on every front-end), the path of a
 * file holding the message as received where the front-end has one, and a MIME parse made on
 * demand.
 *
 * @packageDocumentation
 */
import type { Readable } from 'node:stream';
import PostalMime, { type Email } from 'postal-mime';
import { bufferStream, type Draft } from './draft.js';
import type { HeaderField, HeaderList } from './headers.js';

/** What a front-end hands the chain at end of message. */
export interface MessageContent {
  /** The header as received (values without the one leading space). */
  readonly headers: readonly HeaderField[];
  /** The body as received, CRLF line ends. */
  readonly body: Buffer;
  /** A file holding the whole message as received (Courier's data file), for scanners that read files. */
  readonly messagePath?: string;
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
    return (this.draft.body ?? this.content.body).length;
  }

  /**
   * Path of a file holding the whole message as received, before any filter's edits, where the
   * front-end has one (Courier: its data file, LF line ends); for scanners that read files
   * (ClamAV's `SCAN`). Read it, never write it.
   */
  get messagePath(): string | undefined {
    return this.content.messagePath;
  }

  /** The body (as earlier filters left it) as a stream of bytes. */
  bodyStream(): Readable {
    return bufferStream(this.draft.body ?? this.content.body);
  }

  /** The body (as earlier filters left it) as one buffer. */
  async bodyBuffer(): Promise<Buffer> {
    return this.draft.body ?? this.content.body;
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
