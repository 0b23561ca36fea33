/**
 * A chain that can be replaced while the daemon serves mail: new connections get the new chain,
 * connections in flight finish on the old one, whose filters are closed once its last connection
 * ends. A configuration that fails to load never replaces the running chain.
 *
 * @packageDocumentation
 */
import type { Chain } from '../filter-api/chain.js';
import type { CompiledFilter } from '../milter/filter.js';
import type { Milter } from '../milter/milter.js';
import { chainMilter } from './milter.js';

interface Generation {
  readonly chain: Chain;
  readonly milter: typeof Milter;
  connections: number;
  retired: boolean;
}

/** The filter a server runs: always the current chain. */
export class ReloadableChain implements CompiledFilter {
  private current: Generation;

  constructor(chain: Chain) {
    this.current = this.generation(chain);
  }

  /** The chain new connections get. */
  get chain(): Chain {
    return this.current.chain;
  }

  private generation(chain: Chain): Generation {
    const generation: Generation = {
      chain,
      connections: 0,
      retired: false,
      milter: chainMilter(chain, {
        opened: () => void generation.connections++,
        closed: () => {
          generation.connections--;
          if (generation.retired && generation.connections === 0) void chain.close();
        },
      }),
    };
    return generation;
  }

  /** One filter instance per connection, from the current chain. */
  create(): Milter {
    return new this.current.milter();
  }

  /** Replaces the chain for new connections; the old one closes when its connections are done. */
  replace(chain: Chain): void {
    const old = this.current;
    this.current = this.generation(chain);
    old.retired = true;
    if (old.connections === 0) void old.chain.close();
  }

  /** Closes the current chain (after the server has stopped). */
  async close(): Promise<void> {
    this.current.retired = true;
    if (this.current.connections === 0) await this.current.chain.close();
  }
}
