/**
 * Checking a filter's options against its JSON Schema (Ajv), with defaults filled in. Errors
 * name the option's path, so the configuration layer can point at the file and line.
 *
 * @packageDocumentation
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { AnyFilter } from './contract.js';

/** An option value that breaks the filter's schema. */
export class OptionsError extends Error {
  override readonly name = 'OptionsError';
  /** Path of the offending value below `options`, e.g. `['blockedPattern']`. */
  readonly path: readonly (string | number)[];

  constructor(message: string, path: readonly (string | number)[]) {
    super(message);
    this.path = path;
  }
}

// One Ajv instance for the process: compiled validators are cached per schema object.
const ajv = new Ajv({ useDefaults: true, allErrors: false, strict: true, allowUnionTypes: true });
const compiled = new WeakMap<object, ValidateFunction>();

const NO_OPTIONS = { type: 'object', additionalProperties: false } as const;

function validatorOf(filter: AnyFilter): ValidateFunction {
  const schema = filter.options ?? NO_OPTIONS;
  let validate = compiled.get(schema);
  if (validate === undefined) {
    // Unknown keys are errors unless the schema says otherwise: a typo must not pass silently.
    const closed = schema.type === 'object' && schema.additionalProperties === undefined ? { ...schema, additionalProperties: false } : schema;
    validate = ajv.compile(closed);
    compiled.set(schema, validate);
  }
  return validate;
}

function pathOf(error: ErrorObject): (string | number)[] {
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part));
  if (error.keyword === 'additionalProperties') path.push((error.params as { additionalProperty: string }).additionalProperty);
  if (error.keyword === 'required') path.push((error.params as { missingProperty: string }).missingProperty);
  return path;
}

function describe(error: ErrorObject, path: readonly (string | number)[]): string {
  const key = path.length === 0 ? 'options' : `options.${path.join('.')}`;
  switch (error.keyword) {
    case 'additionalProperties':
      return `${key}: unknown option`;
    case 'required':
      return `${key}: required`;
    case 'enum':
      return `${key}: must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return `${key}: ${error.message ?? 'invalid'}`;
  }
}

/**
 * Validates options for a filter and returns a copy with the schema's defaults filled in.
 * @throws OptionsError with the path of the first bad value
 */
export function validateOptions(filter: AnyFilter, options: unknown): Record<string, unknown> {
  const copy = structuredClone(options ?? {}) as Record<string, unknown>;
  const validate = validatorOf(filter);
  if (!validate(copy)) {
    const error = validate.errors![0]!;
    const path = pathOf(error);
    throw new OptionsError(describe(error, path), path);
  }
  return copy;
}

/**
 * Checks that a schema compiles (at filter load).
 * @throws Error from Ajv naming the schema problem
 */
export function compileOptionsSchema(filter: AnyFilter): void {
  validatorOf(filter);
}
