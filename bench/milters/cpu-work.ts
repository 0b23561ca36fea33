/**
 * The CPU-heavy work of the concurrency benchmark: a regular expression scanned over the message
 * body, repeated a calibrated number of rounds (about 5 ms of work per message). It runs on the
 * event loop, in worker threads (as a piscina task module: exported functions of one argument)
 * and in worker processes alike.
 */

/** What one message asks of the scanner. */
export interface ScanTask {
  text: string;
  rounds: number;
}

const PATTERN = /\b(\w+)\s+(?:jumps|runs|walks)\s+over\s+the\s+(\w+)\s+(\w+)/g;

/** Scans `text` `rounds` times; returns the match count so the work cannot be optimised away. */
export function scan(task: ScanTask): number {
  let found = 0;
  for (let round = 0; round < task.rounds; round++) {
    PATTERN.lastIndex = 0;
    while (PATTERN.exec(task.text) !== null) found++;
  }
  return found;
}

/** A body like the load generator's: its text line repeated to `bytes`. */
export function sampleBody(bytes: number): string {
  const line = 'The quick brown fox jumps over the lazy dog while the milter counts bytes.\r\n';
  return line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes);
}

/** Rounds of {@link scan} over `text` that take about `targetMs` on this machine. */
export function calibrateRounds(text: string, targetMs: number): number {
  let rounds = 1;
  for (;;) {
    const started = process.hrtime.bigint();
    scan({ text, rounds });
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    if (elapsedMs >= 50) return Math.max(1, Math.round((rounds * targetMs) / elapsedMs));
    rounds *= 2;
  }
}
