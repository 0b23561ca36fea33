/**
 * The life of a unix socket file: a stale one from a crashed run is replaced, a new one is created
 * with its final permissions (no window with the umask's), and at close only the file this server
 * created is removed — not whatever has taken its path since.
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import { basename, dirname, join } from 'node:path';
import type { Logger } from '../log.js';

/** Device and inode of the socket file a server created. */
export interface SocketFileIdentity {
  readonly dev: number;
  readonly ino: number;
}

/** Removes a unix socket left by a previous run, refusing to remove anything that is not a socket or is in use. */
export async function removeStaleSocket(path: string): Promise<void> {
  let stat;
  try {
    stat = await fs.lstat(path);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  const inUse = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (inUse) throw new Error(`${path} is in use by another process`);
  await fs.rm(path, { force: true });
}

/**
 * Runs `bind` with the process umask set so that a socket file it creates gets exactly `mode`
 * (bind creates it with 0777 less the umask). The umask is process-wide: keep `bind` short.
 */
export async function withSocketMode<T>(mode: number, bind: () => Promise<T>): Promise<T> {
  const previous = process.umask(0o777 & ~mode);
  try {
    return await bind();
  } finally {
    process.umask(previous);
  }
}

/**
 * Where a single-process server binds before renaming the socket into place. Node.js removes the
 * path a unix server was bound to when it closes, whatever sits there by then; bound here and
 * renamed, the socket appears at its path atomically, already with its mode, and that removal
 * only ever touches this private name.
 */
export function bindPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.bind`);
}

/** The identity of the socket file now at `path`. */
export async function socketFileIdentity(path: string): Promise<SocketFileIdentity> {
  const stat = await fs.lstat(path);
  return { dev: stat.dev, ino: stat.ino };
}

/** Removes the socket file at `path` if it is still the one with `identity`; logs and leaves anything else. */
export async function removeOwnSocket(path: string, identity: SocketFileIdentity | undefined, logger: Logger): Promise<void> {
  if (identity === undefined) return;
  let stat;
  try {
    stat = await fs.lstat(path);
  } catch {
    return;
  }
  if (stat.dev !== identity.dev || stat.ino !== identity.ino) {
    logger.warn({ event: 'socket-replaced', path }, `${path} is no longer the socket this server created; left in place`);
    return;
  }
  await fs.rm(path, { force: true });
}
