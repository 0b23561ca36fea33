/**
 * A private Sendmail 8.17 daemon, run from the files scripts/prerequisites/20-mtas.sh unpacked (the
 * sendmail-bin package conflicts with postfix). Its .cf is generated with m4 from Debian's
 * sendmail-cf. It runs in its own UTS namespace with a dotted host name (Sendmail waits about a minute
 * at startup when it cannot qualify its own name), its own mount namespace where /dev/log is the
 * suite's syslog listener, and its own PID namespace so that stopping it ends every process it forked.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, runChecked } from './exec.js';
import { listensOnLoopback } from './listening.js';
import { systemUser } from './fs-util.js';
import { Maildir } from './maildir.js';
import { parseMessage } from './message.js';
import type { HeldMessage, Mta } from './mta.js';
import { deliverScript, sendmailRoot } from './paths.js';
import { SASL_MECHANISMS, writeSaslSetup } from './sasl.js';
import { sendmailProfile, type MtaProfile } from '../../../src/mta/index.js';
import { SyslogListener } from './syslog.js';
import { waitFor, withinLimit } from './wait.js';

/** Settings of a private Sendmail daemon. */
export interface SendmailSettings {
  /** An empty directory owned by root. */
  dir: string;
  smtpPort: number;
  /** Milter timeouts in Sendmail's `T=` syntax (C: connect, S: send, R: each reply, E: whole end of message). */
  milterTimeouts: string;
}

const DELIVERY_USER = 'nobody';
const HOST_NAME = 'mta.e2e.test';
/**
 * Where Cyrus SASL looks for `Sendmail.conf` (a directory of its search path that the libsasl2-2
 * package creates empty): the instance's own SASL directory is mounted there in its namespace.
 */
const SASL_CONFIG_DIR = '/usr/lib/sasl2';
/** Device nodes Sendmail and its children need once /dev is replaced by the private one. */
const DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];
/** Queue file prefixes of messages still on their way (hf = quarantined, stays). */
const TRANSIT_PREFIXES = ['qf', 'tf', 'Qf'];

export class SendmailInstance implements Mta {
  readonly name = 'sendmail' as const;
  readonly smtpPort: number;
  readonly milterSocket: string;
  readonly mailbox: Maildir;
  private readonly queueDir: string;
  private readonly devDir: string;
  private readonly syslog: SyslogListener;
  private namespace: ChildProcess | undefined;
  private namespaceOutput = '';
  readonly profile: MtaProfile;

  constructor(private readonly settings: SendmailSettings) {
    const reply = milterTimeout(settings.milterTimeouts, 'R');
    this.profile = {
      ...sendmailProfile,
      client: {
        ...sendmailProfile.client,
        timeouts: { command: reply, content: reply, endOfMessage: reply, endOfMessageTotal: milterTimeout(settings.milterTimeouts, 'E'), progressRestartsEndOfMessage: true },
      },
      // F=T: a failing milter tempfails the message.
      defaultAction: 'tempfail',
      defaultActionReply: '451 4.3.2 Please try again later',
    };
    this.smtpPort = settings.smtpPort;
    this.queueDir = join(settings.dir, 'queue');
    this.devDir = join(settings.dir, 'dev');
    this.milterSocket = join(settings.dir, 'milter.sock');
    this.mailbox = new Maildir(join(settings.dir, 'mail'), systemUser(DELIVERY_USER));
    this.syslog = new SyslogListener(join(this.devDir, 'log'), join(settings.dir, 'syslog.log'));
  }

  private get saslConfigDir(): string {
    return join(this.settings.dir, 'sasl');
  }

  private get binary(): string {
    return join(sendmailRoot, 'usr/libexec/sendmail/sendmail');
  }

