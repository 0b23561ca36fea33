/**
 * Courier control files: a typed model of every record, readers with pythonfilter's reach
 * (`courier.control`) and the two edits Courier honours from a global filter: appending a
 * recipient and marking one delivered.
 *
 * A message's control "file" may be several files when Courier's `batchsize` splits the
 * recipients (`C<ino>.1`, `C<ino>.2`, …). Each file numbers its own recipients from 0, repeats the
 * envelope records and carries its own `M` message id.
 *
 * @packageDocumentation
 */
import { isAscii, isUtf8 } from 'node:buffer';
import { isIPv4 } from 'node:net';
import type { CourierLogger } from '../logging.js';
import { openRegularFile, readRegularFile, readSmallFileSync } from './files.js';
import { assertRequestOpen } from './request-scope.js';
import { decodeUtf8OrMark } from './text.js';

/** Control files larger than this are refused rather than read into memory. */
export const MAX_CONTROL_FILE_BYTES = 32 * 1024 * 1024;

/**
 * Record types of a Courier control file (Courier's `comctlfile.h`). The first byte of each line
 * is the type; the rest of the line is the value.
 */
export const ControlRecordType = {
  sender: 's',
  receivedFromMta: 'f',
  envid: 'e',
  dsnReturn: 't',
  messageId: 'M',
  authenticatedUser: 'i',
  recipient: 'r',
  originalRecipient: 'R',
  dsnNotify: 'N',
  savedEnvironment: 'O',
  source: 'u',
  expiresAt: 'E',
  faxExpiresAt: 'p',
  warnAt: 'W',
  warningSent: 'w',
  trackBackscatter: 'T',
  eightBitBody: '8',
  eightBitHeaders: 'm',
  verp: 'V',
  vhost: 'v',
  securityLevel: 'U',
  cancelled: 'X',
  cancelAcknowledged: 'x',
  submitDelay: 'L',
  nextAttemptAt: 'A',
  deliveryInfo: 'I',
  delivered: 'S',
  failed: 'F',
  deferred: 'D',
  completedAt: 'C',
} as const;

/** One line of a control file. */
export interface ControlRecord {
  /** The record type letter (first byte). */
  readonly type: string;
  /** The rest of the line, decoded as UTF-8 (or marked `(malformed utf8):…`). */
  readonly value: string;
  /** The rest of the line as raw bytes. */
  readonly raw: Buffer;
}

/** A recipient as pythonfilter's `get_recipients_data` describes it. */
export interface RecipientData {
  /** Canonical address after Courier's rewriting and alias expansion. */
  readonly address: string;
  /** DSN original recipient (`R` record), e.g. `rfc822;bob@example.com`; empty when none. */
  readonly orcpt: string;
  /** DSN notify letters (`N` record): S success, F failure, D delay, N never; empty = default. */
  readonly dsn: string;
}

/** A recipient together with where it lives. */
export interface ControlRecipient extends RecipientData {
  /** Path of the control file that holds it. */
  readonly file: string;
  /** Its number inside that file (the `n` of `S<n>`, `F<n>`, `I<n>`). */
  readonly index: number;
  /** True once an `S<n>` or `F<n>` record exists for it. */
  readonly delivered: boolean;
}

/** One parsed control file. */
export interface ControlFile {
  readonly path: string;
  readonly records: readonly ControlRecord[];
  readonly recipients: readonly ControlRecipient[];
}

/** Everything Courier's `submit` recorded about a message (pythonfilter's `get_control_data`). */
export interface ControlData {
  /** Envelope sender; empty for the null sender. */
  readonly sender: string;
  /** Received-From-MTA, e.g. `dns; helo.example ([::ffff:192.0.2.1])`. */
  readonly receivedFromMta?: string;
  readonly envid?: string;
  readonly dsnReturn?: 'F' | 'H';
  readonly messageId?: string;
  /** SMTP AUTH user name (`i`), only present when the client authenticated. */
  readonly authenticatedUser?: string;
  readonly expiresAt?: number;
  readonly faxExpiresAt?: number;
  readonly warnAt?: number;
  readonly warningSent: boolean;
  readonly eightBitBody: boolean;
  readonly eightBitHeaders: boolean;
  readonly verp: boolean;
  readonly trackBackscatter: boolean;
  readonly vhost?: string;
  readonly cancelled?: string;
  readonly securityLevel?: string;
  /** Message source: `smtp`, `authsmtp`, `local`, `dsn`, … */
  readonly source?: string;
  /** Environment saved by submit (`O` records), e.g. `TCPREMOTEIP`, `RELAYCLIENT`. */
  readonly environment: Readonly<Record<string, string>>;
  /** Undelivered recipients across all control files. */
  readonly recipients: readonly RecipientData[];
}

