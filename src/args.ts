/** Argument checks and conversions shared by the public entry points (before any syscall). */
import { Buffer } from 'node:buffer';
import type { Credentials } from './cmsg.js';
import { invalidArgType, outOfRange } from './errors.js';
import { Fd } from './fd.js';
import { C } from './libc.js';
import { fdOf, type FdLike } from './fdlike.js';

export { fdNumber } from './fdlike.js';

/** Message data: a string (UTF-8), Buffer or Uint8Array; empty or missing is sent as one NUL byte. */
export type Payload = string | Uint8Array | null | undefined;

/** An AbortSignal option. */
export interface SignalOptions {
  /** Cancels a waiting operation with an AbortError; the socket stays usable. */
  signal?: AbortSignal;
}

export const NUL_BYTE = Buffer.alloc(1);
export const NO_FDS: number[] = [];

export function toPayload(data: Payload): Buffer {
  if (data === undefined || data === null) return NUL_BYTE;
  if (typeof data === 'string') return data.length === 0 ? NUL_BYTE : Buffer.from(data, 'utf8');
  if (data instanceof Uint8Array) {
    if (data.length === 0) return NUL_BYTE;
    return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  }
  throw invalidArgType('data', 'a string, Buffer or Uint8Array', data);
}

export function toFdNumbers(fds: readonly FdLike[] | undefined | null): number[] {
  if (fds === undefined || fds === null) return NO_FDS;
  if (!Array.isArray(fds)) throw invalidArgType('fds', 'an array of fds', fds);
  if (fds.length > C.SCM_MAX_FD) {
    throw outOfRange('fds.length', `at most ${C.SCM_MAX_FD} (the kernel's SCM_MAX_FD: the most fds one message can carry)`, fds.length);
  }
  const out = new Array<number>(fds.length);
  for (let i = 0; i < fds.length; i++) {
    const f = fds[i];
    // `(f | 0) === f`: an int32, so nothing above 2^31-1 is truncated into another fd; the rest
    // (objects, bad numbers) goes through fdOf, which says what is wrong.
    out[i] = typeof f === 'number' && (f | 0) === f && f >= 0 ? f : f instanceof Fd ? f.fd : fdOf(f, `fds[${i}]`);
  }
  return out;
}

export function toCredentials(value: unknown): Credentials | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object') throw invalidArgType('options.credentials', 'an object { pid, uid, gid }', value);
  const c = value as Credentials;
  return {
    pid: requiredInteger(c.pid, 'options.credentials.pid', 0x7fffffff),
    uid: requiredInteger(c.uid, 'options.credentials.uid', 0xfffffffe),
    gid: requiredInteger(c.gid, 'options.credentials.gid', 0xfffffffe),
  };
}

export function requiredInteger(value: unknown, name: string, max: number): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'an integer', value);
  return integerOption(value, name, 0, max, 0);
}

/** An optional integer option: undefined gives `fallback`; a non-number is a TypeError, anything else out of range a RangeError. */
export function integerOption(value: unknown, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw invalidArgType(name, 'a number', value);
  if (!Number.isInteger(value) || value < min || value > max) throw outOfRange(name, `an integer from ${min} to ${max}`, value);
  return value;
}

/** The longest timeout: what poll(2) and setTimeout can wait for. */
export const MAX_TIMEOUT_MS = 0x7fffffff;

/**
 * Every `timeoutMs` option: an integer from 0 to 2^31-1 milliseconds, or Infinity (the same as
 * leaving it out: wait forever). Negative numbers are refused, never read as "forever".
 * Returns the milliseconds, or -1 for forever (poll(2)'s convention, as waitSync takes it).
 */
export function timeoutOption(value: unknown, name = 'options.timeoutMs'): number {
  if (value === undefined || value === Infinity) return -1;
  return integerOption(value, name, 0, MAX_TIMEOUT_MS, -1);
}

export function checkSignal(options: SignalOptions | undefined): AbortSignal | undefined {
  const signal = options?.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgType('options.signal', 'an AbortSignal', signal);
  return signal;
}
