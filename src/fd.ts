/** Fd: ownership of one descriptor — closed exactly once, explicitly or by `using`. */
import { readlinkSync, fstatSync, constants as fsConstants } from 'node:fs';
import { isatty } from 'node:tty';
import { FdPassError } from './errors.js';
import { createPipe } from './create.js';
import { C, check, closeQuietly, fcntlInt } from './libc.js';
import { fdOf, type FdLike } from './fdlike.js';
import { describeSocket, type SocketDescription } from './sockopt.js';

export type FdKind =
  | 'file' | 'directory' | 'pipe' | 'fifo' | 'socket' | 'tty' | 'char' | 'block' | 'symlink'
  | 'memfd' | 'eventfd' | 'pidfd' | 'epoll' | 'timerfd' | 'signalfd' | 'inotify' | 'fanotify'
  | 'io_uring' | 'userfaultfd' | 'anon_inode' | 'unknown';

export interface FdDescription {
  fd: number;
  kind: FdKind;
  /** Filesystem path (files, directories, fifos, devices), socket address ('@name' if abstract), or memfd name. */
  path?: string;
  /** The file was unlinked after it was opened (memfds always are). */
  deleted?: boolean;
  /** What the kernel shows in /proc/self/fd: "pipe:[1234]", "/etc/hosts", "anon_inode:[eventfd]". */
  target: string;
  /** O_RDONLY / O_WRONLY / O_RDWR / O_PATH, then flags such as O_APPEND and O_NONBLOCK. */
  openFlags: string[];
  closeOnExec: boolean;
  /** Size in bytes for regular files and memfds. */
  size?: number;
  socket?: SocketDescription;
}

const anonKinds: Record<string, FdKind> = {
  eventfd: 'eventfd', pidfd: 'pidfd', eventpoll: 'epoll', timerfd: 'timerfd', signalfd: 'signalfd',
  inotify: 'inotify', fanotify: 'fanotify', io_uring: 'io_uring', userfaultfd: 'userfaultfd',
};

// Flag names to report, each checked against this platform's own O_* values.
const reportedFlags = ['O_APPEND', 'O_NONBLOCK', 'O_SYNC', 'O_DSYNC', 'O_DIRECT', 'O_NOATIME', 'O_DIRECTORY'] as const;

function openFlagNames(flags: number): string[] {
  const fsc = fsConstants as Record<string, number | undefined>;
  if (C.O_PATH !== null && flags & C.O_PATH) return ['O_PATH'];
  const access = flags & fsConstants.O_RDWR ? 'O_RDWR' : flags & fsConstants.O_WRONLY ? 'O_WRONLY' : 'O_RDONLY';
  const names = [access];
  for (const name of reportedFlags) {
    const bit = fsc[name];
    // O_SYNC includes the O_DSYNC bit: report O_DSYNC only when O_SYNC is not fully set.
    if (bit && (flags & bit) === bit && !(name === 'O_DSYNC' && fsc.O_SYNC && (flags & fsc.O_SYNC) === fsc.O_SYNC)) names.push(name);
  }
  return names;
}

