/**
 * The CPU-heavy milter of the concurrency benchmark, in each of milterkit's concurrency models:
 *
 *   node dist/bench/milters/milterkit-cpu.js loop|threads|processes SOCKET ROUNDS
 *
 *   loop:      the work runs in the callback, on the event loop (the default model)
 *   threads:   the work runs in milterkit's worker-thread pool (one thread per core)
 *   processes: the work runs in the callback, in worker processes sharing the socket (one per core)
 *
 * At end of message it scans the body ROUNDS times (see cpu-work.ts) and accepts the message.
 */
import { availableParallelism } from 'node:os';
import { Milter, MilterServer, type MilterOptions } from '../../src/index.js';
import { WorkerPool } from '../../src/workers/pool.js';
import { scan } from './cpu-work.js';

const MODES = ['loop', 'threads', 'processes'] as const;
type Mode = (typeof MODES)[number];

const [modeArg, socket, roundsArg] = process.argv.slice(2);
const rounds = Number(roundsArg);
if (!MODES.includes(modeArg as Mode) || !socket || !(rounds > 0)) {
  console.error('usage: milterkit-cpu.js loop|threads|processes unix:/path|inet:PORT@127.0.0.1 ROUNDS');
  process.exit(2);
}
const mode = modeArg as Mode;
// The pool's default queue (16 tasks per thread) tempfails messages beyond 32 in flight on two
// cores; the 64-connection cell needs room for every connection's message.
const pool = mode === 'threads' ? new WorkerPool(new URL('./cpu-work.js', import.meta.url), { maxQueue: 1024 }) : undefined;

class Scanner extends Milter {
  static override options: MilterOptions = { actions: [] };
  private chunks: Buffer[] = [];

  override body(chunk: Buffer): void {
    this.chunks.push(chunk);
  }

  override async eom(): Promise<void> {
    const task = { text: Buffer.concat(this.chunks).toString('latin1'), rounds };
    this.chunks = [];
    if (pool) await pool.run<number>('scan', task);
    else scan(task);
  }

  override abort(): void {
    this.chunks = [];
  }
}

const server = new MilterServer({
  filter: Scanner,
  socket,
  ...(mode === 'processes' ? { workers: availableParallelism() } : {}),
});
await server.listen();
const stop = (): void => {
  Promise.all([server.close(), pool?.close()]).then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
