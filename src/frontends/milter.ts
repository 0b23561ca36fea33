/**
 * The milter front-end: a {@link Milter} generated from a {@link Chain}. It negotiates only what
 * the chain needs (stages, actions, macros), runs each hook at its SMTP stage — connect hooks at
 * the first MAIL FROM of the connection (when AUTH is known), sender hooks at MAIL FROM,
 * recipient hooks at each RCPT TO (a refusal refuses that recipient only), message hooks at end
 * of message — and applies the chain's edits at end of message.
 *
 * @packageDocumentation
 */
import type { Chain, ChainNeeds, ConnectionRun, MessageRun, StageOutcome } from '../filter-api/chain.js';
import type { Decision, SmtpReply } from '../filter-api/decisions.js';
import type { Draft, EditKind } from '../filter-api/draft.js';
import type { HeaderField } from '../filter-api/headers.js';
import { bareAddress, type AuthInfo, type ClientInfo, type RawMtaData, type TlsInfo } from '../filter-api/transaction.js';
import { Milter } from '../milter/milter.js';
import type { ActionName, AddressFamily, CallbackResult, MacroStageName, MilterOptions, Verdict } from '../milter/types.js';
import type { HeaderEditRules } from '../mta/header-edits.js';
import { planHeaderOperations } from './header-plan.js';

const ACTIONS_BY_EDIT: Readonly<Record<EditKind, readonly ActionName[]>> = {
  headers: ['addHeader', 'insertHeader', 'changeHeader', 'deleteHeader'],
  recipients: ['addRecipient', 'addRecipientWithArgs', 'deleteRecipient'],
  sender: ['changeFrom'],
  body: ['replaceBody'],
  quarantine: ['quarantine'],
};

/** The milter options a chain needs: actions for its edits, macros for the facts it reads. */
export function milterOptionsFor(needs: ChainNeeds): MilterOptions {
  const { edits, facets, macros: filterMacros } = needs;
  const actions = new Set<ActionName>();
  for (const kind of edits) for (const action of ACTIONS_BY_EDIT[kind]) actions.add(action);
  const macros: Partial<Record<MacroStageName, string[]>> = {};
  const want = (stage: MacroStageName, ...names: string[]): void => {
    const list = (macros[stage] ??= []);
    for (const name of names) if (!list.includes(name)) list.push(name);
  };
  // The MTA's name tells which header index rules apply.
  if (edits.has('headers')) want('connect', 'v');
  if (facets.has('auth')) want('envfrom', '{auth_authen}', '{auth_type}');
  if (facets.has('tls')) want('envfrom', '{tls_version}', '{cipher}', '{cipher_bits}');
  want('eom', 'i');
  for (const [stage, names] of Object.entries(filterMacros)) want(stage as MacroStageName, ...names);
  // body() copies what it keeps, so chunks are lent to it rather than copied twice.
  return { actions: [...actions], noReply: needs.stages.has('message') ? ['header', 'body'] : [], macros, borrowedBody: true };
}

function verdictFor(milter: Milter, decision: Decision): Verdict {
  if (decision.kind === 'reject' || decision.kind === 'tempfail') {
    setReply(milter, decision.reply);
    return decision.kind;
  }
  return decision.kind === 'discard' ? 'discard' : 'continue';
}

function setReply(milter: Milter, reply: SmtpReply): void {
  milter.setReply(reply.code, reply.xcode, ...reply.lines);
}

function stageVerdict(milter: Milter, outcome: StageOutcome): Verdict {
  return outcome.kind === 'final' ? verdictFor(milter, outcome.decision) : 'continue';
}

/** A host name the MTA could not verify is no host name. */
function verifiedName(hostname: string): string | undefined {
  return hostname === '' || hostname === 'unknown' || hostname.startsWith('[') ? undefined : hostname;
}

/** The MTA's data at one stage; its macros are copied when a filter first reads them, if ever. */
class MilterMtaData implements RawMtaData {
  readonly frontEnd = 'milter';
  readonly #milter: Milter;
  #macros: Readonly<Record<string, string>> | undefined;

  constructor(milter: Milter) {
    this.#milter = milter;
  }

  get macros(): Readonly<Record<string, string>> {
    this.#macros ??= this.#milter.macros();
    return this.#macros;
  }

  toJSON(): RawMtaData {
    return { frontEnd: this.frontEnd, macros: this.macros };
  }
}

/** Told when a connection starts and ends using the chain (to know when an old chain is idle). */
export interface ConnectionLifecycle {
  opened?(): void;
  closed?(): void;
}

/**
 * Builds the Milter class that runs `chain`. Pass it to a `MilterServer` or the test kit.
 *
 * @example
 * ```ts
 * const chain = await Chain.load({ filters: [{ filter: myFilter, options: { … } }] });
 * const server = new MilterServer({ filter: chainMilter(chain), socket: 'inet:8890@127.0.0.1' });
 * ```
 */
