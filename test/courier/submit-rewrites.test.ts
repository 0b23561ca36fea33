/**
 * The offline courier profile's model of what Courier's submit changes before filters run, checked
 * against what Courier 1.0.16 wrote into its data files for these messages (recorded from the
 * chroot of the real-Courier suite: each message sent over SMTP, the data file read by a module).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applySubmitRewrites } from '../../src/frontends/courier-submit.js';

/** [what it shows, header fields sent, body, header fields in Courier's data file]; bodies are kept. */
const OBSERVED: Array<[string, string[], string, string[]]> = [
  [
    'a 7-bit body declared 8bit is relabelled in place',
    ['From: s@example.org', 'To: x@example.com', 'Subject: 1', 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit'],
    'Hello.\n',
    ['From: s@example.org', 'To: x@example.com', 'Subject: 1', 'Mime-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 7bit', 'X-Mime-Autoconverted: from 8bit to 7bit by courier 1.0'],
  ],
  ['Cc: alone is enough', ['From: s@example.org', 'Cc: x@example.com', 'Subject: 2'], 'Hello.\n', ['From: s@example.org', 'Cc: x@example.com', 'Subject: 2']],
  [
    'Bcc: alone gets To: undisclosed-recipients',
    ['From: s@example.org', 'Bcc: x@example.com', 'Subject: 3'],
    'Hello.\n',
    ['From: s@example.org', 'Bcc: x@example.com', 'Subject: 3', 'To: undisclosed-recipients: ;'],
  ],
  [
    'an 8-bit body keeps its MIME fields as sent',
    ['From: s@example.org', 'Subject: 4', 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit'],
    'Grüße.\n',
    ['From: s@example.org', 'Subject: 4', 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', 'To: undisclosed-recipients: ;'],
  ],
  [
    'without Mime-Version the MIME block goes to the end',
    ['From: s@example.org', 'Subject: 5', 'Content-Transfer-Encoding: 8bit'],
    'Hello.\n',
    ['From: s@example.org', 'Subject: 5', 'To: undisclosed-recipients: ;', 'Mime-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 7bit', 'X-Mime-Autoconverted: from 8bit to 7bit by courier 1.0'],
  ],
  [
    'a text type without charset gets utf-8, and the encoding is added',
    ['From: s@example.org', 'Subject: 6', 'MIME-Version: 1.0', 'Content-Type: text/plain'],
    'Hello.\n',
    ['From: s@example.org', 'Subject: 6', 'Mime-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 7bit', 'To: undisclosed-recipients: ;'],
  ],
  [
    'a missing Content-Type is text/plain',
    ['From: s@example.org', 'Subject: 7', 'MIME-Version: 1.0', 'Content-Transfer-Encoding: 7bit'],
    'Hello.\n',
    ['From: s@example.org', 'Subject: 7', 'Mime-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 7bit', 'To: undisclosed-recipients: ;'],
  ],
  [
    'Resent-To: does not count as To:',
    ['From: s@example.org', 'Resent-To: x@example.com', 'Subject: 8'],
    'Hello.\n',
    ['From: s@example.org', 'Resent-To: x@example.com', 'Subject: 8', 'To: undisclosed-recipients: ;'],
  ],
  [
    'the MIME fields are gathered where Mime-Version was, names in any case',
    ['From: s@example.org', 'mime-version: 1.0', 'Subject: 9', 'content-transfer-encoding: 8BIT', 'X-After: 1'],
    'Hello.\n',
    [
      'From: s@example.org', 'Mime-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 7bit', 'Subject: 9', 'X-After: 1',
      'To: undisclosed-recipients: ;', 'X-Mime-Autoconverted: from 8bit to 7bit by courier 1.0',
    ],
  ],
];

describe("Courier submit's changes before filters (offline courier profile)", () => {
  for (const [what, sent, body, written] of OBSERVED) {
    it(what, () => {
      const message = (fields: string[]) => `${fields.join('\n')}\n\n${body}`;
      assert.equal(applySubmitRewrites(message(sent)), message(written));
    });
  }

  it('keeps a multipart message as sent (not modelled)', () => {
    const message = 'From: s@example.org\nTo: x@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nHello.\n--b--\n';
    assert.equal(applySubmitRewrites(message), message);
  });
});
