/** Making UnixSockets: socketPair, connect/connectSync, adopt; addresses and socket types. */
import { lstatSync, statSync } from 'node:fs';
import { encodeUnixAddress, type UnixAddress } from './address.js';
import { adoptedSocket, createSocket, createSocketPair, setNonBlocking } from './create.js';
import { FdPassError, invalidArgType, invalidArgValue, notOpenError } from './errors.js';
import { Fd } from './fd.js';
import { fdNumber } from './fdlike.js';
import { launcherHint } from './launcher.js';
import { C, CAPS, E, ECONNREFUSED, EINTR, EPROTOTYPE, L, closeQuietly, lastErrno, sys, unsupported } from './libc.js';
import { UnixSocket, type SocketType } from './socket.js';
import { getIntOption, socketDomain, socketTypeName } from './sockopt.js';

export { setNonBlocking } from './create.js';

/** The kernel socket type behind each fdpass type ('framed' is a SOCK_STREAM socket). */
export const socketTypes: Record<SocketType, number> = { stream: C.SOCK_STREAM, seqpacket: C.SOCK_SEQPACKET, dgram: C.SOCK_DGRAM, framed: C.SOCK_STREAM };

/**
 * What fdpass uses wherever it picks the type itself (socketPair(), listen(), spawnWithSocket,
 * adopt() of a stream socket where SEQPACKET is missing): one send, one message.
 */
export const defaultMessageType: SocketType = CAPS.seqpacket ? 'seqpacket' : 'framed';

export function socketTypeOf(type: unknown, name = 'type'): number {
  const n = Object.hasOwn(socketTypes, type as string) ? socketTypes[type as SocketType] : undefined;
  if (n === undefined) throw invalidArgValue(name, `must be 'stream', 'seqpacket', 'framed' or 'dgram'. Received ${String(type)}`);
  if (type === 'seqpacket' && !CAPS.seqpacket) {
    throw unsupported("AF_UNIX SOCK_SEQPACKET ('seqpacket')", "use 'framed' (the default here: the same one-send-one-message semantics over a stream socket) or 'dgram'");
  }
  return n;
}

export function newSocketFd(type: number, nonBlocking = false): number {
  return createSocket(C.AF_UNIX, type, nonBlocking);
}

/**
 * A connected pair of sockets (socketpair(2)). The default keeps message boundaries:
 * 'seqpacket', or 'framed' where the platform has no SEQPACKET (darwin).
 */
export function socketPair(type: SocketType = defaultMessageType): [UnixSocket, UnixSocket] {
  const [a, b] = createSocketPair(socketTypeOf(type));
  return [new UnixSocket(a, type), new UnixSocket(b, type)];
}

/** A Unix socket address: a file `path`, or a Linux `abstract` name. */
export interface AddressOptions {
  /** A filesystem path for the socket. */
  path?: string;
  /** A Linux abstract name instead of a path (no file is created). */
  abstract?: string;
}

/** What `connect()` / `connectSync()` connect to, and the socket type if known. */
export interface ConnectOptions extends AddressOptions {
  /**
   * The server's socket type. Default: try 'seqpacket', then 'stream', then 'dgram' — or, where
   * SEQPACKET does not exist, 'framed' (for a stream server) then 'dgram'. A Linux server
   * listening with type 'framed' needs `type: 'framed'` here (the kernel sees a stream socket).
   */
  type?: SocketType;
}

export function toAddress(target: string | AddressOptions, what: string): UnixAddress & { label: string } {
  if (typeof target === 'string') return { path: target, label: target };
  if (target === null || typeof target !== 'object') throw invalidArgType(what, 'a path string or an options object', target);
  if (target.abstract !== undefined) {
    if (typeof target.abstract !== 'string') throw invalidArgType(`${what}.abstract`, 'a string', target.abstract);
    if (target.path !== undefined) throw invalidArgValue(what, 'must have either path or abstract, not both');
    if (!CAPS.abstractNames) throw unsupported('an abstract socket name', 'use a path in a directory only the intended users can reach');
    return { abstract: target.abstract, label: `@${target.abstract}` };
  }
  if (typeof target.path !== 'string') throw invalidArgType(`${what}.path`, 'a string', target.path);
  return { path: target.path, label: target.path };
}

const CONNECT_ORDER: SocketType[] = CAPS.seqpacket ? ['seqpacket', 'stream', 'dgram'] : ['framed', 'dgram'];

function connectFd(target: string | ConnectOptions, nonBlocking: boolean): UnixSocket {
  const address = toAddress(target, 'target');
  const type = typeof target === 'object' ? target.type : undefined;
  if (type !== undefined) socketTypeOf(type, 'target.type');
  const types = type === undefined ? CONNECT_ORDER : [type];
  const { sockaddr, length } = encodeUnixAddress(address, L.sockaddr_un, C, E);
  let lastError: FdPassError | undefined;
  for (const t of types) {
    const fd = newSocketFd(socketTypes[t], nonBlocking);
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
    if (errno === ECONNREFUSED && address.path !== undefined) {
      // The kernel says ECONNREFUSED for a file that is not a socket too: say which it is.
      const kind = nonSocketKind(address.path, true);
      const why = kind === undefined ? 'nothing is listening on this socket file (a server that exited?)' : `the path is ${kind}, not a socket`;
      lastError = new FdPassError('ECONNREFUSED', `${lastError.message}: ${why}`, { errno, syscall: 'connect', path: address.label });
    }
    // A path is one socket whatever its type (EPROTOTYPE on a mismatch); abstract names are
    // looked up per type, so a mismatch there reads as ECONNREFUSED.
    if (errno !== EPROTOTYPE && !(errno === ECONNREFUSED && address.abstract !== undefined)) break;
  }
  throw lastError!;
}

