/**
 * The context one hook call gets. What most hooks never touch (the signal, the edits, the state
 * map) is made when the hook first reads it, so a hook that only decides costs no more.
 *
 * @packageDocumentation
 */
import type { ChainEntry } from './chain.js';
import type { HookContext } from './contract.js';
import { Edits, type Draft, type EditKind, type EditLimits, type UnsupportedEdits } from './draft.js';
import type { RunningHook } from './run-hook.js';

/** What the chain keeps per message for the hook contexts it makes. */
export interface HookContextSource {
  readonly limits: EditLimits;
  readonly unsupported: UnsupportedEdits;
  /** Each filter's state map for the message, made on first use. */
  stateOf(name: string): Map<string, unknown>;
}

/** One hook call's context, on the hook's own copy of the draft. */
export class HookCallContext implements HookContext<unknown, unknown> {
  private edits: Edits | undefined;

  constructor(
    private readonly entry: ChainEntry,
    /** The hook's copy of the draft, committed only if the hook succeeds. */
    readonly draft: Draft,
    private readonly kinds: ReadonlySet<EditKind>,
    private readonly source: HookContextSource,
    private readonly running: RunningHook,
  ) {}

  get name(): string {
    return this.entry.name;
  }

  get options(): unknown {
    return this.entry.options;
  }

  get resources(): unknown {
    return this.entry.resources;
  }

  get log(): ChainEntry['log'] {
    return this.entry.log;
  }

  get signal(): AbortSignal {
    return this.running.signal;
  }

  get edit(): Edits {
    this.edits ??= new Edits(this.draft, this.kinds, this.source.limits, this.entry.name, this.source.unsupported);
    return this.edits;
  }

  get state(): Map<string, unknown> {
    return this.source.stateOf(this.entry.name);
  }
}
