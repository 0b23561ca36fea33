import { test } from 'node:test';
import assert from 'node:assert/strict';
import { macroStageNames, stageByCallback, stageByMacroStage, stageBySmtp, stageNames, stageTable } from '../../src/protocol/index.js';

/**
 * Each stage as the protocol reference lists it (milter-protocol.md §3 and the macro stages of
 * §4.7): callback, SMTP name, command letter, SMFIM_* macro stage, SMFIP_NO* and SMFIP_NR_* bits.
 */
const reference: Array<[string, string, string, number | undefined, number, number]> = [
  ['connect', 'connect', 'C', 0, 0x1, 0x1000],
  ['helo', 'helo', 'H', 1, 0x2, 0x2000],
  ['envfrom', 'mail', 'M', 2, 0x4, 0x4000],
  ['envrcpt', 'rcpt', 'R', 3, 0x8, 0x8000],
  ['data', 'data', 'T', 4, 0x200, 0x10000],
  ['header', 'header', 'L', undefined, 0x20, 0x80],
  ['eoh', 'eoh', 'N', 6, 0x40, 0x40000],
  ['body', 'body', 'B', undefined, 0x10, 0x80000],
  ['eom', 'eom', 'E', 5, 0, 0],
  ['unknown', 'unknown', 'U', undefined, 0x100, 0x20000],
];

for (const [callback, smtp, letter, macroStage, no, noReply] of reference) {
  test(`stage ${callback}: one row, reached by every name`, () => {
    const row = stageByCallback[callback as keyof typeof stageByCallback];
    assert.deepEqual(
      { callback: row.callback, smtp: row.smtp, command: String.fromCharCode(row.command), macroStage: row.macroStage, no: row.no, noReply: row.noReply },
      { callback, smtp, command: letter, macroStage, no, noReply },
    );
    assert.equal(stageBySmtp[smtp as keyof typeof stageBySmtp], row);
    if (macroStage !== undefined) assert.equal(stageByMacroStage[macroStage as keyof typeof stageByMacroStage], row);
  });
}

test('the derived name lists: every stage but eom can be skipped; seven stages have macro lists', () => {
  assert.equal(stageTable.length, reference.length);
  assert.deepEqual(stageNames, ['connect', 'helo', 'envfrom', 'envrcpt', 'data', 'header', 'eoh', 'body', 'unknown']);
  assert.deepEqual([...macroStageNames].sort(), ['connect', 'data', 'envfrom', 'envrcpt', 'eoh', 'eom', 'helo']);
});