/**
 * A record as parsed: its raw bytes are cut from the file's buffer only when read (most records
 * are read by value only, and a control file has a few dozen of them).
 */
class ParsedRecord implements ControlRecord {
  constructor(
    readonly type: string,
    readonly value: string,
    private readonly bytes: Buffer,
    private readonly start: number,
    private readonly end: number,
  ) {}

  get raw(): Buffer {
    return this.bytes.subarray(this.start, this.end);
  }
}

/** How a control file's record values are decoded: the whole file is checked once, not each line. */
function valueDecoder(bytes: Buffer): (start: number, end: number) => string {
  if (isAscii(bytes)) return (start, end) => bytes.toString('latin1', start, end);
  // Lines end at an ASCII byte, so each line of a valid file is valid too.
  if (isUtf8(bytes)) return (start, end) => bytes.toString('utf8', start, end);
  return (start, end) => decodeUtf8OrMark(bytes.subarray(start, end));
}

/** Parses one control file's bytes (lines end in LF; a CR before it is not part of the value). */
export function parseControlFile(path: string, bytes: Buffer): ControlFile {
  const records: ControlRecord[] = [];
  const decode = valueDecoder(bytes);
  let start = 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end === -1) end = bytes.length;
    const lineEnd = end > start && bytes[end - 1] === 0x0d ? end - 1 : end;
    if (lineEnd > start) records.push(new ParsedRecord(String.fromCharCode(bytes[start]!), decode(start + 1, lineEnd), bytes, start + 1, lineEnd));
    start = end + 1;
  }
  return { path, records, recipients: recipientsOf(path, records) };
}

type MutableRecipient = { -readonly [K in keyof ControlRecipient]: ControlRecipient[K] };

function recipientsOf(path: string, records: readonly ControlRecord[]): ControlRecipient[] {
  const found: MutableRecipient[] = [];
  let done: Set<number> | undefined;
  for (const record of records) {
    switch (record.type) {
      case ControlRecordType.recipient:
        found.push({ address: record.value, orcpt: '', dsn: '', file: path, index: found.length, delivered: false });
        break;
      case ControlRecordType.originalRecipient:
        if (found.length > 0) found[found.length - 1]!.orcpt = record.value;
        break;
      case ControlRecordType.dsnNotify:
        if (found.length > 0) found[found.length - 1]!.dsn = record.value;
        break;
      case ControlRecordType.delivered:
      case ControlRecordType.failed: {
        const index = Number.parseInt(record.value, 10);
        if (Number.isInteger(index)) (done ??= new Set()).add(index);
        break;
      }
    }
  }
  if (done !== undefined) for (const recipient of found) recipient.delivered = done.has(recipient.index);
  return found;
}

/**
 * Reads and parses every control file of a message, in order. Only regular files are read, each
 * up to {@link MAX_CONTROL_FILE_BYTES}.
 */
export async function readControlFiles(paths: readonly string[]): Promise<ControlFile[]> {
  if (paths.length === 0) throw new Error('no control file given');
  return Promise.all(paths.map(async (path) => parseControlFile(path, await readRegularFile(path, MAX_CONTROL_FILE_BYTES, 'control file'))));
}

/**
 * The control files of a message when each is small enough to be read at once, as
 * {@link readRegularFile} reads such files (synchronously, in one read): no promise and no
 * deadline timer needed. Undefined when one is larger, for {@link readControlFiles} to read them.
 */
export function readSmallControlFiles(paths: readonly string[]): ControlFile[] | undefined {
  if (paths.length === 0) throw new Error('no control file given');
  const files: ControlFile[] = [];
  for (const path of paths) {
    assertRequestOpen(`reading ${path}`);
    const bytes = readSmallFileSync(path, MAX_CONTROL_FILE_BYTES, 'control file');
    if (bytes === undefined) return undefined;
    files.push(parseControlFile(path, bytes));
  }
  return files;
}

/** Values of every record of one type across the control files (pythonfilter's `get_lines`). */
export async function getLines(paths: readonly string[], type: string, max = 0): Promise<string[]> {
  const values: string[] = [];
  for (const file of await readControlFiles(paths)) {
    for (const record of file.records) {
      if (record.type !== type) continue;
      values.push(record.value);
      if (max > 0 && values.length >= max) return values;
    }
  }
  return values;
}

