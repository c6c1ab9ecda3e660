/**
 * Node objects <-> fds.
 *
 * - `toNetSocket` / `toNetServer` / `toDgramSocket` / `toReadStream` / `toWriteStream`: turn a
 *   received descriptor into the Node object that fits it, after checking what it is.
 * - `prepareHandOff`: the `{ close: true }` option of `send`/`sendSync` (stop the sender's
 *   object from reading before the message goes, close it once it has gone).
 */
import cluster from 'node:cluster';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tty from 'node:tty';
import { Buffer } from 'node:buffer';
import { readFamily } from './address.js';
import { integerOption } from './args.js';
import { FdPassError, invalidArgType, invalidArgValue } from './errors.js';
import { Fd, describeFd, dupCloexec, type FdDescription } from './fd.js';
import { C, E, L, closeQuietly, fcntlInt, lastErrno, lib } from './libc.js';
import { dgramState, fdNumber, type FdLike, type UvStreamHandle } from './fdlike.js';
import { getIntOption, socketDomain } from './sockopt.js';
import { fdStat, isTerminal } from './stat.js';

// ---------------------------------------------------------------------------------------------
// fd -> Node object

/** What the `to*` functions take: an Fd (ownership passes to the Node object) or a number. */
export type FdInput = Fd | number;

const IPPROTO_UDP = 17;
let getpeername: ((fd: number, addr: Buffer, len: Buffer) => number) | undefined;
const peerAddress = Buffer.alloc(128);
const peerAddressLength = Buffer.alloc(4);
const { AF_INET, AF_INET6, AF_UNIX, SOCK_STREAM, SO_TYPE } = C;
const AF_UNSPEC = 0;

/**
 * Bun (1.4) keeps `new net.Socket({ fd })` inert for a connected socket (it adopts only pipes and
 * devices, for synchronous writes); its own IPC adopts a received socket with
 * `connect({ fd, fdIsRawSocket: true })`, which reads and writes through Bun's event loop.
 */
const onBun = process.versions.bun !== undefined;

type BunSocketOptions = { readable: boolean; writable: boolean; allowHalfOpen?: boolean; readableHighWaterMark?: number; writableHighWaterMark?: number };

/** A net.Socket over connected socket `fd`, the way Bun adopts one. */
function bunNetSocket(fd: number, options: BunSocketOptions): net.Socket {
  const socket = new net.Socket(options as net.SocketConstructorOpts);
  (socket.connect as unknown as (o: { fd: number; fdIsRawSocket: true }) => void)({ fd, fdIsRawSocket: true });
  return socket;
}

/** getpeername(2) into `peerAddress`: true when the socket has a peer. */
function hasPeer(fd: number): boolean {
  getpeername ??= lib.func('int getpeername(int fd, void *addr, void *addrlen)') as unknown as (fd: number, addr: Buffer, len: Buffer) => number;
  E.writeUInt32(peerAddressLength, 0, peerAddress.length);
  if (getpeername(fd, peerAddress, peerAddressLength) === 0) return true;
  lastErrno(); // ENOTCONN (or EINVAL after shutdown): not connected; EBADF, ENOTSOCK
  return false;
}

/** True when a stream socket has a peer (getpeername succeeds). */
function isConnected(fd: number): boolean {
  return hasPeer(fd);
}

/**
 * The hot path of toNetSocket/toReadStream/toWriteStream: is `fd` a connected TCP or Unix
 * stream socket? Two calls: getpeername succeeds only on a connected socket (never on a
 * listening one) and its address names the family; SO_TYPE says stream. False for anything
 * else, or a descriptor that is not open: the caller then describes it in full, for the message.
 */
function isConnectedStream(fd: number): boolean {
  if (!hasPeer(fd)) return false;
  let family = readFamily(peerAddress, L.sockaddr_un, E);
  // A peer address without a family (a BSD kernel may say so for an unnamed Unix peer): ask the socket.
  if (family === AF_UNSPEC) {
    try {
      family = socketDomain(fd);
    } catch {
      return false;
    }
  }
  if (family !== AF_INET && family !== AF_INET6 && family !== AF_UNIX) return false;
  try {
    return getIntOption(fd, SO_TYPE) === SOCK_STREAM;
  } catch {
    return false;
  }
}

