/** Errors a filter meets when it calls an action. */

/** Base class of the errors thrown by milter actions. */
export class MilterActionError extends Error {
  override readonly name: string = 'MilterActionError';
}

/**
 * The action was not negotiated with the MTA (pymilter's `DisabledAction`): declare it in
 * `options.actions`, or the MTA does not offer it.
 */
export class DisabledActionError extends MilterActionError {
  override readonly name = 'DisabledActionError';
  constructor(
    readonly action: string,
    detail: string,
  ) {
    super(`${action} is not available on this connection: ${detail}`);
  }
}

/** The action was called at a stage where the protocol does not allow it. */
export class StageError extends MilterActionError {
  override readonly name = 'StageError';
  constructor(
    readonly action: string,
    readonly stage: string,
  ) {
    super(`${action} is only allowed during eom() (called during ${stage})`);
  }
}

/** An action argument the MTA would refuse or misread. */
export class ActionArgumentError extends MilterActionError {
  override readonly name = 'ActionArgumentError';
}
