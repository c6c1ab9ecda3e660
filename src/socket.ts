/** UnixSocket: sendmsg/recvmsg with SCM_RIGHTS, sync and async; socketPair, connect, adopt. */
import { constants as osConstants } from 'node:os';
import { encodeUnixAddress, type UnixAddress } from './address.js';
import { parseControl, type Credentials, type ParsedControl } from './cmsg.js';
import { FdPassError, abortError, errnoName, errnoNumber, invalidArgType, invalidArgValue, outOfRange } from './errors.js';
import { Fd, dupCloexec } from './fd.js';
import { C, EAGAIN, ECONNREFUSED, EINTR, EPROTOTYPE, ETIMEDOUT, L, check, closeQuietly, fcntlInt, lastErrno, sys } from './libc.js';
import { RecvBuffers, SendBuffers } from './msghdr.js';
import { fdOf, prepareHandOff, type FdLike, type HandOff } from './node.js';
import { POLLIN, POLLOUT, Watcher, waitSync } from './poll.js';
import { peerPidFdOf, type PidFd } from './pidfd.js';
import { getIntOption, peerCredentials, setIntOption, socketTypeName } from './sockopt.js';

export type SocketType = 'stream' | 'seqpacket' | 'dgram';
export type Payload = string | Uint8Array | null | undefined;

export interface Message {
  /** The bytes received. An empty payload sent by fdpass (or most C/Go/Perl peers) arrives as one NUL byte. */
  data: Buffer;
  /** The descriptors that came with the message, close-on-exec, owned by the caller. */
  fds: Fd[];
  /** Sender's credentials, when the socket has SO_PASSCRED set. */
  credentials?: Credentials;
  /** Fds beyond `maxFds` (or in control messages fdpass does not hand out) that were closed. */
  droppedFds: number;
}

export interface RecvOptions {
  /** Largest payload accepted (default 65536). A longer datagram/seqpacket message fails with ERR_FDPASS_TRUNC. */
  maxBytes?: number;
  /** Most fds handed to the caller (default 253, the kernel's limit); any beyond are closed. */
  maxFds?: number;
}

export interface RecvSyncOptions extends RecvOptions {
  /** Give up with ETIMEDOUT after this long; default waits forever. */
  timeoutMs?: number;
}

export interface SignalOptions {
  /** Cancels a waiting operation with an AbortError; the socket stays usable. */
  signal?: AbortSignal;
}

/**
 * `close: true` hands the sent objects off: the sender's copies are closed once the message
 * is in the kernel. A `net.Socket` stops reading (libuv readStop) before the message goes, so
 * no byte is consumed by this process after the hand-off starts, and is destroyed after
 * sendmsg succeeded; a `net.Server`, `dgram.Socket`, `FileHandle`, fs stream, `Fd`,
 * `UnixSocket` or fd number is closed. If nothing was sent (an error, an abort), every object
 * is left as it was and reading resumes. Checked before sending: a `net.Socket` holding bytes
 * it already read or has not yet written is refused (ERR_FDPASS_BUSY).
 */
export interface HandOffOptions {
  close?: boolean;
}

/**
 * `credentials` adds an SCM_CREDENTIALS control message claiming this pid/uid/gid. The kernel
 * checks the claim: a process may claim only its own pid and one of its own real/effective/saved
 * uids and gids, unless privileged (CAP_SYS_ADMIN for another pid, CAP_SETUID / CAP_SETGID for
 * other ids); otherwise the send fails with EPERM and nothing is sent. A receiver sees it only
 * with `passCredentials()` — and then sees the sender's real ids even when none are sent.
 */
export interface CredentialsOptions {
  credentials?: Credentials;
}

export interface SendSyncOptions extends HandOffOptions, CredentialsOptions {
  timeoutMs?: number;
}

export interface SendOptions extends SignalOptions, HandOffOptions, CredentialsOptions {}

const SEND_FLAGS = C.MSG_NOSIGNAL | C.MSG_DONTWAIT;
const RECV_FLAGS = C.MSG_CMSG_CLOEXEC | C.MSG_DONTWAIT;
const DEFAULT_MAX_BYTES = 65536;
const MAX_MAX_BYTES = 1 << 30;
const NUL_BYTE = Buffer.alloc(1);
const NO_FDS: number[] = [];
export const AGAIN = Symbol('EAGAIN');

