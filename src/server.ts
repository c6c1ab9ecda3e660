/** UnixServer: listen on a path or abstract name, accept (sync and async), authorize peers. */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { encodeUnixAddress, type UnixAddress } from './address.js';
import { admit, checkAuthorize, type Authorize } from './authorize.js';
import { FdPassError, abortError, busyError, closedError, invalidArgValue, timeoutError } from './errors.js';
import { Fd } from './fd.js';
import { acceptConnection } from './create.js';
import { C, CAPS, E, EADDRINUSE, EAGAIN, ECONNABORTED, ECONNREFUSED, EINTR, ENOENT, L, check, closeQuietly, lastErrno, sys } from './libc.js';
import { POLLIN, Watcher, waitSync } from './poll.js';
import { describeSocket, getIntOption } from './sockopt.js';
import { checkSignal, fdNumber, integerOption, timeoutOption, type SignalOptions } from './args.js';
import { defaultMessageType, newSocketFd, nonSocketKind, ownedFdNumber, setNonBlocking, socketTypeOf, socketTypes, streamType, toAddress, unixDomainOf, type AddressOptions } from './connect.js';
import { UnixSocket, type SocketType } from './socket.js';
import { AGAIN, WaitQueue, newWaiter, type Waiter } from './wait-queue.js';

/** What `listen()` binds to (`path` or `abstract`) and how. */
export interface ListenOptions extends AddressOptions {
  /**
   * Default 'seqpacket' (message boundaries), or 'framed' where the platform has no SEQPACKET;
   * use 'stream' for peers that expect raw SOCK_STREAM bytes.
   */
  type?: Exclude<SocketType, 'dgram'>;
  /** Permissions of the socket file (default 0o600: only this user can connect). */
  mode?: number;
  /** listen(2) backlog (default 511, as Node's net). */
  backlog?: number;
  /**
   * Admit or refuse each connection by its peer's kernel-checked identity (SO_PEERCRED pid/uid/gid,
   * `peer.pidfd()` for SO_PEERPIDFD), synchronously, inside accept: refused connections are closed
   * and never returned by accept()/acceptSync()/the iterator, which go on waiting. If `authorize`
   * throws or returns anything but a boolean, the connection is refused too and the pending
   * accept fails with ERR_FDPASS_AUTHORIZE (error in `cause`); the server stays open.
   */
  authorize?: Authorize;
}

/** Options of `adoptServer()`. */
export interface AdoptServerOptions {
  /** As `ListenOptions.authorize`. */
  authorize?: Authorize;
  /** For a SOCK_STREAM listener: 'stream' or 'framed' connections (default as for `adopt()`). */
  type?: Exclude<SocketType, 'dgram'>;
}

/** The syscall named in errors: accept4 where fdpass uses it, accept elsewhere. */
const ACCEPT = CAPS.atomicCloexec ? 'accept4' : 'accept';

/** Refused connections taken in one go before yielding to the event loop (a flood must not starve it). */
const MAX_REFUSALS_PER_TURN = 64;

interface AcceptOp extends Waiter<UnixSocket> {
  timeoutMs?: number;
}

/**
 * A listening Unix domain socket. Made by `listen()` or `adoptServer()`; `accept()` (or
 * `acceptSync()`, or `for await (const conn of server)`) returns each connection as a
 * UnixSocket. `close()` stops listening and removes the socket file it created.
 */
export class UnixServer {
  #fd: number;
  /** 'seqpacket' or 'stream'; accepted connections have the same type. */
  readonly type: SocketType;
  /** The socket file's path, when bound to one. */
  readonly path: string | undefined;
  /** The abstract name, when bound to one. */
  readonly abstract: string | undefined;
  /** Identity of the file this server created; only that file is unlinked on close. */
  readonly #created: { absolutePath: string; dev: number; ino: number } | undefined;
  readonly #watcher: Watcher;
  readonly #accepts: WaitQueue<AcceptOp, UnixSocket>;
  readonly #authorize: Authorize | undefined;

