/**
 * The offline test kit's runs: a filter in this process joined to the real client by an in-memory
 * byte pipe, and the virtual MTA driving it. The public face is `./index.ts`.
 */
import { readFile } from 'node:fs/promises';
import { MilterConnection, type MilterClientOptions } from '../client/connection.js';
import type { MilterFilter } from '../milter/filter.js';
import { createMilterSession, type SessionOptions as MilterSessionOptions } from '../milter/session.js';
import type { DeliveryReport } from '../mta/report.js';
import type { MailMessage } from '../mta/message.js';
import type { MtaProfile } from '../mta/profile.js';
import { MtaSession } from '../mta/session.js';
import { resolveProfile, type TransactionOptions } from '../mta/transaction.js';

/** Options of the milter side when run in-process. */
export type InProcessMilterOptions = Omit<MilterSessionOptions, 'filter'>;

/** A client connection to a filter running in this process. */
export class InProcessConnection extends MilterConnection {
  /** Resolves once the milter side has run its close logic and ended the connection. */
  readonly milterClosed: Promise<void>;

  constructor(filter: MilterFilter, options: { milter?: InProcessMilterOptions; client?: MilterClientOptions } = {}) {
    let self!: InProcessConnection;
    // Deliveries go through the microtask queue, as a socket delivers after the write returns.
    const session = createMilterSession(
      { ...options.milter, filter },
      {
        write: (data) => {
          const copy = Buffer.from(data);
          queueMicrotask(() => self.receive(copy));
        },
        close: () => queueMicrotask(() => self.end()),
      },
    );
    super(
      {
        write: (data) => {
          const copy = Buffer.from(data);
          queueMicrotask(() => session.receive(copy));
        },
        close: () => queueMicrotask(() => session.end()),
      },
      options.client,
    );
    self = this;
    this.milterClosed = session.closed;
  }
}

/**
 * Opens a client connection to a filter run in-process (like pymilter's TestCtx): drive it
 * command by command with {@link MilterConnection} methods.
 */
export function connectInProcess(filter: MilterFilter, options: { milter?: InProcessMilterOptions; client?: MilterClientOptions } = {}): InProcessConnection {
  return new InProcessConnection(filter, options);
}

/** A message given to the kit: parsed, raw bytes, text, or a file (path URL). */
export type MessageSource = MailMessage | Buffer | string | URL;

/** Options of {@link testMilter}: envelope, client, macros, MTA profile, and the milter side's options. */
export interface MilterTestOptions extends TransactionOptions {
  /** Options of the milter side (error verdict, logger, callback timeout...). */
  milter?: InProcessMilterOptions;
  /** Client options overriding the profile's (timeouts, offer, limits). */
  clientOptions?: MilterClientOptions;
}

async function loadSource(message: MessageSource): Promise<MailMessage | Buffer | string> {
  return message instanceof URL ? readFile(message) : message;
}

function clientOptions(profile: MtaProfile): MilterClientOptions {
  const { connectTimeout: _unused, ...client } = profile.client;
  return client;
}

/**
 * Runs one message through a filter as the chosen MTA would (Postfix by default): negotiation,
 * connect, helo, envelope, headers, body, end of message, ABORT/QUIT; returns each stage's reply,
 * the modifications, the SMTP verdict and the message as the MTA would deliver it. Waits until the
 * filter's `close()` has run.
 */
export async function testMilter(filter: MilterFilter, message: MessageSource, options: MilterTestOptions = {}): Promise<DeliveryReport> {
  const session = openTestSession(filter, options);
  const report = await session.deliver(await loadSource(message), options);
  await session.close();
  return report;
}

/** A virtual MTA session with a filter run in-process, for several messages on one connection. */
export class TestSession {
  readonly connection: InProcessConnection;
  private readonly session: MtaSession;

  constructor(filter: MilterFilter, options: MilterTestOptions = {}) {
    const profile = resolveProfile(options.profile);
    const milterOptions: { milter?: InProcessMilterOptions; client: MilterClientOptions } = {
      client: { ...clientOptions(profile), ...options.clientOptions },
    };
    if (options.milter !== undefined) milterOptions.milter = options.milter;
    this.connection = new InProcessConnection(filter, milterOptions);
    this.session = new MtaSession(this.connection, profile, options);
  }

  /** Runs one message (the session opens on the first one). */
  async deliver(message: MessageSource, envelope: TransactionOptions = {}): Promise<DeliveryReport> {
    return this.session.deliver(await loadSource(message), envelope);
  }

  /** Ends the session as the MTA would and waits for the filter's close logic. */
  async close(): Promise<void> {
    await this.session.close();
    await this.connection.milterClosed;
  }
}

/** Opens a virtual MTA session with a filter run in-process. */
export function openTestSession(filter: MilterFilter, options: MilterTestOptions = {}): TestSession {
  return new TestSession(filter, options);
}