/**
 * The hot path of toNetServer: three getsockopt calls instead of describeFd() (which also reads
 * /proc and fstat()s, ~10 µs). Null when the fd is not a TCP/Unix stream socket, or not open.
 */
function streamSocketState(fd: number): { listening: boolean } | null {
  try {
    const family = socketDomain(fd);
    if (family !== AF_INET && family !== AF_INET6 && family !== AF_UNIX) return null;
    if (getIntOption(fd, SO_TYPE) !== SOCK_STREAM) return null;
    return { listening: getIntOption(fd, C.SO_ACCEPTCONN) !== 0 };
  } catch {
    return null; // ENOTSOCK, EBADF
  }
}

const kindNames: Partial<Record<FdDescription['kind'], string>> = {
  file: 'regular file', directory: 'directory', pipe: 'pipe', fifo: 'FIFO', tty: 'terminal',
  char: 'character device', block: 'block device', memfd: 'memfd', eventfd: 'eventfd', pidfd: 'pidfd',
  epoll: 'epoll instance', timerfd: 'timerfd', signalfd: 'signalfd', inotify: 'inotify instance',
};

/** "a listening TCP socket", "a regular file (/etc/hosts)", "a Unix seqpacket socket". */
export function describeKind(d: FdDescription): string {
  let text: string;
  if (d.kind === 'socket' && d.socket) {
    const s = d.socket;
    let base: string;
    if (s.family === 'inet' || s.family === 'inet6') {
      const v = s.family === 'inet6' ? ' (IPv6)' : '';
      if (s.type === 'stream') base = `TCP socket${v}`;
      else if (s.type === 'dgram') base = s.protocol === IPPROTO_UDP ? `UDP socket${v}` : `${s.family} datagram socket with protocol ${s.protocol}`;
      else base = `${s.family} ${String(s.type)} socket`;
    } else if (s.family === 'unix') {
      base = `Unix ${s.type === 'dgram' ? 'datagram' : String(s.type)} socket`;
    } else {
      base = `${String(s.family)} ${String(s.type)} socket`;
    }
    text = `${s.listening ? 'listening ' : ''}${base}${s.path ? ` (${s.path})` : ''}`;
  } else {
    text = `${kindNames[d.kind] ?? d.kind}${d.path ? ` (${d.path})` : d.target && !d.target.startsWith('/') ? ` (${d.target})` : ''}`;
  }
  return `${/^[aeiou]/.test(text) ? 'an' : 'a'} ${text}`;
}

function wrongKind(fn: string, fd: number, d: FdDescription, wanted: string, instead?: string): FdPassError {
  return new FdPassError('ERR_FDPASS_WRONG_KIND', `${fn}: fd ${fd} is ${describeKind(d)}, not ${wanted}${instead ? `; ${instead}` : ''}`);
}

function inputFd(input: FdInput): number {
  if (input instanceof Fd) return input.fd;
  if (typeof input === 'number') return fdNumber(input);
  throw invalidArgType('fd', 'an Fd or a descriptor number', input);
}

/** Check `input` and read what it is; the caller releases it once the Node object exists. */
function inspect(input: FdInput, fn: string): { fd: number; desc: FdDescription } {
  const fd = inputFd(input);
  let desc: FdDescription;
  try {
    desc = describeFd(fd);
  } catch (err) {
    const e = err as FdPassError;
    throw new FdPassError(e.code ?? 'EBADF', `${fn}: fd ${fd} is not an open descriptor (${e.message})`, { syscall: e.syscall, cause: err });
  }
  return { fd, desc };
}

function adoptInto<T>(input: FdInput, create: () => T): T {
  const made = create();
  if (input instanceof Fd) input.release();
  return made;
}

