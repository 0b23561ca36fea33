import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSocketSpec, formatSocketAddress, SocketSpecError, type SocketAddress } from '../../src/net/socket-spec.js';

/** Every spelling administrators write, and what it means. */
const specs: Array<[string, SocketAddress]> = [
  ['unix:/run/milter.sock', { kind: 'unix', path: '/run/milter.sock' }],
  ['local:/run/milter.sock', { kind: 'unix', path: '/run/milter.sock' }],
  ['unix:private/milter', { kind: 'unix', path: 'private/milter' }],
  ['/var/run/m.sock', { kind: 'unix', path: '/var/run/m.sock' }],
  ['inet:8890@127.0.0.1', { kind: 'inet', host: '127.0.0.1', port: 8890 }],
  ['inet:8890@localhost', { kind: 'inet', host: 'localhost', port: 8890 }],
  ['inet6:8890@[::1]', { kind: 'inet', host: '::1', port: 8890 }],
  ['inet6:8890@::1', { kind: 'inet', host: '::1', port: 8890 }],
  ['inet6:8890', { kind: 'inet', host: '::1', port: 8890 }],
  ['inet:8890', { kind: 'inet', host: '127.0.0.1', port: 8890 }],
  ['inet:127.0.0.1:8890', { kind: 'inet', host: '127.0.0.1', port: 8890 }],
  ['inet:[::1]:8890', { kind: 'inet', host: '::1', port: 8890 }],
  ['inet:0@127.0.0.1', { kind: 'inet', host: '127.0.0.1', port: 0 }],
  ['INET:25@mx.example', { kind: 'inet', host: 'mx.example', port: 25 }],
];
for (const [spec, address] of specs) {
  test(`socket spec ${spec}`, () => assert.deepEqual(parseSocketSpec(spec), address));
}

const bad = ['8890', 'inet:', 'inet:port@host', 'inet:70000@127.0.0.1', 'inet:::1:8890', 'unix:', 'tcp6:1@x', 'smtp:25'];
for (const spec of bad) {
  test(`socket spec "${spec}" is refused with a clear error`, () => assert.throws(() => parseSocketSpec(spec), SocketSpecError));
}

test('addresses are formatted in Postfix spelling', () => {
  assert.equal(formatSocketAddress({ kind: 'inet', host: '::1', port: 1 }), 'inet:[::1]:1');
  assert.equal(formatSocketAddress({ kind: 'inet', host: '127.0.0.1', port: 1 }), 'inet:127.0.0.1:1');
  assert.equal(formatSocketAddress({ kind: 'unix', path: '/x' }), 'unix:/x');
});
