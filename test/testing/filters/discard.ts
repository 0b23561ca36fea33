/** A filter for the CLI tests: discards every message at end of message. */
import { defineMilter } from '../../../src/index.js';

export default defineMilter({
  eom() {
    return 'discard';
  },
});
