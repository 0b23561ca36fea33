/**
 * The request Courier sends on a filter socket: the data file path, one or more control file
 * paths, each on its own line, then an empty line. Nothing else follows.
 *
 * @packageDocumentation
 */
import { isAbsolute, join } from 'node:path';

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
  const resolve = (path: string) => (isAbsolute(path) ? path : join(localstatedir, 'tmp', path));
  const [dataPath, ...controlPaths] = paths.map(resolve);
  return { dataPath: dataPath!, controlPaths };
}
