/**
 * Turns what a user hands the server (a {@link Milter} subclass, a factory, or a plain object of
 * callbacks) into a way to make one filter instance per connection, and derives the negotiation
 * request from the callbacks it implements.
 */
import { Action, ActionMask, MacroStage, Protocol, ProtocolMask, stageByCallback, stageNames, type CallbackName, type NegotiationRequest } from '../protocol/codec.js';
import { Milter, actionBits, isMilterClass, isMilterInstance } from './milter.js';
import type { CallbackResult, MilterOptions } from './types.js';
import type { AddressFamily } from '../protocol/codec.js';

/** Callbacks of the plain-object style: each receives the connection's filter instance first. */
export interface MilterDefinition {
  options?: MilterOptions;
  connect?(ctx: Milter, hostname: string, family: AddressFamily, address: string | undefined, port: number | undefined): CallbackResult;
  helo?(ctx: Milter, name: string): CallbackResult;
  envfrom?(ctx: Milter, sender: string, args: string[]): CallbackResult;
  envrcpt?(ctx: Milter, recipient: string, args: string[]): CallbackResult;
  data?(ctx: Milter): CallbackResult;
  header?(ctx: Milter, name: string, value: string): CallbackResult;
  eoh?(ctx: Milter): CallbackResult;
  body?(ctx: Milter, chunk: Buffer): CallbackResult;
  eom?(ctx: Milter): CallbackResult;
  abort?(ctx: Milter): void | Promise<void>;
  close?(ctx: Milter): void | Promise<void>;
  unknown?(ctx: Milter, command: string): CallbackResult;
}

/** A filter as the server accepts it. */
export type MilterFilter = typeof Milter | (() => Milter) | MilterDefinition;

const callbackNames = ['connect', 'helo', 'envfrom', 'envrcpt', 'data', 'header', 'eoh', 'body', 'eom', 'abort', 'close', 'unknown'] as const;

/**
 * Builds a {@link Milter} subclass from a plain object of callbacks.
 *
 * @example
 * ```ts
 * export default defineMilter({
 *   options: { actions: ['addHeader'] },
 *   eom(ctx) { ctx.addHeader('X-Seen', 'yes'); },
 * });
 * ```
 */
export function defineMilter(definition: MilterDefinition): typeof Milter {
  class DefinedMilter extends Milter {
    static override options: MilterOptions = definition.options ?? {};
  }
  const proto = DefinedMilter.prototype as unknown as Record<string, unknown>;
  for (const name of callbackNames) {
    const fn = definition[name] as ((ctx: Milter, ...args: unknown[]) => unknown) | undefined;
    if (typeof fn === 'function') {
      proto[name] = function (this: Milter, ...args: unknown[]) {
        return fn.call(definition, this, ...args);
      };
    }
  }
  return DefinedMilter;
}

/** How sessions make filter instances. */
export interface CompiledFilter {
  create(): Milter;
}

/** True for a function written with `class`, which only `new` may call. */
function isClassSyntax(fn: Function): boolean {
  return /^class[\s{]/.test(Function.prototype.toString.call(fn));
}

/**
 * Accepts any {@link MilterFilter} form. A filter of the wrong shape is refused here, once; a
 * constructor or factory that throws fails only the connection it was called for.
 * @throws TypeError for anything that is not a filter.
 */
export function compileFilter(filter: MilterFilter | CompiledFilter): CompiledFilter {
  if (typeof filter === 'object' && filter !== null && 'create' in filter && typeof filter.create === 'function') return filter as CompiledFilter;
  if (isMilterClass(filter)) return { create: () => new filter() };
  if (typeof filter === 'function') {
    if (isClassSyntax(filter)) throw new TypeError(`the filter class ${filter.name || '(anonymous)'} does not extend Milter`);
    const factory = filter as () => Milter;
    return {
      create: () => {
        const instance: unknown = factory();
        if (!isMilterInstance(instance)) throw new TypeError('the filter factory must return a Milter instance');
        return instance;
      },
    };
  }
  if (typeof filter === 'object' && filter !== null) {
    const cls = defineMilter(filter as MilterDefinition);
    return { create: () => new cls() };
  }
  throw new TypeError('a filter is a Milter subclass, a factory returning a Milter, or an object of callbacks');
}

/** The options of an instance's class. */
export function optionsOf(instance: Milter): MilterOptions {
  return (instance.constructor as typeof Milter).options ?? {};
}

/** Derives the negotiation request from the callbacks an instance implements and its options. */
export function negotiationRequest(instance: Milter): NegotiationRequest {
  const options = optionsOf(instance);
  let protocol = 0;
  const callbacks = instance as unknown as Record<string, unknown>;
  for (const name of stageNames) if (typeof callbacks[name] !== 'function') protocol |= stageByCallback[name].no;
  for (const name of options.noReply ?? []) {
    if (!stageNames.includes(name)) throw new TypeError(`options.noReply: unknown stage "${name}"`);
    protocol |= stageByCallback[name].noReply;
  }
  if (options.skip) protocol |= Protocol.SKIP;
  if (options.rcptRejected) protocol |= Protocol.RCPT_REJ;
  if (options.headerLeadingSpace) protocol |= Protocol.HDR_LEADSPC;

  let requiredActions = 0;
  for (const name of options.actions ?? []) {
    const bit = actionBits[name];
    if (bit === undefined) throw new TypeError(`options.actions: unknown action "${name}"`);
    requiredActions |= bit;
  }
  const request: NegotiationRequest = {
    requiredActions,
    // Without a declared list, take what the MTA offers so every action works.
    optionalActions: options.actions === undefined ? ActionMask.CURRENT & ~Action.SETSYMLIST : 0,
    protocol,
  };
  if (options.macros !== undefined) {
    request.macros = {};
    for (const [stage, names] of Object.entries(options.macros)) {
      const code = Object.hasOwn(stageByCallback, stage) ? stageByCallback[stage as CallbackName].macroStage : undefined;
      if (code === undefined) throw new TypeError(`options.macros: unknown stage "${stage}"`);
      request.macros[code] = names.join(' ');
    }
    // Sendmail 8.17/8.18 honours an EOM list only when an EOH list is also set.
    if (request.macros[MacroStage.EOM] !== undefined && request.macros[MacroStage.EOH] === undefined) request.macros[MacroStage.EOH] = '';
  }
  return request;
}

/** The request libmilter builds for SMFIS_ALL_OPTS: every offered action, NO* bits, SKIP if offered. */
export function allOptionsRequest(instance: Milter, offeredProtocol: number): NegotiationRequest {
  const base = negotiationRequest(instance);
  return {
    requiredActions: 0,
    optionalActions: ActionMask.CURRENT,
    protocol: (base.protocol & ProtocolMask.NOSEND & ~Protocol.NR_HDR) | (offeredProtocol & Protocol.SKIP),
    ...(base.macros === undefined ? {} : { macros: base.macros }),
  };
}

