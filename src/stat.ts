/**
 * What kind of file an open descriptor is, read through libc rather than node:fs: Deno's node:fs
 * refuses descriptors it did not open itself (EBADF), and received fds never are.
 *
 * Linux: statx(fd, "", AT_EMPTY_PATH). Its struct is the same on every architecture (fixed-width
 * fields, no padding that varies), so it needs no per-platform layout. Elsewhere (and on a libc
 * without a statx wrapper) node:fs's fstat, which Node and Bun allow on any descriptor.
 */
import { fstatSync } from 'node:fs';
import { endianness } from 'node:os';
import { FdPassError } from './errors.js';
import { lastErrno, lib, platform } from './libc.js';

export type FileType = 'file' | 'directory' | 'fifo' | 'socket' | 'char' | 'block' | 'symlink' | 'unknown';

export interface FdStat {
  type: FileType;
  /** Bytes, for regular files. */
  size: number;
}

// S_IFMT and the file-type bits are the same on every Unix fdpass supports.
const S_IFMT = 0o170000;
const fileTypes = new Map<number, FileType>([
  [0o100000, 'file'], [0o040000, 'directory'], [0o010000, 'fifo'], [0o140000, 'socket'],
  [0o020000, 'char'], [0o060000, 'block'], [0o120000, 'symlink'],
]);

const AT_EMPTY_PATH = 0x1000;
const STATX_TYPE = 0x1;
const STATX_SIZE = 0x200;
const STATX_SIZEOF = 256;
const STX_MODE = 28; // __u16
const STX_SIZE = 40; // __u64
const STATX_INO = 0x100;
const STX_INO = 32; // __u64

type Statx = (dirfd: number, path: string, flags: number, mask: number, buf: Buffer) => number;

let statx: Statx | null | undefined;
const statxBuf = Buffer.alloc(STATX_SIZEOF);
const bigEndian = endianness() === 'BE';

function loadStatx(): Statx | null {
  if (platform.os !== 'linux') return null;
  try {
    return lib.func('int statx(int dirfd, const char *path, int flags, unsigned int mask, void *buf)') as unknown as Statx;
  } catch {
    return null; // a libc without the wrapper (musl before 1.2.5): fall back to node:fs
  }
}

export function fdStat(fd: number): FdStat {
  statx ??= loadStatx();
  if (statx === null) return nodeFdStat(fd);
  if (statx(fd, '', AT_EMPTY_PATH, STATX_TYPE | STATX_SIZE, statxBuf) < 0) throw FdPassError.fromErrno('statx', lastErrno());
  const mode = bigEndian ? statxBuf.readUInt16BE(STX_MODE) : statxBuf.readUInt16LE(STX_MODE);
  const size = bigEndian ? statxBuf.readBigUInt64BE(STX_SIZE) : statxBuf.readBigUInt64LE(STX_SIZE);
  return { type: fileTypes.get(mode & S_IFMT) ?? 'unknown', size: Number(size) };
}

/** The inode number of what `fd` refers to (fstat's st_ino), e.g. a pidfd's id (LISTEN_PIDFDID). */
export function fdInode(fd: number): bigint {
  statx ??= loadStatx();
  if (statx === null) return nodeFstat(fd, true).ino;
  if (statx(fd, '', AT_EMPTY_PATH, STATX_INO, statxBuf) < 0) throw FdPassError.fromErrno('statx', lastErrno());
  return bigEndian ? statxBuf.readBigUInt64BE(STX_INO) : statxBuf.readBigUInt64LE(STX_INO);
}

function nodeFdStat(fd: number): FdStat {
  const st = nodeFstat(fd, false);
  return { type: fileTypes.get(Number(st.mode) & S_IFMT) ?? 'unknown', size: Number(st.size) };
}

function nodeFstat(fd: number, bigint: boolean): { mode: number | bigint; size: number | bigint; ino: bigint } {
  try {
    const st = fstatSync(fd, { bigint });
    return { mode: st.mode, size: st.size, ino: BigInt(st.ino) };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const code = e.code ?? 'EBADF';
    throw new FdPassError(code, `fstat ${code}`, { syscall: 'fstat', errno: -(e.errno ?? 0) });
  }
}

let isattyFn: ((fd: number) => number) | undefined;

/** isatty(3) through libc (node:tty's isatty goes through libuv's handle type guess). */
export function isTerminal(fd: number): boolean {
  isattyFn ??= lib.func('int isatty(int fd)') as unknown as (fd: number) => number;
  return isattyFn(fd) === 1;
}
