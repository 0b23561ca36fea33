/** Small file-system helpers shared by the MTA harnesses. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Paths of the regular files under `dir` (recursively); none when it does not exist. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...filesUnder(path));
    else if (entry.isFile()) found.push(path);
  }
  return found;
}

/** Lines of a text file, [] when it does not exist. */
export function fileLines(path: string): string[] {
  if (!existsSync(path) || statSync(path).size === 0) return [];
  return readFileSync(path, 'utf8').split('\n').filter((line) => line !== '');
}

/** The numeric uid/gid of a system user, from /etc/passwd. */
export function systemUser(name: string): { uid: number; gid: number } {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name) return { uid: Number(uid), gid: Number(gid) };
  }
  throw new Error(`system user "${name}" not found in /etc/passwd`);
}
