/**
 * milterkit/filters: one filter API for every MTA. A filter is written once with
 * {@link defineFilter}, put in a {@link Chain} with other filters, and run as a milter (Postfix,
 * Sendmail), as a Courier global filter, or offline with the test kit.
 *
 * @packageDocumentation
 */
export {
  defineFilter,
  isFilterDefinition,
  checkDefinition,
  HOOK_STAGES,
  type HookStage,
  type TransactionFacet,
  type MacroStage as FilterMacroStage,
  type OptionsSchema,
  type InitContext,
  type HookContext,
  type FilterDefinition,
  type AnyFilter,
} from './contract.js';
export {
  smtpReply,
  continueWith,
  accept,
  reject,
  tempfail,
  discard,
  quarantine,
  describeDecision,
  formatReply,
  toDecision,
  DEFAULT_REJECT,
  DEFAULT_TEMPFAIL,
  type SmtpReply,
  type Decision,
  type HookResult,
  type DecisionKind,
  type ReplyCodes,
} from './decisions.js';
export {
  bareAddress,
  addressDomain,
  mailboxKey,
  sameAddress,
  dsnArgs,
  type ClientInfo as FilterClientInfo,
  type Recipient,
  type Sender,
  type AuthInfo,
  type TlsInfo,
  type FrontEndName,
  type RawMtaData,
  type CourierConfigView,
  type Transaction,
  type DsnParameters,
} from './transaction.js';
export { HeaderList, HeaderEditError, type HeaderField } from './headers.js';
export { Edits, EditError, type EditKind, type BodyInput, type EditLimits, type UnsupportedEdits } from './draft.js';
export { MessageView, type MessageContent } from './message.js';
export { OptionsError, validateOptions } from './options.js';
export {
  Chain,
  chainNeeds,
  ChainConfigError,
  ConnectionRun,
  MessageRun,
  FAILURE_POLICIES,
  DEFAULT_TIMEOUT_MS,
  type ChainConfig,
  type ChainEntryConfig,
  type ChainEntry,
  type ChainNeeds,
  type FailurePolicy,
  type MessageOutcome,
  type StageOutcome,
  type RecipientOutcome,
} from './chain.js';
export { ConfigError, parseConfig, readConfig, startChain, type Configuration, type ConfigLoadOptions } from './config.js';
export { CONFIG_SCHEMA, type ConfigFile, type ChainEntrySpec, type CourierSection } from './config-schema.js';