  /** @internal use listen() or adoptServer() */
  constructor(fd: number, type: SocketType, address: UnixAddress, created?: { absolutePath: string; dev: number; ino: number }, authorize?: Authorize) {
    this.#fd = fdNumber(fd);
    this.type = type;
    this.path = address.path;
    this.abstract = address.abstract;
    this.#created = created;
    this.#authorize = authorize;
    this.#watcher = new Watcher(fd, () => this.#accepts.drain());
    this.#accepts = new WaitQueue<AcceptOp, UnixSocket>(() => this.#tryAccept(), () => this.#updateInterest(), {
      // authorize() aborted the waiting accept or closed the server: nobody takes this one.
      onOrphan: (conn) => conn.close(),
    });
  }

  /** The listening descriptor (owned by this server). Throws ERR_FDPASS_CLOSED once closed. */
  get fd(): number {
    if (this.#fd < 0) throw closedError('UnixServer');
    return this.#fd;
  }

  /** True after close() or release(). */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /** Wait (blocking the thread) for the next connection. Throws ETIMEDOUT after `timeoutMs`. */
  acceptSync(options?: { timeoutMs?: number }): UnixSocket {
    const timeoutMs = timeoutOption(options?.timeoutMs);
    if (this.#accepts.waiting) throw busyError('accept');
    const deadline = timeoutMs < 0 ? -1 : Date.now() + timeoutMs;
    for (;;) {
      const conn = this.#tryAccept();
      if (conn !== AGAIN) return conn;
      if (!waitSync(this.fd, POLLIN, deadline < 0 ? -1 : Math.max(0, deadline - Date.now()))) throw timeoutError(ACCEPT);
    }
  }

  /** The next connection. Rejects with ERR_FDPASS_CLOSED if the server is closed meanwhile. */
  accept(options?: SignalOptions): Promise<UnixSocket> {
    let op: AcceptOp;
    try {
      const signal = checkSignal(options);
      if (signal?.aborted) return Promise.reject(abortError(signal));
      op = newWaiter<UnixSocket>(signal);
      this.fd;
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#accepts.submit(op);
  }

  /** `for await (const conn of server)`: connections until the server is closed. */
  async *[Symbol.asyncIterator](): AsyncGenerator<UnixSocket, void, undefined> {
    for (;;) {
      let conn: UnixSocket;
      try {
        conn = await this.accept();
      } catch (err) {
        if ((err as FdPassError).code === 'ERR_FDPASS_CLOSED') return;
        throw err;
      }
      yield conn;
    }
  }

  /** Stop listening; unlink the socket file if this server created it (and it is still that file). */
  close(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#watcher.close(); // the uv handle must go before the fd
    this.#fd = -1;
    closeQuietly(fd);
    const created = this.#created;
    if (created) {
      try {
        const st = lstatSync(created.absolutePath);
        if (st.isSocket() && st.dev === created.dev && st.ino === created.ino) unlinkSync(created.absolutePath);
      } catch {
        // Already gone, or replaced by something we must not touch.
      }
    }
    this.#accepts.flush((op) => op.reject(closedError('UnixServer')));
  }

  /** close(), for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Give up ownership of the listening descriptor without closing it or unlinking its file
   * (e.g. to hand it to another process); the server becomes closed. Fails with
   * ERR_FDPASS_BUSY while accept() calls are pending.
   */
  release(): number {
    const fd = this.fd;
    if (this.#accepts.waiting) throw new FdPassError('ERR_FDPASS_BUSY', 'cannot release a server with pending accept() calls');
    this.#watcher.close();
    this.#fd = -1;
    return fd;
  }

  /** Let a pending accept keep the process alive (the default). */
  ref(): this {
    this.#watcher.ref();
    return this;
  }

  /** A pending accept no longer keeps the process alive. */
  unref(): this {
    this.#watcher.unref();
    return this;
  }

  #updateInterest(): void {
    if (this.#fd >= 0) this.#watcher.want(this.#accepts.waiting, false);
  }

  #tryAccept(): UnixSocket | typeof AGAIN {
    const fd = this.fd;
    const authorize = this.#authorize;
    for (let refused = 0; ; ) {
      const conn = acceptConnection(fd);
      if (conn >= 0) {
        if (authorize === undefined || admit(conn, authorize)) return new UnixSocket(conn, this.type);
        // Refused and closed. The listener is still readable if more wait: level-triggered
        // readiness brings us back after other callbacks had their turn.
        if (++refused >= MAX_REFUSALS_PER_TURN) return AGAIN;
        continue;
      }
      const errno = lastErrno();
      if (errno === EAGAIN) return AGAIN;
      // The connection was reset before we took it, or a signal: take the next one.
      if (errno === EINTR || errno === ECONNABORTED) continue;
      throw FdPassError.fromErrno(ACCEPT, errno);
    }
  }
}


/**
 * Bind and listen on a Unix socket path (or Linux abstract name). The file is created with
 * `mode` (default 0o600). On Linux that is race-free: the mode is set on the socket before bind
 * creates the file. darwin and the BSDs refuse fchmod on a socket: there the file gets the
 * umask's mode at bind and `mode` right after it (with the usual umask 022 nobody else may
 * connect meanwhile: connecting needs write permission). A stale socket file (nothing
 * listening) is replaced; a live one fails with EADDRINUSE; a file that is not a socket is
 * left alone and fails with EADDRINUSE.
 */
export function listen(target: string | ListenOptions): UnixServer {
  const address = toAddress(target, 'target');
  const options: ListenOptions = typeof target === 'string' ? {} : target;
  const type = options.type ?? defaultMessageType;
  if (type === 'dgram' || !Object.hasOwn(socketTypes, type)) {
    throw invalidArgValue('options.type', `must be 'stream', 'seqpacket' or 'framed'. Received ${String(type)}`);
  }
  socketTypeOf(type, 'options.type');
  const mode = integerOption(options.mode, 'options.mode', 0, 0o777, 0o600);
  const backlog = integerOption(options.backlog, 'options.backlog', 0, 0x7fffffff, 511);
  const authorize = checkAuthorize(options.authorize, 'options.authorize');
  const { sockaddr, length } = encodeUnixAddress(address, L.sockaddr_un, C, E);

  const fd = newSocketFd(socketTypes[type], true);
  // Once bind() has created the socket file, any later failure must remove it again.
  let boundPath: string | undefined;
  try {
    // bind() creates the file with the socket inode's mode minus the umask: narrowing it
    // first means there is never a moment when others may connect.
    if (address.path !== undefined && CAPS.fchmodSocket) check('fchmod', sys.fchmod(fd, mode) as number);
    if ((sys.bind(fd, sockaddr, length) as number) < 0) {
      const errno = lastErrno();
      if (errno !== EADDRINUSE || address.path === undefined || !removeStaleSocket(address.path, sockaddr, length)) {
        throw bindError(errno, address);
      }
      check('bind', sys.bind(fd, sockaddr, length) as number, address.label);
    }
    let created: { absolutePath: string; dev: number; ino: number } | undefined;
    if (address.path !== undefined) {
      boundPath = resolvePath(address.path);
      const st = lstatSync(boundPath);
      created = { absolutePath: boundPath, dev: st.dev, ino: st.ino };
      // The umask may have removed bits the caller asked for (or, without fchmod, left some).
      if ((st.mode & 0o777) !== mode) chmodSync(boundPath, mode);
    }
    check('listen', sys.listen(fd, backlog) as number, address.label);
    return new UnixServer(fd, type, address, created, authorize);
  } catch (err) {
    closeQuietly(fd);
    if (boundPath !== undefined) {
      try {
        unlinkSync(boundPath);
      } catch {
        // Already gone: the original error is what matters.
      }
    }
    throw err;
  }
}

/** bind's error; EADDRINUSE says whether a server is there or the path is something else (left alone). */
function bindError(errno: number, address: UnixAddress & { label: string }): FdPassError {
  const err = FdPassError.fromErrno('bind', errno, address.label);
  if (errno !== EADDRINUSE) return err;
  let why: string;
  if (address.path === undefined) why = 'another socket is bound to this abstract name';
  else {
    const kind = nonSocketKind(address.path, false);
    why = kind === undefined
      ? 'a server is listening on this socket file'
      : `the path exists and is ${kind}, not a socket; listen() never replaces it: remove it or choose another path`;
  }
  return new FdPassError('EADDRINUSE', `${err.message}: ${why}`, { errno, syscall: 'bind', path: address.label });
}

/**
 * True if `path` was a socket nobody listens on, and it has been removed. The probe is a
 * datagram connect: a live stream/seqpacket listener answers EPROTOTYPE without queueing a
 * connection (a stream probe would land in its accept queue); a stale file gives ECONNREFUSED.
 */
function removeStaleSocket(path: string, sockaddr: Buffer, length: number): boolean {
  try {
    if (!lstatSync(path).isSocket()) return false;
  } catch {
    return false;
  }
  const probe = newSocketFd(C.SOCK_DGRAM, true);
  const ret = sys.connect(probe, sockaddr, length) as number;
  const errno = ret < 0 ? lastErrno() : 0;
  closeQuietly(probe);
  if (errno === ENOENT) return true; // removed meanwhile
  if (errno !== ECONNREFUSED) return false; // 0, EPROTOTYPE, EPERM: someone is bound there
  unlinkSync(path);
  return true;
}

/** Wrap an inherited listening AF_UNIX socket (e.g. from systemd or a previous process). */
export function adoptServer(fd: number | Fd, options?: AdoptServerOptions): UnixServer {
  const authorize = checkAuthorize(options?.authorize, 'options.authorize');
  if (options?.type !== undefined) {
    if ((options.type as string) === 'dgram') throw invalidArgValue('options.type', "must be 'stream', 'seqpacket' or 'framed'. Received dgram");
    socketTypeOf(options.type, 'options.type');
  }
  const n = ownedFdNumber(fd);
  unixDomainOf(n);
  if (!getIntOption(n, C.SO_ACCEPTCONN)) throw new FdPassError('ERR_FDPASS_NOT_LISTENING', `fd ${n} is not a listening socket: use adopt()`);
  const { type: kernelType, path } = describeSocket(n);
  if (kernelType !== 'stream' && kernelType !== 'seqpacket') throw new FdPassError('ERR_FDPASS_NOT_UNIX_SOCKET', `fd ${n} has unsupported socket type ${kernelType}`);
  const type = streamType(kernelType, options?.type, n);
  // accept4 has no per-call non-blocking flag: the listener itself must be O_NONBLOCK.
  setNonBlocking(n, true);
  if (fd instanceof Fd) fd.release();
  const address: UnixAddress = path === undefined ? {} : path.startsWith('@') ? { abstract: path.slice(1) } : { path };
  // Adopted: this process did not create the file, so close() never unlinks it.
  return new UnixServer(n, type, address, undefined, authorize);
}
