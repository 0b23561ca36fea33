/** A filter for the CLI tests: quarantines every message at end of message. */
import { defineMilter } from '../../../src/index.js';

export default defineMilter({
  eom(ctx) {
    ctx.quarantine('held for review');
  },
});