/** The envelope sender (empty string for the null sender). */
export async function getSender(paths: readonly string[]): Promise<string> {
  return (await getLines(paths, ControlRecordType.sender, 1))[0] ?? '';
}

/** The Received-From-MTA record, or undefined. */
export async function getSendersMta(paths: readonly string[]): Promise<string | undefined> {
  return (await getLines(paths, ControlRecordType.receivedFromMta, 1))[0];
}

/**
 * The client's IP address: `TCPREMOTEIP` from the saved environment (IPv4-mapped IPv6 addresses
 * are unwrapped to IPv4), else the bracketed address of the Received-From-MTA record.
 */
export async function getSendersIp(paths: readonly string[]): Promise<string | undefined> {
  return sendersIpOf(await readControlFiles(paths));
}

/** {@link getSendersIp} of control files already read (`data`: their {@link controlDataOf}, when known). */
export function sendersIpOf(files: readonly ControlFile[], data: ControlData = controlDataOf(files)): string | undefined {
  const fromEnvironment = data.environment.TCPREMOTEIP;
  if (fromEnvironment) return unwrapMappedIpv4(fromEnvironment);
  // Raw bytes: the HELO part of the record may be malformed UTF-8 while the address is ASCII.
  const record = files[0]?.records.find((r) => r.type === ControlRecordType.receivedFromMta);
  const bracketed = /\[([0-9A-Fa-f:.]+)\]\)?\s*$/.exec(record?.raw.toString('latin1') ?? '');
  return bracketed ? unwrapMappedIpv4(bracketed[1]!) : undefined;
}

/** `::ffff:192.0.2.1` → `192.0.2.1`; anything else unchanged. */
export function unwrapMappedIpv4(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped && isIPv4(mapped[1]!) ? mapped[1]! : address;
}

/**
 * The SMTP AUTH user: the `i` record. With `bodyPath`, falls back to Courier's own (first)
 * `Received:` header, which says `(AUTH: PLAIN alice)` for older Courier versions.
 */
export async function getAuthUser(paths: readonly string[], bodyPath?: string): Promise<string | undefined> {
  const fromControl = (await getLines(paths, ControlRecordType.authenticatedUser, 1))[0];
  if (fromControl) return fromControl;
  if (bodyPath === undefined) return undefined;
  const head = await readHead(bodyPath, 8192);
  const firstReceived = /^Received:((?:.*\n[ \t].*)*.*)/im.exec(head);
  return firstReceived ? /\(AUTH: \S+ ([^\s)]+)\)/.exec(firstReceived[1]!)?.[1] : undefined;
}

async function readHead(path: string, bytes: number): Promise<string> {
  assertRequestOpen(`reading ${path}`);
  const handle = await openRegularFile(path, 'read');
  try {
    const buffer = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead).toString('latin1');
  } finally {
    await handle.close();
  }
}

/** Every recipient with its file, number and delivery state. */
export async function getAllRecipients(paths: readonly string[]): Promise<ControlRecipient[]> {
  return (await readControlFiles(paths)).flatMap((file) => file.recipients);
}

/** Undelivered recipients with ORCPT and DSN (pythonfilter's `get_recipients_data`). */
export async function getRecipientsData(paths: readonly string[]): Promise<RecipientData[]> {
  return (await getAllRecipients(paths)).filter((r) => !r.delivered).map(toRecipientData);
}

/** Undelivered recipient addresses (pythonfilter's `get_recipients`). */
export async function getRecipients(paths: readonly string[]): Promise<string[]> {
  return (await getRecipientsData(paths)).map((r) => r.address);
}

function toRecipientData(r: RecipientData): RecipientData {
  return { address: r.address, orcpt: r.orcpt, dsn: r.dsn };
}

/** Everything in the control files as one typed object (pythonfilter's `get_control_data`). */
export async function getControlData(paths: readonly string[]): Promise<ControlData> {
  return controlDataOf(await readControlFiles(paths));
}

/**
 * Builds {@link ControlData} from parsed files. Envelope records come from the first file (each
 * batchsize split repeats them); recipients come from all files.
 */
