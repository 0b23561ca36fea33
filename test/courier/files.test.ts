/**
 * Reading spool files: whole, bounded, and without holding more memory than the file needs.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readRegularFile, UnsafeFileError } from '../../src/courier/helpers/files.js';
import { scratchPerSuite } from './support.js';

describe('readRegularFile', () => {
  const scratch = scratchPerSuite();

  it('reads a small file into a buffer of about its size, not a read slice of a megabyte', async () => {
    const path = join(scratch.dir, 'C-small');
    const content = Buffer.from('s'.repeat(2047) + '\n');
    await writeFile(path, content);
    const read = await readRegularFile(path, 64 * 1024 * 1024);
    assert.deepEqual(read, content);
    // Every control and data file of a message is read this way; what the returned buffer keeps
    // alive is what a message in flight costs.
    assert.ok(read.buffer.byteLength <= 8 * 1024, `the buffer holds ${read.buffer.byteLength} bytes for a 2 KiB file`);
  });

  it('reads a file larger than one read slice whole', async () => {
    const path = join(scratch.dir, 'D-large');
    const content = Buffer.alloc(3 * 1024 * 1024 + 17, 'x');
    await writeFile(path, content);
    assert.deepEqual(await readRegularFile(path, 64 * 1024 * 1024), content);
  });

  it('refuses a file over the bound, counted while reading', async () => {
    const path = join(scratch.dir, 'D-over');
    await writeFile(path, Buffer.alloc(5000, 'y'));
    await assert.rejects(readRegularFile(path, 4096), UnsafeFileError);
    assert.equal((await readRegularFile(path, 5000)).length, 5000);
  });
});