export const socketTypes: Record<SocketType, number> = { stream: C.SOCK_STREAM, seqpacket: C.SOCK_SEQPACKET, dgram: C.SOCK_DGRAM };

// One set of msghdr buffers per thread: every syscall fills and reads them synchronously.
let sendBuffers: SendBuffers | undefined;
let recvBuffers: RecvBuffers | undefined;

function socketTypeOf(type: unknown, name = 'type'): number {
  const n = socketTypes[type as SocketType];
  if (n === undefined) throw invalidArgValue(name, `must be 'stream', 'seqpacket' or 'dgram'. Received ${String(type)}`);
  return n;
}

function toPayload(data: Payload): Buffer {
  if (data === undefined || data === null) return NUL_BYTE;
  if (typeof data === 'string') return data.length === 0 ? NUL_BYTE : Buffer.from(data, 'utf8');
  if (data instanceof Uint8Array) {
    if (data.length === 0) return NUL_BYTE;
    return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  }
  throw invalidArgType('data', 'a string, Buffer or Uint8Array', data);
}

function toFdNumbers(fds: readonly FdLike[] | undefined | null): number[] {
  if (fds === undefined || fds === null) return NO_FDS;
  if (!Array.isArray(fds)) throw invalidArgType('fds', 'an array of fds', fds);
  if (fds.length > C.SCM_MAX_FD) {
    throw outOfRange('fds.length', `at most ${C.SCM_MAX_FD} (the kernel's SCM_MAX_FD: the most fds one message can carry)`, fds.length);
  }
  const out = new Array<number>(fds.length);
  for (let i = 0; i < fds.length; i++) {
    const f = fds[i];
    out[i] = typeof f === 'number' && f >= 0 && Number.isInteger(f) ? f : f instanceof Fd ? f.fd : fdOf(f, `fds[${i}]`);
  }
  return out;
}

function toCredentials(value: unknown): Credentials | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object') throw invalidArgType('options.credentials', 'an object { pid, uid, gid }', value);
  const c = value as Credentials;
  return {
    pid: requiredInteger(c.pid, 'options.credentials.pid', 0x7fffffff),
    uid: requiredInteger(c.uid, 'options.credentials.uid', 0xfffffffe),
    gid: requiredInteger(c.gid, 'options.credentials.gid', 0xfffffffe),
  };
}

function requiredInteger(value: unknown, name: string, max: number): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'an integer', value);
  return integerOption(value, name, 0, max, 0);
}