  async start(): Promise<void> {
    if (!existsSync(this.binary)) throw new Error(`${this.binary} is missing: run scripts/prerequisites/20-mtas.sh`);
    const configFile = await this.writeConfiguration();
    this.mailbox.reset();
    await this.syslog.listen();
    const script = join(this.settings.dir, 'namespace.sh');
    writeFileSync(script, namespaceScript(this.devDir, this.saslConfigDir, this.binary, configFile));
    const child = spawn('unshare', ['--uts', '--mount', '--propagation', 'private', '--pid', '--fork', 'sh', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.namespace = child;
    const collect = (data: Buffer) => {
      this.namespaceOutput = (this.namespaceOutput + data.toString('utf8')).slice(-8192);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    await waitFor(
      `Sendmail to listen on port ${this.smtpPort}`,
      () => {
        if (child.exitCode !== null) throw new Error(`sendmail exited (${child.exitCode}): ${this.diagnostics()}`);
        return listensOnLoopback(this.smtpPort) && this.namespaceInit() !== undefined;
      },
      30_000,
    );
  }

  async stop(): Promise<void> {
    const child = this.namespace;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      // The namespace's init is Sendmail itself; when it exits, the kernel ends the rest of the
      // namespace. unshare ignores SIGTERM while it waits, so signal Sendmail directly.
      const init = this.namespaceInit();
      if (init !== undefined) process.kill(init, 'SIGTERM');
      const ended = await withinLimit('Sendmail to exit', exited, 15_000).then(
        () => true,
        () => false,
      );
      if (!ended) {
        const stubborn = this.namespaceInit();
        if (stubborn !== undefined) process.kill(stubborn, 'SIGKILL');
        await exited;
      }
    }
    this.namespace = undefined;
    await this.syslog.close();
  }

  kill(): void {
    const init = this.namespaceInit();
    if (init !== undefined) process.kill(init, 'SIGKILL');
  }

  async settle(limitMs: number): Promise<void> {
    await waitFor('the Sendmail queue to empty', () => this.transitFiles().length === 0, limitMs).catch((error: Error) => {
      throw new Error(`${error.message}; still queued: ${this.transitFiles().join(', ')}`);
    });
  }

  async held(): Promise<HeldMessage[]> {
    return this.queueFiles()
      .filter((name) => name.startsWith('hf'))
      .map((name) => {
        const id = name.slice(2);
        const control = readFileSync(join(this.queueDir, name));
        const dataFile = join(this.queueDir, `df${id}`);
        const body = existsSync(dataFile) ? readFileSync(dataFile) : Buffer.alloc(0);
        return { id, ...parseQueueControlFile(control, body) };
      });
  }

  async clear(): Promise<void> {
    for (const name of this.queueFiles()) {
      if (name.startsWith('hf')) {
        const id = name.slice(2);
        for (const prefix of ['hf', 'df', 'xf']) rmSync(join(this.queueDir, `${prefix}${id}`), { force: true });
      }
    }
    this.mailbox.reset();
  }

  log(): string[] {
    return this.syslog.lines();
  }

  private diagnostics(): string {
    return [this.namespaceOutput.trim(), ...this.syslog.lines().slice(-20)].filter(Boolean).join('\n');
  }

  /** Host PID of the namespace's init (Sendmail), the only child of unshare. */
  private namespaceInit(): number | undefined {
    const pid = this.namespace?.pid;
    if (pid === undefined || !isAlive(pid)) return undefined;
    try {
      const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      return children.length > 0 ? Number(children[0]) : undefined;
    } catch {
      return undefined;
    }
  }

  private queueFiles(): string[] {
    return existsSync(this.queueDir) ? readdirSync(this.queueDir) : [];
  }

  private transitFiles(): string[] {
    return this.queueFiles().filter((name) => TRANSIT_PREFIXES.some((prefix) => name.startsWith(prefix)));
  }

  private async writeConfiguration(): Promise<string> {
    const { dir } = this.settings;
    mkdirSync(this.queueDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.devDir, { recursive: true, mode: 0o755 });
    for (const device of DEVICES) writeFileSync(join(this.devDir, device), '');
    const deliver = join(dir, 'deliver.sh');
    copyFileSync(deliverScript, deliver);
    chmodSync(deliver, 0o755);
    writeFileSync(join(dir, 'service.switch'), 'hosts files\naliases files\n');
    writeFileSync(join(dir, 'aliases'), '');
    writeFileSync(join(dir, 'sendmail.st'), '');
    // Sendmail reads the database as root and refuses one that others may read.
    writeSaslSetup(this.saslConfigDir, 'Sendmail', HOST_NAME, { uid: 0, gid: 0 });
    const mcFile = join(dir, 'sendmail.mc');
    writeFileSync(mcFile, this.masterConfig(deliver));
    const cfDir = join(sendmailRoot, 'usr/share/sendmail/cf');
    const cf = await runChecked('m4', [`-D_CF_DIR_=${cfDir}/`, join(cfDir, 'm4/cf.m4'), mcFile]);
    const cfFile = join(dir, 'sendmail.cf');
    writeFileSync(cfFile, cf);
    return cfFile;
  }

  private masterConfig(deliver: string): string {
    const { dir, smtpPort, milterTimeouts } = this.settings;
    const user = systemUser(DELIVERY_USER);
    // `l`: local delivery (DSNs say "delivered"), `s`: strip quotes, `u`: keep upper case,
    // `8`: 8-bit clean, `n`: no "From " line. No D/F/M/P flags: deliver the message as it is.
    return `divert(-1)
# Private Sendmail of the milterkit e2e suite (generated).
divert(0)dnl
OSTYPE(\`linux')dnl
define(\`confDOMAIN_NAME', \`${HOST_NAME}')dnl
define(\`QUEUE_DIR', \`${this.queueDir}')dnl
define(\`STATUS_FILE', \`${join(dir, 'sendmail.st')}')dnl
define(\`confPID_FILE', \`${join(dir, 'sendmail.pid')}')dnl
define(\`ALIAS_FILE', \`${join(dir, 'aliases')}')dnl
define(\`confDEAD_LETTER_DROP', \`${join(dir, 'dead.letter')}')dnl
define(\`confSERVICE_SWITCH_FILE', \`${join(dir, 'service.switch')}')dnl
define(\`confHOSTS_FILE', \`/etc/hosts')dnl
define(\`confDONT_BLAME_SENDMAIL', \`TrustStickyBit')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confEIGHT_BIT_HANDLING', \`pass8')dnl
define(\`confLOG_LEVEL', \`14')dnl
define(\`confMILTER_LOG_LEVEL', \`14')dnl
define(\`confTO_IDENT', \`0')dnl
define(\`confDELIVERY_MODE', \`background')dnl
define(\`confREFUSE_LA', \`1000')dnl
define(\`confQUEUE_LA', \`1000')dnl
define(\`confDEF_USER_ID', \`${user.uid}:${user.gid}')dnl
define(\`confPRIVACY_FLAGS', \`authwarnings')dnl
define(\`confAUTH_MECHANISMS', \`${SASL_MECHANISMS.join(' ')}')dnl
TRUST_AUTH_MECH(\`${SASL_MECHANISMS.join(' ')}')dnl
FEATURE(\`nocanonify')dnl
FEATURE(\`no_default_msa')dnl
FEATURE(\`accept_unresolvable_domains')dnl
DAEMON_OPTIONS(\`Port=${smtpPort}, Addr=127.0.0.1, Name=MTA-v4, Family=inet')dnl
DAEMON_OPTIONS(\`Port=${smtpPort}, Addr=::1, Name=MTA-v6, Family=inet6')dnl
INPUT_MAIL_FILTER(\`e2e', \`S=local:${this.milterSocket}, F=T, T=${milterTimeouts}')dnl
MAILER(\`smtp')dnl
LOCAL_RULE_0
R$+ < @ $+ . >	$#e2e $@ localhost $: $1 < @ $2 . >
MAILER_DEFINITIONS
Me2e, P=${deliver}, F=lsu8n, U=${user.uid}:${user.gid}, S=EnvFromSMTP/HdrFromSMTP, R=EnvToSMTP/HdrFromSMTP, T=DNS/RFC822/X-Unix, A=deliver.sh ${this.mailbox.path} $g $u
`;
  }
}

/**
 * The shell script run inside the new namespaces: set the host name, replace /dev by the private
 * directory (device nodes bound from the real /dev, log = the suite's syslog socket), show Cyrus
 * SASL the instance's own configuration, run Sendmail in the foreground as the namespace's init.
 */
function namespaceScript(devDir: string, saslConfigDir: string, binary: string, configFile: string): string {
  const binds = DEVICES.map((device) => `mount --bind /dev/${device} ${devDir}/${device}`).join('\n');
  return `set -e
hostname ${HOST_NAME}
${binds}
mount --rbind ${devDir} /dev
mount --bind ${saslConfigDir} ${SASL_CONFIG_DIR}
exec ${binary} -bD -C ${configFile}
`;
}

/** One timeout of a `T=` setting (`C:5s;S:10s;R:3s;E:60s`), in milliseconds. */
function milterTimeout(setting: string, key: 'R' | 'E'): number {
  const match = new RegExp(`(?:^|;)${key}:(\\d+)([sm])`).exec(setting);
  if (match === null) throw new Error(`milter timeouts "${setting}" lack ${key}:`);
  return Number(match[1]) * (match[2] === 'm' ? 60_000 : 1000);
}

/** Sendmail quotes bytes of its internal meta range with 0xFF in queue files. */
const METAQUOTE = /\xff([\x80-\xff])/g;

/** Strips angle brackets from an envelope address as stored in a queue file. */
function bare(address: string): string {
  return address.replace(/^<(.*)>$/, '$1');
}

/**
 * Reads a Sendmail queue control file (qf/hf): sender, recipients, quarantine reason, headers.
 * Conditional headers (`H?D?Date:` and the like) are Sendmail's own defaults, emitted only for
 * mailers with those flags: left out, as they would be on delivery through the suite's mailer.
 */
function parseQueueControlFile(control: Buffer, body: Buffer): Omit<HeldMessage, 'id'> {
  const lines = control.toString('latin1').replace(METAQUOTE, '$1').split('\n');
  let sender = '';
  let reason: string | undefined;
  const recipients: string[] = [];
  const headerLines: string[] = [];
  let header: 'kept' | 'skipped' | undefined;
  for (const line of lines) {
    if (header !== undefined && /^[ \t]/.test(line)) {
      if (header === 'kept') headerLines.push(line);
      continue;
    }
    header = undefined;
    const kind = line[0];
    const rest = line.slice(1);
    if (kind === 'S') sender = bare(rest);
    else if (kind === 'q') reason = Buffer.from(rest, 'latin1').toString('utf8');
    else if (kind === 'R') recipients.push(bare(rest.slice(rest.indexOf(':') + 1)));
    else if (kind === 'H') {
      const condition = /^\?([^?]*)\?/.exec(rest);
      header = condition && condition[1] !== '' ? 'skipped' : 'kept';
      if (header === 'kept') headerLines.push(condition ? rest.slice(condition[0].length) : rest);
    }
  }
  const raw = Buffer.concat([Buffer.from(`${headerLines.join('\n')}\n\n`, 'latin1'), body]);
  return { sender, recipients, ...(reason === undefined ? {} : { reason }), ...parseMessage(raw) };
}
