import { parseSchema, SchemaRuleError, type SchemaModel } from './arrow-schema.js';
import { Broken, checkBatch, METADATA_V4, METADATA_V5 } from './batch-layout.js';
import { MESSAGE } from './arrow-tables.js';
import { FlatBuffer, FlatbufferError, type Table } from './flatbuffer-verifier.js';
import { InvalidMessageError, MessageType, readMessageHeader } from './message-header.js';
import type { Pieces } from './pieces.js';

/**
 * Validation of an incoming Arrow IPC stream, message by message, before anything is
 * stored: what Arrow's own readers check when they open a message, so that a stream this
 * accepts is one every Arrow reader can read back. The header flatbuffer is verified as
 * it is read (see FlatBuffer); the schema comes first and once; every record batch's
 * field nodes and buffers must match the schema and lie inside the body, with sizes that
 * hold the values the lengths announce; dictionary batches must name a dictionary the
 * schema declares, all dictionaries come before the first record batch, and a delta only
 * follows its base. Only fixed-size facts are read from the body (the uncompressed-length
 * prefix of compressed buffers, the first and last offset of variable-size values), so
 * the cost is per column, never per value.
 */

/** A message that breaks a rule; `rule` is a short stable name for logs and tests. */
export class IpcValidationError extends Error {
  constructor(
    readonly index: number,
    readonly rule: string,
    detail: string,
  ) {
    super(`message ${index} breaks the IPC rule "${rule}": ${detail}`);
  }
}

/** What the storage layer needs to know about a validated message. */
export interface ValidatedMessage {
  type: MessageType.Schema | MessageType.RecordBatch | MessageType.DictionaryBatch;
  bodyLength: number;
  /** Rows of a record batch. */
  rows: number;
}

// Message.fbs field numbers.
const MESSAGE_VERSION = 0;
const MESSAGE_HEADER_TYPE = 1;
const MESSAGE_HEADER = 2;
const MESSAGE_BODY_LENGTH = 3;
const MESSAGE_METADATA = 4;
const DICT_ID = 0;
const DICT_DATA = 1;
const DICT_IS_DELTA = 2;

/** What DoPut asks of each incoming message (see IpcStreamValidator). */
export interface MessageChecker {
  message(index: number, header: Buffer, body: Buffer | Pieces): ValidatedMessage;
  finish(index: number): void;
}

/**
 * Reads only what storage needs (type, body length, rows), with bounds checks: the DoPut
 * path without validation, kept to measure the validator's cost (bench/validator.ts).
 */
export class HeaderOnlyReader implements MessageChecker {
  message(index: number, header: Buffer, body: Buffer | Pieces): ValidatedMessage {
    try {
      const info = readMessageHeader(header);
      const { type } = info;
      if (type !== MessageType.Schema && type !== MessageType.RecordBatch && type !== MessageType.DictionaryBatch) {
        throw new InvalidMessageError(`message type ${type}`);
      }
      if (body.length !== info.bodyLength) throw new InvalidMessageError('body length differs from the header');
      return { type, bodyLength: info.bodyLength, rows: info.rows };
    } catch (err) {
      if (err instanceof InvalidMessageError) throw new IpcValidationError(index, 'header', err.message);
      throw err;
    }
  }

  finish(): void {}
}

export class IpcStreamValidator implements MessageChecker {
  private schema: SchemaModel | undefined;
  /** Dictionaries sent so far (their base, so deltas may follow). */
  private readonly loaded = new Set<number>();
  private batches = 0;

  /**
   * Validates one message (`index` is its position in the stream, for the error) and
   * returns what it is. Throws IpcValidationError.
   */
  message(index: number, header: Buffer, body: Buffer | Pieces): ValidatedMessage {
    try {
      return this.check(header, body);
    } catch (err) {
      if (err instanceof Broken) throw new IpcValidationError(index, err.rule, err.message);
      if (err instanceof FlatbufferError) throw new IpcValidationError(index, 'flatbuffer', err.message);
      if (err instanceof SchemaRuleError) throw new IpcValidationError(index, 'schema', err.message);
      throw err;
    }
  }

