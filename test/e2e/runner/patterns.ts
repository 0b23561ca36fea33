/** How case files write expected texts. */

/** "/regex/" patterns match as regular expressions; anything else must be equal. */
export function matchesText(pattern: string, actual: string): boolean {
  const regex = /^\/(.*)\/([a-z]*)$/s.exec(pattern);
  return regex ? new RegExp(regex[1] ?? '', regex[2]).test(actual) : pattern === actual;
}

/**
 * Matches an SMTP reply: a bare code ("250") matches any reply with that code; otherwise the whole
 * reply text (lines joined with "\n") must match as in {@link matchesText}.
 */
export function matchesReply(pattern: string, replyText: string): boolean {
  if (/^\d{3}$/.test(pattern)) return replyText.startsWith(pattern) && /^\d{3}([ -]|$)/.test(replyText);
  return matchesText(pattern, replyText);
}
