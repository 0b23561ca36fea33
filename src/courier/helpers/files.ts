/**
 * File access for Courier's spool files, safe against what a hostile or broken request can name:
 * only regular files are opened (a device such as `/dev/zero` is endless, a FIFO blocks a
 * thread-pool thread until a writer appears), a final symlink is not followed, and every read is
 * bounded in bytes whatever `stat` claims (devices report a size of 0).
 *
 * @packageDocumentation
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { assertRequestOpen } from './request-scope.js';

/** Thrown for a path that is not a regular file, or for a file over its read bound. */
export class UnsafeFileError extends Error {
  override name = 'UnsafeFileError';
}

const ACCESS_FLAGS = {
  read: constants.O_RDONLY,
  append: constants.O_WRONLY | constants.O_APPEND,
  update: constants.O_RDWR,
} as const;

/** How a spool file is opened. */
export type FileAccess = keyof typeof ACCESS_FLAGS;

/** Reads are made in slices of this size, so that a cancelled request stops between two slices. */
const READ_SLICE_BYTES = 1024 * 1024;

/**
 * Opens a regular file without following a final symlink and without blocking on a FIFO
 * (`O_NONBLOCK` makes the open return at once; the file type is then checked on the descriptor,
 * so the check and the open concern the same file).
 *
 * @throws UnsafeFileError for anything but a regular file
 */
export async function openRegularFile(path: string, access: FileAccess): Promise<FileHandle> {
  return (await openChecked(path, access)).handle;
}

/** {@link openRegularFile}, also giving the size `stat` found. */
async function openChecked(path: string, access: FileAccess): Promise<{ handle: FileHandle; size: number }> {
  const handle = await open(path, ACCESS_FLAGS[access] | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new UnsafeFileError(`${path} is not a regular file`);
    return { handle, size: info.size };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * Reads a whole regular file, refusing more than `maxBytes` (counted while reading, not taken
 * from `stat`). Between slices it checks that the message it reads for is still open.
 *
 * @throws UnsafeFileError for anything but a regular file, or one over `maxBytes`
 */
export async function readRegularFile(path: string, maxBytes: number, what = 'file'): Promise<Buffer> {
  assertRequestOpen(`reading ${path}`);
  const small = readSmallFileSync(path, maxBytes, what);
  if (small !== undefined) return small;
  const { handle, size } = await openChecked(path, 'read');
  try {
    const slices: Buffer[] = [];
    let total = 0;
    // The first slice is sized by stat (one byte more, to see a file that grew): a small spool
    // file then costs one read into a buffer of its size, not a megabyte. stat only sizes the
    // buffer; the bound is still counted.
    let sliceBytes = Math.min(READ_SLICE_BYTES, size + 1);
    for (;;) {
      const slice = Buffer.allocUnsafe(Math.min(sliceBytes, maxBytes + 1 - total));
      const { bytesRead } = await handle.read(slice, 0, slice.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > maxBytes) throw new UnsafeFileError(`${what} ${path} is larger than ${maxBytes} bytes`);
      // A slice much larger than what it got (the file shrank) is not kept alive by a view of it.
      slices.push(slice.length - bytesRead < 4096 ? slice.subarray(0, bytesRead) : Buffer.from(slice.subarray(0, bytesRead)));
      // A read of a regular file returns less than asked for only at its end.
      if (bytesRead < slice.length) break;
      assertRequestOpen(`reading ${path}`);
      sliceBytes = READ_SLICE_BYTES;
    }
    return slices.length === 1 ? slices[0]! : Buffer.concat(slices, total);
  } finally {
    await handle.close();
  }
}

/**
 * Spool files are small local files, and each call handed to libuv's thread pool costs a pair of
 * thread wake-ups: a file up to this size is opened, checked and read synchronously, in one read.
 */
const SYNC_READ_MAX_BYTES = 256 * 1024;

/**
 * Reads a regular file of at most {@link SYNC_READ_MAX_BYTES} synchronously (`O_NOFOLLOW` and
 * `O_NONBLOCK` as for every open, the type checked on the descriptor); undefined for a larger
 * file, which the caller reads in slices instead.
 *
 * @throws UnsafeFileError as {@link readRegularFile}
 */
export function readSmallFileSync(path: string, maxBytes: number, what: string): Buffer | undefined {
  const fd = openSync(path, ACCESS_FLAGS.read | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) throw new UnsafeFileError(`${path} is not a regular file`);
    if (info.size > SYNC_READ_MAX_BYTES) return undefined;
    // One byte more than stat says, to see a file that grew; the bound is counted, not taken from stat.
    const buffer = Buffer.allocUnsafe(Math.min(info.size, maxBytes) + 1);
    // A read of a regular file returns less than asked for only at its end: one read is enough.
    const bytesRead = readSync(fd, buffer, 0, buffer.length, null);
    if (bytesRead > maxBytes) throw new UnsafeFileError(`${what} ${path} is larger than ${maxBytes} bytes`);
    // The file grew past what stat said: read it in slices instead.
    if (bytesRead === buffer.length) return undefined;
    return buffer.subarray(0, bytesRead);
  } finally {
    closeSync(fd);
  }
}