function suggestionFor(d: FdDescription): string | undefined {
  const s = d.socket;
  if (d.kind === 'socket' && s) {
    if (s.family === 'unix' && s.type !== 'stream') {
      return s.listening ? 'use adoptServer() (Node\'s net supports only stream Unix sockets)' : 'use adopt() (Node\'s net supports only stream Unix sockets)';
    }
    if (s.type === 'dgram' && (s.family === 'inet' || s.family === 'inet6')) return 'use toDgramSocket()';
    if (s.type === 'stream' && s.listening) return 'use toNetServer()';
    if (s.type === 'stream') return 'use toNetSocket()';
    return undefined;
  }
  if (['file', 'memfd', 'pipe', 'fifo', 'char', 'block', 'tty'].includes(d.kind)) return 'use toReadStream() or toWriteStream()';
  return undefined;
}

/** net.Socket's numeric form (lib/net.js: `if (typeof options === 'number') options = { fd: options }; // Legacy interface.`, Node 20 to 26), not in @types/node. */
type NetSocketFromFd = new (fd: number) => net.Socket;

/** Options of `toNetSocket()`. */
export interface ToNetSocketOptions {
  /** Default true. */
  readable?: boolean;
  /** Default true. */
  writable?: boolean;
  /** Keep the writable side open after the peer ends (default false, as net.Socket). */
  allowHalfOpen?: boolean;
  /**
   * TCP_NODELAY (TCP only). http.Server sets it on the connections it accepts itself
   * (`noDelay` defaults to true there); `server.emit('connection', socket)` skips that step,
   * so pass `noDelay: true` to serve handed-off connections exactly as Node would.
   */
  noDelay?: boolean;
}

function isStreamSocket(d: FdDescription): boolean {
  const s = d.socket;
  return d.kind === 'socket' && !!s && s.type === 'stream' && (s.family === 'inet' || s.family === 'inet6' || s.family === 'unix');
}

/**
 * A connected TCP or Unix stream socket as a `net.Socket` (readable and writable). Serve it
 * with `httpServer.emit('connection', socket)`. Takes ownership: an Fd is released, and the
 * socket closes the descriptor when destroyed. Throws ERR_FDPASS_WRONG_KIND (leaving the fd
 * open and yours) for anything else: a file, a pipe, a UDP socket, a listening socket, a
 * Unix seqpacket/datagram socket, an unconnected socket.
 */
export function toNetSocket(fd: FdInput, options: ToNetSocketOptions = {}): net.Socket {
  const n = inputFd(fd);
  if (!isConnectedStream(n)) {
    const { desc } = inspect(fd, 'toNetSocket');
    const wanted = 'a connected TCP or Unix stream socket';
    if (!isStreamSocket(desc) || desc.socket!.listening) throw wrongKind('toNetSocket', n, desc, wanted, suggestionFor(desc));
    throw wrongKind('toNetSocket', n, desc, wanted, 'it is not connected');
  }
  return adoptInto(fd, () => {
    const readable = options.readable ?? true;
    const writable = options.writable ?? true;
    let socket: net.Socket;
    if (onBun) socket = bunNetSocket(n, { readable, writable, allowHalfOpen: options.allowHalfOpen ?? false });
    else if (readable && writable) {
      // Node's numeric form, `new net.Socket(fd)`, is `new net.Socket({ fd })` without copying an
      // options object: the copy site in net.js sees every caller's option shapes, and once it
      // is megamorphic each construction misses ~35 inline caches (3x slower). allowHalfOpen is
      // a plain property that Duplex sets in its constructor and net.Socket reads at 'end'.
      socket = new (net.Socket as unknown as NetSocketFromFd)(n);
      if (options.allowHalfOpen) socket.allowHalfOpen = true;
    } else {
      socket = new net.Socket({ fd: n, readable, writable, allowHalfOpen: options.allowHalfOpen ?? false });
    }
    if (options.noDelay) socket.setNoDelay(true); // a no-op on Unix sockets
    return socket;
  });
}

/** Options of `toNetServer()`: net.Server options, plus the listen(2) backlog. */
export interface ToNetServerOptions extends net.ServerOpts {
  /** listen(2) backlog to set (default 511, as Node). */
  backlog?: number;
}

