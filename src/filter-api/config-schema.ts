/**
 * The configuration file's schema (JSON Schema, checked with Ajv) and its types. One file serves
 * `milterkit serve --config`, `milterkit check-config` and the test kit.
 *
 * ```yaml
 * listen: [inet:8890@127.0.0.1]           # milter sockets
 * limits: { maxConnections: 1000, idleTimeout: 7210, maxMessageBytes: 67108864, maxRecipients: 1000 }
 * logging: { level: info }
 * filterPath: [./filters]                  # where `filter: NAME` is looked up, relative to this file
 * defaults: { timeout: 30, onError: tempfail, onTimeout: tempfail }
 * trusting: false                          # accept authenticated senders without running the chain
 * shadow: false                            # log what would happen, let everything through
 * replies: { tempfail: '451 4.3.0 Try again later', reject: '550 5.7.1 Refused' }
 * courier: { socketDirectory: allfilters, messageTimeout: 120 }   # the Courier daemon's own settings
 * chain:
 *   - whitelist_auth for attachments       # pythonfilter's one-line form
 *   - filter: attachments
 *     options: { blockedPattern: '\.(exe|scr)$' }
 *     onError: reject
 * ```
 *
 * @packageDocumentation
 */
import type { FailurePolicy } from './chain.js';

/** One chain entry in its object form. */
export interface ChainEntrySpec {
  filter: string;
  name?: string;
  options?: Record<string, unknown>;
  for?: string | string[];
  trusting?: boolean;
  testing?: boolean;
  /** Seconds per hook. */
  timeout?: number;
  onError?: FailurePolicy;
  onTimeout?: FailurePolicy;
}

/**
 * What only the Courier daemon reads (`milterkit courier`): its socket, its bounds, its own
 * replies and Courier's directories. `serve` ignores it, as the daemon ignores `listen`.
 */
export interface CourierSection {
  name?: string;
  socketDirectory?: 'allfilters' | 'filters';
  /** Seconds for the whole chain on one message. */
  messageTimeout?: number;
  requestTimeout?: number;
  shutdownTimeout?: number;
  /** Reply when the chain accepts (`200 Ok`; `050 …` makes Courier skip its later filters). */
  acceptReply?: string;
  busyReply?: string;
  prefix?: string;
  bindir?: string;
  sbindir?: string;
  libexecdir?: string;
  sysconfdir?: string;
  localstatedir?: string;
  mailuser?: string;
  mailgroup?: string;
  /** Absolute path of the `courier-config` program to ask for the directories. */
  configCommand?: string;
}

/** The configuration file as written. */
export interface ConfigFile {
  listen?: string | string[];
  socketMode?: string;
  limits?: { maxConnections?: number; idleTimeout?: number; maxMessageBytes?: number; maxRecipients?: number };
  logging?: { level?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' };
  filterPath?: string[];
  defaults?: { timeout?: number; onError?: FailurePolicy; onTimeout?: FailurePolicy };
  trusting?: boolean;
  shadow?: boolean;
  replies?: { tempfail?: string; reject?: string };
  courier?: CourierSection;
  chain: Array<string | ChainEntrySpec>;
}

const policy = { enum: ['tempfail', 'reject', 'continue'] } as const;
const seconds = { type: 'number', exclusiveMinimum: 0 } as const;
const positiveInteger = { type: 'integer', minimum: 1 } as const;
const names = { type: 'array', items: { type: 'string', minLength: 1 } } as const;
const text = { type: 'string', minLength: 1 } as const;

/** pythonfilter's line form: `NAME` or `NAME for OTHER...`. */
export const ENTRY_LINE = /^\s*(\S+)(?:\s+for((?:\s+\S+)+))?\s*$/;

/** JSON Schema of the configuration file. */
export const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['chain'],
  properties: {
    listen: { anyOf: [{ type: 'string', minLength: 1 }, { ...names, minItems: 1 }] },
    socketMode: { type: 'string', pattern: '^[0-7]{3,4}$' },
    limits: {
      type: 'object',
      additionalProperties: false,
      properties: { maxConnections: positiveInteger, idleTimeout: seconds, maxMessageBytes: positiveInteger, maxRecipients: positiveInteger },
    },
    logging: { type: 'object', additionalProperties: false, properties: { level: { enum: ['fatal', 'error', 'warn', 'info', 'debug'] } } },
    filterPath: names,
    defaults: { type: 'object', additionalProperties: false, properties: { timeout: seconds, onError: policy, onTimeout: policy } },
    trusting: { type: 'boolean' },
    shadow: { type: 'boolean' },
    replies: {
      type: 'object',
      additionalProperties: false,
      properties: { tempfail: { type: 'string', pattern: '^4[0-9][0-9] ' }, reject: { type: 'string', pattern: '^5[0-9][0-9] ' } },
    },
    courier: {
      type: 'object',
      additionalProperties: false,
      properties: {
        name: { type: 'string', pattern: '^[^/.][^/]*$' },
        socketDirectory: { enum: ['allfilters', 'filters'] },
        messageTimeout: seconds,
        requestTimeout: seconds,
        shutdownTimeout: seconds,
        acceptReply: { type: 'string', pattern: '^[0-9][0-9][0-9] ' },
        busyReply: { type: 'string', pattern: '^4[0-9][0-9] ' },
        prefix: text,
        bindir: text,
        sbindir: text,
        libexecdir: text,
        sysconfdir: text,
        localstatedir: text,
        mailuser: text,
        mailgroup: text,
        configCommand: { type: 'string', pattern: '^/' },
      },
    },
    chain: {
      type: 'array',
      items: {
        if: { type: 'string' },
        then: { type: 'string', pattern: ENTRY_LINE.source },
        else: {
          type: 'object',
          additionalProperties: false,
          required: ['filter'],
          properties: {
            filter: { type: 'string', minLength: 1 },
            name: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$' },
            options: { type: 'object' },
            for: { anyOf: [{ type: 'string' }, names] },
            trusting: { type: 'boolean' },
            testing: { type: 'boolean' },
            timeout: seconds,
            onError: policy,
            onTimeout: policy,
          },
        },
      },
    },
  },
} as const;
