/**
 * header-rules: the benchmark's counterpart of Courier::Filter::Module::Header, written on the
 * filter API. Rejects a message with a header field whose value matches the regular expression
 * given for its name, with Courier::Filter's reply text.
 */
import { defineFilter, reject } from '../../src/filter-api/index.js';

interface Options {
  /** Field name → pattern. */
  fields: Record<string, string>;
}

export default defineFilter<Options, Array<[string, RegExp]>>({
  name: 'header-rules',
  description: 'reject header field values matching patterns',
  options: {
    type: 'object',
    properties: { fields: { type: 'object', additionalProperties: { type: 'string' }, default: {} } },
  },
  init: ({ options }) => Object.entries(options.fields).map(([name, pattern]) => [name, new RegExp(pattern)]),
  message(_tx, message, ctx) {
    for (const [name, pattern] of ctx.resources) {
      for (const value of message.headers.getAll(name)) {
        if (pattern.test(value)) return reject(`Prohibited header value detected: ${name}: ${value.replace(/\s+/g, " ")}`);
      }
    }
  },
});
