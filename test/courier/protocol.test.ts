import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatReply, InvalidReplyError, parseModuleReply, replyEffect } from '../../src/courier/reply.js';
import { MalformedRequestError, parseRequest, requestLength } from '../../src/courier/request.js';

describe('replies', () => {
  it('treats the empty string and undefined as no decision', () => {
    assert.equal(parseModuleReply(''), undefined);
    assert.equal(parseModuleReply(undefined), undefined);
  });

  it('formats single and multi-line replies with one code on every line and a final newline', () => {
    assert.equal(formatReply(parseModuleReply('200 Ok')!), '200 Ok\n');
    assert.equal(formatReply(parseModuleReply('550-First line\n550 Second line\n')!), '550-First line\n550 Second line\n');
    assert.equal(formatReply(parseModuleReply('550 First\nSecond\nThird')!), '550-First\n550-Second\n550 Third\n');
    assert.equal(formatReply(parseModuleReply('550-a\n451 mixed codes')!), '550-a\n550 mixed codes\n');
    assert.equal(formatReply(parseModuleReply('451\r\n')!), '451 \n');
  });

  it('maps the first digit to Courier\'s effect', () => {
    assert.equal(replyEffect('050'), 'accept-skip-all');
    assert.equal(replyEffect('200'), 'accept');
    assert.equal(replyEffect('300'), 'accept');
    assert.equal(replyEffect('421'), 'tempfail');
    assert.equal(replyEffect('554'), 'reject');
  });

  it('rejects answers that are not replies', () => {
    assert.throws(() => parseModuleReply('hello not a code'), InvalidReplyError);
    assert.throws(() => parseModuleReply('55 short'), InvalidReplyError);
    assert.throws(() => parseModuleReply(550), InvalidReplyError);
    assert.throws(() => parseModuleReply('550 x\n'.repeat(40)), /lines/);
  });
});

describe('requests', () => {
  it('finds the end of a request at the empty line', () => {
    assert.equal(requestLength(Buffer.from('/d\n/c\n')), -1);
    assert.equal(requestLength(Buffer.from('/d\n/c\n\n')), 7);
    assert.equal(requestLength(Buffer.from('\n')), 1);
  });

  it('parses data and control paths, resolving relative ones under localstatedir/tmp', () => {
    const request = parseRequest(Buffer.from('/var/lib/courier/tmp/179531/D1482776\n179531/C1482776.1\n/abs/C1482776.2\n\n'), '/var/lib/courier');
    assert.deepEqual(request, {
      dataPath: '/var/lib/courier/tmp/179531/D1482776',
      controlPaths: ['/var/lib/courier/tmp/179531/C1482776.1', '/abs/C1482776.2'],
    });
  });

  it('refuses requests without a control file or with NUL bytes', () => {
    assert.throws(() => parseRequest(Buffer.from('/d\n\n'), '/v'), MalformedRequestError);
    assert.throws(() => parseRequest(Buffer.from('\n'), '/v'), MalformedRequestError);
    assert.throws(() => parseRequest(Buffer.from('/d\0\n/c\n\n'), '/v'), /NUL/);
  });
});
