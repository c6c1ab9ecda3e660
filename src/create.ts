/**
 * Making descriptors the way fdpass needs them, with whatever the platform has: close-on-exec
 * (atomically with SOCK_CLOEXEC/accept4/pipe2/MSG_CMSG_CLOEXEC, else fcntl right after the
 * call), non-blocking where asked, and SIGPIPE-safe sockets (MSG_NOSIGNAL on each send, or
 * SO_NOSIGPIPE on each socket). One function per kind of descriptor, one code path per capability.
 *
 * Without atomic flags there is a window between the call and fcntl: a process forked and
 * exec'd by another thread (a Worker) in that window inherits the descriptor. Node's main
 * thread cannot fork in between (JavaScript runs one call at a time).
 */
import { C, CAPS, E, check, closeQuietly, fcntlInt, sys } from './libc.js';

const atomic = CAPS.atomicCloexec;

/** Flags for every sendmsg: never block, and no SIGPIPE where the platform does it per call. */
export const SEND_FLAGS = C.MSG_DONTWAIT | (CAPS.sigpipe === 'msg_nosignal' ? C.MSG_NOSIGNAL : 0);
/** Flags for every recvmsg: never block; received descriptors close-on-exec where the kernel can. */
export const RECV_FLAGS = C.MSG_DONTWAIT | (atomic ? C.MSG_CMSG_CLOEXEC! : 0);

const one = Buffer.alloc(4);

/** SO_NOSIGPIPE where that is how this platform keeps a closed peer from raising SIGPIPE. */
function protectSigpipe(fd: number): void {
  if (CAPS.sigpipe !== 'so_nosigpipe') return;
  E.writeInt32(one, 0, 1);
  check('setsockopt', sys.setsockopt(fd, C.SOL_SOCKET, C.SO_NOSIGPIPE!, one, 4) as number);
}

export function setNonBlocking(fd: number, on: boolean): void {
  const flags = fcntlInt('fcntl', fd, C.F_GETFL);
  const wanted = on ? flags | C.O_NONBLOCK : flags & ~C.O_NONBLOCK;
  if (wanted !== flags) fcntlInt('fcntl', fd, C.F_SETFL, wanted);
}

/** The non-atomic path: FD_CLOEXEC (a new descriptor has no other fd flag) and O_NONBLOCK. */
function finish(fd: number, nonBlocking: boolean | null, socket: boolean): number {
  try {
    if (!atomic) {
      fcntlInt('fcntl', fd, C.F_SETFD, C.FD_CLOEXEC);
      if (nonBlocking !== null) setNonBlocking(fd, nonBlocking);
    }
    if (socket) protectSigpipe(fd);
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
  return fd;
}

/** socket(2): close-on-exec, non-blocking if asked, SIGPIPE-safe. */
export function createSocket(domain: number, type: number, nonBlocking: boolean): number {
  const flags = atomic ? C.SOCK_CLOEXEC! | (nonBlocking ? C.SOCK_NONBLOCK! : 0) : 0;
  const fd = check('socket', sys.socket(domain, type | flags, 0) as number);
  return finish(fd, atomic || !nonBlocking ? null : true, true);
}

/** socketpair(2): both ends close-on-exec and SIGPIPE-safe. */
export function createSocketPair(type: number): [number, number] {
  const pair = Buffer.alloc(8);
  check('socketpair', sys.socketpair(C.AF_UNIX, type | (atomic ? C.SOCK_CLOEXEC! : 0), 0, pair) as number);
  const a = E.readInt32(pair, 0);
  const b = E.readInt32(pair, 4);
  try {
    finish(a, null, true);
  } catch (err) {
    closeQuietly(b);
    throw err;
  }
  finish(b, null, true);
  return [a, b];
}

/**
 * accept(2) of the next connection, close-on-exec, blocking (BSD accept() hands down the
 * listener's O_NONBLOCK; Linux's accept4 does not) and SIGPIPE-safe. Returns -1 with errno set
 * as accept left it when there is none.
 */
export function acceptConnection(listener: number): number {
  const fd = atomic ? (sys.accept4!(listener, null, null, C.SOCK_CLOEXEC!) as number) : (sys.accept(listener, null, null) as number);
  if (fd < 0) return fd;
  return finish(fd, false, true);
}

/** pipe(2): both ends close-on-exec. */
export function createPipe(): [number, number] {
  const ends = Buffer.alloc(8);
  if (atomic) check('pipe2', sys.pipe2!(ends, C.O_CLOEXEC) as number);
  else check('pipe', sys.pipe(ends) as number);
  const r = E.readInt32(ends, 0);
  const w = E.readInt32(ends, 4);
  try {
    finish(r, null, false);
  } catch (err) {
    closeQuietly(w);
    throw err;
  }
  finish(w, null, false);
  return [r, w];
}

/**
 * Descriptors that arrived in a control message: close-on-exec already (MSG_CMSG_CLOEXEC), or
 * made so now. On failure every one of them is closed.
 */
export function receivedCloexec(fds: readonly number[]): void {
  if (atomic) return;
  for (let i = 0; i < fds.length; i++) {
    try {
      fcntlInt('fcntl', fds[i], C.F_SETFD, C.FD_CLOEXEC);
    } catch (err) {
      for (const fd of fds) closeQuietly(fd);
      throw err;
    }
  }
}

/** An adopted socket (inherited, or received) gets the same SIGPIPE protection as our own. */
export function adoptedSocket(fd: number): void {
  protectSigpipe(fd);
}
