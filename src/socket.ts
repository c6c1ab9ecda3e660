/** UnixSocket: sendmsg/recvmsg with SCM_RIGHTS, sync and async, one message or a batch at a time. */
import { Buffer } from 'node:buffer';
import { checkSignal, NO_FDS, timeoutOption, toCredentials, toFdNumbers, toPayload, type Payload, type SignalOptions } from './args.js';
import { parseControl, type Credentials, type ParsedControl, type PeerCredentials } from './cmsg.js';
import { RECV_FLAGS, SEND_FLAGS, receivedCloexec } from './create.js';
import { FdPassError, abortError, busyError, closedError, invalidArgValue, outOfRange, timeoutError } from './errors.js';
import { Fd } from './fd.js';
import { fdNumber, type FdLike } from './fdlike.js';
import { FRAME_HEADER_BYTES, FRAME_MAX_PAYLOAD, FrameReader, NEED_MORE, encodeFrameHeader } from './framing.js';
import { C, CAPS, CMSG, CREDENTIALS, EAGAIN, EINTR, check, closeAllQuietly, closeQuietly, lastErrno, sys, unsupported } from './libc.js';
import { RecvBuffers, SendBuffers, recvmmsgAt, recvmsgAt, sendmmsgAt, sendmsgAt } from './msghdr.js';
import { RecvVector } from './recv-vector.js';
import { Deferred, ReadQueue, isDeferred } from './read-queue.js';
import { messageOf } from './received.js';
import { SEND_VECTOR_SLOTS, SendVector } from './send-vector.js';
import { prepareHandOff, type HandOff } from './node.js';
import { POLLIN, POLLOUT, Watcher, waitSync } from './poll.js';
import { readinessBackend } from './readiness.js';
import { peerPidFdOf, type PidFd } from './pidfd.js';
import { SendOp, keepFds, letGoFds, partialSendError, sendError, settleHandOff } from './send-op.js';
import { peerCredentials, setIntOption } from './sockopt.js';
import { AGAIN, WaitQueue, noop, type Waiter } from './wait-queue.js';
import { BatchIterator, MessageIterator, type Iteration } from './iterators.js';
import { DEFAULT_LIMITS, DEFAULT_MAX_BYTES, MAX_FDS, batchLimits, maxBytesOption, maxFdsOption, type BatchLimits } from './recv-limits.js';

export type { Payload, SignalOptions } from './args.js';

/**
 * 'seqpacket': one send is one message (Linux, the BSDs). 'framed': the same message semantics
 * over a SOCK_STREAM socket, each message length-prefixed (see src/framing.ts) — fdpass's
 * default where SEQPACKET does not exist (darwin). 'stream': raw bytes. 'dgram': datagrams.
 */
export type SocketType = 'stream' | 'seqpacket' | 'dgram' | 'framed';

/** One received message: its bytes and the descriptors that came with it. */
export interface Message {
  /** The bytes received. An empty payload sent by fdpass (or most C/Go/Perl peers) arrives as one NUL byte. */
  data: Buffer;
  /** The descriptors that came with the message, close-on-exec, owned by the caller. */
  fds: Fd[];
  /** Sender's credentials, when the socket has `passCredentials()` on. */
  credentials?: Credentials;
  /** Fds beyond `maxFds` (or in control messages fdpass does not hand out) that were closed. */
  droppedFds: number;
}

/** Options of `recv()`. */
export interface RecvOptions extends SignalOptions {
  /** Largest payload accepted, 1 to 2^30 (default 65536). A longer datagram/seqpacket/framed message fails with ERR_FDPASS_TRUNC; on a stream the rest waits for the next call. */
  maxBytes?: number;
  /** Most fds handed to the caller, 0 to 253 (default 253, the kernel's limit); any beyond are closed and counted in `droppedFds`. */
  maxFds?: number;
}

/** Options of `recvSync()`: those of `recv()` without `signal`, plus `timeoutMs`. */
export interface RecvSyncOptions extends Omit<RecvOptions, 'signal'> {
  /** Give up with ETIMEDOUT after this many milliseconds (0 to 2^31-1). Default (or Infinity): wait forever. Negative values are refused. */
  timeoutMs?: number;
}

/**
 * Options of `recvBatch()` and `batches()`: the per-message limits of `recv()`, and the batch's
 * own. A batch ends when the next message would block, at end of stream, or once it reaches
 * one of its limits — so it holds at most `maxMessages` messages, fewer than
 * `maxBatchBytes + maxBytes` payload bytes and fewer than `maxBatchFds + maxFds` descriptors.
 */
export interface RecvBatchOptions extends RecvOptions {
  /** Most messages in one batch, 1 to 65536 (default 256). */
  maxMessages?: number;
  /** The batch ends once its payloads add up to this many bytes or more, 1 to 2^30 (default 1 MiB). */
  maxBatchBytes?: number;
  /** The batch ends once it holds this many descriptors or more, 1 to 2^20 (default 256). */
  maxBatchFds?: number;
}

