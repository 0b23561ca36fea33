import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Protocol } from '../../src/protocol/index.js';
import { Milter, defineMilter } from '../../src/index.js';
import { compileFilter } from '../../src/milter/filter.js';
import { Driver, mail, textOf, types } from './driver.js';

test('plain-object style: callbacks get the connection instance first; NO bits follow the object', async () => {
  const seen: string[] = [];
  const filter = {
    options: { actions: ['addHeader' as const] },
    envfrom(ctx: Milter, sender: string) {
      seen.push(sender);
      assert.ok(ctx instanceof Milter);
    },
    eom(ctx: Milter) {
      ctx.addHeader('X-Seen', 'yes');
      return 'accept' as const;
    },
  };
  const d = new Driver({ filter });
  const reply = await d.negotiate();
  assert.ok(reply.type === 'optneg' && (reply.protocol & Protocol.NOMAIL) === 0 && (reply.protocol & Protocol.NORCPT) !== 0);
  assert.ok(reply.type === 'optneg' && reply.actions === 1, 'only the declared action');
  const replies = await d.send(mail('<x@y>'), { type: 'eob' });
  assert.deepEqual(replies.map(textOf), [{ type: 'continue' }, { type: 'addHeader', name: 'X-Seen', value: 'yes' }, { type: 'accept' }]);
  assert.deepEqual(seen, ['<x@y>']);
});

test('defineMilter returns a Milter subclass usable like any other', () => {
  const Defined = defineMilter({ helo: () => 'reject' });
  assert.ok(Defined.prototype instanceof Milter);
  const instance = new Defined();
  assert.equal(typeof instance.helo, 'function');
  assert.equal(instance.envfrom, undefined);
});

test('factory style: a new instance per connection, and a factory returning a non-Milter is refused', async () => {
  let made = 0;
  const factory = () => {
    made++;
    return new (class extends Milter {
      override envfrom() {
        return 'tempfail' as const;
      }
    })();
  };
  for (let i = 0; i < 2; i++) {
    const d = new Driver({ filter: factory });
    await d.negotiate();
    assert.deepEqual(types(await d.send(mail())), ['tempfail']);
  }
  assert.equal(made, 2);
  assert.throws(() => compileFilter((() => ({})) as unknown as () => Milter).create(), TypeError);
  assert.throws(() => compileFilter(42 as unknown as () => Milter), TypeError);
});

test('unknown names in options are refused clearly at negotiation', async () => {
  class Typo extends Milter {
    static override options = { noReply: ['headers' as never] };
  }
  const d = new Driver({ filter: Typo });
  assert.deepEqual(await d.send({ type: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff }), []);
  assert.ok(d.logger.has('error', /unknown stage "headers"/));
});
