/**
 * Errors of the MTA side. Every failure of a milter conversation is one of these classes, so a
 * caller can tell a milter that misbehaves from one that is slow or gone, and apply its default
 * action (Postfix's `milter_default_action`, Sendmail's `F=` flags) accordingly.
 */

/** Base class of all errors raised by the milter client. */
export class MilterClientError extends Error {
  override readonly name: string = 'MilterClientError';
}

/** What a misbehaving milter did. */
export type MilterProtocolErrorCode =
  /** A packet arrived although no reply was awaited (typically a reply to a command negotiated as no-reply). */
  | 'UNSOLICITED_REPLY'
  /** A modification (header, recipient, body, sender, quarantine) in reply to a command other than end of message. */
  | 'MODIFICATION_OUTSIDE_EOM'
  /** A reply byte that is not part of the protocol. */
  | 'UNKNOWN_REPLY'
  /** A known reply where the protocol does not allow it (for example SKIP at end of message, OPTNEG twice). */
  | 'UNEXPECTED_REPLY'
  /** A reply whose payload does not have the shape its code requires. */
  | 'MALFORMED_REPLY'
  /** A packet longer than the client accepts. */
  | 'OVERSIZED_PACKET'
  /** A packet with a length of zero, or a stream cut inside a packet. */
  | 'BAD_FRAME'
  /** The OPTNEG reply asks for something that was not offered. */
  | 'NEGOTIATION'
  /** All REPLBODY packets must be contiguous (Postfix refuses a body edit split by other edits). */
  | 'BODY_NOT_CONTIGUOUS'
  /** More modifications, or more bytes of them, than the client collects (the client's `modificationLimits`). */
  | 'MODIFICATION_LIMIT';

/** The milter broke the protocol. The connection is unusable afterwards. */
export class MilterProtocolError extends MilterClientError {
  override readonly name = 'MilterProtocolError';
  constructor(
    readonly code: MilterProtocolErrorCode,
    message: string,
    /** The command whose reply was being read, if any. */
    readonly stage?: string,
  ) {
    super(stage === undefined ? message : `${message} (while waiting for the reply to ${stage})`);
  }
}

/** The milter did not answer in time. The connection is unusable afterwards. */
export class MilterTimeoutError extends MilterClientError {
  override readonly name = 'MilterTimeoutError';
  constructor(
    /** What was being waited for: `connect` (the socket), `negotiate`, or a command name. */
    readonly stage: string,
    /** The timeout that ran out, in milliseconds. */
    readonly timeoutMs: number,
  ) {
    super(`milter did not answer ${stage} within ${timeoutMs} ms`);
  }
}

/** The connection could not be opened, or it was closed (by either side) before the conversation was over. */
export class MilterConnectionError extends MilterClientError {
  override readonly name = 'MilterConnectionError';
  constructor(
    message: string,
    /** The command being sent or whose reply was awaited, if any. */
    readonly stage?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The caller used the client wrongly (a command out of order, a body chunk too large, a bad argument). */
export class MilterUsageError extends MilterClientError {
  override readonly name = 'MilterUsageError';
}
