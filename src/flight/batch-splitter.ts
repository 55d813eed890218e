import { isBigEndianSchema, MessageType, readMessageHeader } from '../ipc/message-header.js';
import { encapsulate, encapsulatedMessages, encapsulateSchema, END_OF_STREAM } from '../ipc/ipc-stream.js';
import type { Frame } from '../storage/storage-type.js';
import { bodyLength } from '../ipc/frame.js';
import type { Logger } from '../core/log.js';

/**
 * `server.maxBatchBytes`: Go and Rust Flight clients refuse messages over 4 MiB by default,
 * while pyarrow and Java send whole batches in one message. A stored batch larger than the
 * limit is decoded (with the dictionaries before it), sliced by rows and re-encoded as
 * several smaller batches. This is the one place Tierflight re-encodes data, and only when
 * the operator asks for it; a batch arrow-js cannot decode (or a big-endian one, which it
 * would re-encode little-endian) is sent whole, with a warning.
 * arrow-js is loaded only then (`create`): every module on the heap is marked again at
 * each major GC, and a busy server runs several a second.
 */
export class BatchSplitter {
  private warned = false;

  private constructor(
    readonly maxBytes: number,
    private readonly log: Logger,
    private readonly arrow: typeof import('apache-arrow'),
  ) {}

  static async create(maxBytes: number, log: Logger): Promise<BatchSplitter> {
    return new BatchSplitter(maxBytes, log, await import('apache-arrow'));
  }

  needsSplit(frame: Frame): boolean {
    return frame.kind === 'batch' && frame.header.length + bodyLength(frame) > this.maxBytes && frame.rows > 1;
  }

  /** The batch as smaller record batches (app_metadata on the first), or undefined to send it whole. */
  split(schemaHeader: Buffer, dictionaries: readonly Frame[], batch: Frame): Frame[] | undefined {
    try {
      // arrow-js reads and writes little-endian only: a big-endian batch goes whole.
      if (isBigEndianSchema(schemaHeader)) return this.giveUp('the stream is big-endian');
      const stream = Buffer.concat([
        encapsulateSchema(schemaHeader),
        ...dictionaries.flatMap((d) => encapsulate(d)),
        ...encapsulate(batch),
        END_OF_STREAM,
      ]);
      const { RecordBatchReader, RecordBatchStreamWriter } = this.arrow;
      const decoded = [...RecordBatchReader.from(stream)].at(-1);
      if (!decoded || decoded.numRows !== batch.rows) return this.giveUp('the batch did not decode');
      // Aim a little under the limit: slices of equal rows are not of equal bytes.
      const perRow = Math.max(1, bodyLength(batch) / batch.rows);
      const rowsPer = Math.max(1, Math.floor((this.maxBytes * 0.8) / perRow));
      const out: Frame[] = [];
      for (let from = 0; from < decoded.numRows; from += rowsPer) {
        const slice = decoded.slice(from, Math.min(decoded.numRows, from + rowsPer));
        const bytes = RecordBatchStreamWriter.writeAll([slice]).toUint8Array(true);
        for (const m of encapsulatedMessages(bytes)) {
          const info = readMessageHeader(m.header);
          if (info.type !== MessageType.RecordBatch) continue;
          out.push({
            kind: 'batch',
            header: m.header,
            body: m.body,
            appMetadata: out.length === 0 ? batch.appMetadata : Buffer.alloc(0),
            rows: info.rows,
          });
        }
      }
      return out;
    } catch (err) {
      return this.giveUp((err as Error).message);
    }
  }

  private giveUp(why: string): undefined {
    if (!this.warned) {
      this.warned = true;
      this.log.warn({ maxBatchBytes: this.maxBytes, why }, 'cannot split a stored batch; sending it whole');
    }
    return undefined;
  }
}
