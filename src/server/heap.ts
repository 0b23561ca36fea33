/**
 * Memory of a process that serves milter connections. With a new connection per message (what
 * `non_smtpd_milters` and many Sendmail setups do), each connection's objects (its socket, session
 * and filter instance) outlive a few of V8's young-generation collections, and V8 answers objects
 * that survive by doubling the young generation, up to 16 MiB per semi-space: a process settles
 * some 25 MiB of resident memory higher than it needs to, and a bare Node.js server that answers
 * the same packets does the same. Keeping the young generation at its starting size bounds that;
 * collections get more frequent but stay cheap, as little survives each one. Measured in
 * bench/results/latest.md.
 */
import v8 from 'node:v8';

/** V8 reads this flag each time it considers growing the young generation, so it applies at run time. */
const NO_YOUNG_GENERATION_GROWTH = '--semi-space-growth-factor=1';

/**
 * Keeps V8's young generation at its starting size for the rest of the process. For a process
 * whose work is serving connections (`milterkit serve`, its worker processes and the Courier
 * daemon call it); a program that embeds a server among other work decides for itself, as this
 * is process-wide.
 */
export function keepYoungGenerationSmall(): void {
  v8.setFlagsFromString(NO_YOUNG_GENERATION_GROWTH);
}