export function controlDataOf(files: readonly ControlFile[]): ControlData {
  // One pass over the first file's records, each type's first value kept in a local: no lookup
  // structure is built per message (this runs for every message, twice).
  let sender, receivedFromMta, envid, dsnReturn, messageId, authenticatedUser, expiresAt, faxExpiresAt, warnAt, vhost, cancelled, securityLevel, source: string | undefined;
  let warningSent = false;
  let eightBitBody = false;
  let eightBitHeaders = false;
  let verp = false;
  let trackBackscatter = false;
  const environment: Record<string, string> = {};
  for (const record of files[0]?.records ?? []) {
    const value = record.value;
    switch (record.type) {
      case ControlRecordType.sender:
        sender ??= value;
        break;
      case ControlRecordType.receivedFromMta:
        receivedFromMta ??= value;
        break;
      case ControlRecordType.envid:
        envid ??= value;
        break;
      case ControlRecordType.dsnReturn:
        dsnReturn ??= value;
        break;
      case ControlRecordType.messageId:
        messageId ??= value;
        break;
      case ControlRecordType.authenticatedUser:
        authenticatedUser ??= value;
        break;
      case ControlRecordType.expiresAt:
        expiresAt ??= value;
        break;
      case ControlRecordType.faxExpiresAt:
        faxExpiresAt ??= value;
        break;
      case ControlRecordType.warnAt:
        warnAt ??= value;
        break;
      case ControlRecordType.vhost:
        vhost ??= value;
        break;
      case ControlRecordType.cancelled:
        cancelled ??= value;
        break;
      case ControlRecordType.securityLevel:
        securityLevel ??= value;
        break;
      case ControlRecordType.source:
        source ??= value;
        break;
      case ControlRecordType.warningSent:
        warningSent = true;
        break;
      case ControlRecordType.eightBitBody:
        eightBitBody = true;
        break;
      case ControlRecordType.eightBitHeaders:
        eightBitHeaders = true;
        break;
      case ControlRecordType.verp:
        verp = true;
        break;
      case ControlRecordType.trackBackscatter:
        trackBackscatter = true;
        break;
      case ControlRecordType.savedEnvironment: {
        const equals = value.indexOf('=');
        if (equals > 0) environment[value.slice(0, equals)] = value.slice(equals + 1);
        break;
      }
    }
  }
  return {
    sender: sender ?? '',
    receivedFromMta,
    envid: envid || undefined,
    dsnReturn: dsnReturn === 'F' || dsnReturn === 'H' ? dsnReturn : undefined,
    messageId: messageId || undefined,
    authenticatedUser: authenticatedUser || undefined,
    expiresAt: epochSeconds(expiresAt),
    faxExpiresAt: epochSeconds(faxExpiresAt),
    warnAt: epochSeconds(warnAt),
    warningSent,
    eightBitBody,
    eightBitHeaders,
    verp,
    trackBackscatter,
    vhost: vhost || undefined,
    cancelled,
    securityLevel: securityLevel || undefined,
    source: source || undefined,
    environment,
    recipients: undeliveredRecipients(files).map(toRecipientData),
  };
}

function epochSeconds(value: string | undefined): number | undefined {
  const parsed = value === undefined ? Number.NaN : Number.parseInt(value, 10);
  return Number.isFinite(parsed) ? parsed : undefined;
}

/** The recipients of all the files that have no delivery record yet, in order. */
export function undeliveredRecipients(files: readonly ControlFile[]): ControlRecipient[] {
  // A plain loop: flatMap and filter cost more than the records' parsing for a message of ten recipients.
  const pending: ControlRecipient[] = [];
  for (const file of files) for (const recipient of file.recipients) if (!recipient.delivered) pending.push(recipient);
  return pending;
}

function assertSingleLine(label: string, value: string): void {
  if (/[\r\n\0]/.test(value)) throw new Error(`${label} must be a single line: ${JSON.stringify(value)}`);
}

/** Control-file writes made by this process, so that control files read earlier are known to be current. */
let writesMade = 0;

/** How many control-file writes this process has made (through these helpers) so far. */
export function controlFileWrites(): number {
  return writesMade;
}

/** Whose message a write is for, where the caller does not run in a module's request scope. */
export interface WriteOptions {
  /** The message's signal: the write is refused once it has fired (default: the request scope's). */
  readonly signal?: AbortSignal;
}

