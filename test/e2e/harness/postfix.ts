/**
 * A private Postfix instance (`postfix -c DIR`): its own configuration, queue and log file, SMTP on
 * 127.0.0.1 and [::1], the milter on a unix socket, every recipient delivered by deliver.sh into a
 * Maildir. The system's Postfix configuration is never read or written.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { isAlive, run, runChecked, runForBytes } from './exec.js';
import { fileLines, filesUnder, systemUser } from './fs-util.js';
import { listensOnLoopback } from './listening.js';
import { Maildir } from './maildir.js';
import { parseMessage } from './message.js';
import type { HeldMessage, Mta } from './mta.js';
import { deliverScript } from './paths.js';
import { writeSaslSetup } from './sasl.js';
import { postfixProfile, type MtaProfile } from '../../../src/mta/index.js';
import { waitFor } from './wait.js';

/** Settings of a private Postfix instance. */
export interface PostfixSettings {
  /** An empty directory owned by root, mode 0755 (smtpd runs as "postfix" and must reach the milter socket). */
  dir: string;
  smtpPort: number;
  /** Seconds Postfix waits for each milter reply at the content stages (header, body, end of message). */
  milterContentTimeout: number;
  milterCommandTimeout: number;
}

const POSTFIX_BIN = '/usr/sbin/postfix';
const HOST_NAME = 'mta.e2e.test';
const DELIVERY_USER = 'nobody';
/** Queues holding messages that are still on their way; "hold" is where quarantined ones stay. */
const TRANSIT_QUEUES = ['maildrop', 'incoming', 'active', 'deferred'];

export class PostfixInstance implements Mta {
  readonly name = 'postfix' as const;
  readonly smtpPort: number;
  readonly milterSocket: string;
  readonly mailbox: Maildir;
  private readonly configDir: string;
  private readonly queueDir: string;
  private readonly logFile: string;
  readonly profile: MtaProfile;

  constructor(private readonly settings: PostfixSettings) {
    this.profile = {
      ...postfixProfile,
      client: {
        ...postfixProfile.client,
        timeouts: { command: settings.milterCommandTimeout * 1000, content: settings.milterContentTimeout * 1000 },
      },
    };
    this.smtpPort = settings.smtpPort;
    this.configDir = join(settings.dir, 'conf');
    this.queueDir = join(settings.dir, 'queue');
    this.logFile = join(settings.dir, 'maillog');
    this.milterSocket = join(settings.dir, 'milter.sock');
    this.mailbox = new Maildir(join(settings.dir, 'mail'), systemUser(DELIVERY_USER));
  }

  async start(): Promise<void> {
    if (!existsSync(POSTFIX_BIN)) throw new Error(`${POSTFIX_BIN} is missing: run scripts/prerequisites/20-mtas.sh`);
    this.writeConfiguration();
    this.mailbox.reset();
    const started = await run(POSTFIX_BIN, ['-c', this.configDir, 'start']);
    if (started.code !== 0) throw new Error(`postfix start failed (${started.code}): ${[started.stderr, ...this.log().slice(-20)].join('\n')}`);
    await waitFor(`Postfix to listen on port ${this.smtpPort}`, () => listensOnLoopback(this.smtpPort), 30_000);
  }

  async stop(): Promise<void> {
    const masterPid = this.masterPid();
    if (masterPid === undefined) return;
    await run(POSTFIX_BIN, ['-c', this.configDir, 'stop']);
    await waitFor('the Postfix master process to exit', () => !isAlive(masterPid), 30_000);
  }

  kill(): void {
    if (this.masterPid() !== undefined) spawnSync(POSTFIX_BIN, ['-c', this.configDir, 'abort'], { stdio: 'ignore', timeout: 10_000 });
  }

  async settle(limitMs: number): Promise<void> {
    await waitFor(
      'the Postfix queue to empty',
      () => TRANSIT_QUEUES.every((queue) => filesUnder(join(this.queueDir, queue)).length === 0),
      limitMs,
    ).catch((error: Error) => {
      const left = TRANSIT_QUEUES.flatMap((queue) => filesUnder(join(this.queueDir, queue)));
      throw new Error(`${error.message}; still queued: ${left.join(', ')}`);
    });
  }

