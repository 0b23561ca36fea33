/**
 * Multi-process mode: N worker processes share one listening socket (python-libmilter's
 * ForkFactory, but pooled: processes are started once and serve many connections, and a crashed
 * one is replaced). Built on node:cluster, so the same script is the primary in the first process
 * and a worker in the forks; the primary owns the socket file (stale removal, mode, removal at
 * close) and never runs filter code.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../log.js';
import { SERVER_DEFAULTS } from './options.js';

/** Environment marker of processes forked by {@link ClusterPrimary}. */
export const CLUSTER_ENV = 'MILTERKIT_CLUSTER_WORKER';
const CLOSE_MESSAGE = 'milterkit:close';

/** True in a worker process forked for multi-process mode. */
export function isClusterWorker(): boolean {
  return cluster.isWorker && process.env[CLUSTER_ENV] === '1';
}

/** In a worker: runs `close` when the primary asks, then exits. */
export function onPrimaryClose(close: (graceMs: number) => Promise<void>): void {
  process.on('message', (message: unknown) => {
    if (typeof message === 'object' && message !== null && (message as { type?: string }).type === CLOSE_MESSAGE) {
      const grace = (message as { graceMs?: number }).graceMs ?? SERVER_DEFAULTS.closeGraceMs;
      void close(grace).finally(() => process.exit(0));
    }
  });
}

/**
 * Restarts allowed within {@link RESTART_WINDOW_MS} before the primary stops replacing workers: a
 * worker that crashes at start-up would otherwise be forked in a tight loop.
 */
const MAX_RESTARTS = 10;
const RESTART_WINDOW_MS = 60_000;
/** How long past the grace period the primary waits for a worker before killing it. */
const KILL_AFTER_GRACE_MS = 5000;

/** The primary process: forks, supervises and stops the workers. */
export class ClusterPrimary {
  private readonly workers = new Set<Worker>();
  private readonly restarts: number[] = [];
  private closing = false;

  constructor(
    private readonly count: number,
    private readonly logger: Logger,
  ) {}

  /** Forks the workers and resolves with the address the first one listens on. */
  async start(): Promise<{ address: string; port: number } | undefined> {
    const listening = Array.from({ length: this.count }, () => this.fork());
    const addresses = await Promise.all(listening);
    return addresses[0];
  }

  get size(): number {
    return this.workers.size;
  }

  /** Process IDs of the workers. */
  get pids(): number[] {
    return [...this.workers].map((w) => w.process.pid!).filter((pid) => pid !== undefined);
  }

  private fork(): Promise<{ address: string; port: number } | undefined> {
    const worker = cluster.fork({ [CLUSTER_ENV]: '1' });
    this.workers.add(worker);
    worker.on('exit', (code, signal) => {
      this.workers.delete(worker);
      if (this.closing) return;
      this.logger.error({ event: 'worker-exited', pid: worker.process.pid, code, signal }, 'worker process exited');
      this.replace();
    });
    return new Promise((resolve, reject) => {
      worker.once('listening', (address) => resolve({ address: String(address.address ?? ''), port: Number(address.port ?? 0) }));
      worker.once('exit', (code) => reject(new Error(`worker process exited with code ${code} before listening`)));
    });
  }

  private replace(): void {
    const now = Date.now();
    while (this.restarts.length > 0 && now - this.restarts[0]! > RESTART_WINDOW_MS) this.restarts.shift();
    if (this.restarts.length >= MAX_RESTARTS) {
      this.logger.error({ event: 'workers-not-replaced', restarts: this.restarts.length }, 'worker processes keep exiting; not replacing them any more');
      return;
    }
    this.restarts.push(now);
    this.fork().catch((err: Error) => this.logger.error({ event: 'worker-start-failed', err }, 'replacement worker failed to start'));
  }

  /** Asks every worker to close gracefully; kills those still running after the grace period. */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    const exits = [...this.workers].map(
      (worker) =>
        new Promise<void>((resolve) => {
          if (worker.isDead()) return resolve();
          worker.once('exit', () => resolve());
          worker.send({ type: CLOSE_MESSAGE, graceMs });
        }),
    );
    const killer = setTimeout(() => {
      for (const worker of this.workers) worker.process.kill('SIGKILL');
    }, graceMs + KILL_AFTER_GRACE_MS);
    await Promise.all(exits);
    clearTimeout(killer);
  }
}
