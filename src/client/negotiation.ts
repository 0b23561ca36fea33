/**
 * The MTA's half of option negotiation: what to offer, and how to read the milter's OPTNEG reply
 * the way Postfix and Sendmail do (milter-protocol.md §4.5, §4.6).
 */
import {
  ActionMask,
  PROTOCOL_VERSION,
  Protocol,
  ProtocolMask,
  describeActions,
  text,
  stageByMacroStage,
  type MacroStageCode,
  type MacroStageName,
  type NegotiationOffer,
  type MilterReply,
} from '../protocol/codec.js';
import { MilterProtocolError } from './errors.js';

/** The offer of Postfix (default `milter_protocol = 6`) and Sendmail 8.14 and later. */
export const DEFAULT_OFFER: Readonly<NegotiationOffer> = Object.freeze({
  version: PROTOCOL_VERSION,
  actions: ActionMask.CURRENT,
  protocol: ProtocolMask.CURRENT,
});

/** The outcome of negotiation, as the client will act on it. */
export interface NegotiatedOptions {
  /** What was offered. */
  offer: NegotiationOffer;
  /** Version the milter answered. */
  version: number;
  /** Actions the milter may use. */
  actions: number;
  /**
   * Protocol bits in force: the milter's answer (minus bits not offered, if the MTA ignores
   * those), plus NOUNKNOWN / NODATA implied by an old version.
   */
  protocol: number;
  /** Macro names the milter asked for, per stage (names as sent, e.g. `i` or `{auth_authen}`). */
  macros: Partial<Record<MacroStageName, string[]>>;
}

/** How strictly an OPTNEG reply is checked. */
export interface NegotiationChecks {
  /** Accept a reply version above the offered one (Sendmail does; Postfix refuses). */
  allowHigherVersion: boolean;
  /** Drop protocol bits that were not offered instead of failing (Postfix ignores them; Sendmail fails). */
  ignoreUnofferedProtocol: boolean;
}

/** Lists the names of the bits set in a protocol mask. */
export function describeProtocol(mask: number): string {
  const names = Object.entries(Protocol)
    .filter(([, bit]) => (mask & bit) !== 0)
    .map(([name]) => name);
  return names.join(', ') || 'none';
}

/** Splits a macro list as both MTAs do: names separated by spaces or commas. */
export function splitMacroList(list: string): string[] {
  return list.split(/[\s,]+/).filter((name) => name !== '');
}

/**
 * Validates the milter's OPTNEG reply against the offer.
 * @throws MilterProtocolError `NEGOTIATION` for a reply the MTA would refuse.
 */
export function readOptnegReply(offer: NegotiationOffer, reply: MilterReply, checks: NegotiationChecks): NegotiatedOptions {
  if (reply.type !== 'optneg') {
    throw new MilterProtocolError('NEGOTIATION', `milter answered OPTNEG with ${reply.type} instead of OPTNEG`);
  }
  if (reply.version < 2) {
    throw new MilterProtocolError('NEGOTIATION', `milter answered protocol version ${reply.version}; version 2 or later is required`);
  }
  if (reply.version > offer.version && !checks.allowHigherVersion) {
    throw new MilterProtocolError('NEGOTIATION', `milter answered protocol version ${reply.version}, above the offered version ${offer.version}`);
  }
  const extraActions = reply.actions & ~offer.actions;
  if (extraActions !== 0) {
    throw new MilterProtocolError('NEGOTIATION', `milter requests actions that were not offered: ${describeActions(extraActions)}`);
  }
  // The MDS bits belong to the library layer; neither MTA here offers them.
  const requested = reply.protocol & ~ProtocolMask.INTERNAL;
  const extraProtocol = requested & ~offer.protocol;
  if (extraProtocol !== 0 && !checks.ignoreUnofferedProtocol) {
    throw new MilterProtocolError('NEGOTIATION', `milter requests protocol steps that were not offered: ${describeProtocol(extraProtocol)}`);
  }
  let protocol = requested & offer.protocol;
  // Commands newer than the answered version are never sent (both MTAs).
  if (reply.version <= 2) protocol |= Protocol.NOUNKNOWN;
  if (reply.version <= 3) protocol |= Protocol.NODATA;

  const macros: NegotiatedOptions['macros'] = {};
  for (const [stage, list] of Object.entries(reply.macros ?? {})) {
    const name = stageByMacroStage[Number(stage) as MacroStageCode]?.callback as MacroStageName | undefined;
    if (name !== undefined && list !== undefined) macros[name] = splitMacroList(text(list));
  }
  return { offer: { ...offer }, version: reply.version, actions: reply.actions, protocol: protocol >>> 0, macros };
}