/**
 * A listening TCP or Unix stream socket as a listening `net.Server` (`server.listen({ fd })`).
 * Pass your own server (`http.createServer(handler)`, an https/http2 server, any net.Server)
 * to have it listen on the descriptor; otherwise a plain `net.createServer(options)` is made.
 * The server is listening when this returns ('listening' is emitted on the next tick). Bun's
 * http.Server cannot listen on a descriptor (ERR_FDPASS_UNSUPPORTED): there, call
 * `toNetServer(fd)` and emit each 'connection' on your server.
 */
export function toNetServer<S extends net.Server = net.Server>(fd: FdInput, server?: S | ToNetServerOptions, options: ToNetServerOptions = {}): S {
  const n = inputFd(fd);
  if (!streamSocketState(n)?.listening) {
    const { desc } = inspect(fd, 'toNetServer');
    throw wrongKind('toNetServer', n, desc, 'a listening TCP or Unix stream socket', isStreamSocket(desc) ? 'call listen(2) on it first, or use toNetSocket() for a connection' : suggestionFor(desc));
  }
  if (cluster.isWorker) {
    // In a cluster worker Node sends listen({ fd }) to the primary, which would open ITS fd n.
    throw new FdPassError('ERR_FDPASS_UNSUPPORTED', 'toNetServer: Node routes listen({ fd }) in a cluster worker through the cluster primary, which does not hold this descriptor; use it outside cluster workers');
  }
  let opts = options;
  let target: S;
  if (server instanceof net.Server) target = server;
  else if (typeof (server as { listen?: unknown } | undefined)?.listen === 'function') {
    // Bun's http.Server is no net.Server, and its listen() ignores `fd` (it would listen on a new port).
    throw new FdPassError('ERR_FDPASS_UNSUPPORTED', "toNetServer: this runtime's server (Bun's http.Server) cannot listen on a descriptor; call toNetServer(fd) and hand each connection over: netServer.on('connection', (c) => server.emit('connection', c))");
  }
  else {
    if (server !== undefined) opts = server;
    const { backlog: _backlog, ...serverOpts } = opts;
    target = net.createServer(serverOpts) as S;
  }
  if (target.listening) throw invalidArgValue('server', 'is already listening');
  const backlog = opts.backlog === undefined ? undefined : integerOption(opts.backlog, 'options.backlog', 0, 0x7fffffff, 0);
  return adoptInto(fd, () => {
    target.listen(backlog === undefined ? { fd: n } : { fd: n, backlog });
    return target;
  });
}

/** Options of `toDgramSocket()`. */
export interface ToDgramSocketOptions {
  /** Passed to dgram.createSocket. */
  reuseAddr?: boolean;
  /** SO_RCVBUF in bytes (passed to dgram.createSocket). */
  recvBufferSize?: number;
  /** SO_SNDBUF in bytes (passed to dgram.createSocket). */
  sendBufferSize?: number;
}

/**
 * A UDP socket (IPv4 or IPv6, bound or not) as a `dgram.Socket`, via Node's
 * `socket.bind({ fd })`. On Node it is bound and receiving when this returns ('listening' has
 * already been emitted); Bun binds asynchronously: wait for 'listening' before `address()`.
 * Unix datagram sockets are not something Node's dgram can hold: use adopt().
 */
export function toDgramSocket(fd: FdInput, options: ToDgramSocketOptions = {}): dgram.Socket {
  integerOption(options.recvBufferSize, 'options.recvBufferSize', 0, 0x7fffffff, 0);
  integerOption(options.sendBufferSize, 'options.sendBufferSize', 0, 0x7fffffff, 0);
  const n = inputFd(fd);
  let family = udpFamily(n);
  if (family === null) {
    const { desc } = inspect(fd, 'toDgramSocket');
    const s = desc.socket;
    if (desc.kind !== 'socket' || !s || (s.family !== 'inet' && s.family !== 'inet6') || s.type !== 'dgram' || s.protocol !== IPPROTO_UDP) {
      const unixDgram = s?.family === 'unix' && s.type === 'dgram';
      throw wrongKind('toDgramSocket', n, desc, 'a UDP socket', unixDgram ? 'Node\'s dgram module supports only UDP (udp4/udp6): use adopt() for Unix datagram sockets' : suggestionFor(desc));
    }
    family = s.family;
  }
  const socket = dgram.createSocket({ type: family === 'inet6' ? 'udp6' : 'udp4', ...options });
  // dgram's bind({ fd }) ignores fd 0 (it would bind a new socket instead): move it off 0.
  const use = n === 0 ? dupCloexec(0) : n;
  try {
    // exclusive: in a cluster worker, open the fd here instead of asking the primary.
    socket.bind({ fd: use, exclusive: true });
  } catch (err) {
    socket.close();
    if (use !== n) closeQuietly(use);
    throw err;
  }
  if (fd instanceof Fd) fd.release();
  if (use !== n) closeQuietly(n);
  return socket;
}