export function chainMilter(chain: Chain, lifecycle: ConnectionLifecycle = {}): typeof Milter {
  const maxMessageBytes = chain.limits.maxBodyBytes;

  class ChainMilter extends Milter {
    static override options: MilterOptions = milterOptionsFor(chain.needs);
    private client: ClientInfo = {};
    private connected = false;
    private connection: ConnectionRun | undefined;
    private run: MessageRun | undefined;
    /** Recipients as the MTA wrote them (their keys in the draft), for DELRCPT. */
    private recipientsAsSent: Array<{ readonly asSent: string }> = [];
    private headers: HeaderField[] = [];
    private chunks: Buffer[] = [];
    private size = 0;

    private mtaData(): RawMtaData {
      return new MilterMtaData(this);
    }

    private connectionRun(): ConnectionRun {
      this.connection ??= chain.connection(this.client, this.mtaData());
      return this.connection;
    }

    override connect(hostname: string, _family: AddressFamily, address: string | undefined, port: number | undefined): CallbackResult {
      if (!this.connected) lifecycle.opened?.();
      this.connected = true;
      const name = verifiedName(hostname);
      this.client = { ...(address === undefined ? {} : { address }), ...(port ? { port } : {}), ...(name === undefined ? {} : { hostname: name }) };
    }

    override helo(name: string): CallbackResult {
      this.client = { ...this.client, helo: name };
      if (this.connection) this.connection.client = this.client;
    }

    override async envfrom(sender: string, args: string[]): Promise<Verdict> {
      this.endMessage();
      const user = this.macro('{auth_authen}');
      const auth: AuthInfo | undefined = user ? { user, ...(this.macro('{auth_type}') ? { mechanism: this.macro('{auth_type}')! } : {}) } : undefined;
      const version = this.macro('{tls_version}');
      const tls: TlsInfo | undefined = version ? { version, ...(this.macro('{cipher}') ? { cipher: this.macro('{cipher}')! } : {}), ...(Number(this.macro('{cipher_bits}')) > 0 ? { bits: Number(this.macro('{cipher_bits}')) } : {}) } : undefined;
      const queueId = this.macro('i');
      this.run = this.connectionRun().message({
        sender: { address: bareAddress(sender), args },
        ...(auth ? { auth } : {}),
        ...(tls ? { tls } : {}),
        ...(queueId ? { queueId } : {}),
        raw: this.mtaData(),
      });
      return stageVerdict(this, await this.run.start());
    }

    override async envrcpt(recipient: string, args: string[]): Promise<Verdict> {
      const run = this.run;
      if (run === undefined) return 'continue';
      run.update({ raw: this.mtaData() });
      const address = bareAddress(recipient);
      // An object per RCPT: the same address given twice is two recipients.
      const key = { asSent: recipient };
      const outcome = await run.recipient({ address, args }, key);
      if (outcome.kind === 'refused') return verdictFor(this, outcome.decision);
      if (outcome.kind === 'continue') this.recipientsAsSent.push(key);
      return stageVerdict(this, outcome);
    }

    override header(name: string, value: string): Verdict {
      this.size += Buffer.byteLength(name) + Buffer.byteLength(value) + 4;
      if (this.size <= maxMessageBytes) this.headers.push({ name, value });
      return 'noreply';
    }

    override body(chunk: Buffer): Verdict {
      this.size += chunk.length;
      // Chunks are borrowed (options.borrowedBody): copy what is kept.
      if (this.size <= maxMessageBytes) this.chunks.push(Buffer.from(chunk));
      return 'noreply';
    }

    override async eom(): Promise<Verdict> {
      const run = this.run;
      if (run === undefined) return 'continue';
      const queueId = this.macro('i');
      run.update({ raw: this.mtaData(), ...(queueId ? { queueId } : {}) });
      if (this.size > maxMessageBytes) {
        this.log.error({ event: 'message-too-large', bytes: this.size, limit: maxMessageBytes, queueId }, `message larger than ${maxMessageBytes} bytes; refused temporarily`);
        setReply(this, chain.replies.tempfail);
        return 'tempfail';
      }
      const outcome = await run.message({ headers: this.headers, body: this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks) });
      if (outcome.action !== 'accept') return verdictFor(this, outcome.action === 'discard' ? { kind: 'discard' } : { kind: outcome.action, reply: outcome.reply! });
      this.applyDraft(outcome.draft);
      if (outcome.quarantine !== undefined) this.quarantine(outcome.quarantine);
      return 'accept';
    }

    private applyDraft(draft: Draft): void {
      if (draft.headers !== undefined) {
        const rules: HeaderEditRules = (this.macro('v') ?? '').startsWith('Postfix') ? 'postfix' : 'sendmail';
        for (const operation of planHeaderOperations(rules, this.headers, draft.headers.fields)) {
          if (operation.type === 'change') this.changeHeader(operation.name, operation.index, operation.value);
          else if (operation.type === 'delete') this.deleteHeader(operation.name, operation.index);
          else if (operation.type === 'insert') this.insertHeader(operation.index, operation.name, operation.value);
          else this.addHeader(operation.name, operation.value);
        }
      }
      for (const key of this.recipientsAsSent) {
        if (!draft.recipients.some((r) => r.received && r.key === key)) this.deleteRecipient(key.asSent);
      }
      for (const recipient of draft.recipients) {
        if (!recipient.received) this.addRecipient(`<${recipient.address}>`, recipient.args.join(' '));
      }
      if (draft.senderChanged && draft.sender !== undefined) this.changeFrom(`<${draft.sender.address}>`, draft.sender.args.join(' '));
      if (draft.body !== undefined) this.replaceBody(draft.body);
    }

    /** Forgets the current message (and stops its hooks). */
    private endMessage(): void {
      this.run?.abort();
      this.run = undefined;
      this.recipientsAsSent = [];
      this.headers = [];
      this.chunks = [];
      this.size = 0;
    }

    override abort(): void {
      this.endMessage();
    }

    override close(): void {
      this.endMessage();
      this.connection?.close();
      if (this.connected) lifecycle.closed?.();
      this.connected = false;
    }
  }

  if (!chain.needs.stages.has('message')) {
    // Not implementing them makes the session ask the MTA not to send headers and body.
    for (const name of ['header', 'body'] as const) Object.defineProperty(ChainMilter.prototype, name, { value: undefined });
  }
  return ChainMilter;
}