function kindOf(fd: number, target: string): { kind: FdKind; size?: number } {
  let st;
  try {
    st = fstatSync(fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EBADF';
    throw new FdPassError(code, `fstat ${code}`, { syscall: 'fstat', errno: -((err as NodeJS.ErrnoException).errno ?? 0) });
  }
  if (st.isFile()) return { kind: target.startsWith('/memfd:') ? 'memfd' : 'file', size: st.size };
  if (st.isDirectory()) return { kind: 'directory' };
  if (st.isFIFO()) return { kind: target.startsWith('pipe:') ? 'pipe' : 'fifo' };
  if (st.isSocket()) return { kind: 'socket' };
  if (st.isCharacterDevice()) return { kind: isatty(fd) ? 'tty' : 'char' };
  if (st.isBlockDevice()) return { kind: 'block' };
  if (st.isSymbolicLink()) return { kind: 'symlink' };
  const anon = /^(?:anon_inode:)?\[?([a-z_]+)\]?/.exec(target);
  if (anon && target.includes(':')) return { kind: anonKinds[anon[1]] ?? (target.startsWith('anon_inode:') ? 'anon_inode' : 'unknown') };
  return { kind: 'unknown' };
}

/** What descriptor `fd` is, read from the kernel: fstat, /proc/self/fd, fcntl, getsockopt. */
export function describeFd(fd: number): FdDescription {
  let target: string;
  try {
    target = readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    target = '';
  }
  const flags = fcntlInt('fcntl', fd, C.F_GETFL);
  const fdFlags = fcntlInt('fcntl', fd, C.F_GETFD);
  const { kind, size } = kindOf(fd, target);
  const desc: FdDescription = { fd, kind, target, openFlags: openFlagNames(flags), closeOnExec: (fdFlags & C.FD_CLOEXEC) !== 0 };
  if (size !== undefined) desc.size = size;
  if (kind === 'socket') {
    desc.socket = describeSocket(fd);
    if (desc.socket.path !== undefined) desc.path = desc.socket.path;
  } else if (kind === 'memfd') {
    // "/memfd:NAME (deleted)": the name given to memfd_create, not a filesystem path.
    desc.path = target.slice('/memfd:'.length).replace(/ \(deleted\)$/, '');
    desc.deleted = true;
  } else if (target.startsWith('/')) {
    const deleted = target.endsWith(' (deleted)');
    desc.path = deleted ? target.slice(0, -' (deleted)'.length) : target;
    if (deleted) desc.deleted = true;
  }
  return desc;
}

/**
 * An anonymous pipe, both ends close-on-exec (pipe2 with O_CLOEXEC, or pipe and fcntl where
 * there is no pipe2): `[readEnd, writeEnd]`. Node has no API for one; its `stdio: 'pipe'` is a
 * socketpair.
 */
export function pipe(): [Fd, Fd] {
  const [r, w] = createPipe();
  return [new Fd(r), new Fd(w)];
}

/** A new descriptor for the same open file, close-on-exec (F_DUPFD_CLOEXEC). */
export function dupCloexec(fd: number): number {
  return fcntlInt('fcntl', fd, C.F_DUPFD_CLOEXEC, 0);
}

/**
 * Owns one open descriptor. `close()` is idempotent; `using f = msg.fds[0]` closes it at
 * scope end; `release()` hands the number to someone else (e.g. `new net.Socket({ fd })`).
 */
export class Fd {
  #fd: number;

  constructor(fd: number) {
    this.#fd = fd;
  }

  /** Take ownership of a duplicate of any FdLike (the original stays open and owned by its owner). */
  static dup(value: FdLike): Fd {
    return new Fd(dupCloexec(fdOf(value)));
  }

  /** The descriptor number; throws once the Fd is closed or released. */
  get fd(): number {
    if (this.#fd < 0) throw new FdPassError('ERR_FDPASS_CLOSED', 'Fd is closed or released');
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  close(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#fd = -1;
    closeQuietly(fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** A second Fd for the same open file description (shared offset and flags), close-on-exec. */
  dup(): Fd {
    return new Fd(dupCloexec(this.fd));
  }

  /** Give up ownership: returns the number and forgets it; the caller must close it. */
  release(): number {
    const fd = this.fd;
    this.#fd = -1;
    return fd;
  }

  describe(): FdDescription {
    return describeFd(this.fd);
  }

  /** Clears close-on-exec, so a spawned child inherits this fd. */
  setCloseOnExec(on: boolean): void {
    const flags = fcntlInt('fcntl', this.fd, C.F_GETFD);
    check('fcntl', fcntlInt('fcntl', this.fd, C.F_SETFD, on ? flags | C.FD_CLOEXEC : flags & ~C.FD_CLOEXEC));
  }

  toString(): string {
    return this.#fd < 0 ? 'Fd(closed)' : `Fd(${this.#fd})`;
  }
}