export function integerOption(value: unknown, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw outOfRange(name, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

export function checkSignal(options: SignalOptions | undefined): AbortSignal | undefined {
  const signal = options?.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgType('options.signal', 'an AbortSignal', signal);
  return signal;
}

export function closedError(what: string): FdPassError {
  return new FdPassError('ERR_FDPASS_CLOSED', `${what} is closed`);
}

export function busyError(op: string): FdPassError {
  return new FdPassError('ERR_FDPASS_BUSY', `${op}Sync cannot run while async ${op} calls are pending on this socket (it would reorder them)`);
}

const { EPERM, EMSGSIZE } = osConstants.errno;
const ETOOMANYREFS = errnoNumber('ETOOMANYREFS');

/** A failed sendmsg, with the cause spelled out for the errors a hostile or busy peer provokes. */
function sendError(errno: number, op: SendOp): FdPassError {
  const code = errnoName(errno);
  let hint: string | undefined;
  if (errno === EPERM && op.credentials !== undefined) {
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

function partialSendError(written: number, total: number): FdPassError {
  return new FdPassError(
    'ERR_FDPASS_PARTIAL_SEND',
    `an earlier send was cancelled after ${written} of its ${total} bytes had been written: the stream now ends mid-message, so this socket cannot send any more (receiving still works); close it`,
  );
}

export function timeoutError(syscall: string): FdPassError {
  return new FdPassError('ETIMEDOUT', `${syscall} ETIMEDOUT`, { syscall, errno: ETIMEDOUT });
}

export interface Waiter<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** One message to send; the same shape for sync and async calls (one hidden class on the hot path). */
class SendOp implements Waiter<number> {
  offset = 0;
  /** The fds (and at least one byte) are in the kernel: never send them again. */
  started = false;
  /** `fds` are duplicates this op made when it had to wait, closed when it leaves the queue. */
  ownsFds = false;
  resolve: (value: number) => void = noop;
  reject: (err: unknown) => void = noop;
  onAbort: (() => void) | undefined = undefined;
  constructor(
    readonly data: Buffer,
    public fds: number[],
    readonly signal: AbortSignal | undefined,
    /** SCM_CREDENTIALS to claim with every part of this message, when asked for. */
    readonly credentials: Credentials | undefined,
  ) {}
}

interface RecvOp extends Waiter<Message | null> {
  maxBytes: number;
  maxFds: number;
}

export interface WaitQueueHooks<Op, R> {
  /** A stream send cancelled after part of it was written: the socket cannot send any more. */
  onPartialAbort?(op: Op): void;
  /** The op is about to wait in the queue (it could not complete at once). May throw: the op fails. */
  onQueue?(op: Op): void;
  /** A queued op left the queue (done, failed, aborted or flushed). */
  onLeave?(op: Op): void;
  /** A result produced for an op that was settled meanwhile (user code ran inside `attempt`). */
  onOrphan?(result: R): void;
}

/**
 * A queue of operations waiting for readiness, served strictly in order. `attempt` runs the
 * syscall for the head: it returns AGAIN (wait for the next readiness event) or a result.
 */
export class WaitQueue<Op extends Waiter<R>, R> {
  readonly ops: Op[] = [];
  constructor(
    readonly attempt: (op: Op) => R | typeof AGAIN,
    readonly onChange: () => void,
    readonly hooks: WaitQueueHooks<Op, R> = {},
  ) {}

  get waiting(): boolean {
    return this.ops.length > 0;
  }

  /** Try the head now (only when nothing is queued, to keep order); queue the rest. */
  submit(op: Op): Promise<R> {
    const promise = new Promise<R>((resolve, reject) => {
      op.resolve = resolve;
      op.reject = reject;
    });
    if (this.ops.length === 0) {
      let result: R | typeof AGAIN;
      try {
        result = this.attempt(op);
      } catch (err) {
        op.reject(err);
        return promise;
      }
      if (result !== AGAIN) {
        op.resolve(result);
        return promise;
      }
    }
    try {
      this.hooks.onQueue?.(op);
    } catch (err) {
      op.reject(err);
      return promise;
    }
    if (op.signal) {
      const signal = op.signal;
      op.onAbort = () => this.abort(op, signal);
      signal.addEventListener('abort', op.onAbort, { once: true });
    }
    this.ops.push(op);
    try {
      this.onChange();
    } catch (err) {
      // Could not start waiting (e.g. the fd is already watched elsewhere): fail this op.
      this.finish(op);
      op.reject(err);
    }
    return promise;
  }

  /** Serve queued operations until one would block. */
  drain(): void {
    while (this.ops.length > 0) {
      const op = this.ops[0];
      let result: R | typeof AGAIN;
      try {
        result = this.attempt(op);
      } catch (err) {
        if (this.ops[0] !== op) continue; // settled meanwhile (aborted, or closed)
        this.finish(op);
        op.reject(err);
        continue;
      }
      if (this.ops[0] !== op) {
        // User code inside attempt (authorize) aborted this op or closed the queue's owner.
        if (result !== AGAIN) this.hooks.onOrphan?.(result);
        continue;
      }
      if (result === AGAIN) break;
      this.finish(op);
      op.resolve(result);
    }
    this.onChange();
  }

  /** Settle everything still queued (on close). */
  flush(settle: (op: Op) => void): void {
    for (const op of this.ops.splice(0)) {
      this.left(op);
      settle(op);
    }
  }

  /** Remove `op` (by identity: user code may have changed the queue meanwhile). */
  private finish(op: Op): void {
    const i = this.ops.indexOf(op);
    if (i >= 0) this.ops.splice(i, 1);
    this.left(op);
  }

  private left(op: Op): void {
    if (op.onAbort) op.signal?.removeEventListener('abort', op.onAbort);
    this.hooks.onLeave?.(op);
  }

  private abort(op: Op, signal: AbortSignal): void {
    if (!this.ops.includes(op)) return;
    this.finish(op);
    const err = abortError(signal);
    if (op instanceof SendOp && op.started) {
      // Part of a stream message is in the kernel and cannot be taken back. Waiting for a peer
      // that may never read would make the signal useless: cancel, and stop this socket sending.
      Object.assign(err, { bytesWritten: op.offset });
      err.message += ` after ${op.offset} of ${op.data.length} bytes were written (the socket can no longer send)`;
      this.hooks.onPartialAbort?.(op);
    }
    op.reject(err);
    this.onChange();
  }
}

/** A send failed: if its fds already went (a stream send failed part-way), they are gone. */
function settleHandOff(handOff: HandOff, fdsSent: boolean): void {
  if (fdsSent) handOff.commit();
  else handOff.rollback();
}

/** close-on-exec duplicates of `fds`; on failure closes the ones made and throws. */
function dupAll(fds: readonly number[]): number[] {
  const out: number[] = [];
  try {
    for (const fd of fds) out.push(dupCloexec(fd));
  } catch (err) {
    for (const fd of out) closeQuietly(fd);
    throw err;
  }
  return out;
}

export function newWaiter<T>(signal: AbortSignal | undefined): Waiter<T> {
  return { resolve: noop, reject: noop, signal, onAbort: undefined };
}
function noop(): void {}

/**
 * A connected Unix domain socket that carries data and descriptors.
 * Created by `socketPair()`, `connect()`, `connectSync()`, `UnixServer.accept()` or `adopt()`.
 */
export class UnixSocket {
  #fd: number;
  readonly type: SocketType;
  /** Readiness on the event loop; holds no uv handle until an operation waits. */
  readonly #watcher: Watcher;
  readonly #sends: WaitQueue<SendOp, number>;
  readonly #recvs: WaitQueue<RecvOp, Message | null>;
  /** Set once a stream send was cut off mid-message: every later send fails with it. */
  #sendBroken: FdPassError | null = null;

  /** Wrap a connected AF_UNIX socket descriptor and take ownership of it. Prefer `adopt()`. */
  constructor(fd: number, type: SocketType) {
    this.#fd = fd;
    this.type = type;
    this.#watcher = new Watcher(fd, (readable, writable) => this.#onReady(readable, writable));
    this.#sends = new WaitQueue<SendOp, number>(
      (op) => (this.#trySend(op) ? op.data.length : AGAIN),
      () => this.#updateInterest(),
      {
        onPartialAbort: (op) => this.#breakSending(op),
        // A waiting send holds its own duplicates: the caller may close (and the number be
        // reused for another file) before the message goes, and the peer must still get the
        // file that was passed.
        onQueue: (op) => {
          if (op.started || op.fds.length === 0) return;
          op.fds = dupAll(op.fds);
          op.ownsFds = true;
        },
        onLeave: (op) => {
          if (!op.ownsFds) return;
          for (const fd of op.fds) closeQuietly(fd);
          op.ownsFds = false;
        },
      },
    );
    this.#recvs = new WaitQueue<RecvOp, Message | null>((op) => this.#tryRecv(op.maxBytes, op.maxFds), () => this.#updateInterest());
  }

  /** The descriptor number (owned by this socket). Throws once closed. */
  get fd(): number {
    if (this.#fd < 0) throw closedError('UnixSocket');
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /**
   * Send `data` (string, Buffer or Uint8Array; empty becomes one NUL byte) with `fds`, blocking
   * until the kernel has queued it all. Returns the bytes written. The fds stay open here:
   * the receiver gets new descriptors for the same open files.
   */
  sendSync(data?: Payload, fds?: readonly FdLike[] | null, options?: SendSyncOptions): number {
    const op = new SendOp(toPayload(data), toFdNumbers(fds), undefined, options === undefined ? undefined : toCredentials(options.credentials));
    const timeoutMs = integerOption(options?.timeoutMs, 'options.timeoutMs', -1, 0x7fffffff, -1);
    if (this.#sends.waiting) throw busyError('send');
    if (this.#sendBroken !== null) throw this.#sendBroken;
    const handOff = options?.close ? prepareHandOff(fds ?? []) : null;
    const deadline = timeoutMs < 0 ? -1 : Date.now() + timeoutMs;
    try {
      while (!this.#trySend(op)) {
        if (!waitSync(this.fd, POLLOUT, deadline < 0 ? -1 : Math.max(0, deadline - Date.now()))) {
          // A stream message cut off part-way: the peer would read the next message as its rest.
          if (op.started) this.#breakSending(op);
          throw timeoutError('sendmsg');
        }
      }
    } catch (err) {
      if (handOff) settleHandOff(handOff, op.started);
      throw err;
    }
    handOff?.commit();
    return op.data.length;
  }

  /** Send asynchronously, in order with other `send` calls; resolves with the bytes written. */
  send(data?: Payload, fds?: readonly FdLike[] | null, options?: SendOptions): Promise<number> {
    let op: SendOp;
    let handOff: HandOff | null = null;
    try {
      const signal = checkSignal(options);
      if (signal?.aborted) return Promise.reject(abortError(signal));
      op = new SendOp(toPayload(data), toFdNumbers(fds), signal, options === undefined ? undefined : toCredentials(options.credentials));
      this.fd;
      if (this.#sendBroken !== null) throw this.#sendBroken;
      if (options?.close) handOff = prepareHandOff(fds ?? []);
    } catch (err) {
      return Promise.reject(err);
    }
    const sent = this.#sends.submit(op);
    if (handOff === null) return sent;
    const h = handOff;
    return sent.then(
      (n) => (h.commit(), n),
      (err: unknown) => {
        settleHandOff(h, op.started);
        throw err;
      },
    );
  }

  /**
   * Receive one message, blocking the thread until it arrives. Returns null at end of stream
   * (the peer closed). Throws ETIMEDOUT after `timeoutMs`.
   */
  recvSync(options?: RecvSyncOptions): Message | null {
    const maxBytes = integerOption(options?.maxBytes, 'options.maxBytes', 1, MAX_MAX_BYTES, DEFAULT_MAX_BYTES);
    const maxFds = integerOption(options?.maxFds, 'options.maxFds', 0, C.SCM_MAX_FD, C.SCM_MAX_FD);
    const timeoutMs = integerOption(options?.timeoutMs, 'options.timeoutMs', -1, 0x7fffffff, -1);
    if (this.#recvs.waiting) throw busyError('recv');
    const deadline = timeoutMs < 0 ? -1 : Date.now() + timeoutMs;
    for (;;) {
      const result = this.#tryRecv(maxBytes, maxFds);
      if (result !== AGAIN) return result;
      if (!waitSync(this.fd, POLLIN, deadline < 0 ? -1 : Math.max(0, deadline - Date.now()))) throw timeoutError('recvmsg');
    }
  }

  /**
   * Receive one message; resolves null at end of stream, or when this socket is closed while the
   * call waits. On a socket that is already closed it rejects with ERR_FDPASS_CLOSED.
   */
  recv(options?: RecvOptions & SignalOptions): Promise<Message | null> {
    let op: RecvOp;
    try {
      const signal = checkSignal(options);
      const maxBytes = integerOption(options?.maxBytes, 'options.maxBytes', 1, MAX_MAX_BYTES, DEFAULT_MAX_BYTES);
      const maxFds = integerOption(options?.maxFds, 'options.maxFds', 0, C.SCM_MAX_FD, C.SCM_MAX_FD);
      if (signal?.aborted) return Promise.reject(abortError(signal));
      op = Object.assign(newWaiter<Message | null>(signal), { maxBytes, maxFds });
      this.fd;
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#recvs.submit(op);
  }

  /** `for await (const msg of socket)`: every message until end of stream. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Message, void, undefined> {
    // Ends at end of stream, and when this socket is closed (between messages or while waiting).
    while (!this.closed) {
      const msg = await this.recv();
      if (msg === null) return;
      yield msg;
    }
  }

  /** SO_PEERCRED: pid, uid and gid of the peer when the connection was made. */
  peerCredentials(): Credentials {
    return peerCredentials(this.fd);
  }

  /**
   * SO_PASSCRED: from now on each received message carries the sender's pid/uid/gid in
   * `message.credentials`, checked by the kernel. Set it before the peer sends.
   */
  passCredentials(on = true): this {
    setIntOption(this.fd, C.SO_PASSCRED, on ? 1 : 0);
    return this;
  }

  /**
   * A PidFd for the peer process (SO_PEERPIDFD, Linux 6.5+): unlike the pid in
   * `peerCredentials()`, it cannot be recycled to name a different process.
   */
  peerPidFd(): PidFd {
    return peerPidFdOf(this.fd);
  }

  /**
   * shutdown(2): ends reading and/or writing for every process that holds this socket
   * (unlike `close()`, which only drops this process's descriptor). Default 'write'.
   */
  shutdown(how: 'read' | 'write' | 'both' = 'write'): void {
    const value = how === 'read' ? C.SHUT_RD : how === 'write' ? C.SHUT_WR : how === 'both' ? C.SHUT_RDWR : undefined;
    if (value === undefined) throw invalidArgValue('how', `must be 'read', 'write' or 'both'. Received ${String(how)}`);
    check('shutdown', sys.shutdown(this.fd, value) as number);
  }

  /** Close this process's descriptor. Pending `recv`s resolve null; pending `send`s reject. Idempotent. */
  close(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#watcher.close(); // the uv handle must go before the fd
    this.#fd = -1;
    closeQuietly(fd);
    this.#sends.flush((op) => op.reject(closedError('UnixSocket')));
    this.#recvs.flush((op) => op.resolve(null));
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Let a pending operation keep the process alive (the default). */
  ref(): this {
    this.#watcher.ref();
    return this;
  }

  /** Pending operations on this socket no longer keep the process alive. */
  unref(): this {
    this.#watcher.unref();
    return this;
  }

  /** Give up ownership of the descriptor without closing it; the socket becomes closed. */
  release(): number {
    const fd = this.fd;
    if (this.#sends.waiting || this.#recvs.waiting) throw new FdPassError('ERR_FDPASS_BUSY', 'cannot release a socket with pending operations');
    this.#watcher.close();
    this.#fd = -1;
    return fd;
  }

  #updateInterest(): void {
    if (this.#fd >= 0) this.#watcher.want(this.#recvs.waiting, this.#sends.waiting);
  }

  /** A stream send stopped part-way: fail it for good, with every send still queued behind it. */
  #breakSending(op: SendOp): void {
    const err = partialSendError(op.offset, op.data.length);
    this.#sendBroken = err;
    this.#sends.flush((queued) => queued.reject(err));
  }

  #onReady(readable: boolean, writable: boolean): void {
    if (writable) this.#sends.drain();
    if (readable && this.#fd >= 0) this.#recvs.drain();
  }

  /** One step of a send: true when all of it is in the kernel, false on EAGAIN. */
  #trySend(op: SendOp): boolean {
    const fd = this.fd;
    const buffers = (sendBuffers ??= new SendBuffers());
    for (;;) {
      // Stream sockets may take part of the bytes: the fds went with the first part, never again.
      // Credentials go with every part, so the receiver never sees the rest under other ids.
      const msghdr = op.credentials === undefined
        ? buffers.prepare(op.data, op.offset, op.started ? null : op.fds)
        : buffers.prepareWithCredentials(op.data, op.offset, op.started ? null : op.fds, op.credentials);
      const n = sys.sendmsg(fd, msghdr, SEND_FLAGS) as number;
      buffers.unpin();
      if (n < 0) {
        const errno = lastErrno();
        if (errno === EINTR) continue;
        if (errno === EAGAIN) return false;
        throw sendError(errno, op);
      }
      op.started = true;
      op.offset += n;
      if (op.offset >= op.data.length) return true;
    }
  }

  /** One recvmsg: a message, null at end of stream, or AGAIN when nothing is queued. */
  #tryRecv(maxBytes: number, maxFds: number): Message | null | typeof AGAIN {
    const fd = this.fd;
    const buffers = (recvBuffers ??= new RecvBuffers());
    let n: number;
    for (;;) {
      n = sys.recvmsg(fd, buffers.prepare(maxBytes), RECV_FLAGS) as number;
      if (n >= 0) break;
      const errno = lastErrno();
      if (errno === EINTR) continue;
      if (errno === EAGAIN) return AGAIN;
      throw FdPassError.fromErrno('recvmsg', errno);
    }
    const flags = buffers.flags;
    const controlLength = buffers.controlLength;
    let received = NO_FDS;
    let control: ParsedControl | undefined;
    if (controlLength > 0) {
      const single = buffers.singleRights(controlLength);
      if (single !== null) received = single;
      else {
        control = parseControl(buffers.control, controlLength, L.cmsghdr, L.ucred, C);
        received = control.fds;
      }
    }
    const extra = control?.extraFds ?? NO_FDS;
    for (const x of extra) closeQuietly(x);
    if (flags & C.MSG_CTRUNC) {
      for (const x of received) closeQuietly(x);
      throw new FdPassError(
        'ERR_FDPASS_CTRUNC',
        `recvmsg: control data was truncated (MSG_CTRUNC): descriptors were lost${received.length ? `; the ${received.length} that arrived were closed` : ''}. The receiver may be out of file descriptors (EMFILE)`,
        { syscall: 'recvmsg' },
      );
    }
    if (flags & C.MSG_TRUNC && this.type !== 'stream') {
      for (const x of received) closeQuietly(x);
      throw new FdPassError('ERR_FDPASS_TRUNC', `recvmsg: a message longer than maxBytes (${maxBytes}) was truncated and discarded${received.length ? `, and its ${received.length} fds closed` : ''}`, { syscall: 'recvmsg' });
    }
    if (n === 0 && received.length === 0 && this.type !== 'dgram') return null;
    const keep = received.length <= maxFds ? received.length : maxFds;
    for (let i = keep; i < received.length; i++) closeQuietly(received[i]);
    const fds = new Array<Fd>(keep);
    for (let i = 0; i < keep; i++) fds[i] = new Fd(received[i]);
    const payload = Buffer.allocUnsafe(n);
    buffers.data.copy(payload, 0, 0, n);
    const message: Message = { data: payload, fds, droppedFds: received.length - keep + extra.length };
    if (control?.credentials) message.credentials = control.credentials;
    return message;
  }
}

// ---------------------------------------------------------------------------------------------
// Creating sockets

export function newSocketFd(type: number, extraFlags = 0): number {
  return check('socket', sys.socket(C.AF_UNIX, type | C.SOCK_CLOEXEC | extraFlags, 0) as number);
}

/** A connected pair of sockets (socketpair(2)); 'seqpacket' keeps message boundaries. */
export function socketPair(type: SocketType = 'seqpacket'): [UnixSocket, UnixSocket] {
  const pair = Buffer.alloc(8);
  check('socketpair', sys.socketpair(C.AF_UNIX, socketTypeOf(type) | C.SOCK_CLOEXEC, 0, pair) as number);
  return [new UnixSocket(pair.readInt32LE(0), type), new UnixSocket(pair.readInt32LE(4), type)];
}

export interface AddressOptions {
  /** A filesystem path for the socket. */
  path?: string;
  /** A Linux abstract name instead of a path (no file is created). */
  abstract?: string;
}

export interface ConnectOptions extends AddressOptions {
  /** The server's socket type. Default: try 'seqpacket', then 'stream', then 'dgram'. */
  type?: SocketType;
}

export function toAddress(target: string | AddressOptions, what: string): UnixAddress & { label: string } {
  if (typeof target === 'string') return { path: target, label: target };
  if (target === null || typeof target !== 'object') throw invalidArgType(what, 'a path string or an options object', target);
  if (target.abstract !== undefined) {
    if (typeof target.abstract !== 'string') throw invalidArgType(`${what}.abstract`, 'a string', target.abstract);
    if (target.path !== undefined) throw invalidArgValue(what, 'must have either path or abstract, not both');
    return { abstract: target.abstract, label: `@${target.abstract}` };
  }
  if (typeof target.path !== 'string') throw invalidArgType(`${what}.path`, 'a string', target.path);
  return { path: target.path, label: target.path };
}

const CONNECT_ORDER: SocketType[] = ['seqpacket', 'stream', 'dgram'];

function connectFd(target: string | ConnectOptions, nonBlocking: boolean): UnixSocket {
  const address = toAddress(target, 'target');
  const type = typeof target === 'object' ? target.type : undefined;
  if (type !== undefined) socketTypeOf(type, 'target.type');
  const types = type === undefined ? CONNECT_ORDER : [type];
  const { sockaddr, length } = encodeUnixAddress(address, L.sockaddr_un, C);
  let lastError: FdPassError | undefined;
  for (const t of types) {
    const fd = newSocketFd(socketTypes[t], nonBlocking ? C.SOCK_NONBLOCK : 0);
    let ret: number;
    do ret = sys.connect(fd, sockaddr, length) as number;
    while (ret < 0 && lastErrno() === EINTR);
    if (ret === 0) {
      try {
        if (nonBlocking) setNonBlocking(fd, false);
      } catch (err) {
        closeQuietly(fd);
        throw err;
      }
      return new UnixSocket(fd, t);
    }
    const errno = lastErrno();
    closeQuietly(fd);
    lastError = FdPassError.fromErrno('connect', errno, address.label);
    // A path is one socket whatever its type (EPROTOTYPE on a mismatch); abstract names are
    // looked up per type, so a mismatch there reads as ECONNREFUSED.
    if (errno !== EPROTOTYPE && !(errno === ECONNREFUSED && address.abstract !== undefined)) break;
  }
  throw lastError!;
}

export function setNonBlocking(fd: number, on: boolean): void {
  const flags = fcntlInt('fcntl', fd, C.F_GETFL);
  fcntlInt('fcntl', fd, C.F_SETFL, on ? flags | C.O_NONBLOCK : flags & ~C.O_NONBLOCK);
}

/** Connect to a listening Unix socket, blocking until the server's backlog has room. */
export function connectSync(target: string | ConnectOptions): UnixSocket {
  return connectFd(target, false);
}

/**
 * Connect without blocking the event loop. Unix-socket connects complete at once; a full
 * backlog fails with EAGAIN (as Node's own net.connect does for Unix paths).
 */
export async function connect(target: string | ConnectOptions): Promise<UnixSocket> {
  return connectFd(target, true);
}

/**
 * Wrap an inherited or received AF_UNIX socket descriptor (e.g. fd 3 from a parent), taking
 * ownership of it. Its type is read from the kernel (SO_TYPE).
 */
/** SO_DOMAIN, with "not a socket at all" reported as fdpass's own not-a-Unix-socket error. */
export function unixDomainOf(n: number): number {
  try {
    return getIntOption(n, C.SO_DOMAIN);
  } catch (err) {
    if ((err as FdPassError).code === 'ENOTSOCK') throw new FdPassError('ERR_FDPASS_NOT_UNIX_SOCKET', `fd ${n} is not a socket`);
    throw err;
  }
}

/**
 * The number of a descriptor to take ownership of: a number or an Fd only. A Node object
 * (net.Socket, …) would end up with two owners and two libuv watchers on one fd.
 */
export function ownedFdNumber(fd: number | Fd): number {
  if (fd instanceof Fd) return fd.fd;
  if (typeof fd !== 'number') throw invalidArgType('fd', 'an fd number or an Fd (for a Node object, pass Fd.dup(obj))', fd);
  return fdOf(fd);
}

export function adopt(fd: number | Fd): UnixSocket {
  const n = ownedFdNumber(fd);
  const domain = unixDomainOf(n);
  if (domain !== C.AF_UNIX) {
    throw new FdPassError('ERR_FDPASS_NOT_UNIX_SOCKET', `fd ${n} is not an AF_UNIX socket (SO_DOMAIN ${domain})`);
  }
  if (getIntOption(n, C.SO_ACCEPTCONN)) {
    throw new FdPassError('ERR_FDPASS_NOT_CONNECTED', `fd ${n} is a listening socket: use adoptServer()`);
  }
  const type = socketTypeName(getIntOption(n, C.SO_TYPE));
  if (type !== 'stream' && type !== 'seqpacket' && type !== 'dgram') {
    throw new FdPassError('ERR_FDPASS_NOT_UNIX_SOCKET', `fd ${n} has unsupported socket type ${type}`);
  }
  if (fd instanceof Fd) fd.release();
  return new UnixSocket(n, type);
}