/** 'a regular file', 'a directory', … for a path that exists and is not a socket; undefined for a socket or nothing. */
export function nonSocketKind(path: string, follow: boolean): string | undefined {
  let st;
  try {
    st = follow ? statSync(path) : lstatSync(path);
  } catch {
    return undefined;
  }
  if (st.isSocket()) return undefined;
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a FIFO';
  return st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'not a socket';
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
 * SO_DOMAIN, with "not a socket at all" reported as fdpass's own not-a-Unix-socket error and a
 * closed number as "fd N is not open"; both name the launcher that lost an inherited socket, if any.
 */
export function unixDomainOf(n: number): number {
  let domain: number;
  try {
    domain = socketDomain(n);
  } catch (err) {
    const code = (err as FdPassError).code;
    if (code === 'ENOTSOCK') throw new FdPassError('ERR_FDPASS_NOT_UNIX_SOCKET', `fd ${n} is not a socket${n > 2 ? launcherHint(n) : ''}`);
    if (code === 'EBADF') throw notOpenError('getsockopt', n, n > 2 ? launcherHint(n) : '');
    throw err;
  }
  if (domain !== C.AF_UNIX) throw new FdPassError('ERR_FDPASS_NOT_UNIX_SOCKET', `fd ${n} is not an AF_UNIX socket (SO_DOMAIN ${domain})${n > 2 ? launcherHint(n) : ''}`);
  return domain;
}

/**
 * The number of a descriptor to take ownership of: a number or an Fd only. A Node object
 * (net.Socket, …) would end up with two owners and two libuv watchers on one fd.
 */
export function ownedFdNumber(fd: number | Fd): number {
  if (fd instanceof Fd) return fd.fd;
  if (typeof fd !== 'number') throw invalidArgType('fd', 'an fd number or an Fd (for a Node object, pass Fd.dup(obj))', fd);
  return fdNumber(fd);
}

export interface AdoptOptions {
  /**
   * How to read a SOCK_STREAM socket: 'stream' (raw bytes) or 'framed' (fdpass messages). Default:
   * 'stream' where the platform has SEQPACKET, 'framed' where it does not (the peer then made the
   * pair with fdpass's default). Other kernel types must match exactly.
   */
  type?: SocketType;
}

/**
 * Wrap an inherited or received connected AF_UNIX socket (e.g. fd 3 from a parent), taking
 * ownership of it: the UnixSocket closes it. Its type is read from the kernel (SO_TYPE); an Fd
 * given is released. Throws ERR_FDPASS_NOT_UNIX_SOCKET (not a Unix socket), ERR_FDPASS_NOT_CONNECTED
 * (a listening one: use adoptServer), EBADF ("fd N is not open"); when a launcher such as the tsx
 * CLI or npx started this process and lost the parent's socket, the message says so.
 */
export function adopt(fd: number | Fd, options?: AdoptOptions): UnixSocket {
  const wanted = options?.type;
  if (wanted !== undefined) socketTypeOf(wanted, 'options.type');
  const n = ownedFdNumber(fd);
  unixDomainOf(n);
  if (getIntOption(n, C.SO_ACCEPTCONN)) {
    throw new FdPassError('ERR_FDPASS_NOT_CONNECTED', `fd ${n} is a listening socket: use adoptServer()`);
  }
  const kernelType = socketTypeName(getIntOption(n, C.SO_TYPE));
  if (kernelType !== 'stream' && kernelType !== 'seqpacket' && kernelType !== 'dgram') {
    throw new FdPassError('ERR_FDPASS_NOT_UNIX_SOCKET', `fd ${n} has unsupported socket type ${kernelType}`);
  }
  const type = streamType(kernelType, wanted, n);
  adoptedSocket(n);
  if (fd instanceof Fd) fd.release();
  return new UnixSocket(n, type);
}

/** The fdpass type for a socket the kernel calls `kernelType`, honouring an explicit `wanted`. */
export function streamType(kernelType: 'stream' | 'seqpacket' | 'dgram', wanted: SocketType | undefined, fd: number): SocketType {
  if (wanted === undefined) return kernelType === 'stream' && !CAPS.seqpacket ? 'framed' : kernelType;
  if (socketTypes[wanted] !== socketTypes[kernelType]) {
    throw new FdPassError('ERR_FDPASS_WRONG_KIND', `fd ${fd} is a ${kernelType} socket, so it cannot be used as '${wanted}'`);
  }
  return wanted;
}

