/**
 * Applying a milter's end-of-message modifications to the message and its envelope, as the MTA of
 * a profile would, in arrival order.
 */
import type { Modification } from '../client/modifications.js';
import { applyHeaderEdit, finishHeaderEdits, type HeaderEntry } from './header-edits.js';
import { toCrlf, type MailMessage } from './message.js';
import { bareAddress, type MtaProfile } from './profile.js';

/** One envelope recipient. */
export interface EnvelopeRecipient {
  /** The address as the client typed it, in angle brackets. */
  address: string;
  /** ESMTP arguments (from RCPT TO, or the one string of an ADDRCPT_PAR). */
  args?: string;
}

/** The envelope of a message. */
export interface DeliveryEnvelope {
  /** The sender in angle brackets (`<>` for the null sender). */
  sender: string;
  senderArgs?: string;
  recipients: EnvelopeRecipient[];
}

/** The message and envelope after the milter's changes. */
export interface AppliedModifications {
  message: MailMessage;
  envelope: DeliveryEnvelope;
  /** The reason of the last QUARANTINE request, if any. */
  quarantine?: string;
  /** Set when the MTA refuses the set of changes as a whole (Postfix: a body replacement split by other edits). */
  configurationError?: string;
}

/** Puts an address in angle brackets, as SMTP clients write it. */
export function bracketAddress(address: string): string {
  const bare = bareAddress(address);
  return `<${bare}>`;
}

/**
 * Applies modifications.
 * @param headers the header as the MTA holds it, its own fields (origin `mta`) included; not modified
 * @param leadingSpace whether HDR_LEADSPC was negotiated
 */
export function applyModifications(
  profile: MtaProfile,
  headers: readonly HeaderEntry[],
  body: Buffer,
  envelope: DeliveryEnvelope,
  modifications: readonly Modification[],
  leadingSpace: boolean,
): AppliedModifications {
  const fields = headers.map((field) => ({ ...field }));
  const result: AppliedModifications = {
    message: { headers: [], body },
    envelope: { ...envelope, recipients: envelope.recipients.map((recipient) => ({ ...recipient })) },
  };
  const bodies = modifications.filter((m) => m.type === 'replaceBody').length;
  if (bodies > 1 && profile.contiguousBodyReplacement) {
    result.configurationError = 'body replacement requests can\'t currently be mixed with other requests';
  }
  for (const modification of modifications) {
    switch (modification.type) {
      case 'addHeader':
      case 'insertHeader':
      case 'changeHeader':
        applyHeaderEdit(profile.headerEditRules, fields, modification, leadingSpace);
        break;
      case 'addRecipient': {
        const recipient: EnvelopeRecipient = { address: bracketAddress(modification.recipient) };
        if (modification.args !== undefined) recipient.args = modification.args;
        result.envelope.recipients.push(recipient);
        break;
      }
      case 'deleteRecipient': {
        const target = bareAddress(modification.recipient).toLowerCase();
        result.envelope.recipients = result.envelope.recipients.filter((r) => bareAddress(r.address).toLowerCase() !== target);
        break;
      }
      case 'changeFrom':
        result.envelope.sender = bracketAddress(modification.sender);
        if (modification.args === undefined) delete result.envelope.senderArgs;
        else result.envelope.senderArgs = modification.args;
        break;
      case 'replaceBody':
        // Both MTAs store lines: a CR before LF is dropped, every line ends in CRLF again.
        result.message.body = toCrlf(modification.body);
        break;
      case 'quarantine':
        result.quarantine = modification.reason;
        break;
    }
  }
  result.message.headers = finishHeaderEdits(fields);
  return result;
}
