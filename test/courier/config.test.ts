import assert from 'node:assert/strict';
import { cp, writeFile, mkdir, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { compareVersions, CourierConfig, parseAliases, parseSmtpAccess } from '../../src/courier/helpers/config.js';
import { accessLookupKeys, expandIpv6 } from '../../src/courier/helpers/ip.js';
import { discoverCourierDirectories, parseCourierConfigOutput } from '../../src/courier/paths.js';
import { etcFixture, scratch, scratchPerSuite } from './support.js';

const config = new CourierConfig({ sysconfdir: etcFixture, sbindir: '/nonexistent' });

describe('Courier configuration helpers', () => {
  it('reads me, defaultdomain and dsnfrom with their fallbacks', async () => {
    assert.equal(await config.me(), 'mail.test.example');
    assert.equal(await config.defaultDomain(), 'test.example');
    assert.equal(await config.dsnFrom(), '"Courier mail server at mail.test.example" <@>');
    assert.equal(await config.esmtpHelo(), 'mail.test.example');
    assert.equal(await config.localLowercase(), false);
    const empty = new CourierConfig({ sysconfdir: '/nonexistent-milterkit' });
    assert.equal(await empty.me(), hostname());
    assert.equal(await empty.defaultDomain(), hostname());
    assert.equal(await empty.isLocal(hostname().toUpperCase()), true);
    assert.equal(await empty.isLocal('other.example'), false);
  });

  it('decides local domains: exact, .suffix and !exclusion', async () => {
    assert.equal(await config.isLocal('mail.test.example'), true);
    assert.equal(await config.isLocal('MAIL.Test.Example'), true);
    assert.equal(await config.isLocal('host.lan.test.example'), true);
    assert.equal(await config.isLocal('guest.lan.test.example'), false);
    assert.equal(await config.isLocal('test.example'), false);
  });

  it('decides hosted domains from a hosteddomains directory', async () => {
    assert.equal(await config.isHostedDomain('hosted.example'), true);
    assert.equal(await config.isHostedDomain('a.b.parent.example'), true);
    assert.equal(await config.isHostedDomain('parent.example'), false);
    assert.equal(await config.isHostedDomain('sub.hosted.example'), false);
  });

  it('expands aliases, qualifying names with defaultdomain and following continuation lines', async () => {
    assert.deepEqual(await config.getAlias('team'), ['alice@test.example', 'carol@mail.test.example', 'dave@remote.example']);
    assert.deepEqual(await config.getAlias('Postmaster@test.example'), ['alice@test.example']);
    assert.equal(await config.getAlias('should-be-ignored'), undefined);
    assert.equal(await config.getAlias('nobody'), undefined);
    assert.deepEqual(parseAliases('x: |/usr/bin/prog, /var/mail/file\n', 'd.example').get('x@d.example'), ['|/usr/bin/prog', '/var/mail/file']);
  });

  it('looks up smtpaccess by the most specific prefix, IPv4 and IPv6', async () => {
    assert.deepEqual(await config.smtpAccess('192.0.2.66'), { key: '192.0.2.66', value: 'allow,BLOCK' });
    assert.deepEqual(await config.smtpAccess('192.0.2.7'), { key: '192.0.2', value: 'allow,RELAYCLIENT' });
    assert.deepEqual(await config.smtpAccess('::ffff:192.0.2.7'), { key: '192.0.2', value: 'allow,RELAYCLIENT' });
    assert.deepEqual(await config.smtpAccess('10.1.2.3'), { key: '10', value: 'allow,RELAYCLIENT' });
    assert.equal(await config.smtpAccess('203.0.113.1'), undefined);
    assert.equal(await config.isRelayed('192.0.2.7'), true);
    assert.equal(await config.isRelayed('192.0.2.66'), false);
    assert.equal(await config.isRelayed('192.0.2.99'), false);
    assert.equal(await config.isRelayed('::1'), true);
    assert.equal(await config.isRelayed('2001:db8::25'), true);
    assert.equal(await config.isRelayed('2001:db8:1::25'), false);
    assert.equal(await config.isRelayed('not an ip'), false);
  });

  it('reads BLOCK values: absent, empty (whiteblocked) and a message', async () => {
    assert.equal(await config.getBlockValue('192.0.2.7'), undefined);
    assert.equal(await config.getBlockValue('192.0.2.66'), '');
    assert.equal(await config.isWhiteblocked('192.0.2.66'), true);
    assert.equal(await config.getBlockValue('198.51.100.20'), '550 listed');
    assert.equal(await config.isWhiteblocked('198.51.100.20'), false);
    assert.equal(await config.isWhiteblocked('2001:db8::bad'), true);
    assert.equal(await config.getSmtpAccessValue('RELAYCLIENT', '203.0.113.1'), undefined);
  });

  it('compares versions numerically, not as strings', () => {
    assert.equal(compareVersions('1.0.16', '1.0.9'), 1);
    assert.equal(compareVersions('0.57.1', '0.57.1'), 0);
    assert.equal(compareVersions('0.57', '0.57.1'), -1);
    assert.equal(compareVersions('10.0', '9.9'), 1);
  });

  it('reads the Courier version from `courier --version`', async () => {
    const { dir, remove } = await scratch();
    try {
      await writeFile(join(dir, 'courier'), '#!/bin/sh\necho "Courier 1.0.16 Copyright 1999-2018 Double Precision, Inc."\n', { mode: 0o755 });
      const withBinary = new CourierConfig({ sysconfdir: etcFixture, sbindir: dir });
      assert.equal(await withBinary.version(), '1.0.16');
      assert.equal(await withBinary.isMinVersion('0.57.1'), true);
      assert.equal(await withBinary.isMinVersion('1.0.100'), false);
      assert.equal(await config.isMinVersion('0.1'), false);
    } finally {
      await remove();
    }
  });

  it('notices edits of a source without a restart', async () => {
    const { dir, remove } = await scratch();
    try {
      await cp(etcFixture, dir, { recursive: true });
      const live = new CourierConfig({ sysconfdir: dir });
      assert.equal(await live.isRelayed('203.0.113.5'), false);
      const extra = join(dir, 'smtpaccess', 'extra');
      await writeFile(extra, '203.0.113\tallow,RELAYCLIENT\n');
      assert.equal(await live.isRelayed('203.0.113.5'), true);
      await writeFile(extra, '203.0.113\tallow\n');
      await utimes(extra, new Date(), new Date(Date.now() + 5000));
      assert.equal(await live.isRelayed('203.0.113.5'), false);
      await mkdir(join(dir, 'unused'));
    } finally {
      await remove();
    }
  });
});

describe('IP forms of the access database', () => {
  it('expands IPv6 addresses, embedded IPv4 included', () => {
    assert.deepEqual(expandIpv6('::1'), ['0000', '0000', '0000', '0000', '0000', '0000', '0000', '0001']);
    assert.deepEqual(expandIpv6('2001:DB8::25'), ['2001', '0db8', '0000', '0000', '0000', '0000', '0000', '0025']);
    assert.deepEqual(expandIpv6('::ffff:127.0.0.1'), ['0000', '0000', '0000', '0000', '0000', 'ffff', '7f00', '0001']);
    assert.equal(expandIpv6('192.0.2.1'), undefined);
  });

  it('lists lookup keys from most to least specific', () => {
    assert.deepEqual(accessLookupKeys('192.0.2.1'), ['192.0.2.1', '192.0.2', '192.0', '192']);
    const v6 = accessLookupKeys('2001:db8::1');
    assert.equal(v6.length, 8);
    assert.equal(v6[0], ':2001:0db8:0000:0000:0000:0000:0000:0001');
    assert.equal(v6[7], ':2001');
  });

  it('normalises keys written in short IPv6 form', () => {
    assert.deepEqual([...parseSmtpAccess('::1\tallow\n:2001:0DB8\tdeny\n').keys()], [':0000:0000:0000:0000:0000:0000:0000:0001', ':2001:0db8']);
  });
});

describe('Courier directories', () => {
  it('parses courier-config output', () => {
    const parsed = parseCourierConfigOutput('prefix=/usr\nlocalstatedir=/var/lib/courier\nmailuser=courier\nconfigure_args="x"\n');
    assert.deepEqual(parsed, { prefix: '/usr', localstatedir: '/var/lib/courier', mailuser: 'courier' });
  });

  const tmp = scratchPerSuite();

  it('asks courier-config, and overrides win', async () => {
    const fake = join(tmp.dir, 'courier-config');
    await writeFile(fake, '#!/bin/sh\necho sysconfdir=/opt/courier/etc\necho localstatedir=/opt/courier/var\n', { mode: 0o755 });
    const found = await discoverCourierDirectories({ command: fake, overrides: { localstatedir: '/tmp/spool' } });
    assert.equal(found.source, fake);
    assert.equal(found.directories.sysconfdir, '/opt/courier/etc');
    assert.equal(found.directories.localstatedir, '/tmp/spool');
    assert.equal(found.directories.libexecdir, '/usr/lib/courier');
  });

  it('falls back to Debian defaults when courier-config is missing', async () => {
    const found = await discoverCourierDirectories({ command: join(tmp.dir, 'missing') });
    assert.equal(found.source, 'defaults');
    assert.equal(found.directories.localstatedir, '/var/lib/courier');
  });
});
