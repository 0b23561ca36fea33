/** The milter of a case: its scripted steps, or a filter chain given as configuration. */
import { stringify } from 'yaml';
import { parseConfig, startChain, type Chain } from '../../../src/filter-api/index.js';
import { bundledFilters } from '../../../src/filters/index.js';
import { chainMilter } from '../../../src/frontends/milter.js';
import type { MilterFilter } from '../../../src/index.js';
import type { Logger } from '../../../src/index.js';
import type { MilterSpec } from './case-file.js';
import { caseMilterClass } from './case-milter.js';
import scripted from './scripted-filter.js';

/** A case's filter and what to do when the case is over. */
export interface CaseFilter {
  filter: MilterFilter;
  close(): Promise<void>;
}

/** Builds the filter a case describes; a chain is checked and started as `serve --config` would. */
export async function caseFilter(spec: MilterSpec, source: string, logger?: Logger): Promise<CaseFilter> {
  if (spec.chain === undefined) return { filter: caseMilterClass(spec), close: async () => {} };
  const chain = await startCaseChain(spec.chain, source, logger);
  return { filter: chainMilter(chain), close: () => chain.close() };
}

/** Checks and starts a case's `milter.chain` (with the `scripted` filter built in); close it after use. */
export async function startCaseChain(chain: Record<string, unknown>, source: string, logger?: Logger): Promise<Chain> {
  const configuration = await parseConfig(stringify(chain), `${source} (milter.chain)`, { builtins: { ...bundledFilters, scripted } });
  return startChain(configuration, logger);
}
