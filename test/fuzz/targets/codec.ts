/**
 * The codec: arbitrary byte streams through the frame reader and the command and reply decoders.
 *
 * Invariants: only the codec's own errors are thrown (FrameError, MalformedPacketError); how the
 * stream is cut into reads, and whether a payload is streamed or assembled, changes nothing; what
 * decodes re-encodes to something that decodes the same.
 */
import assert from 'node:assert/strict';
import {
  Command,
  FrameError,
  FrameReader,
  MalformedPacketError,
  decodeCommand,
  decodeReply,
  encodeCommand,
  encodeReply,
  type MilterReply,
  type MtaCommand,
} from '../../../src/protocol/index.js';
import { randomFor, type FuzzTarget } from '../engine.js';
import { everyReplyStream, postfixConversation, protocolDictionary, sendmailConversation } from './conversations.js';

interface Framing {
  frames: Array<[code: number, payload: Buffer]>;
  error?: string;
}

const MAX_PAYLOAD = 64 * 1024;

/** Splits a stream into frames, in reads of the given sizes; streamed payloads are joined again. */
function frame(input: Buffer, readSizes: () => number, streamedCode = -1): Framing {
  const reader = new FrameReader(MAX_PAYLOAD, streamedCode);
  const framing: Framing = { frames: [] };
  let pieces: Buffer[] = [];
  const onFrame = (code: number, payload: Buffer, more: boolean): void => {
    pieces.push(Buffer.from(payload));
    if (more) return;
    framing.frames.push([code, Buffer.concat(pieces)]);
    pieces = [];
  };
  try {
    for (let offset = 0; offset < input.length; ) {
      const size = readSizes();
      reader.push(input.subarray(offset, offset + size), onFrame);
      offset += size;
    }
    reader.end();
  } catch (error) {
    if (!(error instanceof FrameError)) throw error;
    framing.error = error.code;
  }
  // A streamed payload cut by an error was delivered in part: only whole ones count.
  return framing;
}

/** Frames the stream whole, in random reads, and with one command streamed: all must agree. */
function framesOf(input: Buffer, streamedCode: number): Framing {
  const whole = frame(input, () => input.length || 1);
  const random = randomFor(input);
  const cut = frame(input, () => 1 + Math.floor(random() * 64));
  assert.deepEqual(cut, whole, 'framing depends on how the stream is cut into reads');
  const streamed = frame(input, () => 1 + Math.floor(random() * 64), streamedCode);
  assert.deepEqual(streamed, whole, 'a streamed payload differs from the assembled one');
  return whole;
}

/** Decodes, re-encodes and decodes again; codec errors on the first decode are fine. */
function roundTrip<T>(decode: (code: number, payload: Buffer) => T, encode: (value: T) => Buffer, code: number, payload: Buffer): void {
  let decoded: T;
  try {
    decoded = decode(code, Buffer.from(payload));
  } catch (error) {
    if (error instanceof MalformedPacketError) return;
    throw error;
  }
  const encoded = encode(decoded);
  const again = decode(encoded[4]!, encoded.subarray(5));
  assert.deepEqual(again, decoded, `re-encoding ${String.fromCharCode(code)} changes it`);
  assert.equal(encoded.readUInt32BE(0), encoded.length - 4, 'the encoded length field is wrong');
}

export const codecCommands: FuzzTarget = {
  name: 'codec-commands',
  description: 'frame reader and command decoder/encoder: framing independent of read sizes and streaming; decode(encode(decode(x))) = decode(x)',
  seeds: () => [postfixConversation, sendmailConversation],
  dictionary: protocolDictionary,
  run(input) {
    for (const [code, payload] of framesOf(input, Command.BODY).frames) {
      roundTrip<MtaCommand>(decodeCommand, (command) => encodeCommand(command), code, payload);
    }
  },
};

export const codecReplies: FuzzTarget = {
  name: 'codec-replies',
  description: 'frame reader and reply decoder/encoder: framing independent of read sizes and streaming; decode(encode(decode(x))) = decode(x)',
  seeds: () => [everyReplyStream],
  dictionary: protocolDictionary,
  run(input) {
    for (const [code, payload] of framesOf(input, 'b'.charCodeAt(0)).frames) {
      roundTrip<MilterReply>(decodeReply, (reply) => encodeReply(reply), code, payload);
    }
  },
};