/** Options of `recvBatchSync()`: those of `recvBatch()` without `signal`, plus `timeoutMs`. */
export interface RecvBatchSyncOptions extends Omit<RecvBatchOptions, 'signal'> {
  /** Give up with ETIMEDOUT after this many milliseconds (0 to 2^31-1) without a message. Default (or Infinity): wait forever. Negative values are refused. */
  timeoutMs?: number;
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
  /** Hand the sent objects off: close this process's copies once the message is in the kernel (default false). */
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
  /** Attach SCM_CREDENTIALS claiming this pid/uid/gid (checked by the kernel: EPERM for a false claim without privilege). */
  credentials?: Credentials;
}

/** Options of `sendSync()`. */
export interface SendSyncOptions extends HandOffOptions, CredentialsOptions {
  /** Give up with ETIMEDOUT after this many milliseconds (0 to 2^31-1). Default (or Infinity): wait forever. Negative values are refused. */
  timeoutMs?: number;
}

/** Options of `send()`: `signal` cancels it while it waits for room; `close` hands the sent objects off; `credentials` adds SCM_CREDENTIALS. */
export interface SendOptions extends SignalOptions, HandOffOptions, CredentialsOptions {}

const MSG_CTRUNC = C.MSG_CTRUNC;

// One set of msghdr buffers per thread: every syscall fills and reads them synchronously.
let sendBuffers: SendBuffers | undefined;
let recvBuffers: RecvBuffers | undefined;
let sendVector: SendVector | undefined;
let recvVector: RecvVector | undefined;

type RecvResult = Message | Message[] | null;

/** What a waiting receive returns: one message (recv), a batch (recvBatch), or one message with the rest of its batch read ahead (the async iterator). */
const ONE = 0;
const BATCH = 1;
const READ_AHEAD = 2;

class RecvOp implements Waiter<RecvResult> {
  resolve: (value: RecvResult) => void = noop;
  reject: (err: unknown) => void = noop;
  constructor(
    readonly signal: AbortSignal | undefined,
    readonly mode: typeof ONE | typeof BATCH | typeof READ_AHEAD,
    readonly maxBytes: number,
    readonly maxFds: number,
    readonly limits: BatchLimits,
  ) {}
}

/**
 * A zero-length seqpacket message a recvmmsg returned before other messages: the receive that
 * reaches it sees what one recvmsg would have returned for it (null).
 */
const EMPTY: unique symbol = Symbol('fdpass.empty');
/** One message a recvmmsg returned, as one recvmsg would have: a Message, an error, or EMPTY. */
type Pending = Message | Deferred | typeof EMPTY;

/** What #fillPending did: read nothing (would block), reached end of stream, did not try (fewer than two slots), or queued messages and the kernel had no more (SHORT) or maybe more (FULL). */
const FILL_AGAIN = 0;
const FILL_EOF = 1;
const FILL_NONE = 2;
const FILL_SHORT = 3;
const FILL_FULL = 4;

/**
 * Non-blocking steps for wrappers that run their own readiness on a UnixSocket they own (the
 * usocket-compatible stream, src/usocket/): not exported from the package.
 */
export interface SocketSteps {
  /** sendmsg as much of `op` as the kernel takes now: true once all of it went, false on EAGAIN. */
  send(socket: UnixSocket, op: SendOp): boolean;
  /**
   * One recvmsg: a message, null at end of stream, AGAIN when nothing is queued. With `into`,
   * the payload is received straight into it (up to its length) and `data` is a view of it.
   */
  recv(socket: UnixSocket, maxBytes: number, maxFds: number, into?: Buffer): Message | null | typeof AGAIN;
}
export let socketSteps: SocketSteps;
/** The iterators' way into a UnixSocket's private state, set up by the class. */
let iteration: Iteration;

/**
 * The fd numbers of a send. An array of plain descriptor numbers is used as it is (the op reads
 * it only during the call: a send that has to wait replaces it with duplicates at once); anything
 * else is converted and checked by toFdNumbers.
 */
function fdNumbersOf(fds: readonly FdLike[] | null | undefined): number[] {
  if (Array.isArray(fds) && fds.length <= MAX_FDS) {
    let i = 0;
    for (; i < fds.length; i++) {
      const f = fds[i];
      if (typeof f !== 'number' || (f | 0) !== f || f < 0) break;
    }
    if (i === fds.length) return fds as number[];
  }
  return toFdNumbers(fds);
}

/** A non-empty Buffer as it is (one prototype check); anything else through toPayload. */
function payloadOf(data: Payload): Buffer {
  return data instanceof Buffer && data.length > 0 ? data : toPayload(data);
}

/** The `credentials` send option: only where a sender may attach credentials (Linux). */
function credentialsOption(value: unknown): Credentials | undefined {
  const credentials = toCredentials(value);
  if (credentials !== undefined && !CAPS.credentialMessages?.claim) {
    throw unsupported('sending credentials (options.credentials)', 'the receiver can read the sender\'s identity with peerCredentials()');
  }
  return credentials;
}

