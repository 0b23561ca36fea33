#!/usr/bin/env node
/**
 * Standalone executable for Courier's filters directory:
 * `ln -s …/dist/src/cli/milterkit-courier.js /usr/lib/courier/filters/milterkit && filterctl start milterkit`.
 *
 * @packageDocumentation
 */
import { courierMain } from './courier.js';

const code = await courierMain(process.argv.slice(2));
// Let piped output (the `check` reply) reach its reader before exiting.
await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
// Shutdown is already bounded inside the daemon; leftover handles (stdin, timers) must not keep
// courierfilter waiting for this process.
process.exit(code);
