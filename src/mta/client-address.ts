/** The SMTP client's address as MTAs classify it for CONNECT. */
import net from 'node:net';
import type { AddressFamily } from '../protocol/index.js';
import { MilterUsageError } from '../client/errors.js';

/** A classified client address. */
export interface ClientAddress {
  family: AddressFamily;
  /** IPv4 dotted quad, or IPv6 without prefix or brackets; the path for `unix`. */
  address?: string;
}

/**
 * Classifies an address given by a user: IPv4, IPv6 (bare, `[...]` or `IPv6:`-prefixed), a unix
 * socket path, or nothing (unknown). IPv4-mapped IPv6 addresses count as IPv4, as both MTAs
 * send them.
 * @throws MilterUsageError for anything else
 */
export function classifyClientAddress(input: string | undefined): ClientAddress {
  if (input === undefined || input === '') return { family: 'unknown' };
  if (input.startsWith('/')) return { family: 'unix', address: input };
  let ip = input.trim();
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  if (/^ipv6:/i.test(ip)) ip = ip.slice(5);
  if (net.isIPv4(ip)) return { family: 'inet', address: ip };
  if (net.isIPv6(ip)) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
    return mapped === null ? { family: 'inet6', address: ip.toLowerCase() } : { family: 'inet', address: mapped[1]! };
  }
  throw new MilterUsageError(`client address "${input}" is neither an IPv4/IPv6 address nor a socket path`);
}