  async held(): Promise<HeldMessage[]> {
    const ids = filesUnder(join(this.queueDir, 'hold')).map((path) => basename(path));
    const held: HeldMessage[] = [];
    for (const id of ids) {
      const envelope = await runChecked('/usr/sbin/postcat', ['-c', this.configDir, '-e', '-q', id]);
      const content = await postcatContent(this.configDir, id);
      held.push({
        id,
        sender: /^sender: (.*)$/m.exec(envelope)?.[1] ?? '',
        recipients: [...envelope.matchAll(/^recipient: (.*)$/gm)].map((match) => match[1] ?? ''),
        ...parseMessage(content),
      });
    }
    return held;
  }

  async clear(): Promise<void> {
    if (filesUnder(join(this.queueDir, 'hold')).length > 0) {
      await runChecked('/usr/sbin/postsuper', ['-c', this.configDir, '-d', 'ALL', 'hold']);
    }
    this.mailbox.reset();
  }

  log(): string[] {
    return fileLines(this.logFile);
  }

  private masterPid(): number | undefined {
    const pidFile = join(this.queueDir, 'pid', 'master.pid');
    if (!existsSync(pidFile)) return undefined;
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
  }

  private writeConfiguration(): void {
    const { dir, smtpPort, milterCommandTimeout, milterContentTimeout } = this.settings;
    const postfixUser = systemUser('postfix');
    for (const sub of ['conf', 'queue', 'data']) mkdirSync(join(dir, sub), { recursive: true, mode: 0o755 });
    chownSync(join(dir, 'data'), postfixUser.uid, postfixUser.gid);
    const deliver = join(dir, 'deliver.sh');
    copyFileSync(deliverScript, deliver);
    chmodSync(deliver, 0o755);
    const mailDir = this.mailbox.path;
    // Debian's Postfix reads its Cyrus SASL files from $config_directory/sasl whatever
    // cyrus_sasl_config_path says; the parameter names the same directory for other builds.
    const saslConfigDir = join(this.configDir, 'sasl');
    writeSaslSetup(saslConfigDir, 'smtpd', HOST_NAME, postfixUser);
    writeFileSync(
      join(this.configDir, 'main.cf'),
      `# Private instance of the milterkit e2e suite.
compatibility_level = 3.6
queue_directory = ${this.queueDir}
data_directory = ${join(dir, 'data')}
maillog_file = ${this.logFile}
maillog_file_prefixes = ${dir}
myhostname = ${HOST_NAME}
mydomain = e2e.test
myorigin = $myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = all
mynetworks = 127.0.0.0/8 [::1]/128
smtpd_relay_restrictions = permit_mynetworks, reject
default_transport = e2e
local_transport = e2e
relay_transport = e2e
# One recipient per delivery: deliver.sh takes a single \${recipient}.
e2e_destination_recipient_limit = 1
alias_maps =
alias_database =
biff = no
smtputf8_enable = yes
# SMTP AUTH (PLAIN, LOGIN) against the instance's own sasldb; the realm is fixed so that account
# names are looked up the same way as on the suite's Sendmail.
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = ${saslConfigDir}
smtpd_sasl_local_domain = $myhostname
smtpd_sasl_security_options = noanonymous
smtpd_milters = unix:${this.milterSocket}
milter_protocol = 6
milter_default_action = tempfail
milter_command_timeout = ${milterCommandTimeout}s
milter_content_timeout = ${milterContentTimeout}s
`,
    );
    writeFileSync(
      join(this.configDir, 'master.cf'),
      `# service type private unpriv chroot wakeup maxproc command
127.0.0.1:${smtpPort} inet n - n - - smtpd
[::1]:${smtpPort} inet n - n - - smtpd
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
proxymap unix - - n - - proxymap
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
e2e unix - n n - - pipe user=${DELIVERY_USER} null_sender= argv=${deliver} ${mailDir} \${sender} \${recipient}
`,
    );
  }
}

/** Header and body of a queued message (postcat -h -b prints them without the envelope records). */
function postcatContent(configDir: string, id: string): Promise<Buffer> {
  return runForBytes('/usr/sbin/postcat', ['-c', configDir, '-h', '-b', '-q', id]);
}
