/**
 * One MTA connection of the server: the accepted stream, its session, and the transport rules the
 * server enforces on it — reading pauses while the session's queue is full or while replies wait
 * unread over a bound, and the deadlines a peer cannot reset by trickling bytes.
 */
import type { MilterSession, SessionIO } from '../milter/session.js';
import type { ResolvedServerOptions } from './options.js';
import type { AcceptedStream } from '../net/accepted-stream.js';

/** Why a connection is ended by the server, for the log. */
export type DeadlineReason = 'negotiation deadline' | 'packet deadline' | 'idle timeout' | 'replies not read';

/**
 * A connection counts as stalled (not yet negotiated, or inside a packet) only after this long,
 * so one that just connected, or whose packet is arriving right now, is never the one evicted.
 */
const EVICTABLE_AFTER_MS = 1000;

/** Also the session's transport: the session writes, pauses and closes through it. */
export class ServerConnection implements SessionIO {
  readonly connectedAt = Date.now();
  /** The session's read count at the last deadline check, and when it was last seen to change. */
  private readsSeen = 0;
  private lastActivity = this.connectedAt;
  private sessionPaused = false;
  private writeBlocked = false;
  /** Unread reply bytes at the last check while blocked, and when they last went down. */
  private blockedLength = 0;
  private blockedSince = 0;
  session!: MilterSession;

  constructor(
    readonly stream: AcceptedStream,
    private readonly limits: Pick<ResolvedServerOptions, 'maxWriteBuffer' | 'negotiationTimeout' | 'packetTimeout' | 'idleTimeout' | 'writeStallTimeout'>,
  ) {}

  /** Writes replies; past the bound of unread bytes, reading pauses until the MTA has read them all. */
  write(data: Buffer): void {
    const stream = this.stream;
    if (stream.destroyed) return;
    stream.write(data);
    if (this.writeBlocked) return;
    const unread = stream.unwritten;
    if (unread > this.limits.maxWriteBuffer) {
      this.writeBlocked = true;
      this.blockedLength = unread;
      this.blockedSince = Date.now();
      this.updateReading();
    }
  }

  /** Every reply has reached the kernel (the stream reports it only after some had to wait). */
  drained(): void {
    if (!this.writeBlocked) return;
    this.writeBlocked = false;
    this.updateReading();
  };

  /**
   * The session has answered everything it will. With every reply in the kernel the socket is
   * closed at once, as libmilter does (no half-close, no wait for the MTA to close its side);
   * otherwise it ends once the replies are out.
   */
  close(): void {
    if (this.stream.unwritten === 0) this.stream.destroy();
    else this.stream.end();
  }

  /** The session's queue of pipelined packets is full. */
  pause(): void {
    this.sessionPaused = true;
    this.updateReading();
  }

  /** The session's queue has room again. */
  resume(): void {
    this.sessionPaused = false;
    this.updateReading();
  }

  private updateReading(): void {
    if (this.stream.destroyed) return;
    if (this.sessionPaused || this.writeBlocked) this.stream.pause();
    else this.stream.resume();
  }

  /** True when this connection holds its slot without being served: not negotiated, or stuck inside a packet. */
  stalled(now: number): boolean {
    if (this.session.version === 0) return now - this.connectedAt > EVICTABLE_AFTER_MS;
    const packetStartedAt = this.session.packetStartedAt;
    return packetStartedAt !== undefined && now - packetStartedAt > EVICTABLE_AFTER_MS;
  }

  /** The deadline this connection has passed at `now`, if any. */
  overdue(now: number): DeadlineReason | undefined {
    const { session, limits } = this;
    if (session.version === 0 && now - this.connectedAt > limits.negotiationTimeout) return 'negotiation deadline';
    const packetStartedAt = session.packetStartedAt;
    if (packetStartedAt !== undefined && now - packetStartedAt > limits.packetTimeout) return 'packet deadline';
    // Activity is noted here, at the check, rather than stamped on every read: an idle MTA is
    // ended at most one check late, never early.
    if (session.reads !== this.readsSeen) {
      this.readsSeen = session.reads;
      this.lastActivity = now;
    }
    if (session.idle && now - this.lastActivity > limits.idleTimeout) return 'idle timeout';
    if (this.writeBlocked) {
      const length = this.stream.unwritten;
      if (length < this.blockedLength) {
        this.blockedLength = length;
        this.blockedSince = now;
      } else if (now - this.blockedSince > limits.writeStallTimeout) return 'replies not read';
    }
    return undefined;
  }
}