/** Options of `toReadStream()` / `toWriteStream()`. */
export interface ToStreamOptions {
  /** The stream's buffer size in bytes (Node's default if omitted). */
  highWaterMark?: number;
  /** Read strings in this encoding instead of Buffers (toReadStream only). */
  encoding?: BufferEncoding;
}

/** The hot path of toDgramSocket: 'inet'/'inet6' for a UDP socket (three getsockopt calls), else null. */
function udpFamily(fd: number): 'inet' | 'inet6' | null {
  // Without SO_PROTOCOL (darwin, NetBSD) a datagram socket cannot be told from ICMP: describe it.
  if (C.SO_PROTOCOL === null) return null;
  try {
    if (getIntOption(fd, SO_TYPE) !== C.SOCK_DGRAM || getIntOption(fd, C.SO_PROTOCOL) !== IPPROTO_UDP) return null;
    const family = socketDomain(fd);
    return family === AF_INET ? 'inet' : family === AF_INET6 ? 'inet6' : null;
  } catch {
    return null;
  }
}

type StreamKind = 'file' | 'pipe' | 'tty' | 'socket';

/**
 * The hot path of toReadStream/toWriteStream: what `fd` becomes, from F_GETFL, statx/fstat and
 * (for a device) isatty or (for a socket) isConnectedStream — or null when it is not something
 * they take, or not open: the caller then describes it in full, for the message.
 */
function quickStreamKind(fd: number, direction: 'read' | 'write'): StreamKind | null {
  let flags: number;
  let type: string;
  try {
    flags = fcntlInt('fcntl', fd, C.F_GETFL);
    type = fdStat(fd).type;
  } catch {
    return null;
  }
  if (C.O_PATH !== null && flags & C.O_PATH) return null;
  // As describeFd names the access mode: O_RDWR if that bit is set, else O_WRONLY, else O_RDONLY.
  const access = flags & fs.constants.O_RDWR ? 'rw' : flags & fs.constants.O_WRONLY ? 'w' : 'r';
  if ((direction === 'read' && access === 'w') || (direction === 'write' && access === 'r')) return null;
  switch (type) {
    case 'file':
    case 'block':
      return 'file';
    case 'fifo':
      return 'pipe';
    case 'char':
      return isTerminal(fd) ? 'tty' : 'file';
    case 'socket':
      return isConnectedStream(fd) ? 'socket' : null;
    default:
      return null;
  }
}

/** What toReadStream/toWriteStream make of `input`: the quick answer, or the full check (which throws with a description). */
function streamKind(input: FdInput, fn: string, direction: 'read' | 'write'): { fd: number; kind: StreamKind } {
  const fd = inputFd(input);
  const kind = quickStreamKind(fd, direction);
  if (kind !== null) return { fd, kind };
  const { desc } = inspect(input, fn);
  return { fd, kind: checkStreamable(fn, fd, desc, direction) };
}

const fileKinds = new Set(['file', 'memfd', 'char', 'block']);
const pipeKinds = new Set(['pipe', 'fifo']);

