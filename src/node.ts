/**
 * Node objects -> fd numbers. Everywhere fdpass takes an fd it takes an FdLike: a number,
 * an Fd, or a Node object that owns a descriptor.
 */
import { invalidArgType, outOfRange } from './errors.js';

/** Anything that owns a descriptor: `net.Socket`, `net.Server`, `dgram.Socket`, `FileHandle`, fs streams, `Fd`, `UnixSocket`. */
export type FdLike = number | { readonly fd: number | null | undefined } | object;

interface HandleOwner {
  _handle?: { fd?: number } | null;
}

/** dgram.Socket keeps its handle under a symbol-keyed state object. */
function dgramHandleFd(obj: object): number | undefined {
  for (const sym of Object.getOwnPropertySymbols(obj)) {
    const state = (obj as Record<symbol, unknown>)[sym] as { handle?: { fd?: number } } | undefined;
    if (state && typeof state === 'object' && state.handle && typeof state.handle.fd === 'number') return state.handle.fd;
  }
  return undefined;
}

/** The descriptor number an FdLike stands for. Throws TypeError/RangeError, never touches the fd. */
export function fdOf(value: FdLike, name = 'fd'): number {
  let fd: unknown;
  if (typeof value === 'number') fd = value;
  else if (value !== null && typeof value === 'object') {
    if ('fd' in value) fd = (value as { fd: unknown }).fd;
    else if ('_handle' in value) fd = (value as HandleOwner)._handle?.fd;
    else fd = dgramHandleFd(value);
    if (typeof fd !== 'number') {
      throw invalidArgType(name, 'an fd number or an object that owns an open descriptor (net.Socket, net.Server, dgram.Socket, FileHandle, Fd)', value);
    }
  } else {
    throw invalidArgType(name, 'an fd number or an object that owns an open descriptor', value);
  }
  if (!Number.isInteger(fd) || (fd as number) < 0 || (fd as number) > 0x7fffffff) {
    throw outOfRange(name, 'an open descriptor (an integer >= 0)', fd);
  }
  return fd as number;
}
