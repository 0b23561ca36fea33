/**
 * Reading the configuration file: YAML or JSON (never evaluated), checked against
 * {@link CONFIG_SCHEMA}, filters resolved (built-in names, paths relative to the file, the
 * filter search path, package names) and their options checked. Every error names the file,
 * the line and the column.
 *
 * @packageDocumentation
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, parseDocument, isMap, isNode, isScalar, isSeq, type Document, type Node } from 'yaml';
import { Chain, ChainConfigError, DEFAULT_LIMITS, DEFAULT_TIMEOUT_MS, type ChainConfig, type ChainEntryConfig } from './chain.js';
import { CONFIG_SCHEMA, ENTRY_LINE, type ChainEntrySpec, type ConfigFile, type CourierSection } from './config-schema.js';
import { checkDefinition, isFilterDefinition, type AnyFilter } from './contract.js';
import { smtpReply, type SmtpReply } from './decisions.js';
import type { Logger } from '../log.js';

/** A configuration that cannot be used: `file:line:column: what`. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly column: number | undefined,
    readonly detail: string,
  ) {
    super(`${file}${line === undefined ? '' : `:${line}:${column}`}: ${detail}`);
  }
}

/** How filters are found besides the file's own paths. */
export interface ConfigLoadOptions {
  /** Filters known by name (the bundled ones). */
  readonly builtins?: Readonly<Record<string, AnyFilter>>;
  /** Maps a module path before it is imported (the CLI maps `.ts` sources to their compiled files). */
  readonly resolveModule?: (path: string) => string;
}

/** A checked configuration, filters loaded but not started. */
export interface Configuration {
  readonly file: string;
  readonly listen: readonly string[];
  readonly socketMode?: number;
  readonly maxConnections?: number;
  /** Milliseconds. */
  readonly idleTimeout?: number;
  readonly logLevel: string;
  /** The Courier daemon's own settings. */
  readonly courier: Readonly<CourierSection>;
  readonly chain: ChainConfig;
  /** Where each chain entry's filter came from (`built-in`, a file URL, a package). */
  readonly sources: readonly string[];
  /** Turns an error about the chain into one with the file's line. */
  locate(error: ChainConfigError): ConfigError;
}

const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true });
const validateFile = ajv.compile<ConfigFile>(CONFIG_SCHEMA);

type Path = readonly (string | number)[];

/**
 * Finds the source position for `path`: a mapping entry's key, a sequence item, or the deepest
 * node on the path that exists.
 */
function positionOf(document: Document, lines: LineCounter, path: Path): { line: number; col: number } | undefined {
  let node: unknown = document.contents;
  let found: Node | undefined = isNode(node) ? node : undefined;
  for (const part of path) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && item.key.value === part);
      if (pair === undefined) break;
      if (isNode(pair.key)) found = pair.key;
      node = pair.value;
    } else if (isSeq(node) && typeof part === 'number' && isNode(node.items[part])) {
      node = node.items[part];
      found = node as Node;
    } else {
      break;
    }
  }
  return found?.range ? lines.linePos(found.range[0]) : undefined;
}

function describeSchemaError(error: ErrorObject): { path: (string | number)[]; text: string } {
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part.replace(/~1/g, '/').replace(/~0/g, '~')));
  const where = path.length === 0 ? 'configuration' : path.join('.');
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = (error.params as { additionalProperty: string }).additionalProperty;
      return { path: [...path, key], text: `${where === 'configuration' ? '' : where + ': '}unknown key "${key}"` };
    }
    case 'required':
      return { path, text: `${where}: "${(error.params as { missingProperty: string }).missingProperty}" is required` };
    case 'enum':
      return { path, text: `${where}: must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.join(', ')}` };
    case 'pattern':
      return { path, text: path[0] === 'chain' ? `${where}: expected "filter" or "filter for other1 other2"` : `${where}: does not match ${(error.params as { pattern: string }).pattern}` };
    default:
      return { path, text: `${where}: ${error.message ?? 'invalid'}` };
  }
}

/** A configured `NNN [X.Y.Z] text` reply (checked by the schema) as an SMTP reply. */
export function parseReply(kind: 'reject' | 'tempfail', text: string): SmtpReply {
  const match = /^(\d{3})(?: ([245]\.\d{1,3}\.\d{1,3}))?(?: (.*))?$/.exec(text)!;
  return smtpReply(kind, match[3] ?? '', { code: match[1]!, ...(match[2] ? { xcode: match[2] } : {}) });
}

async function importFilter(url: string, reference: string): Promise<AnyFilter> {
  const loaded = (await import(url)) as { default?: unknown; filter?: unknown };
  const exported = loaded.default ?? loaded.filter;
  if (!isFilterDefinition(exported)) checkDefinition(exported, `${reference} (its default export)`);
  return exported as AnyFilter;
}

