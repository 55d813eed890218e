/**
 * Structural checks of the compressed buffers of an Arrow IPC body (LZ4 frame or ZSTD,
 * per the batch's BodyCompression codec), without decompressing: the buffer must be
 * exactly one frame of that codec, its block headers must chain to its end, and a
 * content size in the frame header must equal the uncompressed length Arrow put in front
 * of it. That refuses a wrong codec, a buffer cut or shifted by a bad offset, and frame
 * headers that lie; it cannot see damage inside a block's compressed bytes, which only
 * decompression finds.
 *
 * Formats: RFC 8878 (Zstandard frames) and the LZ4 Frame Format 1.6.
 */

import type { ByteSource } from './pieces.js';

export const CODEC_LZ4_FRAME = 0;
export const CODEC_ZSTD = 1;

/** Returns undefined when `frame` is one well-formed frame of `codec`, else what is wrong. */
export function checkCompressedFrame(codec: number, frame: ByteSource, uncompressed: number): string | undefined {
  try {
    return codec === CODEC_ZSTD ? zstd(frame, uncompressed) : lz4(frame, uncompressed);
  } catch (err) {
    if (err instanceof RangeError) return 'the frame runs past the buffer';
    throw err;
  }
}

const ZSTD_MAGIC = 0xfd2fb528;
const ZSTD_MAX_BLOCK = 128 * 1024;

function zstd(b: ByteSource, uncompressed: number): string | undefined {
  if (b.readUInt32LE(0) !== ZSTD_MAGIC) return 'not a ZSTD frame';
  const fhd = b.readUInt8(4);
  if (fhd & 0x08) return 'a ZSTD frame header with the reserved bit set';
  const single = (fhd & 0x20) !== 0;
  const fcsFlag = fhd >> 6;
  const fcsBytes = fcsFlag === 0 ? (single ? 1 : 0) : 1 << fcsFlag;
  const dictBytes = [0, 1, 2, 4][fhd & 3] as number;
  let pos = 5 + (single ? 0 : 1) + dictBytes;
  if (fcsBytes > 0) {
    let size: number;
    if (fcsBytes === 1) size = b.readUInt8(pos);
    else if (fcsBytes === 2) size = b.readUInt16LE(pos) + 256;
    else if (fcsBytes === 4) size = b.readUInt32LE(pos);
    else size = Number(b.readBigUInt64LE(pos));
    if (size !== uncompressed) return `a ZSTD frame of ${size} bytes where ${uncompressed} are declared`;
    pos += fcsBytes;
  }
  for (;;) {
    const header = b.readUIntLE(pos, 3);
    pos += 3;
    const last = header & 1;
    const type = (header >> 1) & 3;
    const size = header >> 3;
    if (type === 3) return 'a ZSTD block of reserved type';
    if (size > ZSTD_MAX_BLOCK) return `a ZSTD block of ${size} bytes`;
    pos += type === 1 ? 1 : size;
    if (pos > b.length) return 'a ZSTD block runs past the buffer';
    if (last) break;
  }
  if (fhd & 0x04) pos += 4; // content checksum
  return pos === b.length ? undefined : `the ZSTD frame ends at ${pos} in a ${b.length}-byte buffer`;
}

const LZ4_MAGIC = 0x184d2204;
const LZ4_BLOCK_MAX = [0, 0, 0, 0, 64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024];

function lz4(b: ByteSource, uncompressed: number): string | undefined {
  if (b.readUInt32LE(0) !== LZ4_MAGIC) return 'not an LZ4 frame';
  const flg = b.readUInt8(4);
  const bd = b.readUInt8(5);
  if (flg >> 6 !== 1 || flg & 0x02 || bd & 0x8f) return 'an LZ4 frame descriptor with a bad version or reserved bits';
  const maxBlock = LZ4_BLOCK_MAX[(bd >> 4) & 7] as number;
  if (maxBlock === 0) return 'an LZ4 frame with an unknown block size';
  let pos = 6;
  if (flg & 0x08) {
    const size = Number(b.readBigUInt64LE(pos));
    if (size !== uncompressed) return `an LZ4 frame of ${size} bytes where ${uncompressed} are declared`;
    pos += 8;
  }
  if (flg & 0x01) pos += 4; // dictionary id
  pos += 1; // header checksum
  const blockChecksum = (flg & 0x10) !== 0;
  for (;;) {
    const word = b.readUInt32LE(pos);
    pos += 4;
    if (word === 0) break; // end mark
    const size = word & 0x7fffffff;
    if (size > maxBlock) return `an LZ4 block of ${size} bytes in a frame of ${maxBlock}-byte blocks`;
    pos += size + (blockChecksum ? 4 : 0);
    if (pos > b.length) return 'an LZ4 block runs past the buffer';
  }
  if (flg & 0x04) pos += 4; // content checksum
  return pos === b.length ? undefined : `the LZ4 frame ends at ${pos} in a ${b.length}-byte buffer`;
}