/**
 * A connected Unix domain socket that carries data and descriptors.
 * Created by `socketPair()`, `connect()`, `connectSync()`, `UnixServer.accept()` or `adopt()`.
 */
export class UnixSocket {
  #fd: number;
  /** 'seqpacket', 'stream' or 'dgram', as the kernel reports it. */
  readonly type: SocketType;
  /** Readiness on the event loop; holds no uv handle until an operation waits. */
  readonly #watcher: Watcher;
  readonly #sends: WaitQueue<SendOp, number>;
  readonly #recvs: WaitQueue<RecvOp, RecvResult>;
  /** Set once a stream send was cut off mid-message: every later send fails with it. */
  #sendBroken: FdPassError | null = null;
  /** 'framed' only: bytes and descriptors read but not yet returned as a message. */
  readonly #frames: FrameReader | null;
  /** 'framed' only: credentials of the latest read, for the message it completes. */
  #frameCredentials: Credentials | undefined;
  /**
   * Messages read from the kernel before anyone asked for them (the async iterator reads a
   * batch and hands it out one message at a time), and errors that came after them. Every
   * receive serves these first, so the order is the kernel's whatever mix of calls is used.
   */
  readonly #ahead = new ReadQueue<Message | Deferred>();
  /**
   * Messages a recvmmsg returned that no receive has reached yet (beyond the limits of the batch
   * that made the call): what the kernel would still hold, read in its place by the next
   * receives, after #ahead. They were received with that batch's maxBytes and maxFds.
   */
  readonly #pending = new ReadQueue<Pending>();

