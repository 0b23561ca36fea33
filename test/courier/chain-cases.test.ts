/**
 * The filter API's conformance cases (test/e2e/cases/chain-*.yaml) on Courier: the same chains,
 * messages and envelopes through the offline courier profile (the data and control files Courier
 * writes, its reply semantics), checked against test/courier/chain-cases.yaml.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml, stringify } from 'yaml';
import { runOnCourier } from '../../src/frontends/courier-offline.js';
import { parseConfig, startChain } from '../../src/filter-api/index.js';
import { bundledFilters } from '../../src/filters/index.js';
import { casesDir } from '../e2e/harness/paths.js';
import { loadCaseSources, resolveCase } from '../e2e/runner/case-file.js';
import scripted from '../e2e/runner/scripted-filter.js';
import { sessionAuth } from '../e2e/runner/session-auth.js';
import { buildMessage } from '../e2e/runner/smtp-session.js';
import { repoRoot } from './support.js';

interface Expected {
  reply: string;
  delivered?: string[];
  removed?: string[];
  headers?: Record<string, string[]>;
  order?: string[];
  body?: string;
}

const expectations = parseYaml(readFileSync(join(repoRoot, 'test/courier/chain-cases.yaml'), 'utf8')) as Record<string, Expected[]>;
const sources = loadCaseSources(casesDir).filter((source) => source.name.startsWith('chain-'));

describe('filter API conformance cases on Courier (offline courier profile)', () => {
  it('every chain case has Courier expectations, and every expectation a case', () => {
    assert.deepEqual(Object.keys(expectations).sort(), sources.map((source) => source.name).sort());
  });

  for (const source of sources) {
    it(source.name, async () => {
      const kase = resolveCase(source, 'postfix');
      const configuration = await parseConfig(stringify(kase.milter.chain), source.file, { builtins: { ...bundledFilters, scripted } });
      const chain = await startChain(configuration);
      const auths = sessionAuth(kase.smtp.messages);
      try {
        for (const [index, message] of kase.smtp.messages.entries()) {
          const auth = auths[index];
          const expected = expectations[source.name]![index]!;
          const where = `${source.name} message ${index + 1}`;
          const report = await runOnCourier(chain, buildMessage(message, `${source.name}.courier.${index + 1}`, new Date()), {
            from: message.from,
            recipients: message.to.map((rcpt) => rcpt.address),
            ...(auth === undefined ? {} : { authUser: auth.user }),
          });
          if (/^\d{3}$/.test(expected.reply)) assert.equal(report.smtpReply.slice(0, 3), expected.reply, `${where}: ${report.smtpReply}`);
          else assert.equal(report.smtpReply, expected.reply, where);
          if (!report.smtpReply.startsWith('2')) continue;
          assert.deepEqual(report.envelope?.recipients.map((r) => r.address.slice(1, -1)), expected.delivered ?? [], where);
          assert.deepEqual(report.recipients.rejected.map((r) => r.recipient.slice(1, -1)), expected.removed ?? [], where);
          for (const [name, values] of Object.entries(expected.headers ?? {})) {
            assert.deepEqual(report.headers(name).map((field) => field.value.trim()), values, `${where}: ${name}`);
          }
          if (expected.order) assert.deepEqual(report.headers().map((field) => field.name), expected.order, `${where}: header order`);
          // The data file keeps LF line ends; the report gives CRLF, as on the wire.
          if (expected.body !== undefined) assert.equal(report.bodyText?.replace(/\r\n/g, '\n'), expected.body, `${where}: body`);
        }
      } finally {
        await chain.close();
      }
    });
  }
});
