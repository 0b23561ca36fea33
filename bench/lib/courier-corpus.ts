/**
 * The Courier section's requests: data and control files as Courier's submit leaves them for its
 * global filters (LF line ends, Courier's own Received: first, one control file with the envelope),
 * one set per connection slot, and the manifests the load driver (bench/courier-load.c) reads.
 */
import { chownSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeZip, mimeWithAttachments } from '../../test/courier/support.js';

/** The rules both Courier peers apply, as regular expressions both JavaScript and Perl read alike. */
export const RULES = {
  sender: '@spammer\\.example$',
  recipient: '^blocked@',
  subject: 'REJECTME',
  /** Attachment file names, case-insensitive, also inside zip archives. */
  attachment: '\\.(exe|scr|pif|bat|com)$',
} as const;

/** One kind of request: its envelope, its message and the verdict both filters must give. */
interface RequestKind {
  name: string;
  /** First digit of the reply: 2 accept, 5 reject. */
  expect: '2' | '5';
  /** A word the rejection names (both filters' texts contain it). */
  keyword: string;
  sender: string;
  recipients: string[];
  data: Buffer;
}

const ME = 'mail.test.example';
const RECEIVED =
  'Received: from client.example ([::ffff:192.0.2.10])\n  by mail.test.example with ESMTP\n' +
  '  id 000000000016A663.000000006B0276D1.0000233C; Thu, 26 Nov 2026 10:00:00 +0000\n';

/** A plain-text message of about 2 KiB with Courier's Received: first. */
function plainMessage(subject: string): Buffer {
  const line = 'The quick brown fox jumps over the lazy dog while the benchmark keeps counting.\n';
  const body = line.repeat(Math.ceil(2048 / line.length));
  return Buffer.from(
    `${RECEIVED}From: Alice <alice@client.example>\nTo: Bob <bob@${ME}>\nSubject: ${subject}\nDate: Thu, 26 Nov 2026 10:00:00 +0000\n` +
      `Message-ID: <bench.1@client.example>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n${body}`,
  );
}

/** A multipart message: a text part, a 16 KiB PDF-like attachment and a zip archive with a text file. */
function multipartMessage(extra: Array<{ filename: string; type: string; data: Buffer }> = []): Buffer {
  const pdf = Buffer.alloc(16 * 1024);
  for (let i = 0; i < pdf.length; i++) pdf[i] = (i * 131 + 7) & 0xff;
  pdf.write('%PDF-1.4\n', 0);
  const zip = makeZip([{ name: 'notes.txt', data: 'meeting notes\n'.repeat(64) }]);
  // Its first field is a Received: as Courier writes it.
  return mimeWithAttachments([
    { filename: 'report.pdf', type: 'application/pdf', data: pdf },
    { filename: 'notes.zip', type: 'application/zip', data: zip },
    ...extra,
  ]);
}

const ALICE = 'alice@client.example';
const BOB = `bob@${ME}`;
const EXE = Buffer.from('MZ\x90\x00 not really a program', 'latin1');

/** Every request kind: three accepted shapes and one rejection per rule. */
export const KINDS: readonly RequestKind[] = [
  { name: 'plain', expect: '2', keyword: '-', sender: ALICE, recipients: [BOB], data: plainMessage('Quarterly figures') },
  { name: 'multipart', expect: '2', keyword: '-', sender: ALICE, recipients: [BOB], data: multipartMessage() },
  {
    name: 'recipients',
    expect: '2',
    keyword: '-',
    sender: ALICE,
    recipients: Array.from({ length: 10 }, (_, i) => `user${i}@${ME}`),
    data: plainMessage('To the team'),
  },
  { name: 'reject-sender', expect: '5', keyword: 'sender', sender: 'offers@spammer.example', recipients: [BOB], data: plainMessage('Offers') },
  { name: 'reject-recipient', expect: '5', keyword: 'recipient', sender: ALICE, recipients: [`blocked@${ME}`], data: plainMessage('Hello') },
  { name: 'reject-header', expect: '5', keyword: 'subject', sender: ALICE, recipients: [BOB], data: plainMessage('Cheap REJECTME offer') },
  {
    name: 'reject-attachment',
    expect: '5',
    keyword: 'attachment',
    sender: ALICE,
    recipients: [BOB],
    data: multipartMessage([{ filename: 'invoice.exe', type: 'application/octet-stream', data: EXE }]),
  },
  {
    name: 'reject-zipped',
    expect: '5',
    keyword: 'attachment',
    sender: ALICE,
    recipients: [BOB],
    data: multipartMessage([{ filename: 'invoice.zip', type: 'application/zip', data: makeZip([{ name: 'invoice.scr', data: EXE }]) }]),
  },
];

/** The request mixes of the section's rows. */
export const MIXES: Readonly<Record<string, readonly string[]>> = {
  plain: ['plain'],
  multipart: ['multipart'],
  recipients: ['recipients'],
  mixed: KINDS.map((kind) => kind.name),
};
export type MixName = keyof typeof MIXES & string;

function controlFile(kind: RequestKind, id: number): string {
  const recipients = kind.recipients.map((address) => `r${address}\nR\nN\n`).join('');
  const hex = id.toString(16).toUpperCase().padStart(8, '0');
  return (
    `s${kind.sender}\nfdns; client.example ([::ffff:192.0.2.10])\ne\nt\nM000000000016A663.000000006B0276D1.${hex}\n` +
    `${recipients}OTCPREMOTEIP=::ffff:192.0.2.10\nusmtp\nE1795928401\np1795352401\nW1795338001\n`
  );
}

/** Where the corpus lives: on the host, and as the filters inside the chroot see it. */
export interface CorpusPlace {
  hostDir: string;
  chrootDir: string;
  /** Owner of the files (Courier's mail user in the chroot). */
  uid: number;
  gid: number;
}

/**
 * Writes every kind's files for `slots` connection slots and one manifest per mix; returns the
 * manifests' host paths by mix.
 */
export function writeCorpus(place: CorpusPlace, slots: number): Record<MixName, string> {
  rmSync(place.hostDir, { recursive: true, force: true });
  mkdirSync(place.hostDir, { recursive: true, mode: 0o770 });
  chownSync(place.hostDir, place.uid, place.gid);
  const paths = new Map<string, string[]>(); // `${slot}/${kind}` → chroot paths, data first
  let id = 1000;
  for (let slot = 0; slot < slots; slot++) {
    for (const kind of KINDS) {
      id++;
      const data = `D${id}`;
      const control = `${1795352401 + id}.${id}.${ME}`;
      for (const [name, content] of [
        [data, kind.data],
        [control, controlFile(kind, id)],
      ] as const) {
        const file = join(place.hostDir, name);
        writeFileSync(file, content, { mode: 0o660 });
        chownSync(file, place.uid, place.gid);
      }
      paths.set(`${slot}/${kind.name}`, [join(place.chrootDir, data), join(place.chrootDir, control)]);
    }
  }
  const manifests = {} as Record<MixName, string>;
  for (const [mix, kindNames] of Object.entries(MIXES)) {
    const lines: string[] = [];
    for (let slot = 0; slot < slots; slot++) {
      for (const name of kindNames) {
        const kind = KINDS.find((k) => k.name === name)!;
        lines.push(`${slot} ${kind.name} ${kind.expect} ${kind.keyword} ${paths.get(`${slot}/${name}`)!.join(' ')}`);
      }
    }
    const file = join(place.hostDir, `manifest-${mix}`);
    writeFileSync(file, `${lines.join('\n')}\n`);
    manifests[mix] = file;
  }
  return manifests;
}
