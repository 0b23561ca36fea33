/** A filter of the filter API that appends "init TAG" and "close TAG" to the file its options name. */
import { appendFileSync } from 'node:fs';
import { defineFilter } from '../../../src/filter-api/index.js';

interface ClosingOptions {
  log: string;
  tag: string;
}

export default defineFilter<ClosingOptions, ClosingOptions>({
  name: 'api-closing',
  options: { type: 'object', properties: { log: { type: 'string' }, tag: { type: 'string' } }, required: ['log', 'tag'] },
  init(ctx) {
    appendFileSync(ctx.options.log, `init ${ctx.options.tag}\n`);
    return ctx.options;
  },
  close(options) {
    appendFileSync(options.log, `close ${options.tag}\n`);
  },
  message: () => undefined,
});
