/** `milterkit courier ...`: the Courier global filter daemon (see docs/courier.md). */
import { courierMain } from '../courier.js';

export function run(argv: string[]): Promise<number> {
  return courierMain(argv);
}
