/** One message to send (sync or async), and what a failed or cut-off send reports. */
import { constants as osConstants } from 'node:os';
import type { Credentials } from './cmsg.js';
import { FdPassError, errnoName, errnoNumber, notOpenError } from './errors.js';
import { Fd, dupCloexec, holdFd, unholdFd, type FdHolder } from './fd.js';
import type { FdLike } from './fdlike.js';
import { C, closeAllQuietly, closeQuietly, lastErrno, sys } from './libc.js';
import type { HandOff } from './node.js';
import { noop, type Waiter } from './wait-queue.js';

const { EBADF, EINVAL, EPERM, EMSGSIZE } = osConstants.errno;
const F_DUPFD_CLOEXEC = C.F_DUPFD_CLOEXEC;
const ETOOMANYREFS = errnoNumber('ETOOMANYREFS');

function isOpen(fd: number): boolean {
  return (sys.fcntl(fd, C.F_GETFD) as number) >= 0;
}

/** Which descriptor of a send is not open: looked for only after sendmsg said EBADF. */
function badFdHint(op: SendOp, socketFd: number): string | undefined {
  const i = op.fds.findIndex((fd) => !isOpen(fd));
  if (i >= 0) return `fds[${i}] (fd ${op.fds[i]}) is not open`;
  if (!isOpen(socketFd)) return `the socket's own fd ${socketFd} is not open (was it closed behind this UnixSocket's back?)`;
  return undefined;
}

/** A failed sendmsg, with the cause spelled out for the errors a careless caller or a hostile or busy peer provokes. */
export function sendError(errno: number, op: SendOp, socketFd: number): FdPassError {
  const code = errnoName(errno);
  let hint: string | undefined;
  if (errno === EBADF) {
    hint = badFdHint(op, socketFd);
  } else if (errno === EPERM && op.credentials !== undefined) {
    const { pid, uid, gid } = op.credentials;
    hint = `the kernel refused the SCM_CREDENTIALS claim { pid: ${pid}, uid: ${uid}, gid: ${gid} }: without privilege a process may claim only its own pid, uid and gid`;
  } else if (errno === ETOOMANYREFS) {
    hint = 'too many descriptors in flight: this user has more fds sent but not yet received than its RLIMIT_NOFILE allows (the peer is not reading)';
  } else if (errno === EMSGSIZE) {
    hint = `a ${op.data.length}-byte ${op.fds.length ? 'message' : 'payload'} does not fit in the socket's send buffer (SO_SNDBUF); use a stream socket or smaller messages`;
  }
  if (hint === undefined) return FdPassError.fromErrno('sendmsg', errno);
  return new FdPassError(code, `sendmsg ${code}: ${hint}`, { errno, syscall: 'sendmsg' });
}

export function partialSendError(written: number, total: number): FdPassError {
  return new FdPassError(
    'ERR_FDPASS_PARTIAL_SEND',
    `an earlier send was cancelled after ${written} of its ${total} bytes had been written: the stream now ends mid-message, so this socket cannot send any more (receiving still works); close it`,
  );
}

export class SendOp implements Waiter<number>, FdHolder {
  offset = 0;
  /** The fds (and at least one byte) are in the kernel: never send them again. */
  started = false;
  /** Duplicates this op made when it had to wait, closed when it leaves the queue. */
  dups: number[] | null = null;
  /** Fds (fdpass's own) whose descriptors this op keeps open instead of duplicating them. */
  holds: Fd[] | null = null;
  /** Set when a held Fd was released and no duplicate could be made: the op fails with it. */
  keepError: unknown = null;
  resolve: (value: number) => void = noop;
  reject: (err: unknown) => void = noop;
  constructor(
    readonly data: Buffer,
    public fds: number[],
    readonly signal: AbortSignal | undefined,
    /** SCM_CREDENTIALS to claim with every part of this message, when asked for. */
    readonly credentials: Credentials | undefined,
    /** What the caller passed as `fds` (read only while the call runs, to see which are Fds). */
    public sources: readonly FdLike[] | null = null,
  ) {}