function checkStreamable(fn: string, n: number, desc: FdDescription, direction: 'read' | 'write'): 'file' | 'pipe' | 'tty' | 'socket' {
  const wanted = `a ${direction === 'read' ? 'readable' : 'writable'} file, pipe, FIFO, terminal or connected stream socket`;
  let kind: 'file' | 'pipe' | 'tty' | 'socket';
  if (fileKinds.has(desc.kind)) kind = 'file';
  else if (pipeKinds.has(desc.kind)) kind = 'pipe';
  else if (desc.kind === 'tty') kind = 'tty';
  else if (isStreamSocket(desc) && !desc.socket!.listening && isConnected(n)) kind = 'socket';
  else throw wrongKind(fn, n, desc, wanted, desc.kind === 'socket' ? suggestionFor(desc) : undefined);
  const access = desc.openFlags[0];
  if (access === 'O_PATH' || (direction === 'read' && access === 'O_WRONLY') || (direction === 'write' && access === 'O_RDONLY')) {
    throw new FdPassError('ERR_FDPASS_WRONG_KIND', `${fn}: fd ${n} is ${describeKind(desc)} opened ${access}: it cannot be ${direction === 'read' ? 'read' : 'written'}${access === 'O_PATH' ? '' : `; use ${direction === 'read' ? 'toWriteStream' : 'toReadStream'}()`}`);
  }
  return kind;
}

/**
 * A Readable for a file, memfd, device, pipe, FIFO, terminal or connected stream socket.
 * Files and devices become an `fs.ReadStream` (reads from the current offset); pipes, FIFOs and
 * sockets become a read-only `net.Socket` (non-blocking, through libuv, as Node does for
 * process.stdin; an fs stream would park a threadpool thread in read(2)); a terminal becomes
 * a `tty.ReadStream`. The stream owns the descriptor and closes it when done.
 */
export function toReadStream(fd: FdInput, options: ToStreamOptions = {}): fs.ReadStream | net.Socket {
  integerOption(options.highWaterMark, 'options.highWaterMark', 0, 0x7fffffff, 0);
  const { fd: n, kind } = streamKind(fd, 'toReadStream', 'read');
  return adoptInto(fd, () => {
    let stream: fs.ReadStream | net.Socket;
    if (kind === 'file') stream = fs.createReadStream('', { fd: n, highWaterMark: options.highWaterMark });
    else if (kind === 'tty') stream = new tty.ReadStream(n);
    // Bun: its fs stream reads a pipe without blocking a thread; a socket is adopted as Bun does.
    else if (onBun) stream = kind === 'pipe' ? fs.createReadStream('', { fd: n, highWaterMark: options.highWaterMark }) : bunNetSocket(n, { readable: true, writable: false, readableHighWaterMark: options.highWaterMark });
    else stream = new net.Socket({ fd: n, readable: true, writable: false, readableHighWaterMark: options.highWaterMark } as net.SocketConstructorOpts);
    if (options.encoding) stream.setEncoding(options.encoding);
    return stream;
  });
}

/**
 * A Writable for a file, memfd, device, pipe, FIFO, terminal or connected stream socket:
 * `fs.WriteStream` for files and devices (writes at the current offset, or at the end with
 * O_APPEND), a write-only `net.Socket` for pipes, FIFOs and sockets (on Bun an `fs.WriteStream`
 * for pipes and FIFOs), `tty.WriteStream` for a terminal. The stream owns the descriptor and
 * closes it when done.
 */
export function toWriteStream(fd: FdInput, options: Pick<ToStreamOptions, 'highWaterMark'> = {}): fs.WriteStream | net.Socket {
  integerOption(options.highWaterMark, 'options.highWaterMark', 0, 0x7fffffff, 0);
  const { fd: n, kind } = streamKind(fd, 'toWriteStream', 'write');
  return adoptInto(fd, () => {
    if (kind === 'file') return fs.createWriteStream('', { fd: n, highWaterMark: options.highWaterMark });
    if (kind === 'tty') return new tty.WriteStream(n);
    // Bun: its net.Socket({ fd }) writes a pipe or socket synchronously, blocking the thread
    // while the reader is slow (forever, if the reader is this process).
    if (onBun) return kind === 'pipe' ? fs.createWriteStream('', { fd: n, highWaterMark: options.highWaterMark }) : bunNetSocket(n, { readable: false, writable: true, writableHighWaterMark: options.highWaterMark });
    return new net.Socket({ fd: n, readable: false, writable: true, writableHighWaterMark: options.highWaterMark } as net.SocketConstructorOpts);
  });
}

