/**
 * OpenDKIM's miltertest (an MTA emulator nobody here wrote, scripted in Lua) drives a milterkit
 * milter served by MilterServer; the scripts' own assertions must pass.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Milter, MilterServer, type MilterOptions, type Verdict } from '../../src/index.js';
import { requireProgram, runProgram, tempDir } from './support.js';

class Interop extends Milter {
  static override options: MilterOptions = { actions: ['addHeader', 'changeHeader', 'addRecipient', 'replaceBody', 'quarantine'] };
  private client = '';
  private subject = '';

  override connect(hostname: string, family: string, address?: string): Verdict {
    this.client = `${hostname} ${family} ${address ?? '-'}`;
    return 'continue';
  }
  override helo(): Verdict {
    return 'continue';
  }
  override envfrom(): Verdict {
    this.subject = '';
    return 'continue';
  }
  override envrcpt(recipient: string): Verdict {
    return recipient === '<blocked@example.net>' ? 'reject' : 'continue';
  }
  override header(name: string, value: string): Verdict {
    if (name.toLowerCase() === 'subject') this.subject = value;
    return 'continue';
  }
  override eoh(): Verdict {
    return 'continue';
  }
  override body(): Verdict {
    return 'continue';
  }
  override async eom(): Promise<Verdict> {
    if (this.subject.includes('SPAM')) {
      this.setReply('554', '5.7.1', 'no spam here');
      return 'reject';
    }
    if (this.subject.includes('hold')) this.quarantine('held for review');
    this.addHeader('X-Interop', `client=${this.client}`);
    this.changeHeader('Subject', 1, `[tagged] ${this.subject}`);
    this.addRecipient('<copy@example.org>');
    await this.replaceBody('new body\r\n');
    return 'continue';
  }
}

let work: Awaited<ReturnType<typeof tempDir>>;
let server: MilterServer;
let socketPath: string;
let miltertest: string;

before(async () => {
  miltertest = requireProgram('miltertest');
  work = await tempDir('milterkit-miltertest-');
  socketPath = path.join(work.dir, 'milter.sock');
  server = new MilterServer({ filter: Interop, socket: `unix:${socketPath}` });
  await server.listen();
});

after(async () => {
  await server?.close();
  await work?.remove();
});

/** Runs a Lua script (with `SOCKET` defined) and returns miltertest's result. */
async function script(name: string, lua: string): Promise<{ status: number; stdout: string; stderr: string }> {
  const file = path.join(work.dir, `${name}.lua`);
  await fs.writeFile(file, lua);
  return runProgram(miltertest, ['-D', `SOCKET=unix:${socketPath}`, '-s', file]);
}

/** Lua: fail the script with a message unless a call returned nil (success). */
const prelude = `
function ok(result, what) if result ~= nil then error(what .. " failed: " .. tostring(result)) end end
function reply(conn, expected, what) local r = mt.getreply(conn); if r ~= expected then error(what .. ": reply " .. tostring(r) .. ", expected " .. tostring(expected)) end end
conn = mt.connect(SOCKET, 20, 0.1)
if conn == nil then error("mt.connect failed") end
if not mt.test_action(conn, SMFIF_ADDHDRS) then error("ADDHDRS not negotiated") end
if not mt.test_action(conn, SMFIF_CHGBODY) then error("CHGBODY not negotiated") end
if not mt.test_option(conn, SMFIP_NODATA) then error("NODATA expected: the filter has no data()") end
ok(mt.conninfo(conn, "client.example", "192.0.2.1"), "conninfo")
reply(conn, SMFIR_CONTINUE, "conninfo")
ok(mt.helo(conn, "client.example"), "helo")
reply(conn, SMFIR_CONTINUE, "helo")
`;

