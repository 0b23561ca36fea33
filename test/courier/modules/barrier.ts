/**
 * A test module that answers only once `options.parties` messages are inside it at the same
 * time: it proves concurrent handling without measuring time (a serial daemon would never
 * gather the parties and the module would hit its deadline instead).
 */
import type { FilterContext } from '../../../src/courier/module-api.js';

let waiting: Array<() => void> = [];

export async function doFilter(_body: string, _control: readonly string[], ctx: FilterContext): Promise<string> {
  const parties = Number(ctx.options.parties ?? 2);
  await new Promise<void>((resolve) => {
    waiting.push(resolve);
    if (waiting.length >= parties) {
      for (const release of waiting) release();
      waiting = [];
    }
  });
  return `250 released together with ${parties - 1} other(s)`;
}
