/**
 * A filter for the test kit's tests: refuses a blocked recipient, tempfails mail from a flaky
 * sender, rejects messages whose Subject says SPAM with a custom reply, and otherwise tags the
 * message with what it saw (client, HELO, queue ID, body size).
 */
import { Milter, type MilterOptions, type Verdict } from '../../../src/index.js';

export default class Policy extends Milter {
  static override options: MilterOptions = {
    actions: ['addHeader', 'changeHeader', 'deleteHeader', 'addRecipient'],
    macros: { envfrom: ['i', '{auth_authen}'], eom: ['i'], eoh: ['i'] },
  };

  private client = '';
  private heloName = '';
  private spam = false;
  private bodyBytes = 0;
  private authenticated: string | undefined;

  override connect(hostname: string, family: string, address?: string): Verdict {
    this.client = `${hostname} ${family} ${address ?? '-'}`;
    return 'continue';
  }

  override helo(name: string): Verdict {
    this.heloName = name;
    return 'continue';
  }

  override envfrom(sender: string): Verdict {
    this.spam = false;
    this.bodyBytes = 0;
    this.authenticated = this.macro('auth_authen');
    if (sender === '<flaky@example.org>') {
      this.setReply('451', '4.3.0', 'try again later');
      return 'tempfail';
    }
    return 'continue';
  }

  override envrcpt(recipient: string): Verdict {
    return recipient === '<blocked@example.net>' ? 'reject' : 'continue';
  }

  override header(name: string, value: string): Verdict {
    if (name.toLowerCase() === 'subject' && value.includes('SPAM')) this.spam = true;
    return 'continue';
  }

  override body(chunk: Buffer): Verdict {
    this.bodyBytes += chunk.length;
    return 'continue';
  }

  override eom(): Verdict {
    if (this.spam) {
      this.setReply('550', '5.7.1', 'spam is not welcome', 'second line');
      return 'reject';
    }
    this.addHeader('X-Policy', `client=${this.client}; helo=${this.heloName}; qid=${this.macro('i') ?? '-'}; body=${this.bodyBytes}`);
    if (this.authenticated !== undefined) this.addHeader('X-Authenticated', this.authenticated);
    this.deleteHeader('Return-Path', 1);
    this.changeHeader('Subject', 1, '[checked] subject');
    this.addRecipient('<archive@example.org>');
    return 'accept';
  }
}
