/** Where the suite finds its own files and the MTAs it drives. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRepoRoot(start: string): string {
  let dir = start;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'milterkit') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`milterkit's package.json not found above ${start}`);
    dir = parent;
  }
}

/** The repository root (the suite runs compiled from dist/, but its data stays in the source tree). */
export const repoRoot = findRepoRoot(dirname(fileURLToPath(import.meta.url)));

/** Source directory of the suite: case files and the delivery script live there. */
export const e2eSourceDir = join(repoRoot, 'test', 'e2e');

/** The case files. */
export const casesDir = join(e2eSourceDir, 'cases');

/** The delivery program both MTAs run for every recipient. */
export const deliverScript = join(e2eSourceDir, 'harness', 'deliver.sh');

/** Where scripts/prerequisites/20-mtas.sh unpacks Sendmail (it conflicts with the Postfix package). */
export const sendmailRoot = process.env.MILTERKIT_SENDMAIL_ROOT ?? '/var/cache/milterkit/sendmail';

/** Where scripts/prerequisites/20-mtas.sh unpacks sasl2-bin (saslpasswd2 creates the suite's sasldb). */
export const saslToolsRoot = process.env.MILTERKIT_SASL_TOOLS_ROOT ?? '/var/cache/milterkit/sasl2-bin';
