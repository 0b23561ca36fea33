/** Whether the MTAs' SMTP sockets are up, read from /proc without connecting to them. */
import { readFileSync } from 'node:fs';

const LISTEN_STATE = '0A';
/** Loopback addresses as /proc/net/tcp{,6} print them (host byte order words). */
const LOOPBACK = { tcp: '0100007F', tcp6: '00000000000000000000000001000000' } as const;

/**
 * Whether something listens on `port` at 127.0.0.1 and at [::1]. A probe connection would be an SMTP
 * session (and a milter connection) of its own; this leaves no trace in the MTA's logs.
 */
export function listensOnLoopback(port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return (Object.keys(LOOPBACK) as (keyof typeof LOOPBACK)[]).every((table) =>
    readFileSync(`/proc/net/${table}`, 'utf8')
      .split('\n')
      .some((line) => {
        const [, local, , state] = line.trim().split(/\s+/);
        return local === `${LOOPBACK[table]}:${hexPort}` && state === LISTEN_STATE;
      }),
  );
}