async function resolveFilter(reference: string, base: string, filterPath: readonly string[], options: ConfigLoadOptions): Promise<{ filter: AnyFilter; source: string }> {
  const builtin = options.builtins?.[reference];
  if (builtin) return { filter: builtin, source: 'built-in' };
  const map = options.resolveModule ?? ((path: string) => path);
  if (reference.startsWith('.') || isAbsolute(reference)) {
    const path = map(resolve(base, reference));
    if (!existsSync(path)) throw new Error(`filter module ${path} not found`);
    return { filter: await importFilter(pathToFileURL(path).href, reference), source: path };
  }
  for (const directory of filterPath) {
    for (const candidate of [`${reference}.js`, `${reference}.mjs`, `${reference}/index.js`]) {
      const path = resolve(base, directory, candidate);
      if (existsSync(path)) return { filter: await importFilter(pathToFileURL(path).href, reference), source: path };
    }
  }
  try {
    return { filter: await importFilter(reference, reference), source: `package ${reference}` };
  } catch (error) {
    if ((error as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    const known = Object.keys(options.builtins ?? {});
    throw new Error(`unknown filter "${reference}": not built in${known.length ? ` (${known.join(', ')})` : ''}, not in the filter path, not an installed package`);
  }
}

/**
 * Parses configuration text.
 * @throws ConfigError with the line of the first problem
 */
export async function parseConfig(text: string, file: string, options: ConfigLoadOptions = {}): Promise<Configuration> {
  const lines = new LineCounter();
  // Plain data only: custom tags are refused, not resolved; anchors are bounded.
  const document = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const fail = (path: Path, detail: string): never => {
    const at = positionOf(document, lines, path);
    throw new ConfigError(file, at?.line, at?.col, detail);
  };
  const problem = document.errors[0] ?? document.warnings[0];
  if (problem) {
    const at = lines.linePos(problem.pos[0]);
    throw new ConfigError(file, at.line, at.col, `not valid YAML or JSON: ${problem.message.split('\n')[0]}`);
  }
  const raw: unknown = document.toJS({ maxAliasCount: 100 });
  if (!validateFile(raw)) {
    const { path, text: detail } = describeSchemaError(validateFile.errors![0]!);
    return fail(path, detail);
  }
  const base = dirname(resolve(file));
  const defaults = raw.defaults ?? {};
  const filters: ChainEntryConfig[] = [];
  const sources: string[] = [];
  for (const [index, entry] of raw.chain.entries()) {
    const spec: ChainEntrySpec = typeof entry === 'string' ? lineEntry(entry) : entry;
    let resolved: { filter: AnyFilter; source: string };
    try {
      resolved = await resolveFilter(spec.filter, base, raw.filterPath ?? [], options);
    } catch (error) {
      return fail(typeof entry === 'string' ? ['chain', index] : ['chain', index, 'filter'], (error as Error).message);
    }
    sources.push(resolved.source);
    const bypass = typeof spec.for === 'string' ? spec.for.split(/\s+/).filter(Boolean) : spec.for;
    const timeout = spec.timeout ?? defaults.timeout;
    filters.push({
      filter: resolved.filter,
      ...(spec.name === undefined ? {} : { name: spec.name }),
      ...(spec.options === undefined ? {} : { options: spec.options }),
      ...(bypass === undefined ? {} : { for: bypass }),
      trusting: spec.trusting ?? false,
      testing: spec.testing ?? false,
      timeoutMs: timeout === undefined ? DEFAULT_TIMEOUT_MS : timeout * 1000,
      onError: spec.onError ?? defaults.onError ?? 'tempfail',
      onTimeout: spec.onTimeout ?? defaults.onTimeout ?? 'tempfail',
    });
  }
  let replies: { tempfail?: SmtpReply; reject?: SmtpReply };
  try {
    const tempfail = raw.replies?.tempfail === undefined ? undefined : parseReply('tempfail', raw.replies.tempfail);
    const reject = raw.replies?.reject === undefined ? undefined : parseReply('reject', raw.replies.reject);
    replies = { ...(tempfail ? { tempfail } : {}), ...(reject ? { reject } : {}) };
  } catch (error) {
    return fail(['replies'], `replies: ${(error as Error).message}`);
  }
  const chain: ChainConfig = {
    filters,
    trusting: raw.trusting ?? false,
    shadow: raw.shadow ?? false,
    replies,
    limits: { maxBodyBytes: raw.limits?.maxMessageBytes ?? DEFAULT_LIMITS.maxBodyBytes, maxRecipients: raw.limits?.maxRecipients ?? DEFAULT_LIMITS.maxRecipients },
  };
  const locate = (error: ChainConfigError): ConfigError => {
    const path = error.entry === undefined ? ['chain'] : ['chain', error.entry, ...error.path];
    const at = positionOf(document, lines, path);
    return new ConfigError(file, at?.line, at?.col, error.message);
  };
  try {
    Chain.check(chain);
  } catch (error) {
    if (error instanceof ChainConfigError) throw locate(error);
    throw error;
  }
  const listen = raw.listen === undefined ? [] : typeof raw.listen === 'string' ? [raw.listen] : raw.listen;
  return {
    file,
    listen,
    ...(raw.socketMode === undefined ? {} : { socketMode: parseInt(raw.socketMode, 8) }),
    ...(raw.limits?.maxConnections === undefined ? {} : { maxConnections: raw.limits.maxConnections }),
    ...(raw.limits?.idleTimeout === undefined ? {} : { idleTimeout: raw.limits.idleTimeout * 1000 }),
    logLevel: raw.logging?.level ?? 'info',
    courier: raw.courier ?? {},
    chain,
    sources,
    locate,
  };
}

function lineEntry(line: string): ChainEntrySpec {
  const match = ENTRY_LINE.exec(line)!;
  const bypass = match[2]?.trim().split(/\s+/);
  return { filter: match[1]!, ...(bypass ? { for: bypass } : {}) };
}

/**
 * Reads and checks a configuration file.
 * @throws ConfigError
 */
export async function readConfig(file: string, options: ConfigLoadOptions = {}): Promise<Configuration> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, undefined, undefined, `cannot read: ${(error as Error).message}`);
  }
  return parseConfig(text, file, options);
}

/**
 * Starts the chain a configuration describes (every filter's `init`).
 * @throws ConfigError when a filter fails to start
 */
export async function startChain(configuration: Configuration, logger?: Logger): Promise<Chain> {
  try {
    return await Chain.load({ ...configuration.chain, ...(logger ? { logger } : {}) });
  } catch (error) {
    if (error instanceof ChainConfigError) throw configuration.locate(error);
    throw error;
  }
}
