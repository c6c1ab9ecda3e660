import { constants as osConstants } from 'node:os';
import { hostPlatform } from './platform/index.js';

/** Errno names Node's os.constants.errno lacks (it lists libuv's set), from the platform table. */
const missingErrnos: Record<string, number> = hostPlatform().platform?.errno ?? {};

const errnoNumbers: Record<string, number> = { ...missingErrnos, ...osConstants.errno };
const errnoNames = new Map<number, string>(Object.entries(errnoNumbers).map(([name, value]) => [value, name]));

/** Errno name -> number on this platform ('ETOOMANYREFS' included), or undefined. */
export function errnoNumber(name: string): number | undefined {
  return errnoNumbers[name];
}

/** Positive errno -> name ('EBADF'); unknown numbers keep their value visible. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `Unknown system error ${errno}`;
}

export function errnoValue(name: keyof typeof osConstants.errno): number {
  return osConstants.errno[name];
}

export interface FdPassErrorDetails {
  /** Positive errno as the kernel returned it (stored negated in `.errno`, as Node does). */
  errno?: number;
  syscall?: string;
  path?: string;
  cause?: unknown;
}

/**
 * An error with the shape of Node's own system errors (`code`, `errno`, `syscall`,
 * optional `path`), so code written for `fs`/`net` errors handles it unchanged.
 * `code` is an errno name ('EBADF') or one of fdpass's own 'ERR_FDPASS_…' codes.
 */
export class FdPassError extends Error {
  /** An errno name ('EBADF', 'EPIPE', …) or one of fdpass's own 'ERR_FDPASS_…' codes. */
  readonly code: string;
  // `declare`: present only when set, as on Node's own errors ('path' in err is false otherwise).
  /** Negative errno, as in Node's system errors (`util.getSystemErrorName(err.errno)` works). */
  declare readonly errno?: number;
  /** The system call that failed ('sendmsg', 'connect', …), when one did. */
  declare readonly syscall?: string;
  /** The socket path involved, if any. */
  declare readonly path?: string;

  constructor(code: string, message: string, details: FdPassErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'FdPassError';
    this.code = code;
    const self = this as { errno?: number; syscall?: string; path?: string };
    if (details.errno !== undefined) self.errno = -details.errno;
    if (details.syscall !== undefined) self.syscall = details.syscall;
    if (details.path !== undefined) self.path = details.path;
  }

  /** `recvmsg EBADF`, or `connect ENOENT /run/app.sock` when a path is involved. */
  static fromErrno(syscall: string, errno: number, path?: string): FdPassError {
    const code = errnoName(errno);
    const message = path === undefined ? `${syscall} ${code}` : `${syscall} ${code} ${path}`;
    return new FdPassError(code, message, { errno, syscall, path });
  }
}

/** Node's AbortError shape: name 'AbortError', code 'ABORT_ERR', the signal's reason as cause. */
export function abortError(signal: AbortSignal): Error {
  const err = new Error('The operation was aborted', { cause: signal.reason });
  err.name = 'AbortError';
  (err as Error & { code: string }).code = 'ABORT_ERR';
  return err;
}

function codedError<E extends Error>(err: E, code: string): E {
  (err as E & { code: string }).code = code;
  return err;
}

export function invalidArgType(name: string, expected: string, actual: unknown): TypeError {
  const got = actual === null ? 'null' : typeof actual === 'object' ? `an instance of ${actual.constructor?.name ?? 'Object'}` : `type ${typeof actual} (${String(actual)})`;
  return codedError(new TypeError(`The "${name}" argument must be ${expected}. Received ${got}`), 'ERR_INVALID_ARG_TYPE');
}

export function invalidArgValue(name: string, reason: string): TypeError {
  return codedError(new TypeError(`The argument '${name}' ${reason}`), 'ERR_INVALID_ARG_VALUE');
}

export function outOfRange(name: string, range: string, actual: unknown): RangeError {
  return codedError(new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${String(actual)}`), 'ERR_OUT_OF_RANGE');
}

/** EBADF for a descriptor number that is not open, saying so (`fcntl EBADF: fd 9999 is not open`). */
export function notOpenError(syscall: string, fd: number, hint = '', what?: string): FdPassError {
  const who = what === undefined ? `fd ${fd}` : `${what} (fd ${fd})`;
  return new FdPassError('EBADF', `${syscall} EBADF: ${who} is not open${hint}`, { errno: osConstants.errno.EBADF, syscall });
}

export function closedError(what: string): FdPassError {
  return new FdPassError('ERR_FDPASS_CLOSED', `${what} is closed`);
}

export function busyError(op: string): FdPassError {
  return new FdPassError('ERR_FDPASS_BUSY', `${op}Sync cannot run while async ${op} calls are pending on this socket (it would reorder them)`);
}


export function timeoutError(syscall: string): FdPassError {
  return new FdPassError('ETIMEDOUT', `${syscall} ETIMEDOUT`, { syscall, errno: osConstants.errno.ETIMEDOUT });
}
