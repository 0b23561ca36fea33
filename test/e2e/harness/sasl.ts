/**
 * SMTP AUTH of the suite's MTAs: Cyrus SASL with a private sasldb (no authentication daemon), the
 * PLAIN and LOGIN mechanisms, and the accounts below. Each instance gets its own configuration
 * file and database in its directory; the system's SASL configuration is never read or written.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { saslToolsRoot } from './paths.js';

/** An account the MTAs accept for SMTP AUTH. */
export interface SaslAccount {
  /** The name given to AUTH; with its `@domain` it is also the name the MTAs report to milters. */
  user: string;
  password: string;
}

/**
 * The accounts of both instances. Names contain an `@`, so that Cyrus SASL appends no realm to
 * them and both MTAs report exactly this name in `{auth_authen}`.
 */
export const SASL_ACCOUNTS: readonly SaslAccount[] = [{ user: 'alice@example.org', password: 'alice-secret' }];

/** Mechanisms offered in EHLO. */
export const SASL_MECHANISMS = ['PLAIN', 'LOGIN'] as const;

/**
 * Writes into `configDir` the application configuration `NAME.conf` (the MTA points Cyrus SASL to
 * this directory) and a sasldb with {@link SASL_ACCOUNTS}, owned by `owner` with mode 0600
 * (Sendmail refuses a database that others can read; Postfix's smtpd reads it as "postfix").
 * @param name the application name the MTA asks Cyrus for (`smtpd` for Postfix, `Sendmail`)
 * @param realm the realm the MTA looks accounts up in (both use their host name)
 */
export function writeSaslSetup(configDir: string, name: string, realm: string, owner: { uid: number; gid: number }): void {
  const database = join(configDir, 'sasldb2');
  mkdirSync(configDir, { recursive: true, mode: 0o755 });
  rmSync(database, { force: true });
  writeFileSync(
    join(configDir, `${name}.conf`),
    `pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: ${database}\nmech_list: ${SASL_MECHANISMS.join(' ')}\n`,
  );
  const saslpasswd2 = join(saslToolsRoot, 'usr/sbin/saslpasswd2');
  if (!existsSync(saslpasswd2)) throw new Error(`${saslpasswd2} is missing: run scripts/prerequisites/20-mtas.sh`);
  for (const { user, password } of SASL_ACCOUNTS) {
    // -p: the password comes on stdin.
    const created = spawnSync(saslpasswd2, ['-f', database, '-p', '-c', '-u', realm, user], {
      input: password,
      encoding: 'utf8',
      timeout: 10_000,
    });
    if (created.status !== 0) throw new Error(`saslpasswd2 for ${user} failed (${created.status}): ${created.stderr}`);
  }
  chownSync(database, owner.uid, owner.gid);
  chmodSync(database, 0o600);
}

/** Whether the MTAs accept these credentials (then the session is authenticated as `user`). */
export function isAccount(user: string, password: string): boolean {
  return SASL_ACCOUNTS.some((account) => account.user === user && account.password === password);
}
