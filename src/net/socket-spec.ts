/**
 * Socket specifications, in the spellings milter administrators already write:
 *
 * | spelling | example | from |
 * |---|---|---|
 * | `unix:/path`, `local:/path` | `unix:/run/milter.sock` | Sendmail, libmilter |
 * | `unix:path` (relative) | `unix:private/milter` | Postfix |
 * | `inet:port@host` | `inet:8890@127.0.0.1` | Sendmail |
 * | `inet6:port@host` | `inet6:8890@[::1]` | Sendmail |
 * | `inet:host:port` | `inet:127.0.0.1:8890`, `inet:[::1]:8890` | Postfix |
 * | `inet:port` | `inet:8890` (loopback) | libmilter |
 * | `/path` | `/run/milter.sock` | plain path |
 */

/** Where to listen or connect. */
export type SocketAddress = { kind: 'unix'; path: string } | { kind: 'inet'; host: string; port: number };

/** A socket specification that cannot be understood. */
export class SocketSpecError extends Error {
  override readonly name = 'SocketSpecError';
}

function parsePort(text: string, spec: string): number {
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) > 65535) throw new SocketSpecError(`invalid port "${text}" in socket spec "${spec}"`);
  return Number(text);
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/**
 * Parses a socket specification.
 * @throws SocketSpecError
 */
export function parseSocketSpec(spec: string): SocketAddress {
  const trimmed = spec.trim();
  if (trimmed.startsWith('/')) return { kind: 'unix', path: trimmed };
  const colon = trimmed.indexOf(':');
  if (colon < 0) throw new SocketSpecError(`socket spec "${spec}" has no type: use unix:/path, inet:port@host or inet:host:port`);
  const type = trimmed.slice(0, colon).toLowerCase();
  const rest = trimmed.slice(colon + 1);
  switch (type) {
    case 'unix':
    case 'local':
      if (rest === '') throw new SocketSpecError(`socket spec "${spec}" has no path`);
      return { kind: 'unix', path: rest };
    case 'inet':
    case 'inet6':
    case 'tcp': {
      const at = rest.lastIndexOf('@');
      if (at >= 0) {
        return { kind: 'inet', port: parsePort(rest.slice(0, at), spec), host: stripBrackets(rest.slice(at + 1)) || defaultHost(type) };
      }
      const portAt = rest.lastIndexOf(':');
      if (portAt < 0) return { kind: 'inet', port: parsePort(rest, spec), host: defaultHost(type) };
      const host = rest.slice(0, portAt);
      // A bare IPv6 address such as "::1:8890" is ambiguous; require brackets for it.
      if (host.includes(':') && !host.startsWith('[')) {
        throw new SocketSpecError(`socket spec "${spec}": write an IPv6 host in brackets, e.g. inet:[::1]:8890 or inet6:8890@[::1]`);
      }
      return { kind: 'inet', host: stripBrackets(host) || defaultHost(type), port: parsePort(rest.slice(portAt + 1), spec) };
    }
    default:
      throw new SocketSpecError(`unknown socket type "${type}" in "${spec}": use unix:, local:, inet: or inet6:`);
  }
}

function defaultHost(type: string): string {
  return type === 'inet6' ? '::1' : '127.0.0.1';
}

/** Formats an address in Postfix's spelling (`unix:/path`, `inet:host:port`), as MTAs are configured. */
export function formatSocketAddress(address: SocketAddress): string {
  if (address.kind === 'unix') return `unix:${address.path}`;
  return address.host.includes(':') ? `inet:[${address.host}]:${address.port}` : `inet:${address.host}:${address.port}`;
}
