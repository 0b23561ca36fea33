import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSettings, SettingsError } from '../../src/courier/settings.js';

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
    ];
    for (const [text, expected] of cases) {
      assert.throws(() => parseSettings(text, '/x'), (error: Error) => error instanceof SettingsError && expected.test(error.message), text);
    }
  });

  it('never evaluates code: custom YAML tags are refused', () => {
    assert.throws(() => parseSettings('modules: [{module: !!js/function "function(){ process.exit(9) }"}]', '/x'), /Unresolved tag/);
  });
});
