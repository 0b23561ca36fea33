import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadSettings, parseSettings, SettingsError } from '../../src/courier/settings.js';
import { scratch } from './support.js';

describe('configuration file', () => {
  it('reads YAML with both module forms and applies defaults', () => {
    const settings = parseSettings(
      'moduleTimeout: 5\nmodules:\n  - whitelist_auth for attachments greylist\n  - module: attachments\n    options: { blockedPattern: "\\\\.exe$" }\n    onError: reject\n  - module: ./local/greylist.js\n    testing: true\n',
      '/etc/courier/filters',
    );
    assert.deepEqual(
      settings.modules.map((m) => [m.name, m.for, m.timeout, m.onError, m.onTimeout, m.testing]),
      [
        ['whitelist_auth', ['attachments', 'greylist'], 5, 'tempfail', 'tempfail', false],
        ['attachments', [], 5, 'reject', 'tempfail', false],
        ['greylist', [], 5, 'tempfail', 'tempfail', true],
      ],
    );
    assert.equal(settings.modules[1]!.options.blockedPattern, '\\.exe$');
    assert.equal(settings.maxConnections, 64);
    assert.equal(settings.shutdownTimeout, 10);
    assert.equal(settings.baseDirectory, '/etc/courier/filters');
  });

  it('reads JSON', () => {
    const settings = parseSettings('{"socketDirectory": "filters", "modules": [{"module": "add_header", "name": "stamp"}]}', '/x');
    assert.equal(settings.socketDirectory, 'filters');
    assert.equal(settings.modules[0]!.name, 'stamp');
  });

  it('explains what is wrong', () => {
    const cases: Array<[string, RegExp]> = [
      ['modules: [{module: a, onError: ignore}]', /modules\[0\]\.onError: expected continue, tempfail or reject/],
      ['modules: [{module: a, colour: red}]', /modules\[0\]: unknown key "colour"/],
      ['modules: ["a for"]', /modules\[0\]: expected "module" or "module for/],
      ['modules: ["a for b"]', /"a for b" names no module/],
      ['modules: [a, a]', /used twice/],
      ['maxConnections: 0', /maxConnections: expected a positive integer/],
      ['modulez: []', /unknown key "modulez"/],
      ['replies: { reject: "no code" }', /replies\.reject/],
      ['socketDirectory: tmp', /allfilters or filters/],
      ['- just a list', /mapping at the top level/],
      ['modules: [unclosed', /not valid YAML/],
      ['modules: [*no_such_anchor]', /^\/etc\/courier\/filters\/mk\.yaml: not valid YAML\/JSON: Unresolved alias/],
    ];
    for (const [text, expected] of cases) {
      assert.throws(() => parseSettings(text, '/x', '/etc/courier/filters/mk.yaml'), (error: Error) => error instanceof SettingsError && expected.test(error.message), text);
    }
  });

  it('never evaluates code: custom YAML tags are refused', () => {
    assert.throws(() => parseSettings('modules: [{module: !!js/function "function(){ process.exit(9) }"}]', '/x'), /Unresolved tag/);
  });

  it('warns about a file others may write, and then refuses configCommand from it', async () => {
    const { dir, remove } = await scratch();
    try {
      const path = join(dir, 'mk.yaml');
      await writeFile(path, 'modules: []\n');
      await chmod(path, 0o664);
      const warnings: string[] = [];
      await loadSettings(path, { onWarning: (message) => warnings.push(message) });
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /writable by users other than its owner \(mode 664\)/);
      await writeFile(path, 'courier: { configCommand: /usr/bin/courier-config }\n');
      await assert.rejects(loadSettings(path), /configCommand is refused from a file others may write/);
      await chmod(path, 0o644);
      await loadSettings(path, { onWarning: (message) => warnings.push(message) });
      assert.equal(warnings.length, 1);
      await writeFile(path, 'courier: { configCommand: courier-config }\n');
      await assert.rejects(loadSettings(path), /must be an absolute path/);
    } finally {
      await remove();
    }
  });
});
