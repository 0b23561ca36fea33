import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { loadCourierChain, loadCourierSettings } from '../../src/cli/courier-settings.js';
import { CourierConfig } from '../../src/courier/helpers/config.js';
import { formatReply } from '../../src/courier/reply.js';
import { copySpool, etcFixture, memoryLogger, scratchPerSuite } from './support.js';

const stamp = fileURLToPath(new URL('./modules/api-stamp.js', import.meta.url));

/** Bad files in the filter API's format: the error names the file, the line and what is wrong. */
const BAD_FILES: ReadonlyArray<{ what: string; yaml: string; error: RegExp }> = [
  { what: 'unknown key in the courier section', yaml: `courier:\n  socketDir: filters\nchain: [whitelist_auth]\n`, error: /:2:3: courier: unknown key "socketDir"$/ },
  { what: 'wrong type', yaml: `courier: { messageTimeout: soon }\nchain: [whitelist_auth]\n`, error: /:1:\d+: courier\.messageTimeout: must be number$/ },
  { what: 'unknown filter', yaml: `chain:\n  - whitelist_auth\n  - no_such_filter\n`, error: /:3:5: unknown filter "no_such_filter"/ },
  { what: 'duplicate name', yaml: `chain:\n  - whitelist_auth\n  - whitelist_auth\n`, error: /:3:5: .*whitelist_auth/ },
  { what: 'not YAML', yaml: `chain: [whitelist_auth\n`, error: /:\d+:\d+: not valid YAML or JSON/ },
];

describe('Courier daemon: the configuration format of milterkit serve --config', () => {
  const scratch = scratchPerSuite();
  const courier = new CourierConfig({ sysconfdir: etcFixture });

  async function configFile(name: string, yaml: string): Promise<string> {
    const path = join(scratch.dir, name);
    await writeFile(path, yaml);
    return path;
  }

  it('maps the file onto the daemon: courier section, limits, logging, replies; the chain runs as one engine chain', async () => {
    const file = await configFile(
      'chain.yaml',
      [
        'courier: { socketDirectory: filters, messageTimeout: 30, acceptReply: "200 Fine" }',
        'limits: { maxConnections: 7 }',
        'logging: { level: warn }',
        'replies: { tempfail: "451 4.7.1 Later" }',
        'chain:',
        `  - filter: ${stamp}`,
        '    options: { failRecipient: true }',
        '    onError: continue',
        `  - filter: ${stamp}`,
        '    name: refuser',
        '    options: { rejectSender: bob@sender.example }',
        '    testing: true',
        '',
      ].join('\n'),
    );
    const settings = await loadCourierSettings(file);
    assert.equal(settings.socketDirectory, 'filters');
    assert.equal(settings.maxConnections, 7);
    assert.equal(settings.messageTimeout, 30);
    assert.equal(settings.logLevel, 'warn');
    assert.equal(settings.replies.tempfail, '451 4.7.1 Later');
    assert.equal(settings.replies.reject, '550 5.7.1 Message refused by mail filter', 'the milter front-end\'s default');

    const { logger, records } = memoryLogger();
    const chain = await loadCourierChain(settings, courier, logger);
    const [dataPath, controlPath] = await copySpool(scratch.dir, 'D-plain', 'C-real-alias-duplicate');
    const reply = await chain.filter({ dataPath: dataPath!, controlPaths: [controlPath!] });
    assert.equal(formatReply(reply), '200 Fine\n');
    const text = await readFile(dataPath!, 'utf8');
    assert.equal(text.match(/^X-Api-Stamp: yes$/gm)?.length, 1, 'the failed recipient hook dropped nothing else; the testing entry wrote nothing');
    assert.ok(records.some((r) => r.event === 'filter-error' && r.policy === 'continue'));
    assert.ok(records.some((r) => r.event === 'testing' && String(r.would).startsWith('reject')));
  });

  it('the whole chain fails with its own policy: a hook failing under tempfail gets the configured reply', async () => {
    const file = await configFile('tempfail.yaml', `replies: { tempfail: "451 4.7.1 Later" }\nchain:\n  - filter: ${stamp}\n    options: { fail: true }\n`);
    const chain = await loadCourierChain(await loadCourierSettings(file), courier, memoryLogger().logger);
    const [dataPath, controlPath] = await copySpool(scratch.dir, 'D-plain', 'C-real-alias-duplicate');
    assert.equal(formatReply(await chain.filter({ dataPath: dataPath!, controlPaths: [controlPath!] })), '451 4.7.1 Later\n');
    assert.doesNotMatch(await readFile(dataPath!, 'utf8'), /X-Api-Stamp/);
  });

  it('still reads the modules: format', async () => {
    const settings = await loadCourierSettings(await configFile('modules.yaml', 'modules:\n  - whitelist_auth for attachments\n  - attachments\n'));
    assert.deepEqual(settings.modules.map((m) => [m.name, m.for]), [['whitelist_auth', ['attachments']], ['attachments', []]]);
    assert.equal(settings.modules[0]!.create, undefined);
  });

  for (const bad of BAD_FILES) {
    it(`reports a bad file with its line: ${bad.what}`, async () => {
      const file = await configFile('bad.yaml', bad.yaml);
      await assert.rejects(loadCourierSettings(file), (error: Error) => {
        assert.ok(error.message.startsWith(file), error.message);
        assert.match(error.message, bad.error);
        return true;
      });
    });
  }
});
