/**
 * Reading and writing C integers in a platform's byte order, as pure Buffer code: the struct
 * writers take the order from the platform table, so a big-endian layout (s390x) can be
 * encoded and checked on a little-endian machine.
 */
import type { Endianness } from './platform/types.js';

export interface ByteOrder {
  readonly endianness: Endianness;
  readInt32(buf: Buffer, offset: number): number;
  readUInt32(buf: Buffer, offset: number): number;
  writeInt32(buf: Buffer, offset: number, value: number): void;
  writeUInt32(buf: Buffer, offset: number, value: number): void;
  writeInt16(buf: Buffer, offset: number, value: number): void;
  readInt16(buf: Buffer, offset: number): number;
  writeUInt16(buf: Buffer, offset: number, value: number): void;
  /** An unsigned field of 4 or 8 bytes (size_t, socklen_t); values below 2^32, the high word zeroed. */
  writeLength(buf: Buffer, offset: number, size: 4 | 8, value: number): void;
  /** An unsigned field of 4 or 8 bytes, as a number (exact below 2^53). */
  readLength(buf: Buffer, offset: number, size: 4 | 8): number;
  /** A pointer of 4 or 8 bytes. */
  writePointer(buf: Buffer, offset: number, size: 4 | 8, address: bigint): void;
}

const little: ByteOrder = {
  endianness: 'little',
  readInt32: (b, o) => b.readInt32LE(o),
  readUInt32: (b, o) => b.readUInt32LE(o),
  writeInt32: (b, o, v) => void b.writeInt32LE(v, o),
  writeUInt32: (b, o, v) => void b.writeUInt32LE(v, o),
  writeInt16: (b, o, v) => void b.writeInt16LE(v, o),
  readInt16: (b, o) => b.readInt16LE(o),
  writeUInt16: (b, o, v) => void b.writeUInt16LE(v, o),
  writeLength(b, o, size, v) {
    b.writeUInt32LE(v, o);
    if (size === 8) b.writeUInt32LE(0, o + 4);
  },
  readLength: (b, o, size) => (size === 8 ? b.readUInt32LE(o) + b.readUInt32LE(o + 4) * 2 ** 32 : b.readUInt32LE(o)),
  writePointer(b, o, size, a) {
    if (size === 8) b.writeBigUInt64LE(a, o);
    else b.writeUInt32LE(Number(a), o);
  },
};

const big: ByteOrder = {
  endianness: 'big',
  readInt32: (b, o) => b.readInt32BE(o),
  readUInt32: (b, o) => b.readUInt32BE(o),
  writeInt32: (b, o, v) => void b.writeInt32BE(v, o),
  writeUInt32: (b, o, v) => void b.writeUInt32BE(v, o),
  writeInt16: (b, o, v) => void b.writeInt16BE(v, o),
  readInt16: (b, o) => b.readInt16BE(o),
  writeUInt16: (b, o, v) => void b.writeUInt16BE(v, o),
  writeLength(b, o, size, v) {
    if (size === 8) b.writeUInt32BE(0, o);
    b.writeUInt32BE(v, size === 8 ? o + 4 : o);
  },
  readLength: (b, o, size) => (size === 8 ? b.readUInt32BE(o) * 2 ** 32 + b.readUInt32BE(o + 4) : b.readUInt32BE(o)),
  writePointer(b, o, size, a) {
    if (size === 8) b.writeBigUInt64BE(a, o);
    else b.writeUInt32BE(Number(a), o);
  },
};

export function byteOrder(endianness: Endianness): ByteOrder {
  return endianness === 'big' ? big : little;
}

/**
 * Byte offset of the low 32 bits of a 4- or 8-byte length field: what an Int32Array view in the
 * machine's own order indexes when the value fits in 32 bits.
 */
export function lowWordOffset(offset: number, size: 4 | 8, endianness: Endianness): number {
  return size === 8 && endianness === 'big' ? offset + 4 : offset;
}
