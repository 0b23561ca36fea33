/**
 * The header model the chain keeps for a message: the fields as received, then each filter's
 * edits in chain order. Filters name fields by name and occurrence (1-based among fields of that
 * name, as the filter sees the header now); the front-end later turns the difference between the
 * received and the final header into the MTA's own operations, doing the index arithmetic the
 * MTAs disagree on.
 *
 * @packageDocumentation
 */

/** A header field: the name, and the value after the colon without the one space most mail has there. */
export interface HeaderField {
  readonly name: string;
  readonly value: string;
}

/** A field of the model, with where it came from. */
export interface ModelField extends HeaderField {
  /** Position in the received header, for fields that came with the message. */
  readonly received?: number;
  /** True when a filter changed the value of a received field. */
  readonly changed?: boolean;
}

/** A header edit a filter cannot make, with the reason. */
export class HeaderEditError extends Error {
  override readonly name = 'HeaderEditError';
}

const NAME = /^[\x21-\x39\x3b-\x7e]+$/;

function checkName(name: string): void {
  if (!NAME.test(name)) throw new HeaderEditError(`header name "${name}" is empty or holds a colon, space or control character`);
}

function checkValue(value: string): string {
  if (value.includes('\0')) throw new HeaderEditError('header value holds a NUL');
  // Folded values are kept with LF; continuation lines must start with white space.
  const normalised = value.replace(/\r\n?/g, '\n');
  if (/\n(?![ \t])/.test(normalised)) throw new HeaderEditError('a header value line break must be followed by a space or tab (folding)');
  return normalised;
}

function occurrenceIndex(fields: readonly ModelField[], name: string, occurrence: number): number {
  if (!Number.isInteger(occurrence) || occurrence < 1) throw new HeaderEditError(`occurrence must be an integer >= 1, got ${occurrence}`);
  const wanted = name.toLowerCase();
  let seen = 0;
  for (let i = 0; i < fields.length; i++) {
    if (fields[i]!.name.toLowerCase() === wanted && ++seen === occurrence) return i;
  }
  return -1;
}

/**
 * A filter's view of the header: read it, and edit it by name and occurrence. Every edit is seen
 * at once by the same filter (occurrences count the header as it is now) and by the filters after
 * it, never by those before.
 */
export class HeaderList implements Iterable<HeaderField> {
  /** @internal */
  fields: ModelField[];

  /** @internal */
  constructor(fields: readonly ModelField[]) {
    this.fields = [...fields];
  }

  /** A model of a header as received. */
  static received(fields: readonly HeaderField[]): HeaderList {
    return new HeaderList(fields.map((field, received) => ({ name: field.name, value: field.value, received })));
  }

  /** Number of fields. */
  get length(): number {
    return this.fields.length;
  }

  [Symbol.iterator](): Iterator<HeaderField> {
    return this.fields.map(({ name, value }) => ({ name, value }))[Symbol.iterator]();
  }

  /** The value of the `occurrence`-th (1-based) field called `name` (any case). */
  get(name: string, occurrence = 1): string | undefined {
    const index = occurrenceIndex(this.fields, name, occurrence);
    return index < 0 ? undefined : this.fields[index]!.value;
  }

  /** Every value of the fields called `name`, in order. */
  getAll(name: string): string[] {
    const wanted = name.toLowerCase();
    return this.fields.filter((field) => field.name.toLowerCase() === wanted).map((field) => field.value);
  }

  /** Number of fields called `name`. */
  count(name: string): number {
    return this.getAll(name).length;
  }

  /** Appends a field at the end of the header. */
  add(name: string, value: string): void {
    checkName(name);
    this.fields.push({ name, value: checkValue(value) });
  }

  /** Inserts a field at `position` (0 = first field of the message; past the end appends). */
  insert(position: number, name: string, value: string): void {
    if (!Number.isInteger(position) || position < 0) throw new HeaderEditError(`position must be an integer >= 0, got ${position}`);
    checkName(name);
    this.fields.splice(Math.min(position, this.fields.length), 0, { name, value: checkValue(value) });
  }

  /** Changes the value of the `occurrence`-th field called `name`; false when there is none. */
  change(name: string, occurrence: number, value: string): boolean {
    const index = occurrenceIndex(this.fields, name, occurrence);
    if (index < 0) return false;
    const field = this.fields[index]!;
    this.fields[index] = { ...field, value: checkValue(value), changed: field.received !== undefined };
    return true;
  }

  /** Deletes the `occurrence`-th field called `name`; later occurrences move up. False when there is none. */
  delete(name: string, occurrence = 1): boolean {
    const index = occurrenceIndex(this.fields, name, occurrence);
    if (index < 0) return false;
    this.fields.splice(index, 1);
    return true;
  }

  /** @internal A copy to edit; the original stays as it was. */
  clone(): HeaderList {
    return new HeaderList(this.fields);
  }
}
