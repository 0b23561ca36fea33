/**
 * What the `serve` and `test` commands do with a module whose default export is a filter
 * definition: a one-filter chain run by the milter front-end. Other exports pass through.
 *
 * @packageDocumentation
 */
import { Chain } from '../filter-api/chain.js';
import { isFilterDefinition } from '../filter-api/contract.js';
import type { Logger } from '../log.js';
import type { MilterFilter } from '../milter/filter.js';
import { chainMilter } from './milter.js';

/** A Milter for what a filter module exports: a filter definition becomes a one-filter chain. */
export async function milterFilterOf(exported: MilterFilter | unknown, logger?: Logger): Promise<MilterFilter> {
  if (!isFilterDefinition(exported)) return exported as MilterFilter;
  return chainMilter(await Chain.load({ filters: [{ filter: exported }], ...(logger ? { logger } : {}) }));
}
