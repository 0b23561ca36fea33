/**
 * End-to-end test module: answers according to the Subject, so one running Courier can be
 * driven through every reply kind over SMTP.
 */
import type { FilterContext } from '../../../src/courier/module-api.js';

const REPLIES: Record<string, string> = {
  reject: '550 5.7.1 Rejected by the milterkit end-to-end test',
  multi: '550-5.7.1 First line of a multi-line rejection\n550 5.7.1 Second line of a multi-line rejection',
  tempfail: '451 4.7.1 Try again later, says the milterkit end-to-end test',
  skip: '050 Accepted; later filters skipped',
};

export async function doFilter(_body: string, _control: readonly string[], ctx: FilterContext): Promise<string> {
  const subject = (await ctx.openMessage()).header('Subject') ?? '';
  const keyword = /^e2e-(\w+)/.exec(subject)?.[1] ?? '';
  if (keyword === 'throw') throw new Error('module failure requested by the test');
  return REPLIES[keyword] ?? '';
}