  /** Checks the stream as a whole once it ended; `index` is the count of messages. */
  finish(index: number): void {
    const missing = this.missingDictionaries();
    if (this.loaded.size > 0 && missing.length > 0) {
      throw new IpcValidationError(
        index,
        'dictionaries',
        `the stream ended after some dictionaries but without dictionary ids ${missing.join(', ')}`,
      );
    }
  }

  private missingDictionaries(): number[] {
    return [...(this.schema?.dictionaries.keys() ?? [])].filter((id) => !this.loaded.has(id));
  }

  private check(header: Buffer, body: Buffer | Pieces): ValidatedMessage {
    if (header.length < 8) throw new Broken('flatbuffer', `a ${header.length}-byte data_header is too short`);
    const fb = new FlatBuffer(header);
    fb.verify(MESSAGE);
    const msg = fb.root();
    const version = msg.i16(MESSAGE_VERSION);
    if (version !== METADATA_V4 && version !== METADATA_V5) {
      throw new Broken('version', `metadata version ${version + 1} is not supported (V4 or V5)`);
    }
    const bodyLength = msg.i64(MESSAGE_BODY_LENGTH, 'bodyLength');
    if (bodyLength !== body.length) {
      throw new Broken('body-length', `data_body has ${body.length} bytes but the header declares ${bodyLength}`);
    }
    msg.tables(MESSAGE_METADATA, 'message custom_metadata');
    const type = msg.u8(MESSAGE_HEADER_TYPE);
    const table = msg.table(MESSAGE_HEADER, 'message header');
    if (!table || type < MessageType.Schema || type > MessageType.SparseTensor) {
      throw new Broken('message-type', `header type ${type} is not an Arrow IPC message`);
    }
    switch (type) {
      case MessageType.Schema:
        if (this.schema) throw new Broken('schema-once', 'a second schema message');
        this.schema = parseSchema(table);
        return { type, bodyLength, rows: 0 };
      case MessageType.RecordBatch:
        return { type, bodyLength, rows: this.recordBatch(table, body, version) };
      case MessageType.DictionaryBatch:
        this.dictionaryBatch(table, body, version);
        return { type, bodyLength, rows: 0 };
      default:
        throw new Broken('message-type', `tensor messages (type ${type}) do not belong in a Flight stream`);
    }
  }

  private requireSchema(): SchemaModel {
    if (!this.schema) throw new Broken('schema-first', 'a batch before the schema');
    return this.schema;
  }

  private recordBatch(table: Table, body: Buffer | Pieces, version: number): number {
    const schema = this.requireSchema();
    const missing = this.missingDictionaries();
    if (missing.length > 0) {
      throw new Broken('dictionaries', `a record batch before the dictionaries with ids ${missing.join(', ')}`);
    }
    this.batches++;
    return checkBatch(schema.fields, table, body, version, schema.bigEndian);
  }

  private dictionaryBatch(table: Table, body: Buffer | Pieces, version: number): void {
    const schema = this.requireSchema();
    const id = table.i64(DICT_ID, 'dictionary id');
    const value = schema.dictionaries.get(id);
    if (!value) throw new Broken('dictionary-id', `dictionary id ${id} is not declared by the schema`);
    const delta = table.bool(DICT_IS_DELTA);
    if (delta && !this.loaded.has(id))
      throw new Broken('dictionary-delta', `a delta for dictionary ${id} before its base`);
    if (!delta && this.loaded.has(id) && this.batches === 0 && this.missingDictionaries().length > 0) {
      // Readers load one dictionary per id before the first batch; a repeat there leaves another missing.
      throw new Broken('dictionaries', `dictionary ${id} sent again before every dictionary was sent`);
    }
    const data = table.table(DICT_DATA, 'dictionary data');
    if (!data) throw new Broken('dictionary-data', `dictionary ${id} has no data`);
    checkBatch([value], data, body, version, schema.bigEndian, true);
    this.loaded.add(id);
  }
}
