/**
 * The stages of a milter conversation, once: one row per stage with every name and bit the two
 * sides use for it. The milter side speaks of callbacks (`envfrom`), the MTA side of SMTP
 * commands (`mail`); both read the same row, and every map between names, command bytes, macro
 * stages and protocol bits is derived from this table.
 *
 * @packageDocumentation
 */
import { Command, MacroStage, Protocol, type CommandCode, type MacroStageCode } from './constants.js';

/** One stage of the conversation. */
export interface StageRow {
  /** Name of the milter's callback for it. */
  readonly callback: string;
  /** Name of the SMTP step it follows, as the MTA side calls it. */
  readonly smtp: string;
  /** The command byte the MTA sends. */
  readonly command: CommandCode;
  /** Stage number of its macro list in the OPTNEG reply, when the MTA lets a milter choose its macros. */
  readonly macroStage?: MacroStageCode;
  /** `SMFIP_NO*` bit: the milter asks the MTA not to send the command (0: always sent). */
  readonly no: number;
  /** `SMFIP_NR_*` bit: the milter asks the MTA not to wait for its reply (0: always answered). */
  readonly noReply: number;
}

/** Every stage, in the order of a conversation. */
export const stageTable = [
  { callback: 'connect', smtp: 'connect', command: Command.CONNECT, macroStage: MacroStage.CONNECT, no: Protocol.NOCONNECT, noReply: Protocol.NR_CONN },
  { callback: 'helo', smtp: 'helo', command: Command.HELO, macroStage: MacroStage.HELO, no: Protocol.NOHELO, noReply: Protocol.NR_HELO },
  { callback: 'envfrom', smtp: 'mail', command: Command.MAIL, macroStage: MacroStage.ENVFROM, no: Protocol.NOMAIL, noReply: Protocol.NR_MAIL },
  { callback: 'envrcpt', smtp: 'rcpt', command: Command.RCPT, macroStage: MacroStage.ENVRCPT, no: Protocol.NORCPT, noReply: Protocol.NR_RCPT },
  { callback: 'data', smtp: 'data', command: Command.DATA, macroStage: MacroStage.DATA, no: Protocol.NODATA, noReply: Protocol.NR_DATA },
  { callback: 'header', smtp: 'header', command: Command.HEADER, no: Protocol.NOHDRS, noReply: Protocol.NR_HDR },
  { callback: 'eoh', smtp: 'eoh', command: Command.EOH, macroStage: MacroStage.EOH, no: Protocol.NOEOH, noReply: Protocol.NR_EOH },
  { callback: 'body', smtp: 'body', command: Command.BODY, no: Protocol.NOBODY, noReply: Protocol.NR_BODY },
  { callback: 'eom', smtp: 'eom', command: Command.BODYEOB, macroStage: MacroStage.EOM, no: 0, noReply: 0 },
  { callback: 'unknown', smtp: 'unknown', command: Command.UNKNOWN, no: Protocol.NOUNKNOWN, noReply: Protocol.NR_UNKN },
] as const satisfies readonly StageRow[];

type Row = (typeof stageTable)[number];

/** A callback name: `connect`, `helo`, `envfrom`, `envrcpt`, `data`, `header`, `eoh`, `body`, `eom`, `unknown`. */
export type CallbackName = Row['callback'];
/** A stage the milter can ask the MTA to skip, or not to wait for (every callback but `eom`). */
export type StageName = Exclude<CallbackName, 'eom'>;
/** A stage whose macros a milter can choose, by callback name. */
export type MacroStageName = Extract<Row, { macroStage: number }>['callback'];
/** A stage by the SMTP step it follows: `connect`, `helo`, `mail`, `rcpt`, `data`, `header`, `eoh`, `body`, `eom`, `unknown`. */
export type SmtpStage = Row['smtp'];

function indexBy<K extends string | number>(key: (row: StageRow) => K | undefined): Readonly<Record<K, StageRow>> {
  const map = {} as Record<K, StageRow>;
  for (const row of stageTable as readonly StageRow[]) {
    const k = key(row);
    if (k !== undefined) map[k] = row;
  }
  return Object.freeze(map);
}

/** Stages by callback name. */
export const stageByCallback: Readonly<Record<CallbackName, StageRow>> = indexBy((row) => row.callback as CallbackName);
/** Stages by SMTP name. */
export const stageBySmtp: Readonly<Record<SmtpStage, StageRow>> = indexBy((row) => row.smtp as SmtpStage);
/** Stages by macro stage number (the stages of the OPTNEG reply's macro lists). */
export const stageByMacroStage: Readonly<Record<MacroStageCode, StageRow>> = indexBy((row) => row.macroStage);

/** Callback names of the stages a milter can ask the MTA to skip or not to wait for. */
export const stageNames: readonly StageName[] = stageTable.filter((row) => row.no !== 0).map((row) => row.callback as StageName);
/** Callback names of the stages whose macros a milter can choose. */
export const macroStageNames: readonly MacroStageName[] = stageTable.flatMap((row) => ('macroStage' in row ? [row.callback as MacroStageName] : []));
