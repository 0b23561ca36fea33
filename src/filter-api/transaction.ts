/**
 * The transaction object: what is known about the SMTP session and the message so far. Each
 * front-end fills it from its own sources (milter: connect arguments and macros; Courier: the
 * control files) and the same filter code reads it everywhere.
 *
 * @packageDocumentation
 */

/** The SMTP client. */
export interface ClientInfo {
  /** IP address, bare (no brackets, no `IPv6:` prefix); absent for local submissions. */
  readonly address?: string;
  readonly port?: number;
  /** Host name the MTA verified for the address; absent when it has none. */
  readonly hostname?: string;
  /** The HELO/EHLO name the client gave, if any. */
  readonly helo?: string;
}

/** An envelope recipient. */
export interface Recipient {
  /** The address without angle brackets. */
  readonly address: string;
  /** ESMTP parameters of RCPT TO (`NOTIFY=…`, `ORCPT=…`), as given. */
  readonly args: readonly string[];
}

/** The envelope sender. */
export interface Sender {
  /** The address without angle brackets; `''` for the null sender (bounces). */
  readonly address: string;
  /** ESMTP parameters of MAIL FROM (`SIZE=…`, `BODY=…`, `RET=…`, `ENVID=…`). */
  readonly args: readonly string[];
}

/** SMTP AUTH, where the MTA says. */
export interface AuthInfo {
  readonly user: string;
  readonly mechanism?: string;
}

/** TLS, where the MTA says. */
export interface TlsInfo {
  readonly version?: string;
  readonly cipher?: string;
  readonly bits?: number;
}

/** Which MTA and front-end feed the transaction. */
export type FrontEndName = 'milter' | 'courier';

/** The MTA's own data, for what the transaction does not cover. */
export interface RawMtaData {
  readonly frontEnd: FrontEndName;
  /** Milter macros known at this stage, by name without braces (`i`, `mail_addr`). */
  readonly macros?: Readonly<Record<string, string>>;
  /** Courier control file paths. */
  readonly controlPaths?: readonly string[];
  /** Courier data file path. */
  readonly dataPath?: string;
  /** Courier's saved SMTP environment (its `O` control records: `TCPREMOTEIP`, `RELAYCLIENT`...). */
  readonly environment?: Readonly<Record<string, string>>;
  /** Courier's configuration, where the front-end is the Courier daemon. */
  readonly courier?: CourierConfigView;
}

/** What filters may ask of Courier's configuration files. */
export interface CourierConfigView {
  /** The `me` host name. */
  me(): Promise<string>;
  /** The domain is in `locals`. */
  isLocal(domain: string): Promise<boolean>;
  /** The domain is in `hosteddomains`. */
  isHostedDomain(domain: string): Promise<boolean>;
  /** `smtpaccess` sets RELAYCLIENT for the address. */
  isRelayed(ip: string): Promise<boolean>;
}

/** Everything known about the current message at the hook that reads it. */
export interface Transaction {
  /** Identifier for log lines (the queue id when known). */
  readonly id: string;
  readonly client: ClientInfo;
  readonly auth?: AuthInfo;
  readonly tls?: TlsInfo;
  /** The MTA's queue id, when it has one yet. */
  readonly queueId?: string;
  /** Known from the sender hook on. */
  readonly sender?: Sender;
  /** The recipients accepted so far (those refused by a recipient hook are not here). */
  readonly recipients: readonly Recipient[];
  readonly raw: RawMtaData;
}

/** Strips angle brackets and surrounding space from an address as typed in SMTP. */
export function bareAddress(address: string): string {
  const trimmed = address.trim();
  return trimmed.startsWith('<') && trimmed.endsWith('>') ? trimmed.slice(1, -1).trim() : trimmed;
}

/** Splits an address into local part and lower-cased domain (`''` when there is none). */
export function addressDomain(address: string): string {
  const bare = bareAddress(address);
  const at = bare.lastIndexOf('@');
  return at < 0 ? '' : bare.slice(at + 1).toLowerCase();
}

/**
 * The mailbox an address names, as a key for sets and maps: the local part exactly (it may be case
 * sensitive), the domain lower-cased.
 */
export function mailboxKey(address: string): string {
  const bare = bareAddress(address);
  const at = bare.lastIndexOf('@');
  return at < 0 ? bare : `${bare.slice(0, at)}@${bare.slice(at + 1).toLowerCase()}`;
}

/** Two addresses are the same mailbox: exact local part, domain in any case. */
export function sameAddress(a: string, b: string): boolean {
  return mailboxKey(a) === mailboxKey(b);
}

/** DSN parameters of an added recipient (RFC 3461). */
export interface DsnParameters {
  /** `NEVER`, or any of `SUCCESS`, `FAILURE`, `DELAY`. */
  readonly notify?: readonly ('NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY')[];
  /** The original recipient, e.g. `rfc822;bob@example.net`. */
  readonly orcpt?: string;
}

/** ESMTP parameters for DSN settings. */
export function dsnArgs(dsn: DsnParameters | undefined): string[] {
  if (dsn === undefined) return [];
  const args: string[] = [];
  if (dsn.notify !== undefined && dsn.notify.length > 0) {
    if (dsn.notify.includes('NEVER') && dsn.notify.length > 1) throw new RangeError('NOTIFY=NEVER cannot be combined with other values');
    args.push(`NOTIFY=${dsn.notify.join(',')}`);
  }
  if (dsn.orcpt !== undefined) {
    if (!/^[A-Za-z0-9-]+;\S+$/.test(dsn.orcpt)) throw new RangeError(`ORCPT must look like rfc822;user@example.org, got "${dsn.orcpt}"`);
    args.push(`ORCPT=${dsn.orcpt}`);
  }
  return args;
}