  static {
    socketSteps = { send: (s, op) => s.#trySend(op), recv: (s, maxBytes, maxFds, into) => s.#tryRecv(maxBytes, maxFds, into) };
    iteration = {
      nextAhead: (s) => s.#nextAhead(),
      recvAhead: (s) => s.#submitRecv(new RecvOp(undefined, READ_AHEAD, DEFAULT_MAX_BYTES, MAX_FDS, DEFAULT_LIMITS)) as Promise<Message | null>,
      recvBatch: (s, limits, signal) => s.#submitRecv(new RecvOp(signal, BATCH, limits.maxBytes, limits.maxFds, limits)) as Promise<Message[] | null>,
    };
  }

  /** Wrap a connected AF_UNIX socket descriptor and take ownership of it. Prefer `adopt()`. */
  constructor(fd: number, type: SocketType) {
    this.#fd = fdNumber(fd);
    this.type = type;
    this.#frames = type === 'framed' ? new FrameReader() : null;
    this.#watcher = new Watcher(fd, (readable, writable) => this.#onReady(readable, writable));
    this.#sends = new WaitQueue<SendOp, number>(
      (op) => (this.#trySend(op) ? this.#payloadLength(op) : AGAIN),
      () => this.#updateInterest(),
      {
        onAbort: (op, err) => {
          if (!op.started) return;
          // Part of a stream message is in the kernel and cannot be taken back. Waiting for a peer
          // that may never read would make the signal useless: cancel, and stop this socket sending.
          Object.assign(err, { bytesWritten: op.offset });
          err.message += ` after ${op.offset} of ${op.data.length} bytes were written (the socket can no longer send)`;
          this.#breakSending(op);
        },
        // A waiting send keeps what it passes: the caller may close (and the number be reused
        // for another file) before the message goes, and the peer must still get the file that
        // was passed (see keepFds).
        onQueue: (op) => {
          if (op.started || op.fds.length === 0) op.sources = null;
          else keepFds(op);
        },
        onLeave: letGoFds,
        // Whole messages only: a stream could take part of one and go on with the next.
        attemptMany: sendmmsgAt !== null && (type === 'seqpacket' || type === 'dgram') ? (ops) => this.#sendMany(ops) : undefined,
      },
    );
    this.#recvs = new WaitQueue<RecvOp, RecvResult>(
      (op) => (op.mode === ONE ? this.#take(op.maxBytes, op.maxFds) : op.mode === BATCH ? this.#takeBatch(op.limits) : this.#takeReadAhead()),
      () => this.#updateInterest(),
    );
  }

  /** The descriptor number (owned by this socket). Throws once closed. */
  get fd(): number {
    if (this.#fd < 0) throw closedError('UnixSocket');
    return this.#fd;
  }

  /** True after close() or release(). */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /**
   * Send `data` (string, Buffer or Uint8Array; empty becomes one NUL byte) with `fds`, blocking
   * until the kernel has queued it all. Returns the bytes written. The fds stay open here:
   * the receiver gets new descriptors for the same open files.
   */
  sendSync(data?: Payload, fds?: readonly FdLike[] | null, options?: SendSyncOptions): number {
    const fdNumbers = fdNumbersOf(fds);
    const payload = this.#message(payloadOf(data), fdNumbers);
    if (options !== undefined) return this.#sendSyncWith(new SendOp(payload, fdNumbers, undefined, credentialsOption(options.credentials), null), fds, options);
    if (this.#sends.waiting) throw busyError('send');
    if (this.#sendBroken !== null) throw this.#sendBroken;
    // The hot path: one sendmsg takes all of it, and no op object is made. Kept small, so that
    // it inlines into a caller's loop.
    const fd = this.fd;
    const buffers = (sendBuffers ??= new SendBuffers());
    const n = sendmsgAt(fd, buffers.prepare(payload, 0, fdNumbers), SEND_FLAGS);
    buffers.unpin();
    if (n === payload.length) return this.#frames === null ? n : n - FRAME_HEADER_BYTES;
    return this.#sendSyncRest(new SendOp(payload, fdNumbers, undefined, undefined, null), n, fd);
  }

  /** sendSync after a first sendmsg that returned `n`: part of a stream message, EAGAIN, EINTR or an error. */
  #sendSyncRest(op: SendOp, n: number, fd: number): number {
    if (n > 0) {
      op.started = true;
      op.offset = n;
    } else if (n < 0) {
      const errno = lastErrno();
      if (errno !== EAGAIN && errno !== EINTR) throw sendError(errno, op, fd);
    }
    if (!this.#trySend(op)) this.#sendSyncWait(op, -1);
    return this.#payloadLength(op);
  }

  #sendSyncWith(op: SendOp, fds: readonly FdLike[] | null | undefined, options: SendSyncOptions): number {
    const timeoutMs = timeoutOption(options.timeoutMs);
    if (this.#sends.waiting) throw busyError('send');
    if (this.#sendBroken !== null) throw this.#sendBroken;
    const handOff = options.close ? prepareHandOff(fds ?? []) : null;
    try {
      if (!this.#trySend(op)) this.#sendSyncWait(op, timeoutMs);
    } catch (err) {
      if (handOff) settleHandOff(handOff, op.started);
      throw err;
    }
    handOff?.commit();
    return this.#payloadLength(op);
  }

  /** Block until `op` is all sent, or the timeout (ms, -1: none) passes. */
  #sendSyncWait(op: SendOp, timeoutMs: number): void {
    const deadline = timeoutMs < 0 ? -1 : Date.now() + timeoutMs;
    do {
      if (!waitSync(this.fd, POLLOUT, deadline < 0 ? -1 : Math.max(0, deadline - Date.now()))) {
        // A stream message cut off part-way: the peer would read the next message as its rest.
        if (op.started) this.#breakSending(op);
        throw timeoutError('sendmsg');
      }
    } while (!this.#trySend(op));
  }


  /** Send asynchronously, in order with other `send` calls; resolves with the bytes written. */
  send(data?: Payload, fds?: readonly FdLike[] | null, options?: SendOptions): Promise<number> {
    let op: SendOp;
    let handOff: HandOff | null = null;
    try {
      const signal = checkSignal(options);
      if (signal?.aborted) return Promise.reject(abortError(signal));
      const fdNumbers = fdNumbersOf(fds);
      op = new SendOp(this.#message(payloadOf(data), fdNumbers), fdNumbers, signal, options === undefined ? undefined : credentialsOption(options.credentials), fdNumbers === fds ? null : fds ?? null);
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
    let maxBytes = DEFAULT_MAX_BYTES;
    let maxFds = MAX_FDS;
    let timeoutMs = -1;
    if (options !== undefined) {
      maxBytes = maxBytesOption(options.maxBytes);
      maxFds = maxFdsOption(options.maxFds);
      timeoutMs = timeoutOption(options.timeoutMs);
    }
    if (this.#recvs.waiting) throw busyError('recv');
    const result = this.#take(maxBytes, maxFds);
    if (result !== AGAIN) return result;
    return this.#waitSync(timeoutMs, () => this.#take(maxBytes, maxFds));
  }

  /**
   * Receive one message; resolves null at end of stream, or when this socket is closed while the
   * call waits. On a socket that is already closed it rejects with ERR_FDPASS_CLOSED.
   */
  recv(options?: RecvOptions): Promise<Message | null> {
    let op: RecvOp;
    try {
      const signal = checkSignal(options);
      const maxBytes = maxBytesOption(options?.maxBytes);
      const maxFds = maxFdsOption(options?.maxFds);
      if (signal?.aborted) return Promise.reject(abortError(signal));
      op = new RecvOp(signal, ONE, maxBytes, maxFds, DEFAULT_LIMITS);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#submitRecv(op) as Promise<Message | null>;
  }

  /**
   * Every message already queued, up to the batch limits, in one call, blocking the thread until
   * there is at least one. Returns null at end of stream. Throws ETIMEDOUT after `timeoutMs`.
   * An error after the first message (ERR_FDPASS_TRUNC, ERR_FDPASS_CTRUNC, ECONNRESET, …) ends
   * the batch; the next receive throws it.
   */
  recvBatchSync(options?: RecvBatchSyncOptions): Message[] | null {
    const limits = batchLimits(options);
    const timeoutMs = timeoutOption(options?.timeoutMs);
    if (this.#recvs.waiting) throw busyError('recv');
    const result = this.#takeBatch(limits);
    if (result !== AGAIN) return result;
    return this.#waitSync(timeoutMs, () => this.#takeBatch(limits));
  }

  /**
   * Every message already queued, up to the batch limits, in one call: resolves once there is
   * at least one (an array of one or more messages, in order), null at end of stream or when
   * this socket is closed while the call waits. Waits in order with `recv()` calls. The
   * messages and their fds belong to the caller, as with `recv()`.
   */
  recvBatch(options?: RecvBatchOptions): Promise<Message[] | null> {
    let op: RecvOp;
    try {
      const signal = checkSignal(options);
      const limits = batchLimits(options);
      if (signal?.aborted) return Promise.reject(abortError(signal));
      op = new RecvOp(signal, BATCH, limits.maxBytes, limits.maxFds, limits);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#submitRecv(op) as Promise<Message[] | null>;
  }

  /**
   * `for await (const batch of socket.batches())`: one `recvBatch(options)` per iteration, until
   * end of stream or until this socket is closed. Options are checked here, before iterating.
   */
  batches(options?: RecvBatchOptions): AsyncGenerator<Message[], void, undefined> {
    const signal = checkSignal(options);
    return new BatchIterator(this, iteration, batchLimits(options), signal);
  }

  /**
   * `for await (const msg of socket)`: every message until end of stream, or until this socket
   * is closed. It reads whatever is queued in one batch (default batch limits) and hands the
   * messages out one at a time; any it has not handed out when the loop ends (break, return,
   * throw) stay with the socket, first in line for the next receive, and `close()` closes
   * their fds.
   */
  [Symbol.asyncIterator](): AsyncGenerator<Message, void, undefined> {
    return new MessageIterator(this, iteration);
  }

  /**
   * The peer's pid, uid and gid when the connection (or pair) was made, from the kernel:
   * SO_PEERCRED (Linux, OpenBSD), LOCAL_PEERCRED + LOCAL_PEERPID (darwin), LOCAL_PEERCRED
   * (FreeBSD), LOCAL_PEEREID (NetBSD). `pid` is undefined where the kernel does not say.
   */
  peerCredentials(): PeerCredentials {
    return peerCredentials(this.fd);
  }

  /**
   * From now on each received message carries the sender's pid/uid/gid in
   * `message.credentials`, checked by the kernel: SO_PASSCRED (Linux), LOCAL_CREDS_PERSISTENT
   * (FreeBSD 13+). Set it before the peer sends. ERR_FDPASS_UNSUPPORTED where the platform has
   * no credential messages (darwin, OpenBSD, NetBSD): use `peerCredentials()` there.
   */
  passCredentials(on = true): this {
    const spec = CAPS.credentialMessages;
    if (spec === null) throw unsupported('passCredentials() (credentials in messages)', 'use peerCredentials(), which names the peer of a connected socket');
    setIntOption(this.fd, C[spec.enableOption]!, on ? 1 : 0, C[spec.enableLevel]!);
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
    this.#frames?.close();
    this.#closeAhead();
    this.#sends.flush((op) => op.reject(closedError('UnixSocket')));
    this.#recvs.flush((op) => op.resolve(null));
  }

  /** close(), for `using`. */
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
    if (this.#frames?.holdsData) throw new FdPassError('ERR_FDPASS_BUSY', 'cannot release a framed socket holding bytes or descriptors it already read (receive them first)');
    if (this.#ahead.size > 0) throw new FdPassError('ERR_FDPASS_BUSY', 'cannot release a socket holding messages its async iterator read ahead (receive them first)');
    if (this.#pending.size > 0) throw new FdPassError('ERR_FDPASS_BUSY', 'cannot release a socket holding messages a batch read beyond its limits (receive them first)');
    this.#watcher.close();
    this.#fd = -1;
    return fd;
  }

  #updateInterest(): void {
    if (this.#fd < 0) return;
    const readable = this.#recvs.waiting;
    const writable = this.#sends.waiting;
    if (readable || writable) this.#watcher.want(readable, writable);
    else if (!readinessBackend().lingers) this.#watcher.want(false, false);
    else if (!this.#stopScheduled) {
      // Nothing waits. A caller that just got its result usually asks again within this turn
      // (a for-await loop, a ping-pong): stop watching only if it has not a turn later, rather
      // than stop and restart the uv_poll handle (two epoll_ctl calls) for every message.
      this.#stopScheduled = true;
      setImmediate(this.#stopIfIdle);
    }
  }

  #stopScheduled = false;
  readonly #stopIfIdle = (): void => {
    this.#stopScheduled = false;
    if (this.#fd >= 0 && !this.#recvs.waiting && !this.#sends.waiting) this.#watcher.want(false, false);
  };

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
    if (op.keepError !== null) throw op.keepError;
    const buffers = (sendBuffers ??= new SendBuffers());
    for (;;) {
      // Stream sockets may take part of the bytes: the fds went with the first part, never again.
      // Credentials go with every part, so the receiver never sees the rest under other ids.
      const msghdr = op.credentials === undefined
        ? buffers.prepare(op.data, op.offset, op.started ? null : op.fds)
        : buffers.prepareWithCredentials(op.data, op.offset, op.started ? null : op.fds, op.credentials);
      const n = sendmsgAt(fd, msghdr, SEND_FLAGS);
      buffers.unpin();
      if (n < 0) {
        const errno = lastErrno();
        if (errno === EINTR) continue;
        if (errno === EAGAIN) return false;
        throw sendError(errno, op, fd);
      }
      op.started = true;
      op.offset += n;
      if (op.offset >= op.data.length) return true;
    }
  }

  /**
   * Queued sends through one sendmmsg: the ones at the head that are plain messages (none begun,
   * no credentials, nothing failed while kept). Resolves as many as the kernel took; null when
   * fewer than two qualify or the call failed (the head then goes alone and meets its own error).
   */
  #sendMany(ops: readonly SendOp[]): number[] | typeof AGAIN | null {
    const limit = ops.length < SEND_VECTOR_SLOTS ? ops.length : SEND_VECTOR_SLOTS;
    let count = 0;
    while (count < limit) {
      const op = ops[count];
      if (op.started || op.credentials !== undefined || op.keepError !== null) break;
      count++;
    }
    if (count < 2) return null;
    const fd = this.fd;
    const vector = (sendVector ??= new SendVector());
    let n: number;
    for (;;) {
      n = sendmmsgAt!(fd, vector.prepare(ops, count), count, SEND_FLAGS);
      if (n >= 0 || lastErrno() !== EINTR) break;
    }
    vector.unpin();
    if (n <= 0) return n < 0 && lastErrno() === EAGAIN ? AGAIN : null;
    const results = new Array<number>(n);
    // The duplicates the sent messages kept, closed together: a burst's are mostly consecutive
    // numbers, one close_range each run (see closeAllQuietly).
    let dups: number[] | null = null;
    for (let k = 0; k < n; k++) {
      const op = ops[k];
      op.started = true;
      op.offset = op.data.length;
      results[k] = op.data.length;
      if (op.dups !== null) {
        if (dups === null) dups = op.dups;
        else for (let i = 0; i < op.dups.length; i++) dups.push(op.dups[i]);
        op.dups = null;
      }
    }
    if (dups !== null) closeAllQuietly(dups);
    return results;
  }

  /** The bytes to send for one message: the payload, or (framed) a header and the payload. */
  #message(payload: Buffer, fds: readonly number[]): Buffer {
    if (this.#frames === null) return payload;
    if (payload.length > FRAME_MAX_PAYLOAD) throw outOfRange('data.length', `at most ${FRAME_MAX_PAYLOAD} bytes on a framed socket`, payload.length);
    return Buffer.concat([encodeFrameHeader(payload.length, fds.length), payload]);
  }

  /** What send/sendSync resolve with: the caller's payload bytes (without a frame header). */
  #payloadLength(op: SendOp): number {
    return this.#frames === null ? op.data.length : op.data.length - FRAME_HEADER_BYTES;
  }

  #submitRecv(op: RecvOp): Promise<RecvResult> {
    if (this.#fd < 0) return Promise.reject(closedError('UnixSocket'));
    return this.#recvs.submit(op);
  }

  /** Block until `attempt` returns something other than AGAIN, or the timeout (ms, -1: none) passes. */
  #waitSync<T>(timeoutMs: number, attempt: () => T | typeof AGAIN): T {
    const deadline = timeoutMs < 0 ? -1 : Date.now() + timeoutMs;
    for (;;) {
      if (!waitSync(this.fd, POLLIN, deadline < 0 ? -1 : Math.max(0, deadline - Date.now()))) throw timeoutError('recvmsg');
      const result = attempt();
      if (result !== AGAIN) return result;
    }
  }

  /** One message: the next one read ahead, else from the kernel. */
  #take(maxBytes: number, maxFds: number): Message | null | typeof AGAIN {
    if (this.#ahead.size > 0) return this.#fromAhead(maxBytes, maxFds);
    return this.#pending.size > 0 ? this.#fromPending(maxBytes, maxFds) : this.#tryRecv(maxBytes, maxFds);
  }

  /**
   * Messages until one would block, end of stream, or a limit. An error after the first message
   * ends the batch and waits, first in line, for the next receive; a batch never loses a message.
   */
  #takeBatch(limits: BatchLimits): Message[] | null | typeof AGAIN {
    const { maxBytes, maxFds, maxMessages, maxBatchBytes, maxBatchFds } = limits;
    let out: Message[] | null = null;
    let count = 0;
    let bytes = 0;
    let fds = 0;
    // Message sockets on Linux: one recvmmsg reads many messages into #pending, and the loop takes
    // them from there as it would from the kernel (anything beyond this batch's limits stays
    // there, first in line). Never on a stream: its reads have no boundaries to keep.
    let vectors = recvmmsgAt !== null && (this.type === 'seqpacket' || this.type === 'dgram');
    let drained = false;
    do {
      let m: Message | null | typeof AGAIN;
      try {
        if (vectors && this.#ahead.size === 0 && this.#pending.size === 0) {
          // The last vector call came back short: the kernel had no more then.
          if (drained) break;
          const filled = this.#fillPending(maxMessages - count, maxBytes, maxFds);
          if (filled === FILL_AGAIN) break;
          if (filled === FILL_EOF) return out;
          // Too few slots fit the limits left: one recvmsg at a time for the rest of this batch.
          if (filled === FILL_NONE) vectors = false;
          else {
            drained = filled === FILL_SHORT;
            // The messages of this call were received with this batch's maxBytes and maxFds: taken
            // straight from the vector up to the first zero-length message or error (which #take
            // handles next) or the batch's limits (the rest waits in #pending).
            const pending = this.#pending;
            while (pending.size > 0) {
              const e = pending.peek();
              if (e === EMPTY || isDeferred(e)) break;
              pending.shift();
              if (out === null) out = [e];
              else out.push(e);
              count++;
              bytes += e.data.length;
              fds += e.fds.length;
              if (count >= maxMessages || bytes >= maxBatchBytes || fds >= maxBatchFds) break;
            }
            continue;
          }
        }
        m = this.#take(maxBytes, maxFds);
      } catch (err) {
        if (out === null) throw err;
        this.#ahead.unshift(new Deferred(err));
        break;
      }
      if (m === AGAIN) break;
      // End of stream stays: the next call sees it again.
      if (m === null) return out;
      if (out === null) out = [m];
      else out.push(m);
      count++;
      bytes += m.data.length;
      fds += m.fds.length;
    } while (count < maxMessages && bytes < maxBatchBytes && fds < maxBatchFds && this.#fd >= 0);
    return out === null ? AGAIN : out;
  }

  /**
   * One recvmmsg into #pending (which is empty): every message it returned, in order, as the
   * Message, Deferred error or EMPTY (zero-length message) that one recvmsg each would have
   * given. FILL_NONE when fewer than two slots fit the limits (one recvmsg then).
   */
  #fillPending(maxMessages: number, maxBytes: number, maxFds: number): typeof FILL_AGAIN | typeof FILL_EOF | typeof FILL_NONE | typeof FILL_SHORT | typeof FILL_FULL {
    const fd = this.fd;
    const v = (recvVector ??= new RecvVector());
    const slots = v.slots(maxMessages, maxBytes, fd);
    if (slots === 0) return FILL_NONE;
    let count: number;
    for (;;) {
      count = recvmmsgAt!(fd, v.prepare(slots, maxBytes), slots, RECV_FLAGS, 0);
      if (count >= 0) break;
      v.filled(0);
      const errno = lastErrno();
      if (errno === EINTR) continue;
      if (errno === EAGAIN) return FILL_AGAIN;
      throw FdPassError.fromErrno('recvmmsg', errno);
    }
    v.filled(count);
    const type = this.type;
    const payload = v.payload;
    const entries = new Array<Pending>(count);
    let highest = 0;
    let last = -1; // the last slot that was not a zero-length message
    for (let i = 0; i < count; i++) {
      let entry: Pending;
      try {
        const m = messageOf(type, v.length(i), v.flags(i), v.controlLength(i), v.controls[i], v.controls32[i], payload, v.offset(i), maxBytes, maxFds, undefined);
        if (m === null) entry = EMPTY;
        else {
          entry = m;
          for (let j = 0; j < m.fds.length; j++) if (m.fds[j].fd > highest) highest = m.fds[j].fd;
        }
      } catch (err) {
        entry = new Deferred(err);
        if ((err as FdPassError).code === 'ERR_FDPASS_CTRUNC') v.recheckNofile();
      }
      entries[i] = entry;
      if (entry !== EMPTY) last = i;
    }
    v.highestFd = highest;
    // At end of stream the kernel fills every remaining slot with a zero-length read. Zero-length
    // slots up to the end of a full vector are taken for that (the kernel repeats it to the next
    // call) unless the socket can still receive. (Zero-length messages before a message, or in a
    // vector the kernel cut short, were sent.)
    if (count === slots && last < count - 1 && !v.zeroReadsWereMessages(fd)) {
      if (last < 0) return FILL_EOF;
      entries.length = last + 1;
    }
    this.#pending.prepend(entries, 0);
    return count < slots ? FILL_SHORT : FILL_FULL;
  }

  /** The async iterator's receive: the next message read ahead, or a new batch (its first message; the rest read ahead). */
  #takeReadAhead(): Message | null | typeof AGAIN {
    if (this.#ahead.size > 0) return this.#fromAhead(DEFAULT_MAX_BYTES, MAX_FDS);
    const batch = this.#takeBatch(DEFAULT_LIMITS);
    if (batch === AGAIN || batch === null) return batch;
    const first = batch[0];
    // The rest of the batch goes before a deferred error that may be queued.
    if (batch.length > 1) this.#ahead.prepend(batch, 1);
    return first;
  }

  /** The iterator's fast path: a message read ahead, handed out without a promise of its own; undefined when it must wait. */
  #nextAhead(): Message | undefined {
    if (this.#ahead.size === 0 || this.#recvs.waiting || isDeferred(this.#ahead.peek())) return undefined;
    return this.#fromAhead(DEFAULT_MAX_BYTES, MAX_FDS)!;
  }

  /** The next message read ahead, held to this call's limits as a read from the kernel would be. */
  #fromAhead(maxBytes: number, maxFds: number): Message {
    return this.#limited(this.#ahead.shift(), maxBytes, maxFds);
  }

  /** The next message a recvmmsg returned beyond a batch, as one recvmsg would return it (null for a zero-length message). */
  #fromPending(maxBytes: number, maxFds: number): Message | null {
    const entry = this.#pending.shift();
    return entry === EMPTY ? null : this.#limited(entry, maxBytes, maxFds);
  }

  /** `entry` held to this call's limits; its error thrown. */
  #limited(entry: Message | Deferred, maxBytes: number, maxFds: number): Message {
    if (isDeferred(entry)) throw entry.error;
    const m = entry;
    if (m.data.length > maxBytes) {
      if (this.type === 'stream') {
        // A stream has no boundaries: the rest waits for the next call, as it would in the kernel.
        const rest: Message = { data: m.data.subarray(maxBytes), fds: [], droppedFds: 0 };
        if (m.credentials) rest.credentials = m.credentials;
        this.#ahead.unshift(rest);
        m.data = m.data.subarray(0, maxBytes);
      } else {
        for (const f of m.fds) f.close();
        throw new FdPassError('ERR_FDPASS_TRUNC', `recvmsg: a message longer than maxBytes (${m.data.length} > ${maxBytes}) was discarded${m.fds.length ? `, and its ${m.fds.length} fds closed` : ''}`, { syscall: 'recvmsg' });
      }
    }
    if (m.fds.length > maxFds) {
      for (let i = maxFds; i < m.fds.length; i++) m.fds[i].close();
      m.droppedFds += m.fds.length - maxFds;
      m.fds.length = maxFds;
    }
    return m;
  }

  /** On close: the fds of messages read ahead and never handed out are closed. */
  #closeAhead(): void {
    for (const entry of [...this.#ahead.clear(), ...this.#pending.clear()]) {
      if (entry !== EMPTY && !isDeferred(entry)) for (const f of entry.fds) f.close();
    }
  }

  /** One message, null at end of stream, or AGAIN when nothing is queued. */
  #tryRecv(maxBytes: number, maxFds: number, into?: Buffer): Message | null | typeof AGAIN {
    if (this.#frames !== null) return this.#tryRecvFramed(this.#frames, maxBytes, maxFds);
    const fd = this.fd;
    const buffers = (recvBuffers ??= new RecvBuffers());
    let n: number;
    for (;;) {
      n = recvmsgAt(fd, into === undefined ? buffers.prepare(maxBytes) : buffers.prepareInto(into), RECV_FLAGS);
      if (n >= 0) break;
      const errno = lastErrno();
      if (errno === EINTR) continue;
      if (errno === EAGAIN) return AGAIN;
      throw FdPassError.fromErrno('recvmsg', errno);
    }
    return messageOf(this.type, n, buffers.flags, buffers.controlLength, buffers.control, buffers.control32, buffers.data, 0, maxBytes, maxFds, into);
  }

  /** 'framed': a message from what was read before, or after as many reads as it takes. */
  #tryRecvFramed(frames: FrameReader, maxBytes: number, maxFds: number): Message | null | typeof AGAIN {
    const fd = this.fd;
    const buffers = (recvBuffers ??= new RecvBuffers());
    for (;;) {
      const frame = frames.next(maxBytes, maxFds);
      if (frame !== NEED_MORE) {
        const fds = new Array<Fd>(frame.fds.length);
        for (let i = 0; i < fds.length; i++) fds[i] = new Fd(frame.fds[i]);
        const message: Message = { data: frame.data, fds, droppedFds: frame.dropped };
        if (this.#frameCredentials) message.credentials = this.#frameCredentials;
        return message;
      }
      const n = recvmsgAt(fd, buffers.prepare(frames.wanted(DEFAULT_MAX_BYTES, maxBytes)), RECV_FLAGS);
      if (n < 0) {
        const errno = lastErrno();
        if (errno === EINTR) continue;
        if (errno === EAGAIN) return AGAIN;
        throw FdPassError.fromErrno('recvmsg', errno);
      }
      const controlLength = buffers.controlLength;
      let received = NO_FDS;
      let control: ParsedControl | undefined;
      if (controlLength > 0) {
        control = parseControl(buffers.control, controlLength, CMSG, CREDENTIALS, C);
        received = control.fds;
        for (const x of control.extraFds) closeQuietly(x);
      }
      receivedCloexec(received);
      const truncated = (buffers.flags & MSG_CTRUNC) !== 0;
      if (n === 0 && received.length === 0 && !truncated) return frames.atEof();
      this.#frameCredentials = control?.credentials;
      // MSG_CTRUNC: the message that lost descriptors fails when its turn comes (or at once, if
      // it cannot be told); messages before and after it are served as usual.
      frames.push(buffers.data, n, received, truncated);
    }
  }
}
