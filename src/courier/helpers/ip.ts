/**
 * IP address forms used by Courier's access database: IPv4 dotted quads and IPv6 written as a
 * colon followed by eight fully expanded groups (`:0000:0000:…:0001`), both looked up from the
 * most to the least specific prefix.
 *
 * @packageDocumentation
 */
import { isIP, isIPv4 } from 'node:net';
import { unwrapMappedIpv4 } from './control.js';

/** `2001:db8::1` → `['2001','0db8','0000',…,'0001']`; undefined if not an IPv6 address. */
export function expandIpv6(address: string): string[] | undefined {
  if (isIP(address) !== 6) return undefined;
  let text = address.toLowerCase().replace(/%.*$/, '');
  const embedded = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (embedded) {
    const [a, b, c, d] = embedded[1]!.split('.').map(Number) as [number, number, number, number];
    text = text.slice(0, -embedded[1]!.length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const missing = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(missing).fill('0'), ...tailGroups];
  return groups.length === 8 ? groups.map((g) => g.padStart(4, '0')) : undefined;
}

/**
 * The access-database keys for an address, most specific first: `192.0.2.1`, `192.0.2`,
 * `192.0`, `192`; or `:2001:0db8:…:0001`, `:2001:0db8:…:0000`, … `:2001`. IPv4-mapped IPv6
 * addresses are looked up as IPv4.
 */
export function accessLookupKeys(address: string): string[] {
  const ip = unwrapMappedIpv4(address.trim());
  if (isIPv4(ip)) {
    const octets = ip.split('.');
    return octets.map((_, i) => octets.slice(0, octets.length - i).join('.'));
  }
  const groups = expandIpv6(ip);
  if (!groups) return [];
  return groups.map((_, i) => ':' + groups.slice(0, groups.length - i).join(':'));
}

/**
 * Normalises a key as written in an smtpaccess source: IPv4 prefixes stay; `:`-expanded IPv6
 * prefixes are lower-cased; a complete IPv6 address in short form (`::1`) is expanded.
 */
export function normaliseAccessKey(key: string): string {
  if (/^(:[0-9a-fA-F]{4})+$/.test(key)) return key.toLowerCase();
  const groups = expandIpv6(key);
  return groups ? ':' + groups.join(':') : key;
}
