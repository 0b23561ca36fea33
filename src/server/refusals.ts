/**
 * Logging of connections refused at the connection limit, at most one line per interval: a flood
 * of connections must not become a flood of log lines.
 */
import type { Logger } from '../log.js';

/** At most one refusal line per this many ms; the next line counts the ones in between. */
export const REFUSAL_LOG_INTERVAL_MS = 10_000;

export class RefusalLog {
  private lastLogged = -Infinity;
  private unlogged = 0;

  constructor(
    private readonly logger: Logger,
    private readonly maxConnections: number,
    private readonly intervalMs = REFUSAL_LOG_INTERVAL_MS,
  ) {}

  /** Records one refused connection; logs it unless a line was written within the interval. */
  refused(remote: string | undefined): void {
    const now = Date.now();
    if (now - this.lastLogged < this.intervalMs) {
      this.unlogged++;
      return;
    }
    this.logger.warn(
      { event: 'connection-refused', remote, maxConnections: this.maxConnections, refusedSinceLastLine: this.unlogged },
      `connection refused: maxConnections (${this.maxConnections}) reached`,
    );
    this.lastLogged = now;
    this.unlogged = 0;
  }
}
