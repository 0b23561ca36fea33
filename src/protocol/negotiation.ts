/**
 * Option negotiation (the OPTNEG exchange) as a pure computation, following libmilter's
 * `st_optionneg`: what the milter replies to an MTA's offer, and which "no reply" stages the
 * library must answer itself because the MTA did not offer them.
 */
import type { Bytes } from './bytes.js';
import { Action, ActionMask, Limits, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, Protocol, ProtocolMask } from './constants.js';
import type { MacroRequest } from './replies.js';

/** What the MTA offers in its OPTNEG command. */
export interface NegotiationOffer {
  version: number;
  actions: number;
  protocol: number;
}

/** What the milter asks for. */
export interface NegotiationRequest {
  /** Actions the filter cannot work without: negotiation fails if the MTA does not offer them. */
  requiredActions: number;
  /** Further actions taken when offered (default none). */
  optionalActions?: number;
  /** NO*, NR*, SKIP, RCPT_REJ and HDR_LEADSPC bits wanted. */
  protocol: number;
  /** Macro names to request per stage. */
  macros?: MacroRequest<Bytes>;
}

/** The outcome of a successful negotiation. */
export interface NegotiationResult {
  /** Protocol version of the reply: min(MTA's, 6). */
  version: number;
  /** Actions granted (sent in the reply). */
  actions: number;
  /** Protocol bits sent in the reply (a subset of the offer). */
  protocol: number;
  /** NR_* bits the milter wanted but the MTA did not offer: the library replies CONTINUE itself. */
  emulatedNoReply: number;
  /** Macro lists sent in the reply, if the MTA can take them. */
  macros?: MacroRequest<Bytes>;
  /** Largest payload the milter may send (65535 unless MDS was negotiated). */
  maxPayload: number;
}

/** Negotiation failed: the session cannot go on. */
export class NegotiationError extends Error {
  override readonly name = 'NegotiationError';
}

/** Names of action bits, for messages. */
export const actionNames: Readonly<Record<number, string>> = {
  [Action.ADDHDRS]: 'ADDHDRS',
  [Action.CHGBODY]: 'CHGBODY',
  [Action.ADDRCPT]: 'ADDRCPT',
  [Action.DELRCPT]: 'DELRCPT',
  [Action.CHGHDRS]: 'CHGHDRS',
  [Action.QUARANTINE]: 'QUARANTINE',
  [Action.CHGFROM]: 'CHGFROM',
  [Action.ADDRCPT_PAR]: 'ADDRCPT_PAR',
  [Action.SETSYMLIST]: 'SETSYMLIST',
};

/** Lists the names of the bits set in an action mask. */
export function describeActions(mask: number): string {
  const names: string[] = [];
  for (let bit = 1; bit <= Action.SETSYMLIST; bit <<= 1) if (mask & bit) names.push(actionNames[bit] ?? `0x${bit.toString(16)}`);
  return names.join(', ') || 'none';
}

/** Computes the milter's OPTNEG reply. @throws NegotiationError */
export function negotiate(offer: NegotiationOffer, request: NegotiationRequest): NegotiationResult {
  if (offer.version < MIN_PROTOCOL_VERSION) {
    throw new NegotiationError(`MTA offers protocol version ${offer.version}; version ${MIN_PROTOCOL_VERSION} or later is required`);
  }
  // libmilter reads an empty offer as the version 1 defaults.
  const offeredActions = offer.actions === 0 ? ActionMask.V1 : offer.actions;
  const offeredProtocol = offer.protocol === 0 ? ProtocolMask.V1 : offer.protocol;

  const missing = request.requiredActions & ~offeredActions;
  if (missing !== 0) {
    throw new NegotiationError(`MTA does not offer the actions this filter requires: ${describeActions(missing)} (offered: ${describeActions(offeredActions)})`);
  }
  let actions = request.requiredActions | ((request.optionalActions ?? 0) & offeredActions);

  const wanted = request.protocol & ~ProtocolMask.INTERNAL;
  const emulatedNoReply = wanted & ProtocolMask.NOREPLY & ~offeredProtocol;
  // A step or capability the MTA does not know is dropped: an older MTA simply sends the
  // command (answered with CONTINUE), and the session treats the capability as absent.
  let protocol = wanted & offeredProtocol;

  let maxPayload: number = Limits.MAX_DATA_SIZE;
  if (offeredProtocol & Protocol.MDS_1M) {
    protocol |= Protocol.MDS_1M;
    maxPayload = Limits.MDS_1M;
  } else if (offeredProtocol & Protocol.MDS_256K) {
    protocol |= Protocol.MDS_256K;
    maxPayload = Limits.MDS_256K;
  }

  const result: NegotiationResult = {
    version: Math.min(offer.version, PROTOCOL_VERSION),
    actions,
    protocol: protocol >>> 0,
    emulatedNoReply,
    maxPayload,
  };
  if (request.macros !== undefined && Object.keys(request.macros).length > 0 && offeredActions & Action.SETSYMLIST) {
    actions |= Action.SETSYMLIST;
    result.actions = actions;
    result.macros = request.macros;
  }
  return result;
}
