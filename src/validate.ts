/**
 * Checks of option values, shared by every constructor that takes options, so a bad value stops
 * the program at start-up with one clear message instead of misbehaving later. No dependencies.
 */

/** An option value that cannot be used; the message names the option and what it accepts. */
export class InvalidOptionError extends TypeError {
  override readonly name = 'InvalidOptionError';
  constructor(
    /** The option, as the caller spelled it (`maxConnections`, `--socket-mode`). */
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}`);
  }
}

/** An integer within [min, max]. @throws InvalidOptionError */
export function checkInteger(option: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(option, `expected an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** One of the listed values. @throws InvalidOptionError */
export function checkChoice<T extends string>(option: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) throw new InvalidOptionError(option, `expected one of ${choices.join(', ')}, got ${JSON.stringify(value)}`);
  return value as T;
}