// ---------------------------------------------------------------------------------------------
// send(..., { close: true }): hand the sender's objects off

/** What `send`/`sendSync` do with the objects named in `fds` when `close: true`. */
export interface HandOff {
  /** The message (and so the fds) is in the kernel: close the sender's copies. */
  commit(): void;
  /** Nothing was sent: put every object back as it was (resume reading). */
  rollback(): void;
}

interface Step {
  commit(): void;
  rollback(): void;
}

function noop(): void {}

type NetSocketInternals = net.Socket & { _handle?: UvStreamHandle | null; connecting?: boolean };

function netSocketStep(socket: NetSocketInternals): Step {
  const handle = socket._handle!;
  const wasReading = handle.reading === true;
  const wasFlowing = socket.readableFlowing;
  // Stop reading at the libuv level now: no byte may be taken by this process once the
  // hand-off has started (pause() alone lets libuv keep filling the stream's buffer). A
  // flowing stream is also paused, so consuming it does not call _read() and restart reading;
  // one that never flowed (readableFlowing null) is left so, to be restored exactly.
  if (wasFlowing === true) socket.pause();
  if (wasReading && handle.readStop) {
    handle.reading = false;
    handle.readStop();
  }
  // Bun's handle is its own socket, with no readStop: pause() stops it reading from the kernel.
  const bunHandle = handle.readStop === undefined && typeof handle.pause === 'function' ? handle : null;
  bunHandle?.pause!();
  return {
    commit: () => socket.destroy(),
    rollback: () => {
      if (socket.destroyed || socket._handle !== handle) return;
      if (wasReading && handle.readStart) {
        handle.reading = true;
        handle.readStart();
      }
      bunHandle?.resume?.();
      if (wasFlowing === true) socket.resume();
    },
  };
}

function dgramStep(socket: dgram.Socket, state: { handle?: UvStreamHandle | null; receiving?: boolean }): Step {
  const handle = state.handle!;
  const wasReceiving = state.receiving === true;
  if (wasReceiving && handle.recvStop) handle.recvStop();
  return {
    commit: () => socket.close(),
    rollback: () => {
      if (wasReceiving && handle.recvStart && state.handle === handle) handle.recvStart();
    },
  };
}

/**
 * net.Server.close() on a Unix socket this process bound unlinks the socket file (libuv does it
 * synchronously inside uv_close) — the file the receiver now serves on. Keep it: a second hard
 * link to the socket inode survives the unlink and is renamed back at once.
 */