test('miltertest: recipients refused one by one, every end-of-message change checked', async () => {
  const result = await script(
    'changes',
    `${prelude}
ok(mt.mailfrom(conn, "<a@example.org>"), "mailfrom")
reply(conn, SMFIR_CONTINUE, "mailfrom")
ok(mt.rcptto(conn, "<blocked@example.net>"), "rcpt blocked")
reply(conn, SMFIR_REJECT, "rcpt blocked")
ok(mt.rcptto(conn, "<ok@example.net>"), "rcpt ok")
reply(conn, SMFIR_CONTINUE, "rcpt ok")
ok(mt.header(conn, "From", "a@example.org"), "header From")
ok(mt.header(conn, "Subject", "hello hold"), "header Subject")
reply(conn, SMFIR_CONTINUE, "header")
ok(mt.eoh(conn), "eoh")
ok(mt.bodystring(conn, "hello\\r\\n"), "body")
reply(conn, SMFIR_CONTINUE, "body")
ok(mt.eom(conn), "eom")
reply(conn, SMFIR_CONTINUE, "eom")
if not mt.eom_check(conn, MT_HDRADD, "X-Interop", "client=client.example inet 192.0.2.1") then error("X-Interop not added") end
if not mt.eom_check(conn, MT_HDRCHANGE, "Subject", "[tagged] hello hold") then error("Subject not changed") end
if not mt.eom_check(conn, MT_RCPTADD, "<copy@example.org>") then error("recipient not added") end
if not mt.eom_check(conn, MT_BODYCHANGE, "new body\\r\\n") then error("body not replaced") end
if not mt.eom_check(conn, MT_QUARANTINE, "held for review") then error("not quarantined") end
if mt.eom_check(conn, MT_HDRDELETE) then error("a header was deleted") end
mt.disconnect(conn)
mt.echo("changes: all checks passed")
`,
  );
  assert.equal(result.status, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /changes: all checks passed/);
});

test('miltertest: a custom SMTP reply at end of message, then a second message on the same connection', async () => {
  const result = await script(
    'reply',
    `${prelude}
ok(mt.mailfrom(conn, "<a@example.org>"), "mailfrom")
ok(mt.rcptto(conn, "<ok@example.net>"), "rcpt")
ok(mt.header(conn, "Subject", "SPAM offer"), "header")
ok(mt.eoh(conn), "eoh")
ok(mt.bodystring(conn, "buy\\r\\n"), "body")
ok(mt.eom(conn), "eom")
reply(conn, SMFIR_REPLYCODE, "eom")
if not mt.eom_check(conn, MT_SMTPREPLY, "554", "5.7.1", "no spam here") then error("custom reply not seen") end
-- the milter keeps the connection: a second message, after an ABORT as Postfix sends
ok(mt.abort(conn), "abort")
ok(mt.mailfrom(conn, "<b@example.org>"), "mailfrom 2")
reply(conn, SMFIR_CONTINUE, "mailfrom 2")
ok(mt.rcptto(conn, "<ok@example.net>"), "rcpt 2")
ok(mt.header(conn, "Subject", "fine"), "header 2")
ok(mt.eoh(conn), "eoh 2")
ok(mt.bodystring(conn, "hi\\r\\n"), "body 2")
ok(mt.eom(conn), "eom 2")
reply(conn, SMFIR_CONTINUE, "eom 2")
if not mt.eom_check(conn, MT_HDRCHANGE, "Subject", "[tagged] fine") then error("second message not tagged") end
mt.disconnect(conn)
mt.echo("reply: all checks passed")
`,
  );
  assert.equal(result.status, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /reply: all checks passed/);
});

test('miltertest: a failing assertion makes miltertest fail (the scripts can fail)', async () => {
  const result = await script(
    'negative',
    `${prelude}
ok(mt.mailfrom(conn, "<a@example.org>"), "mailfrom")
ok(mt.rcptto(conn, "<blocked@example.net>"), "rcpt")
mt.echo("negative: checking a reply that is wrong on purpose")
reply(conn, SMFIR_CONTINUE, "rcpt blocked")
mt.echo("negative: not reached")
`,
  );
  // miltertest exits 1 when a script raises an error (this build prints no message for it).
  assert.equal(result.status, 1, result.stdout + result.stderr);
  assert.match(result.stdout, /checking a reply that is wrong on purpose/);
  assert.doesNotMatch(result.stdout, /not reached/);
});