  /** A held Fd is being released: its number is its new owner's, so keep a duplicate instead. */
  releasing(fd: Fd, n: number): void {
    const holds = this.holds!;
    holds.splice(holds.indexOf(fd), 1);
    let d: number;
    try {
      d = dupCloexec(n);
    } catch (err) {
      // Without a copy this op cannot send the file the caller passed: it fails when its turn comes.
      this.keepError ??= err;
      this.fds = this.fds.map((x) => (x === n ? -1 : x));
      return;
    }
    this.fds = this.fds.map((x) => (x === n ? d : x));
    (this.dups ??= []).push(d);
  }
}

/**
 * A send is about to wait in the queue: the caller may close its descriptors (and the numbers
 * be reused for other files) before it goes, and the peer must still get the files that were
 * passed. An fdpass `Fd` is held (its close() waits for the send; no syscall); anything else —
 * a number or a Node object, which the caller can close behind fdpass's back — is duplicated.
 */
export function keepFds(op: SendOp): void {
  const sources = op.sources;
  op.sources = null;
  const fds = op.fds;
  let dupAt: number[] | null = null;
  let holds: Fd[] | null = null;
  for (let i = 0; i < fds.length; i++) {
    const source = sources?.[i];
    if (source instanceof Fd) {
      if (holds === null) holds = [source];
      else if (!holds.includes(source)) holds.push(source);
    } else (dupAt ??= []).push(i);
  }
  // Duplicates first (they can fail); above every number of the message, as in dupAll.
  const dups = dupAt === null ? null : dupAll(dupAt.map((i) => fds[i]), Math.max(...fds) + 1, dupAt);
  // A new array: `fds` may be the caller's own.
  const kept = fds.slice();
  if (dupAt !== null) for (let k = 0; k < dupAt.length; k++) kept[dupAt[k]] = dups![k];
  if (holds !== null) for (const fd of holds) holdFd(fd, op);
  op.fds = kept;
  op.dups = dups;
  op.holds = holds;
}

/** The send left the queue (sent, failed, aborted or flushed): let go of what it kept. */
export function letGoFds(op: SendOp): void {
  if (op.dups !== null) {
    closeAllQuietly(op.dups);
    op.dups = null;
  }
  if (op.holds !== null) {
    for (const fd of op.holds) unholdFd(fd, op);
    op.holds = null;
  }
}

export function settleHandOff(handOff: HandOff, fdsSent: boolean): void {
  if (fdsSent) handOff.commit();
  else handOff.rollback();
}

/**
 * close-on-exec duplicates of `fds`; on failure closes the ones made and throws. `at` gives each
 * entry's index in the message (for the error), `above` the lowest number a duplicate may take.
 */
export function dupAll(fds: readonly number[], above?: number, at?: readonly number[]): number[] {
  // A duplicate takes the lowest free number at or above the minimum it is given. Above every
  // number in the message, it can never take the number of a later entry that is closed — that
  // entry would then silently send the duplicate instead of failing. One fcntl per fd, no checks
  // before.
  let max = 0;
  for (let i = 0; i < fds.length; i++) if (fds[i] > max) max = fds[i];
  const minimum = above ?? max + 1;
  const out = new Array<number>(fds.length);
  for (let i = 0; i < fds.length; i++) {
    const d = sys.fcntl(fds[i], F_DUPFD_CLOEXEC, 'int', minimum) as number;
    if (d >= 0) {
      out[i] = d;
      continue;
    }
    const errno = lastErrno();
    for (let j = 0; j < i; j++) closeQuietly(out[j]);
    if (errno === EBADF) throw notOpenError('fcntl', fds[i], '', `fds[${at?.[i] ?? i}]`);
    // EINVAL: numbers that high are past RLIMIT_NOFILE. Check them all first, then dup anywhere.
    if (errno === EINVAL) return dupAllChecked(fds, at);
    throw FdPassError.fromErrno('fcntl', errno);
  }
  return out;
}

function dupAllChecked(fds: readonly number[], at?: readonly number[]): number[] {
  // Every fd must be open before the first dup: a duplicate takes the lowest free number, which
  // may be a closed number later in the list.
  const closed = fds.findIndex((fd) => !isOpen(fd));
  if (closed >= 0) throw notOpenError('fcntl', fds[closed], '', `fds[${at?.[closed] ?? closed}]`);
  const out: number[] = [];
  try {
    for (const fd of fds) out.push(dupCloexec(fd));
  } catch (err) {
    for (const fd of out) closeQuietly(fd);
    throw err;
  }
  return out;
}
