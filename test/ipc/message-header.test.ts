import { Dictionary, Int32, Table, tableFromArrays, tableToIPC, Utf8, vectorFromArray } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { InvalidMessageError, MessageType, readMessageHeader } from '../../src/ipc/message-header.js';
import { encapsulateSchema } from '../../src/ipc/ipc-stream.js';
import { ipcMessages } from '../helpers/raw-client.js';

describe('Arrow IPC message header reader', () => {
  it('reads type, body length and rows of messages arrow-js wrote', () => {
    const table = tableFromArrays({ a: Int32Array.from([1, 2, 3, 4, 5]), b: ['x', 'y', 'z', 'w', 'v'] });
    const messages = ipcMessages(tableToIPC(table, 'stream'));
    const schema = messages[0];
    const batch = messages[messages.length - 1]; // arrow-js dictionary-encodes strings: a dictionary comes between
    expect(readMessageHeader(schema!.header)).toMatchObject({ type: MessageType.Schema, bodyLength: 0 });
    const info = readMessageHeader(batch!.header);
    expect(info).toMatchObject({ type: MessageType.RecordBatch, rows: 5 });
    expect(info.bodyLength).toBe(batch!.body.length);
  });

  it('reads dictionary batches', () => {
    const dict = vectorFromArray(['p', 'q', 'p'], new Dictionary(new Utf8(), new Int32()));
    const table = new Table({ d: dict });
    const messages = ipcMessages(tableToIPC(table, 'stream')).map((m) => readMessageHeader(m.header));
    expect(messages.map((m) => m.type)).toEqual([
      MessageType.Schema,
      MessageType.DictionaryBatch,
      MessageType.RecordBatch,
    ]);
    expect(messages[1]).toMatchObject({ rows: 2, isDelta: false });
  });

  it('refuses headers whose buffers lie outside the body', () => {
    const table = tableFromArrays({ a: Int32Array.from([1, 2, 3]) });
    const batch = ipcMessages(tableToIPC(table, 'stream'))[1]!;
    const header = Buffer.from(batch.header);
    const info = readMessageHeader(header);
    // Rewrite bodyLength (an int64 in the Message table) to something smaller.
    const at = header.indexOf(Buffer.from(new BigInt64Array([BigInt(info.bodyLength)]).buffer));
    header.writeBigInt64LE(1n, at);
    expect(() => readMessageHeader(header)).toThrow(/outside the 1-byte body/);
  });

  it.each([
    ['too short', Buffer.alloc(4), /data_header of 4 bytes is too short/],
    [
      'root offset past the end',
      Buffer.from([0xff, 0xff, 0, 0, 0, 0, 0, 0]),
      /flatbuffer offset 65535\+\d+ outside a 8-byte header/,
    ],
    ['text', Buffer.from('definitely not a flatbuffer'), /flatbuffer offset \d+\+\d+ outside a 27-byte header/],
  ])('throws on %s, saying why', (_name, header, why) => {
    expect(() => readMessageHeader(header)).toThrow(InvalidMessageError);
    expect(() => readMessageHeader(header)).toThrow(why);
  });

  it('encapsulates a schema with continuation marker and padded length', () => {
    const out = encapsulateSchema(Buffer.alloc(13, 1));
    expect(out.readUInt32LE(0)).toBe(0xffffffff);
    expect(out.readInt32LE(4)).toBe(16);
    expect(out.length).toBe(24);
  });
});
