/**
 * Courier's inputs: the request read from the filter socket, control files and data files.
 *
 * Invariants: the request parser throws only MalformedRequestError and names only absolute,
 * NUL-free paths within its bounds; the control-file parser never throws and finds every
 * recipient record; the message splits and joins back byte for byte, its edits keep every other
 * byte, a header value never starts a new field, and parsing the MIME structure ends.
 */
import assert from 'node:assert/strict';
import { isAbsolute } from 'node:path';
import { controlDataOf, parseControlFile } from '../../../src/courier/helpers/control.js';
import { CourierMessage } from '../../../src/courier/helpers/message.js';
import { MAX_CONTROL_FILES, MalformedRequestError, parseRequest, requestLength } from '../../../src/courier/request.js';
import type { FuzzTarget } from '../engine.js';

const SPOOL = '/var/lib/courier';

export const courierRequest: FuzzTarget = {
  name: 'courier-request',
  description: 'Courier filter request parser: only MalformedRequestError; absolute NUL-free paths, at most the control-file bound',
  seeds: () => [
    Buffer.from('/var/lib/courier/tmp/D123\n/var/lib/courier/tmp/C123\n\n'),
    Buffer.from('tmp/D1\ntmp/C1\ntmp/C1.1\n\n'),
    Buffer.from('\n'),
  ],
  dictionary: ['\n', '\r\n', '\n\n', '/', '../', './', '\0', 'tmp/', '/var/lib/courier/', '/dev/zero'].map((word) => Buffer.from(word)),
  maxLength: 4096,
  run(input) {
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
    message.addHeader('X-Fuzz', value);
    message.insertHeader(0, 'X-Fuzz-First', value);
    if (first !== undefined) {
      assert.ok(message.changeHeader(first.name, 1, value), 'an existing field could not be changed');
      assert.ok(message.deleteHeader('X-Fuzz-First'), 'the inserted field could not be deleted');
    }
    const edited = CourierMessage.fromBytes(message.path, message.bytes);
    const expected = first === undefined ? ['x-fuzz-first', ...before, 'x-fuzz'] : [...before, 'x-fuzz'];
    assert.deepEqual(fieldNames(edited), expected, 'after the edits the header has other fields than expected');
    try {
      await edited.parse();
    } catch (error) {
      // A message postal-mime cannot read is refused by the caller; only a non-Error escape is a defect.
      if (!(error instanceof Error)) throw error;
    }
  },
};
