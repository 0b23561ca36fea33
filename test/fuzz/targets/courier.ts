/**
 * Courier's inputs: the request read from the filter socket, control files and data files.
 *
 * Invariants: the request parser throws only MalformedRequestError and names only absolute,
 * NUL-free paths within its bounds; the control-file parser never throws and finds every
 * recipient record; the message splits and joins back byte for byte, its edits keep every other
 * byte, a header value never starts a new field, and parsing the MIME structure ends.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, sep } from 'node:path';
import { controlDataOf, parseControlFile } from '../../../src/courier/helpers/control.js';
import { CourierMessage } from '../../../src/courier/helpers/message.js';
import { MAX_CONTROL_FILES, MalformedRequestError, UnsafeRequestError, confineRequest, parseRequest, requestLength, spoolDirectory } from '../../../src/courier/request.js';
import type { FuzzTarget } from '../engine.js';

const SPOOL = '/var/lib/courier';

/**
 * A Courier state directory with what a hostile request may name in its spool: regular files, a
 * directory, a FIFO, and symlinks that stay inside or lead out. Made once per process.
 */
let stateDirectory: string | undefined;
function hostileState(): string {
  if (stateDirectory !== undefined) return stateDirectory;
  const state = mkdtempSync(join(tmpdir(), 'milterkit-fuzz-courier-'));
  const spool = spoolDirectory(state);
  mkdirSync(join(spool, 'sub'), { recursive: true });
  for (const name of ['D1', 'C1', 'C2', 'sub/C3']) writeFileSync(join(spool, name), 'x\n');
  writeFileSync(join(state, 'outside'), 'secret\n');
  symlinkSync(join(state, 'outside'), join(spool, 'out'));
  symlinkSync(join(spool, 'D1'), join(spool, 'in'));
  spawnSync('mkfifo', [join(spool, 'F1')]);
  process.once('exit', () => rmSync(state, { recursive: true, force: true }));
  stateDirectory = state;
  return state;
}

export const courierRequest: FuzzTarget = {
  name: 'courier-request',
  description: 'Courier filter request parser and spool confinement: only MalformedRequestError or UnsafeRequestError; what is accepted names regular files inside the spool',
  seeds: () => [
    Buffer.from('D1\nC1\n\n'),
    Buffer.from(`${spoolDirectory(hostileState())}/D1\n${spoolDirectory(hostileState())}/sub/C3\nC2\n\n`),
    Buffer.from('in\nout\nF1\nsub\n../outside\n/dev/zero\n\n'),
    Buffer.from('\n'),
  ],
  dictionary: ['\n', '\r\n', '\n\n', '/', '../', './', '\0', 'D1', 'C1', 'sub/', 'in', 'out', 'F1', '/dev/zero', '/etc/passwd', '//'].map((word) => Buffer.from(word)),
  maxLength: 4096,
  async run(input) {
    const length = requestLength(input);
    assert.ok(length === -1 || (length >= 1 && length <= input.length), `request length ${length} of ${input.length} bytes`);
    const request = input.subarray(0, length === -1 ? input.length : length);
    let parsed;
    try {
      parsed = parseRequest(request, SPOOL);
    } catch (error) {
      if (error instanceof MalformedRequestError) return;
      throw error;
    }
    const paths = [parsed.dataPath, ...parsed.controlPaths];
    assert.ok(parsed.controlPaths.length >= 1 && parsed.controlPaths.length <= MAX_CONTROL_FILES, `${parsed.controlPaths.length} control files`);
    for (const path of paths) {
      assert.ok(isAbsolute(path), `relative path ${JSON.stringify(path)}`);
      assert.ok(!path.includes('\0'), 'a path with a NUL byte');
    }
    const state = hostileState();
    let confined;
    try {
      confined = await confineRequest(parseRequest(request, state), spoolDirectory(state));
    } catch (error) {
      if (error instanceof UnsafeRequestError) return;
      throw error;
    }
    const spool = realpathSync(spoolDirectory(state));
    for (const path of [confined.dataPath, ...confined.controlPaths]) {
      assert.ok(path.startsWith(spool + sep), `${JSON.stringify(path)} is outside the spool`);
      assert.ok(statSync(path).isFile(), `${JSON.stringify(path)} is not a regular file`);
    }
  },
};

