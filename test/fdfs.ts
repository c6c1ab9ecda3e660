/**
 * node:fs for the tests, with descriptor-level calls that work on any descriptor under every
 * runtime. Import it instead of 'node:fs' where a test opens, reads, writes, stats or closes
 * descriptors by number.
 *
 * On Node and Bun this is node:fs itself: every export is node:fs's own function.
 *
 * Under Deno, node:fs keeps a table of the descriptors it opened and refuses all others
 * (`fs.readSync(fd)` of a received fd is EBADF), and a descriptor it opened that something else
 * closed (fdpass owning it) breaks the next open that reuses the number: Deno closes that one
 * (docs/runtimes.md, "The test suite under Deno"). So there openSync, closeSync, readSync,
 * writeSync, fstatSync, ftruncateSync and readFileSync(fd) call libc directly (open with
 * O_CLOEXEC, as libuv does),
 * with Node's signatures and Node's error shape (code, errno, syscall); fstatSync is
 * statSync('/proc/self/fd/N'), the same inode (Linux, like the rest of the suite).
 */
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import koffi from 'koffi';
import { C, lib } from '../src/libc.js';
import { openFlags } from '../src/pidfd.js';

export * from 'node:fs';

const deno = process.versions.deno !== undefined;

type Flags = string | number;

const F_GETFD = 1;

const libc = deno
  ? {
      open: lib.func('int open(const char *path, int flags, uint32_t mode)') as (path: string, flags: number, mode: number) => number,
      close: lib.func('int close(int fd)') as (fd: number) => number,
      read: lib.func('intptr_t read(int fd, _Out_ uint8_t *buf, uintptr_t count)') as (fd: number, buf: Uint8Array, count: number) => number,
      pread: lib.func('intptr_t pread64(int fd, _Out_ uint8_t *buf, uintptr_t count, int64_t offset)') as (fd: number, buf: Uint8Array, count: number, offset: number) => number,
      write: lib.func('intptr_t write(int fd, const uint8_t *buf, uintptr_t count)') as (fd: number, buf: Uint8Array, count: number) => number,
      pwrite: lib.func('intptr_t pwrite64(int fd, const uint8_t *buf, uintptr_t count, int64_t offset)') as (fd: number, buf: Uint8Array, count: number, offset: number) => number,
      ftruncate: lib.func('int ftruncate64(int fd, int64_t length)') as (fd: number, length: number) => number,
      fcntl: lib.func('int fcntl(int fd, int cmd, int arg)') as (fd: number, cmd: number, arg: number) => number,
    }
  : undefined;

const errnoNames = new Map(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** Node's error shape for a failed call: `EBADF: bad file descriptor, read`, code, errno < 0, syscall. */
function check(ret: number, syscall: string, path?: string): number {
  if (ret >= 0) return ret;
  const errno = koffi.errno();
  const code = errnoNames.get(errno) ?? `E${errno}`;
  const err = new Error(`${code}: ${syscall} failed${path === undefined ? '' : `, '${path}'`}`) as NodeJS.ErrnoException;
  Object.assign(err, { code, errno: -errno, syscall, ...(path === undefined ? {} : { path }) });
  throw err;
}

function view(buffer: NodeJS.ArrayBufferView, offset = 0, length = buffer.byteLength - offset): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset + offset, length);
}

function denoOpen(path: fs.PathLike, flags: Flags = 'r', mode: fs.Mode = 0o666): number {
  const bits = typeof flags === 'number' ? flags : openFlags(flags);
  const p = String(path);
  return check(libc!.open(p, bits | C.O_CLOEXEC, typeof mode === 'string' ? parseInt(mode, 8) : mode), 'open', p);
}

function denoClose(fd: number): void {
  check(libc!.close(fd), 'close');
}

type Position = number | bigint | null | undefined;

function denoRead(fd: number, buffer: NodeJS.ArrayBufferView, ...rest: unknown[]): number {
  let offset = 0;
  let length: number | undefined;
  let position: Position;
  if (typeof rest[0] === 'object' && rest[0] !== null) ({ offset = 0, length, position } = rest[0] as { offset?: number; length?: number; position?: Position });
  else [offset = 0, length, position] = rest as [number?, number?, Position?];
  const target = view(buffer, offset, length ?? buffer.byteLength - offset);
  if (position === null || position === undefined || Number(position) < 0) return check(libc!.read(fd, target, target.length), 'read');
  return check(libc!.pread(fd, target, target.length, Number(position)), 'read');
}

function denoWrite(fd: number, data: string | NodeJS.ArrayBufferView, ...rest: unknown[]): number {
  let bytes: Uint8Array;
  let position: Position;
  if (typeof data === 'string') {
    bytes = Buffer.from(data, (rest[1] as BufferEncoding | undefined) ?? 'utf8');
    position = rest[0] as Position;
  } else {
    const [offset = 0, length, pos] = rest as [number?, number?, Position?];
    bytes = view(data, offset, length ?? data.byteLength - offset);
    position = pos;
  }
  if (position === null || position === undefined) return check(libc!.write(fd, bytes, bytes.length), 'write');
  return check(libc!.pwrite(fd, bytes, bytes.length, Number(position)), 'write');
}

function denoFstat(fd: number, options?: fs.StatOptions): fs.Stats | fs.BigIntStats {
  check(libc!.fcntl(fd, F_GETFD, 0), 'fstat'); // EBADF for a closed number, as fstat says
  return fs.statSync(`/proc/self/fd/${fd}`, options) as fs.Stats | fs.BigIntStats;
}

function denoFtruncate(fd: number, len = 0): void {
  check(libc!.ftruncate(fd, len), 'ftruncate');
}

function denoReadFile(file: fs.PathOrFileDescriptor, options?: unknown): string | Buffer {
  if (typeof file !== 'number') return fs.readFileSync(file, options as BufferEncoding);
  const chunks: Buffer[] = [];
  for (;;) {
    const chunk = Buffer.alloc(64 * 1024);
    const n = denoRead(file, chunk);
    if (n === 0) break;
    chunks.push(chunk.subarray(0, n));
  }
  const data = Buffer.concat(chunks);
  const encoding = (typeof options === 'string' ? options : (options as { encoding?: string } | undefined)?.encoding) as BufferEncoding | undefined;
  return encoding ? data.toString(encoding) : data;
}

export const openSync: typeof fs.openSync = deno ? (denoOpen as typeof fs.openSync) : fs.openSync;
export const closeSync: typeof fs.closeSync = deno ? denoClose : fs.closeSync;
export const readSync: typeof fs.readSync = deno ? (denoRead as typeof fs.readSync) : fs.readSync;
export const writeSync: typeof fs.writeSync = deno ? (denoWrite as typeof fs.writeSync) : fs.writeSync;
export const fstatSync: typeof fs.fstatSync = deno ? (denoFstat as typeof fs.fstatSync) : fs.fstatSync;
export const ftruncateSync: typeof fs.ftruncateSync = deno ? denoFtruncate : fs.ftruncateSync;
export const readFileSync: typeof fs.readFileSync = deno ? (denoReadFile as typeof fs.readFileSync) : fs.readFileSync;
