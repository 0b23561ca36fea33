/** A filter that rewrites the envelope sender, as a bounce-address rewriter does, and marks the header in the same hook. */
import { defineFilter } from '../../../src/filter-api/index.js';

export default defineFilter({
  name: 'resender',
  edits: ['sender', 'headers'],
  message(_tx, message, ctx) {
    message.headers.add('X-Resent', 'yes');
    ctx.edit.changeSender('bounces@mail.test.example');
  },
});
