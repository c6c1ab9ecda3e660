import koffi from 'koffi';
import { constants as osConstants } from 'node:os';
import { byteOrder } from './byteorder.js';
import { cmsgLayoutOf, credentialCodecOf } from './cmsg.js';
import { FdPassError } from './errors.js';
import { hostPlatform, type Platform } from './platform/index.js';

function loadPlatform(): Platform {
  const result = hostPlatform();
  if (result.error) throw new FdPassError(result.error.code, result.error.message);
  return result.platform;
}

/** The platform table chosen at load time: `name` ('linux-x64-glibc'), `os`, `libcName` (what koffi.load() opens), and the constants and struct layouts fdpass uses. */
export const platform: Platform = loadPlatform();
export const C = platform.constants;
export const L = platform.layouts;
/** What this platform can do (FDPASS_CAPABILITIES=minimal swaps in the fallbacks, for tests). */
export const CAPS = platform.capabilities;
/** C integers in this platform's byte order. */
export const E = byteOrder(platform.endianness);
export const CMSG = cmsgLayoutOf(platform);
/** The credentials control message this platform has (and its capability allows), or null. */
export const CREDENTIALS = credentialCodecOf(platform);

/** The C library, for modules that declare prototypes of their own (pidfd). Null: the process's own symbols. */
export const lib = koffi.load(platform.libcName);

/** The symbol a libc function is exported under here (NetBSD: socket is __socket30). */
function symbol(name: string): string {
  return platform.symbols[name] ?? name;
}

type Fn = ReturnType<typeof lib.func>;

/** Declared only where the platform has them: binding a missing symbol fails at import. */
function optional(present: boolean, prototype: string): Fn | null {
  return present ? lib.func(prototype) : null;
}

// Pointers are passed as Buffers (koffi hands the C side the Buffer's own memory, no copy).
// ssize_t is intptr_t on every supported ABI; socklen_t is uint32_t.
export const sys = {
  socket: lib.func(`int ${symbol('socket')}(int domain, int type, int protocol)`),
  socketpair: lib.func('int socketpair(int domain, int type, int protocol, void *sv)'),
  sendmsg: lib.func('intptr_t sendmsg(int fd, void *msg, int flags)'),
  recvmsg: lib.func('intptr_t recvmsg(int fd, void *msg, int flags)'),
  close: lib.func('int close(int fd)'),
  bind: lib.func('int bind(int fd, void *addr, uint32_t addrlen)'),
  connect: lib.func('int connect(int fd, void *addr, uint32_t addrlen)'),
  listen: lib.func('int listen(int fd, int backlog)'),
  accept: lib.func('int accept(int fd, void *addr, void *addrlen)'),
  accept4: optional(CAPS.atomicCloexec, 'int accept4(int fd, void *addr, void *addrlen, int flags)'),
  shutdown: lib.func('int shutdown(int fd, int how)'),
  getsockopt: lib.func('int getsockopt(int fd, int level, int name, void *value, void *len)'),
  setsockopt: lib.func('int setsockopt(int fd, int level, int name, void *value, uint32_t len)'),
  getsockname: lib.func('int getsockname(int fd, void *addr, void *addrlen)'),
  fchmod: lib.func('int fchmod(int fd, uint32_t mode)'),
  read: lib.func('intptr_t read(int fd, void *buf, uintptr_t count)'),
  write: lib.func('intptr_t write(int fd, void *buf, uintptr_t count)'),
  // Variadic in C (the mode); always given, so that O_CREAT has one.
  open: lib.func('int open(const char *path, int flags, ...)'),
  pipe: lib.func('int pipe(void *fds)'),
  pipe2: optional(CAPS.atomicCloexec, 'int pipe2(void *fds, int flags)'),
  poll: lib.func('int poll(void *fds, unsigned long nfds, int timeout)'),
  // Variadic in C: declared so, because some ABIs pass variadic arguments differently.
  fcntl: lib.func('int fcntl(int fd, int cmd, ...)'),
};

/** errno of the last failed call (koffi captures it right after the call returns). */
export function lastErrno(): number {
  return koffi.errno();
}

/** Turn a C `-1 + errno` return into an FdPassError; pass other values through. */
export function check<T extends number | bigint>(syscall: string, ret: T, path?: string): T {
  if (ret < 0) throw FdPassError.fromErrno(syscall, koffi.errno(), path);
  return ret;
}

export const { EAGAIN, EINTR, EPROTOTYPE, ECONNABORTED, ECONNREFUSED, ENOENT, EADDRINUSE, ETIMEDOUT } = osConstants.errno;

/** fcntl(fd, F_GETFL) / F_DUPFD_CLOEXEC and friends, with the variadic int spelled out. */
export function fcntlInt(syscall: string, fd: number, cmd: number, arg?: number): number {
  const ret = arg === undefined ? sys.fcntl(fd, cmd) : sys.fcntl(fd, cmd, 'int', arg);
  return check(syscall, ret as number);
}

/** close(2) that never throws (EINTR on Linux still closes the fd: never retry). */
export function closeQuietly(fd: number): void {
  sys.close(fd);
}

// close_range(2) through syscall(2): musl has no wrapper, and glibc's needs 2.34.
const closeRangeCall = CAPS.closeRange && platform.linux !== null ? lib.func('long syscall(long number, ...)') : null;
const SYS_close_range = platform.linux?.SYS_close_range ?? -1;
/** Cleared when the kernel (older than 5.9) or a seccomp filter refuses close_range: it then closed nothing. */
let closeRangeWorks = closeRangeCall !== null;

/**
 * Close descriptors this process owns (distinct numbers, none shared with anyone), never
 * throwing: each run of consecutive numbers with one close_range(2) where the platform has it,
 * else one close(2) each. A run holds only numbers from `fds`, so nothing else is closed.
 */
export function closeAllQuietly(fds: readonly number[]): void {
  const n = fds.length;
  let i = 0;
  while (i < n) {
    let j = i + 1;
    if (closeRangeWorks) while (j < n && fds[j] === fds[j - 1] + 1) j++;
    if (j - i > 1 && closeRangeCall!(SYS_close_range, 'long', fds[i], 'long', fds[j - 1], 'long', 0) === 0) {
      i = j;
      continue;
    }
    if (j - i > 1) closeRangeWorks = false;
    for (; i < j; i++) sys.close(fds[i]);
  }
}

/** The error for a feature this platform does not have: at the call, saying what to use instead. */
export function unsupported(what: string, instead: string): FdPassError {
  const mode = platform.capabilityMode === 'minimal' ? ' (FDPASS_CAPABILITIES=minimal)' : '';
  return new FdPassError('ERR_FDPASS_UNSUPPORTED', `${what} is not available on ${platform.name}${mode}; ${instead}`);
}

export { koffi };
