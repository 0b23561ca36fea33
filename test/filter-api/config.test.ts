import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, defineFilter, parseConfig, readConfig, reject, startChain } from '../../src/filter-api/index.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const builtins = {
  pass: defineFilter({ name: 'pass', message: () => undefined }),
  strict: defineFilter({ name: 'strict', options: { type: 'object', properties: { level: { type: 'integer', minimum: 1, default: 1 } } }, sender: () => reject() }),
  failing: defineFilter({ name: 'failing', init: () => Promise.reject(new Error('cannot reach redis')), sender: () => undefined }),
};

/** Bad configurations and the error each must give: message and line. */
const badConfigs: Array<{ what: string; yaml: string; line: number; error: RegExp }> = [
  { what: 'unknown top-level key', yaml: 'chain: [pass]\nlisten: inet:1@127.0.0.1\nshadwo: true\n', line: 3, error: /unknown key "shadwo"/ },
  { what: 'unknown key in an entry', yaml: 'chain:\n  - filter: pass\n    onErorr: reject\n', line: 3, error: /chain\.0: unknown key "onErorr"/ },
  { what: 'wrong type', yaml: 'chain:\n  - filter: pass\n    trusting: "yes"\n', line: 3, error: /chain\.0\.trusting: must be boolean/ },
  { what: 'bad policy', yaml: 'defaults:\n  onError: ignore\nchain: [pass]\n', line: 2, error: /defaults\.onError: must be one of tempfail, reject, continue/ },
  { what: 'unknown filter', yaml: 'chain:\n  - pass\n  - filter: nosuchfilter\n', line: 3, error: /unknown filter "nosuchfilter"/ },
  { what: 'unknown filter, line form', yaml: 'chain:\n  - pass\n  - nosuchfilter for pass\n', line: 3, error: /unknown filter "nosuchfilter"/ },
  { what: 'duplicate name', yaml: 'chain:\n  - pass\n  - filter: pass\n    testing: true\n', line: 3, error: /the name "pass" is used twice/ },
  { what: 'for naming nothing', yaml: 'chain:\n  - filter: pass\n    for: [strcit]\n  - strict\n', line: 3, error: /no filter of that name/ },
  { what: 'unknown filter option', yaml: 'chain:\n  - filter: strict\n    options:\n      levle: 2\n', line: 4, error: /options\.levle: unknown option/ },
  { what: 'bad filter option', yaml: 'chain:\n  - filter: strict\n    options: { level: 0 }\n', line: 3, error: /options\.level: must be >= 1/ },
  { what: 'missing chain', yaml: 'listen: inet:1@127.0.0.1\n', line: 1, error: /"chain" is required/ },
  { what: 'broken YAML', yaml: 'chain:\n  - pass\n - strict\n', line: 3, error: /not valid YAML or JSON: A block sequence/ },
  { what: 'a key given twice', yaml: 'chain: [pass]\nshadow: true\nshadow: false\n', line: 3, error: /Map keys must be unique/ },
  { what: 'bad reply', yaml: 'replies: { reject: "450 no" }\nchain: [pass]\n', line: 1, error: /replies\.reject: does not match/ },
  { what: 'bad line form', yaml: 'chain:\n  - "pass fro strict"\n', line: 2, error: /expected "filter" or "filter for other1 other2"/ },
];

for (const bad of badConfigs) {
  test(`bad configuration: ${bad.what} is reported with file and line`, async () => {
    await assert.rejects(parseConfig(bad.yaml, '/etc/milterkit.yaml', { builtins }), (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.match(error.message, bad.error);
      assert.equal(error.file, '/etc/milterkit.yaml');
      assert.equal(error.line, bad.line, error.message);
      assert.ok(error.message.startsWith(`/etc/milterkit.yaml:${bad.line}:`));
      return true;
    });
  });
}

test('a filter that fails to start is reported with its line', async () => {
  const configuration = await parseConfig('chain:\n  - pass\n  - failing\n', 'c.yaml', { builtins });
  await assert.rejects(startChain(configuration), /^ConfigError: c\.yaml:3:5: filter "failing" failed to start: cannot reach redis/);
});

test('a JSON configuration with both entry forms, defaults and the filter search path', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'milterkit-config-'));
  const file = join(dir, 'milterkit.json');
  await writeFile(
    file,
    JSON.stringify({
      listen: ['inet:8890@127.0.0.1', 'unix:/run/milterkit.sock'],
      filterPath: [fixtures],
      defaults: { timeout: 5, onError: 'reject' },
      replies: { tempfail: '421 4.3.2 Busy' },
      chain: ['pass for strict', { filter: 'strict', options: { level: 2 }, onTimeout: 'continue', trusting: true }, { filter: 'stamp', name: 'stamp2' }],
    }),
  );
  const configuration = await readConfig(file, { builtins });
  assert.deepEqual(configuration.listen, ['inet:8890@127.0.0.1', 'unix:/run/milterkit.sock']);
  assert.deepEqual(configuration.sources.slice(0, 2), ['built-in', 'built-in']);
  assert.equal(configuration.sources[2], join(fixtures, 'stamp.js'));
  const [pass, strict, stamp] = configuration.chain.filters;
  assert.deepEqual(pass!.for, ['strict']);
  assert.deepEqual([strict!.timeoutMs, strict!.onError, strict!.onTimeout, strict!.trusting], [5000, 'reject', 'continue', true]);
  assert.equal(stamp!.name, 'stamp2');
  assert.deepEqual(configuration.chain.replies?.tempfail, { code: '421', xcode: '4.3.2', lines: ['Busy'] });
  const chain = await startChain(configuration);
  assert.deepEqual(chain.entries.map((e) => [e.name, e.options]), [
    ['pass', {}],
    ['strict', { level: 2 }],
    ['stamp2', { value: 'stamped' }],
  ]);
});

test('configuration text is data: YAML tags are not evaluated', async () => {
  await assert.rejects(parseConfig('chain: !!js/function "function () {}"\n', 'x.yaml', { builtins }), ConfigError);
});
