/** Compares what the MTA delivered or held with what a case expects. */
import type { Delivery } from '../harness/maildir.js';
import { headerValues, type ParsedMessage } from '../harness/message.js';
import type { HeldMessage } from '../harness/mta.js';
import { renderBytes, withLineEnds, type DeliveryExpectation, type HeldExpectation, type MessageExpectation } from './case-file.js';
import { matchesText } from './patterns.js';

/** Mismatches between the deliveries and the expectation (empty when they agree). */
export function checkDeliveries(expected: DeliveryExpectation[], actual: Delivery[]): string[] {
  const problems: string[] = [];
  const remaining = [...actual];
  for (const expectation of expected) {
    const matching = remaining.filter((delivery) => delivery.recipient === expectation.to);
    if (matching.length === 0) {
      problems.push(`no delivery to ${expectation.to}`);
      continue;
    }
    if (matching.length > 1) problems.push(`${matching.length} deliveries to ${expectation.to}, expected one`);
    const delivery = matching[0] as Delivery;
    remaining.splice(remaining.indexOf(delivery), 1);
    const where = `delivery to ${expectation.to}`;
    if (expectation.from !== undefined && delivery.sender !== expectation.from) {
      problems.push(`${where}: envelope sender ${JSON.stringify(delivery.sender)}, expected ${JSON.stringify(expectation.from)}`);
    }
    problems.push(...checkMessage(where, expectation, delivery));
  }
  for (const extra of remaining) problems.push(`unexpected delivery to ${extra.recipient} (from ${JSON.stringify(extra.sender)})`);
  return problems;
}

/** Mismatches between the quarantined messages and the expectation. */
export function checkHeld(expected: HeldExpectation[], actual: HeldMessage[]): string[] {
  const problems: string[] = [];
  if (expected.length !== actual.length) problems.push(`${actual.length} held message(s), expected ${expected.length}`);
  for (const [index, expectation] of expected.entries()) {
    const held = actual[index];
    if (!held) break;
    const where = `held message ${held.id}`;
    const recipients = [...held.recipients].sort();
    if (JSON.stringify(recipients) !== JSON.stringify([...expectation.to].sort())) {
      problems.push(`${where}: recipients ${JSON.stringify(recipients)}, expected ${JSON.stringify(expectation.to)}`);
    }
    if (expectation.from !== undefined && held.sender !== expectation.from) problems.push(`${where}: sender ${JSON.stringify(held.sender)}, expected ${JSON.stringify(expectation.from)}`);
    if (expectation.reason !== undefined && (held.reason ?? null) !== expectation.reason) {
      problems.push(`${where}: reason ${JSON.stringify(held.reason ?? null)}, expected ${JSON.stringify(expectation.reason)}`);
    }
    problems.push(...checkMessage(where, expectation, held));
  }
  return problems;
}

function checkMessage(where: string, expectation: MessageExpectation, message: ParsedMessage): string[] {
  const problems: string[] = [];
  for (const [name, values] of Object.entries(expectation.headers ?? {})) {
    const actual = headerValues(message, name);
    const agree = actual.length === values.length && values.every((pattern, index) => matchesText(pattern, actual[index] ?? ''));
    if (!agree) problems.push(`${where}: header ${name} is ${JSON.stringify(actual)}, expected ${JSON.stringify(values)}`);
  }
  for (const [name, position] of Object.entries(expectation.headerAt ?? {})) {
    const actual = message.headers.findIndex((field) => field.name.toLowerCase() === name.toLowerCase());
    if (actual !== position) {
      problems.push(`${where}: header ${name} at position ${actual}, expected ${position}; fields: ${message.headers.map((field) => field.name).join(', ')}`);
    }
  }
  if (expectation.body !== undefined) {
    const expected = withLineEnds(renderBytes(expectation.body), '\n');
    if (!expected.equals(message.body)) problems.push(`${where}: body differs: ${describeDifference(expected, message.body)}`);
  }
  const text = message.body.toString('utf8');
  for (const fragment of expectation.bodyIncludes ?? []) {
    if (!text.includes(fragment)) problems.push(`${where}: body lacks ${JSON.stringify(fragment)}; body starts ${JSON.stringify(text.slice(0, 400))}`);
  }
  return problems;
}

function describeDifference(expected: Buffer, actual: Buffer): string {
  let at = 0;
  while (at < expected.length && at < actual.length && expected[at] === actual[at]) at += 1;
  const around = (bytes: Buffer) => JSON.stringify(bytes.subarray(Math.max(0, at - 20), at + 40).toString('latin1'));
  return `${actual.length} bytes, expected ${expected.length}; first difference at byte ${at}: got ${around(actual)}, expected ${around(expected)}`;
}
