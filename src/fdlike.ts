/**
 * FdLike: everywhere fdpass takes an fd it takes a number, an Fd, or a Node object that owns a
 * descriptor. `fdOf` turns any of them into the number, without touching the descriptor.
 */
import * as dgram from 'node:dgram';
import { invalidArgType, outOfRange } from './errors.js';

/** Anything that owns a descriptor: `net.Socket`, `net.Server`, `dgram.Socket`, `FileHandle`, fs streams, `Fd`, `UnixSocket`. */
export type FdLike = number | { readonly fd: number | null | undefined } | object;

interface HandleOwner {
  _handle?: { fd?: number } | null;
}

/** libuv's handle as Node's net.Socket / dgram.Socket hold it (internal, read defensively). */
export interface UvStreamHandle {
  fd?: number;
  reading?: boolean;
  readStart?(): number;
  readStop?(): number;
  recvStart?(): number;
  recvStop?(): number;
  /** Bun: its socket handle stops and resumes reading from the kernel with these. */
  pause?(): void;
  resume?(): void;
}

/** dgram.Socket keeps its handle under a symbol-keyed state object. */
export function dgramState(obj: object): { handle?: UvStreamHandle | null; receiving?: boolean } | undefined {
  for (const sym of Object.getOwnPropertySymbols(obj)) {
    const state = (obj as Record<symbol, unknown>)[sym] as { handle?: UvStreamHandle } | undefined;
    if (state && typeof state === 'object' && state.handle && typeof state.handle.fd === 'number') return state;
  }
  return undefined;
}

function dgramHandleFd(obj: object): number | undefined {
  return dgramState(obj)?.handle?.fd;
}

/**
 * The one check for a descriptor number given by a caller: an integer from 0 to 2^31-1.
 * A non-number is ERR_INVALID_ARG_TYPE, any other number ERR_OUT_OF_RANGE — before any
 * syscall, so 2^32 + 1 can never be truncated into fd 1 on its way to the kernel.
 */
export function fdNumber(value: unknown, name = 'fd'): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'an fd number (an integer from 0 to 2147483647)', value);
  if ((value | 0) !== value || value < 0) throw outOfRange(name, 'an fd number (an integer from 0 to 2147483647)', value);
  return value;
}

/** The descriptor number an FdLike stands for. Throws TypeError/RangeError, never touches the fd. */
export function fdOf(value: FdLike, name = 'fd'): number {
  if (typeof value === 'number') return fdNumber(value, name);
  let fd: unknown;
  if (value !== null && typeof value === 'object') {
    if ('fd' in value) fd = (value as { fd: unknown }).fd;
    // dgram.Socket first: its `_handle` getter is deprecated (DEP0112) and warns when read.
    else if (value instanceof dgram.Socket) fd = dgramHandleFd(value);
    else if ('_handle' in value) fd = (value as HandleOwner)._handle?.fd;
    else fd = dgramHandleFd(value);
    if (typeof fd !== 'number') {
      throw invalidArgType(name, 'an fd number or an object that owns an open descriptor (net.Socket, net.Server, dgram.Socket, FileHandle, Fd)', value);
    }
  } else {
    throw invalidArgType(name, 'an fd number or an object that owns an open descriptor', value);
  }
  return fdNumber(fd, `${name}.fd`);
}
