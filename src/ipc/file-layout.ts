import { schemaTableOf } from './message-header.js';
import { pad8 } from './ipc-stream.js';

/**
 * Arrow IPC framing for files written by the disk tiers, so any Arrow tool opens them:
 * the stream layout (`pyarrow.ipc.open_stream`) and the file layout with its footer
 * (`pyarrow.ipc.open_file`). Messages are written as received; only the framing around
 * them (continuation marker, padded length, padding) is ours.
 */

/** "ARROW1" and two bytes of padding: the file layout's leading magic. */
export const FILE_MAGIC = Buffer.from('ARROW1\0\0', 'latin1');
const TRAILING_MAGIC = Buffer.from('ARROW1', 'latin1');
/** Where one message sits in a file (a footer `Block`). */
export interface Block {
  /** Offset of the message's continuation marker. */
  offset: number;
  /** Prefix plus padded flatbuffer. */
  metaDataLength: number;
  bodyLength: number;
}

const BLOCK_SIZE = 24;

/** Size of the footer `buildFooter` returns, so it can be charged before it is written. */
export function footerSize(schemaHeader: Buffer, dictionaries: number, batches: number): number {
  return footerLayout(schemaHeader.length, dictionaries, batches).total + 4 + TRAILING_MAGIC.length;
}

function footerLayout(schemaLength: number, dictionaries: number, batches: number) {
  // root offset (4) | vtable (12) | table (20) | dict vector | pad 4 | batch vector | schema copy
  const vtable = 4;
  const table = 16;
  const dictVector = 36; // ≡ 4 (mod 8), so the 8-aligned structs follow the u32 length
  const batchVector = dictVector + 4 + dictionaries * BLOCK_SIZE + 4;
  const afterBatches = batchVector + 4 + batches * BLOCK_SIZE;
  // Flatbuffers align relative to the buffer's end, so the copied message keeps its
  // internal alignment when its end lands on a multiple of 8.
  const schema = pad8(afterBatches + schemaLength) - schemaLength;
  return { vtable, table, dictVector, batchVector, schema, total: schema + schemaLength };
}

/**
 * The file footer flatbuffer followed by its length and the trailing magic. The footer's
 * `schema` field points into a verbatim copy of the stream's Schema message, so the
 * schema is never re-encoded: every flatbuffer offset inside the copy stays relative.
 */
export function buildFooter(schemaHeader: Buffer, dictionaries: readonly Block[], batches: readonly Block[]): Buffer {
  const { tablePosition, version } = schemaTableOf(schemaHeader);
  const L = footerLayout(schemaHeader.length, dictionaries.length, batches.length);
  const out = Buffer.alloc(L.total + 4 + TRAILING_MAGIC.length);
  out.writeUInt32LE(L.table, 0);
  // vtable: its size, the table's inline size, then field offsets within the table:
  // version (0) at +4, schema (1) at +8, dictionaries (2) at +12, recordBatches (3) at +16.
  out.writeUInt16LE(12, L.vtable);
  out.writeUInt16LE(20, L.vtable + 2);
  out.writeUInt16LE(4, L.vtable + 4);
  out.writeUInt16LE(8, L.vtable + 6);
  out.writeUInt16LE(12, L.vtable + 8);
  out.writeUInt16LE(16, L.vtable + 10);
  out.writeInt32LE(L.table - L.vtable, L.table);
  out.writeInt16LE(version, L.table + 4);
  out.writeUInt32LE(L.schema + tablePosition - (L.table + 8), L.table + 8);
  out.writeUInt32LE(L.dictVector - (L.table + 12), L.table + 12);
  out.writeUInt32LE(L.batchVector - (L.table + 16), L.table + 16);
  writeBlocks(out, L.dictVector, dictionaries);
  writeBlocks(out, L.batchVector, batches);
  schemaHeader.copy(out, L.schema);
  out.writeInt32LE(L.total, L.total);
  TRAILING_MAGIC.copy(out, L.total + 4);
  return out;
}

function writeBlocks(out: Buffer, at: number, blocks: readonly Block[]): void {
  out.writeUInt32LE(blocks.length, at);
  let pos = at + 4;
  for (const b of blocks) {
    out.writeBigInt64LE(BigInt(b.offset), pos);
    out.writeInt32LE(b.metaDataLength, pos + 8);
    out.writeBigInt64LE(BigInt(b.bodyLength), pos + 16);
    pos += BLOCK_SIZE;
  }
}
