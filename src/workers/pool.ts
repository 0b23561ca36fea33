/**
 * A pool of worker threads for CPU-heavy filter code (a slow regex, a scanner, a signature), so
 * that one message's work does not stall every other connection on the event loop. Built on
 * piscina, the pool maintained by the Node.js project: it reuses threads, queues tasks, and
 * transfers results. The queue is bounded: when it is full, `run` rejects and the callback's
 * error verdict (tempfail by default) applies rather than memory growing without limit.
 *
 * @example
 * ```ts
 * // scan.js (runs in the worker threads)
 * export function scan(body) { return /some (expensive|regex)+$/.test(body.toString('latin1')); }
 *
 * // filter
 * const pool = new WorkerPool(new URL('./scan.js', import.meta.url));
 * class Scanner extends Milter {
 *   chunks: Buffer[] = [];
 *   override body(chunk: Buffer) { this.chunks.push(chunk); }
 *   override async eom() { return (await pool.run<boolean>('scan', Buffer.concat(this.chunks))) ? 'reject' : 'continue'; }
 * }
 * ```
 */
import os from 'node:os';
import { Piscina } from 'piscina';

/** Options of a {@link WorkerPool}. */
export interface WorkerPoolOptions {
  /** Threads (default: the number of cores). */
  threads?: number;
  /** Tasks waiting for a thread before `run` rejects (default: threads × 128, so every connection of a busy MTA can wait its turn). */
  maxQueue?: number;
}

/** Runs functions exported by a module in worker threads. */
export class WorkerPool {
  private readonly pool: Piscina;

  /** @param module file (path or URL) of an ES module whose exported functions take one argument. */
  constructor(module: string | URL, options: WorkerPoolOptions = {}) {
    const threads = options.threads ?? os.availableParallelism();
    this.pool = new Piscina({
      filename: module instanceof URL ? module.href : module,
      minThreads: threads,
      maxThreads: threads,
      maxQueue: options.maxQueue ?? threads * 128,
    });
  }

  /** Calls the exported function `name` with `arg` in a worker thread. */
  run<T>(name: string, arg: unknown): Promise<T> {
    return this.pool.run(arg, { name }) as Promise<T>;
  }

  /** Tasks waiting for a thread. */
  get queued(): number {
    return this.pool.queueSize;
  }

  /** Stops the threads once running tasks finish. */
  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