export const courierControl: FuzzTarget = {
  name: 'courier-control',
  description: 'Courier control-file parser: never throws; one recipient per r record, indexes in range; the summary never throws',
  seeds: () => [
    Buffer.from('s<alice@example.org>\nf dns; mail.example.org (mail.example.org [192.0.2.1])\ne\nt\nMlocal\nOTCPREMOTEIP=192.0.2.1\nibob\nrbob@example.net\nRrfc822;bob@example.net\nNS\nrcarol@example.net\nN\nS2\nI0 delivered\n'),
    Buffer.from('s\r\nr<x@y>\r\nr<z@w>\r\nE1700000000\r\nW1700000001\r\nF1700000002\r\n'),
  ],
  dictionary: ['\n', '\r\n', 's', 'r', 'R', 'N', 'I', 'S', 'O', 'U', 'M', 'e', 'f', 'i', 't', 'E', 'W', 'F', 'V', '8', 'TCPREMOTEIP=', '::ffff:', '\xff'].map((word) => Buffer.from(word, 'latin1')),
  maxLength: 8192,
  run(input) {
    const file = parseControlFile(`${SPOOL}/msgs/C1`, input);
    const recipientRecords = file.records.filter((record) => record.type === 'r').length;
    assert.equal(file.recipients.length, recipientRecords, 'a recipient record was lost');
    for (const record of file.records) assert.ok(!record.raw.includes(0x0a), 'a record holds a line break');
    file.recipients.forEach((recipient, index) => assert.equal(recipient.index, index));
    controlDataOf([file]);
  },
};

/** Splits an input into message bytes and the value of a header to add (after the last NUL). */
function messageAndValue(input: Buffer): { bytes: Buffer; value: string } {
  const nul = input.lastIndexOf(0);
  return nul === -1 ? { bytes: input, value: 'x\nBcc: <victim@example.org>' } : { bytes: input.subarray(0, nul), value: input.subarray(nul + 1).toString('utf8') };
}

const fieldNames = (message: CourierMessage): string[] => message.headers().map((field) => field.name.toLowerCase());

export const courierMessage: FuzzTarget = {
  name: 'courier-message',
  description: 'Courier data file: split and joined byte for byte; added, inserted, changed and deleted fields keep the other bytes and never start an extra field; the MIME parse ends',
  seeds: () => [
    Buffer.from('Received: from x\n\tby y\nFrom: <a@example.org>\nSubject: hello\nContent-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: application/zip; name="a.zip"\nContent-Transfer-Encoding: base64\n\nUEsDBA==\n--b--\n\0multi\nline'),
    Buffer.from('Subject: =?UTF-8?B?w6k=?=\r\nX-8bit: \xc3\xa9\xff\r\n\r\nbody\r\n', 'latin1'),
    Buffer.from('no header line\nand no blank line'),
  ],
  dictionary: ['\n', '\r\n', '\n\t', ': ', 'Content-Type: multipart/mixed; boundary=', '--', 'Subject:', '=?UTF-8?B?', '?=', '\0'].map((word) => Buffer.from(word)),
  maxLength: 16 * 1024,
  async run(input) {
    const { bytes, value } = messageAndValue(input);
    const message = CourierMessage.fromBytes(`${SPOOL}/msgs/D1`, bytes);
    assert.deepEqual(message.bytes, bytes, 'split and joined, the message changed');
    const before = fieldNames(message);
    const first = message.headers().find((field) => field.name !== '');
    // A field inserted first goes after any leading whitespace lines, which belong to no field.
    let orphans = 0;
    while (orphans < before.length && [0x20, 0x09].includes(message.headers()[orphans]!.raw[0]!)) orphans++;
    message.addHeader('X-Fuzz', value);
    message.insertHeader(0, 'X-Fuzz-First', value);
    if (first !== undefined) {
      assert.ok(message.changeHeader(first.name, 1, value), 'an existing field could not be changed');
      assert.ok(message.deleteHeader('X-Fuzz-First'), 'the inserted field could not be deleted');
    }
    const edited = CourierMessage.fromBytes(message.path, message.bytes);
    const expected = first === undefined ? [...before.slice(0, orphans), 'x-fuzz-first', ...before.slice(orphans), 'x-fuzz'] : [...before, 'x-fuzz'];
    assert.deepEqual(fieldNames(edited), expected, 'after the edits the header has other fields than expected');
    try {
      await edited.parse();
    } catch (error) {
      // A message postal-mime cannot read is refused by the caller; only a non-Error escape is a defect.
      if (!(error instanceof Error)) throw error;
    }
  },
};