/** Appends and syncs; refused once the message this code works for has been answered. */
async function appendDurably(path: string, text: string, signal?: AbortSignal): Promise<void> {
  assertRequestOpen(`writing ${path}`, signal);
  writesMade++;
  const handle = await openRegularFile(path, 'append');
  try {
    await handle.write(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Adds a recipient: appends `r`, `R`, `N` records to the last control file, which Courier then
 * delivers to like any other. The address must be canonical (no local alias).
 */
export async function addRecipient(paths: readonly string[], recipient: string | RecipientData, options: WriteOptions = {}): Promise<void> {
  const data = typeof recipient === 'string' ? { address: recipient, orcpt: '', dsn: '' } : recipient;
  assertSingleLine('recipient address', data.address);
  assertSingleLine('ORCPT', data.orcpt);
  assertSingleLine('DSN notify', data.dsn);
  if (data.address === '') throw new Error('recipient address is empty');
  const last = paths[paths.length - 1];
  if (last === undefined) throw new Error('no control file given');
  await appendDurably(last, `r${data.address}\nR${data.orcpt}\nN${data.dsn}\n`, options.signal);
}

/**
 * Records that the message body now has 8-bit bytes (an `8` record in the first control file),
 * as Courier's submit does for such a message, so Courier converts it for a 7-bit-only relay
 * instead of sending the bytes as they are. Does nothing when a file already says so.
 */
export async function markEightBitBody(files: readonly ControlFile[], options: WriteOptions = {}): Promise<void> {
  if (controlDataOf(files).eightBitBody) return;
  const first = files[0];
  if (first === undefined) throw new Error('no control file given');
  await appendDurably(first.path, `${ControlRecordType.eightBitBody}\n`, options.signal);
}

/** Options for {@link removeRecipient} and {@link removeRecipients}. */
export interface RemoveRecipientOptions extends WriteOptions {
  /** Why it was removed; goes into the delivery record and the log line. */
  reason?: string;
  /** Where to log the removal (a module passes its context's `logger`): Courier logs nothing for it. */
  logger: CourierLogger;
  /** Clock for the `S` record, in epoch seconds (tests pin it). */
  now?: () => number;
}

/**
 * Removes a recipient by marking it delivered: appends `I<n> R 250 Ok - <reason>` and
 * `S<n> <time>` to the control file that holds the first undelivered match. Courier then neither
 * delivers to it nor logs anything for it, so this function always logs the removal.
 *
 * @param recipient an address (matches the canonical address), full recipient data (all three
 *   fields must match) or a {@link ControlRecipient} (that exact file and number)
 * @returns the removed recipient, or undefined when no undelivered recipient matched
 */
export async function removeRecipient(
  paths: readonly string[],
  recipient: string | RecipientData | ControlRecipient,
  options: RemoveRecipientOptions,
): Promise<ControlRecipient | undefined> {
  const matches =
    typeof recipient === 'string'
      ? (r: ControlRecipient) => r.address === recipient
      : 'file' in recipient && 'index' in recipient
        ? (r: ControlRecipient) => r.file === recipient.file && r.index === recipient.index
        : (r: ControlRecipient) => r.address === recipient.address && r.orcpt === recipient.orcpt && r.dsn === recipient.dsn;
  const files = await readControlFiles(paths);
  const target = files.flatMap((f) => f.recipients).find((r) => !r.delivered && matches(r));
  if (target) await removeRecipients(files, [target], options);
  return target;
}

/**
 * Removes many recipients of already-read control files at once: one append and one sync per
 * control file, whatever the number of recipients (removing them one by one would re-read and
 * re-sync the files for each). Each removal is logged. Recipients already delivered are skipped.
 *
 * @param files the message's control files, as {@link readControlFiles} returned them
 * @param recipients recipients taken from those files
 */
export async function removeRecipients(
  files: readonly ControlFile[],
  recipients: readonly ControlRecipient[],
  options: RemoveRecipientOptions,
): Promise<void> {
  const reason = (options.reason ?? 'Removed by milterkit').replace(/[\r\n\0]+/g, ' ');
  const now = Math.floor(options.now?.() ?? Date.now() / 1000);
  const byFile = new Map<string, ControlRecipient[]>();
  for (const recipient of recipients) {
    if (recipient.delivered) continue;
    const list = byFile.get(recipient.file) ?? [];
    list.push(recipient);
    byFile.set(recipient.file, list);
  }
  for (const [file, targets] of byFile) {
    await appendDurably(file, targets.map((t) => `I${t.index} R 250 Ok - ${reason}\nS${t.index} ${now}\n`).join(''), options.signal);
  }
  const logger = options.logger;
  const messageId = controlDataOf(files).messageId;
  for (const targets of byFile.values()) {
    for (const target of targets) {
      logger.info({ event: 'recipient-removed', recipient: target.address, messageId, reason }, `removed recipient <${target.address}>: ${reason}`);
    }
  }
}
