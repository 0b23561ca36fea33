/**
 * Example filter: tags every message with the client and the queue ID, and rejects mail whose
 * Subject contains "REJECTME". Run it with `npm start`, then point an MTA at it, e.g. Postfix:
 *
 *     smtpd_milters = inet:127.0.0.1:8890
 *
 * or Sendmail:
 *
 *     INPUT_MAIL_FILTER(`milterkit', `S=inet:8890@127.0.0.1, F=T')
 */
import { Milter, type MilterOptions, type Verdict } from '../src/index.js';

export default class AddHeader extends Milter {
  static override options: MilterOptions = {
    actions: ['addHeader'],
    noReply: ['header'],
    macros: { eom: ['i', '{client_addr}'] },
  };

  private client = 'unknown';
  private rejectable = false;

  override connect(hostname: string, _family: string, address: string | undefined): Verdict {
    this.client = address === undefined ? hostname : `${hostname} [${address}]`;
    return 'continue';
  }

  override envfrom(): Verdict {
    this.rejectable = false;
    return 'continue';
  }

  override header(name: string, value: string): Verdict {
    if (name.toLowerCase() === 'subject' && value.includes('REJECTME')) this.rejectable = true;
    return 'noreply';
  }

  override eom(): Verdict {
    if (this.rejectable) {
      this.setReply('550', '5.7.1', 'Message refused by the milterkit example filter');
      return 'reject';
    }
    this.addHeader('X-Milterkit', `checked; client=${this.client}; queue-id=${this.macro('i') ?? 'unknown'}`);
    return 'continue';
  }
}