function closeServerKeepingPath(server: net.Server): void {
  const address = server.address();
  if (typeof address !== 'string' || address === '' || address.startsWith('\0')) {
    server.close();
    return;
  }
  const keep = `${address}.fdpass-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  try {
    fs.linkSync(address, keep);
  } catch {
    server.close(); // cannot link (read-only directory, …): the path goes, as with a plain close
    return;
  }
  try {
    server.close();
  } finally {
    try {
      if (fs.existsSync(address)) fs.unlinkSync(keep);
      else fs.renameSync(keep, address);
    } catch {
      // Leave the extra link rather than throw after the hand-off succeeded.
    }
  }
}

function isFileHandle(value: object): value is fs.promises.FileHandle {
  return value.constructor?.name === 'FileHandle' && typeof (value as { close?: unknown }).close === 'function' && typeof (value as { fd?: unknown }).fd === 'number';
}

function fsStreamStep(stream: fs.ReadStream | fs.WriteStream): Step {
  const wasFlowing = stream instanceof fs.ReadStream ? stream.readableFlowing : null;
  if (wasFlowing === true) (stream as fs.ReadStream).pause(); // stop asking for more reads (one in flight completes)
  return {
    commit: () => {
      const fd = (stream as unknown as { fd: number | null }).fd;
      const autoClose = (stream as { autoClose?: boolean }).autoClose !== false;
      stream.destroy();
      if (!autoClose && typeof fd === 'number') closeQuietly(fd);
    },
    rollback: () => {
      if (wasFlowing === true) (stream as fs.ReadStream).resume();
    },
  };
}

/**
 * Check one value (read-only: throws when close: true cannot handle it) and return what
 * starts its hand-off.
 */
function planFor(value: FdLike, name: string): () => Step {
  if (typeof value === 'number') return () => ({ commit: () => closeQuietly(value), rollback: noop });
  if (value instanceof Fd) return () => ({ commit: () => value.close(), rollback: noop });
  if (value instanceof net.Socket) {
    const s = value as NetSocketInternals;
    if (s.destroyed || !s._handle) throw invalidArgValue(name, 'is a destroyed net.Socket');
    if (s.readableLength > 0) {
      throw new FdPassError('ERR_FDPASS_BUSY', `${name}: the net.Socket holds ${s.readableLength} bytes this process already read; socket.read() them and send them with the message, or the receiver will never see them`);
    }
    if (s.writableLength > 0) {
      throw new FdPassError('ERR_FDPASS_BUSY', `${name}: the net.Socket has ${s.writableLength} bytes queued for writing; wait for 'drain' before handing it off, or they would be lost`);
    }
    return () => netSocketStep(s);
  }
  if (value instanceof net.Server) return () => ({ commit: () => closeServerKeepingPath(value), rollback: noop });
  if (value instanceof dgram.Socket) {
    const state = dgramState(value);
    if (!state?.handle) throw invalidArgValue(name, 'is a closed dgram.Socket');
    return () => dgramStep(value, state);
  }
  if (value instanceof fs.ReadStream || value instanceof fs.WriteStream) {
    const buffered = value instanceof fs.ReadStream ? value.readableLength : value.writableLength;
    if (buffered > 0) {
      throw new FdPassError('ERR_FDPASS_BUSY', value instanceof fs.ReadStream
        ? `${name}: the fs.ReadStream holds ${buffered} bytes it already read (the shared file offset has moved past them); consume them first`
        : `${name}: the fs.WriteStream has ${buffered} bytes queued for writing; wait for 'drain' before handing it off, or they would be lost`);
    }
    return () => fsStreamStep(value);
  }
  if (value !== null && typeof value === 'object') {
    if (isFileHandle(value)) return () => ({ commit: () => void value.close().catch(noop), rollback: noop });
    const v = value as { close?: unknown; recvSync?: unknown; acceptSync?: unknown };
    // fdpass's own UnixSocket: close() drops this process's descriptor only.
    if (typeof v.recvSync === 'function' && typeof v.close === 'function') {
      return () => ({ commit: () => (v.close as () => void).call(value), rollback: noop });
    }
    if (typeof v.acceptSync === 'function') {
      throw new FdPassError('ERR_FDPASS_UNSUPPORTED', `${name}: close: true cannot close a UnixServer (its close() would unlink the socket file the receiver now serves); send it without close: true, then close the sender's descriptor yourself`);
    }
  }
  throw invalidArgValue(name, 'is not something close: true knows how to close (an fd number, Fd, UnixSocket, net.Socket, net.Server, dgram.Socket, FileHandle or fs stream); send without close: true and close it yourself');
}

/**
 * Validate and prepare the objects of one `send(..., { close: true })`: every check runs
 * before any object is touched, then readers are stopped. The caller commits once sendmsg has
 * taken the fds, or rolls back when nothing was sent.
 */
export function prepareHandOff(values: readonly FdLike[]): HandOff {
  const seen = new Set<unknown>();
  const plans: (() => Step)[] = [];
  values.forEach((value, i) => {
    if (seen.has(value)) return;
    seen.add(value);
    plans.push(planFor(value, `fds[${i}]`));
  });
  // Every check passed: only now touch the objects.
  const steps = plans.map((start) => start());
  let settled = false;
  return {
    commit() {
      if (settled) return;
      settled = true;
      for (const step of steps) step.commit();
    },
    rollback() {
      if (settled) return;
      settled = true;
      for (const step of steps) step.rollback();
    },
  };
}
