/**
 * The request Courier sends on a filter socket: the data file path, one or more control file
 * paths, each on its own line, then an empty line. Nothing else follows.
 *
 * @packageDocumentation
 */
import { lstatSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve, sep } from 'node:path';

/** One message to filter. */
export interface FilterRequest {
  /** Absolute path of the data file (`D<inode>`). */
  readonly dataPath: string;
  /** Absolute paths of the control file(s), in Courier's order. */
  readonly controlPaths: readonly string[];
}

/** Bounds on a request. Real ones are a few hundred bytes. */
export const MAX_REQUEST_BYTES = 64 * 1024;
export const MAX_CONTROL_FILES = 1000;

/** Thrown for a request that names a file outside Courier's spool, or one that is not a regular file. */
export class UnsafeRequestError extends Error {
  override name = 'UnsafeRequestError';
}

/** Thrown for a request that is not what Courier sends. */
export class MalformedRequestError extends Error {
  override name = 'MalformedRequestError';
}

/**
 * Finds the end of a request (`\n\n`, or a leading `\n` for an empty request) in the bytes
 * received so far. Returns the length of the request including the terminator, or -1.
 */
export function requestLength(received: Buffer): number {
  if (received[0] === 0x0a) return 1;
  const end = received.indexOf('\n\n');
  return end === -1 ? -1 : end + 2;
}

/**
 * Parses a complete request. Relative paths are resolved against `<localstatedir>/tmp/`, as
 * Courier's man page allows them relative to its spool.
 */
export function parseRequest(bytes: Buffer, localstatedir: string): FilterRequest {
  const text = bytes.toString('utf8').replace(/\r/g, '');
  if (text.includes('\0')) throw new MalformedRequestError('request contains a NUL byte');
  const paths = text.split('\n').filter((line) => line !== '');
  if (paths.length < 2) throw new MalformedRequestError(`request names ${paths.length} file(s); expected a data file and a control file`);
  if (paths.length - 1 > MAX_CONTROL_FILES) throw new MalformedRequestError(`request names ${paths.length - 1} control files`);
  const absolute = (path: string) => (isAbsolute(path) ? path : join(spoolDirectory(localstatedir), path));
  const [dataPath, ...controlPaths] = paths.map(absolute);
  return { dataPath: dataPath!, controlPaths };
}

/** Where Courier keeps a message while its filters run: `<localstatedir>/tmp`. */
export function spoolDirectory(localstatedir: string): string {
  return join(localstatedir, 'tmp');
}

/**
 * Confines a request to Courier's spool: every path is resolved (`..` and symlinks included) and
 * must end up inside the spool directory (itself resolved) and be a regular file. Returns the
 * request with the resolved paths, so that later opens cannot be redirected by a symlink swapped
 * in meanwhile. Nothing is opened here: a FIFO or a device is refused from `stat`.
 *
 * @throws UnsafeRequestError naming the offending path
 */
export async function confineRequest(request: FilterRequest, spool: string): Promise<FilterRequest> {
  // Synchronous on purpose: a few local metadata calls cost microseconds, where each call handed
  // to libuv's thread pool costs a pair of thread wake-ups; nothing here opens the file, so a
  // FIFO or a device cannot block.
  const root = spoolRoot(spool);
  // The data and control files of a message share their directory: it is checked once.
  const checkedDirectories = new Set<string>();
  const confine = (path: string): string => {
    try {
      return resolvedBelowSpool(resolve(path), spool, root, checkedDirectories) ?? resolvedAnyWay(path, root);
    } catch (error) {
      if (error instanceof UnsafeRequestError) throw error;
      throw new UnsafeRequestError(`${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  };
  const [dataPath, ...controlPaths] = [request.dataPath, ...request.controlPaths].map(confine);
  return { dataPath: dataPath!, controlPaths };
}

/**
 * The usual case, without `realpath` (a `readlink` for every component of the path): a path that
 * names the spool as configured or as resolved, followed by names none of which is a symlink, is
 * already resolved below the spool's real path. One `lstat` per name below the spool; undefined
 * when the path is elsewhere or passes a symlink, for the full resolution to decide.
 *
 * @throws UnsafeRequestError for a path that is not a regular file
 */
function resolvedBelowSpool(absolute: string, spool: string, root: string, checkedDirectories: Set<string>): string | undefined {
  const prefix = [spool, root].find((directory) => absolute.startsWith(directory + sep));
  if (prefix === undefined) return undefined;
  const names = absolute.slice(prefix.length + 1).split(sep);
  let current = root;
  for (const [index, name] of names.entries()) {
    current += sep + name;
    const isFile = index === names.length - 1;
    if (!isFile && checkedDirectories.has(current)) continue;
    const info = lstatSync(current);
    if (info.isSymbolicLink()) return undefined;
    if (!isFile) {
      checkedDirectories.add(current);
      continue;
    }
    if (!info.isFile()) throw new UnsafeRequestError(`${absolute} is not a regular file`);
  }
  return current;
}

/** Any other path: resolved in full, then checked. */
function resolvedAnyWay(path: string, root: string): string {
  const real = realpathSync.native(resolve(path));
  if (!real.startsWith(root + sep)) throw new UnsafeRequestError(`${path} is outside Courier's spool ${root}`);
  if (!statSync(real).isFile()) throw new UnsafeRequestError(`${path} is not a regular file`);
  return real;
}

/** The spool directory resolved once per process: it does not move while Courier runs. */
const spoolRoots = new Map<string, string>();

function spoolRoot(spool: string): string {
  let root = spoolRoots.get(spool);
  if (root === undefined) {
    root = realpathSync.native(spool);
    spoolRoots.set(spool, root);
  }
  return root;
}
