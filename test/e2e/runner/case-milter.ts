/** Builds the Milter subclass a case describes. */
import { setTimeout as sleep } from 'node:timers/promises';
import { Milter, type MilterOptions, type Verdict } from '../../../src/index.js';
import { renderBytes, STAGES, withLineEnds, type Condition, type MilterSpec, type Stage, type Step } from './case-file.js';

/** What the filter saw on its connection; templates and conditions read it. */
class Observed {
  hostname = '';
  family = '';
  address = '';
  helo = '';
  /** Number of the current message within the connection (1-based). */
  message = 0;
  sender = '';
  recipients: string[] = [];
  headers: [string, string][] = [];
  bodyBytes = 0;

  startMessage(sender: string): void {
    this.message += 1;
    this.sender = sender;
    this.recipients = [];
    this.headers = [];
    this.bodyBytes = 0;
  }
}

/** Callback arguments a condition can test. */
interface CallContext {
  recipient?: string;
  sender?: string;
  header?: [string, string];
}

/** Template names and the stage whose callback must run to know their value. */
const TEMPLATE_STAGES: Readonly<Record<string, Stage | undefined>> = {
  hostname: 'connect',
  family: 'connect',
  address: 'connect',
  helo: 'helo',
  message: 'envfrom',
  sender: 'envfrom',
  recipients: 'envrcpt',
  header: 'header',
  bodyBytes: 'body',
  macro: undefined,
};

const TEMPLATE = /\{\{(\w+)(?::([^}]+))?\}\}/g;

/**
 * Returns a Milter subclass running the case's steps. Callbacks exist only for the stages the case
 * uses (steps, templates or conditions need them), plus envfrom, which starts each message's
 * record; the others are left out so that the library asks the MTA to skip them.
 */
export function caseMilterClass(spec: MilterSpec): typeof Milter {
  class CaseMilter extends Milter {
    static override options: MilterOptions = spec.options ?? {};
    readonly observed = new Observed();

    async play(stage: Stage, call: CallContext): Promise<Verdict | undefined> {
      for (const step of spec[stage] ?? []) {
        if (step.if && !this.matches(step.if, call)) continue;
        const verdict = await this.perform(step);
        if (verdict !== undefined) return verdict;
      }
      return undefined;
    }

    private matches(condition: Condition, call: CallContext): boolean {
      if (condition.recipient !== undefined && call.recipient !== condition.recipient) return false;
      if (condition.sender !== undefined && call.sender !== condition.sender) return false;
      if (condition.message !== undefined && this.observed.message !== condition.message) return false;
      if (condition.header !== undefined) {
        const [name, value] = condition.header;
        const candidates = call.header ? [call.header] : this.observed.headers;
        if (!candidates.some(([seenName, seenValue]) => seenName.toLowerCase() === name.toLowerCase() && seenValue === value)) return false;
      }
      return true;
    }

    private async perform(step: Step): Promise<Verdict | undefined> {
      const text = (template: string): string => this.expand(template);
      if (step.verdict !== undefined) return step.verdict;
      if (step.setReply !== undefined) {
        const [code = '', xcode, ...lines] = step.setReply.map(text);
        this.setReply(code, xcode, ...lines);
      } else if (step.addHeader) this.addHeader(step.addHeader[0], text(step.addHeader[1]));
      else if (step.insertHeader) this.insertHeader(step.insertHeader[0], step.insertHeader[1], text(step.insertHeader[2]));
      else if (step.changeHeader) this.changeHeader(step.changeHeader[0], step.changeHeader[1], text(step.changeHeader[2]));
      else if (step.deleteHeader) this.deleteHeader(step.deleteHeader[0], step.deleteHeader[1]);
      else if (step.addRecipient !== undefined) {
        const [recipient, args] = typeof step.addRecipient === 'string' ? [step.addRecipient] : step.addRecipient;
        this.addRecipient(recipient, args);
      } else if (step.deleteRecipient !== undefined) this.deleteRecipient(step.deleteRecipient);
      else if (step.changeFrom !== undefined) {
        const [sender, args] = typeof step.changeFrom === 'string' ? [step.changeFrom] : step.changeFrom;
        this.changeFrom(sender, args);
      } else if (step.replaceBody !== undefined) {
        // Case files write LF; the milter protocol wants CRLF line ends in a new body.
        await this.replaceBody(withLineEnds(renderBytes(step.replaceBody), '\r\n'));
      } else if (step.quarantine !== undefined) this.quarantine(text(step.quarantine));
      else if (step.progress) this.progress();
      else if (step.sleep) await this.pause(step.sleep.ms, step.sleep.progressEvery);
      else if (step.throw !== undefined) throw new Error(text(step.throw));
      return undefined;
    }

    private async pause(ms: number, progressEvery: number | undefined): Promise<void> {
      if (!progressEvery) {
        await sleep(ms);
        return;
      }
      for (let waited = 0; waited < ms; waited += progressEvery) {
        await sleep(Math.min(progressEvery, ms - waited));
        this.progress();
      }
    }

    private expand(template: string): string {
      return template.replace(TEMPLATE, (whole, name: string, argument: string | undefined) => {
        const seen = this.observed;
        switch (name) {
          case 'hostname':
          case 'family':
          case 'address':
          case 'helo':
          case 'sender':
            return seen[name];
          case 'message':
          case 'bodyBytes':
            return String(seen[name]);
          case 'recipients':
            return seen.recipients.join(' ');
          case 'header':
            return seen.headers.find(([seenName]) => seenName.toLowerCase() === argument?.toLowerCase())?.[1] ?? '(none)';
          case 'macro':
            return this.macro(argument ?? '') ?? '(unset)';
          default:
            throw new Error(`unknown template ${whole}`);
        }
      });
    }
  }

  const proto = CaseMilter.prototype as unknown as Record<string, unknown>;
  for (const stage of stagesNeeded(spec)) {
    proto[stage] = async function (this: CaseMilter, ...args: unknown[]): Promise<Verdict | undefined> {
      return this.play(stage, observe(this.observed, stage, args));
    };
  }
  return CaseMilter;
}

/** Records what a callback receives; returns what its conditions may test. */
function observe(seen: Observed, stage: Stage, args: unknown[]): CallContext {
  switch (stage) {
    case 'connect':
      [seen.hostname, seen.family, seen.address = ''] = args as [string, string, string | undefined];
      return {};
    case 'helo':
      seen.helo = args[0] as string;
      return {};
    case 'envfrom':
      seen.startMessage(args[0] as string);
      return { sender: args[0] as string };
    case 'envrcpt':
      seen.recipients.push(args[0] as string);
      return { recipient: args[0] as string };
    case 'header': {
      const header: [string, string] = [args[0] as string, args[1] as string];
      seen.headers.push(header);
      return { header };
    }
    case 'body':
      seen.bodyBytes += (args[0] as Buffer).length;
      return {};
    default:
      return {};
  }
}

function stagesNeeded(spec: MilterSpec): Set<Stage> {
  const needed = new Set<Stage>(['envfrom']);
  for (const stage of STAGES) {
    const steps = spec[stage];
    if (!steps || steps.length === 0) continue;
    needed.add(stage);
    for (const step of steps) {
      if (step.if?.header) needed.add('header');
      if (step.if?.message !== undefined) needed.add('envfrom');
      for (const match of JSON.stringify(step).matchAll(TEMPLATE)) {
        const source = TEMPLATE_STAGES[match[1] ?? ''];
        if (source) needed.add(source);
      }
    }
  }
  return needed;
}
