/** Fd: ownership of one descriptor — closed exactly once, explicitly or by `using`. */
import { readlinkSync, constants as fsConstants } from 'node:fs';
import { FdPassError, notOpenError } from './errors.js';
import { createPipe } from './create.js';
import { C, check, closeQuietly, fcntlInt } from './libc.js';
import { fdNumber, fdOf, type FdLike } from './fdlike.js';
import { describeSocket, type SocketDescription } from './sockopt.js';
import { fdStat, isTerminal } from './stat.js';

/** What kind of object a descriptor refers to, as describeFd() tells it. */
export type FdKind =
  | 'file' | 'directory' | 'pipe' | 'fifo' | 'socket' | 'tty' | 'char' | 'block' | 'symlink'
  | 'memfd' | 'eventfd' | 'pidfd' | 'epoll' | 'timerfd' | 'signalfd' | 'inotify' | 'fanotify'
  | 'io_uring' | 'userfaultfd' | 'anon_inode' | 'unknown';

/** What describeFd() / Fd#describe() report about a descriptor, read from the kernel. */
export interface FdDescription {
  /** The descriptor number described. */
  fd: number;
  /** What it refers to: 'file', 'pipe', 'socket', 'pidfd', … */
  kind: FdKind;
  /** Filesystem path (files, directories, fifos, devices), socket address ('@name' if abstract), or memfd name. */
  path?: string;
  /** The file was unlinked after it was opened (memfds always are). */
  deleted?: boolean;
  /** What the kernel shows in /proc/self/fd: "pipe:[1234]", "/etc/hosts", "anon_inode:[eventfd]". */
  target: string;
  /** O_RDONLY / O_WRONLY / O_RDWR / O_PATH, then flags such as O_APPEND and O_NONBLOCK. */
  openFlags: string[];
  /** FD_CLOEXEC is set: a program this process exec()s does not inherit it. */
  closeOnExec: boolean;
  /** Size in bytes for regular files and memfds. */
  size?: number;
  /** Sockets: family, type, protocol, listening, address. */
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
  const st = fdStat(fd);
  switch (st.type) {
    case 'file': return { kind: target.startsWith('/memfd:') ? 'memfd' : 'file', size: st.size };
    case 'directory': return { kind: 'directory' };
    case 'fifo': return { kind: target.startsWith('pipe:') ? 'pipe' : 'fifo' };
    case 'socket': return { kind: 'socket' };
    case 'char': return { kind: isTerminal(fd) ? 'tty' : 'char' };
    case 'block': return { kind: 'block' };
    case 'symlink': return { kind: 'symlink' };
  }
  const anon = /^(?:anon_inode:)?\[?([a-z_]+)\]?/.exec(target);
  if (anon && target.includes(':')) return { kind: anonKinds[anon[1]] ?? (target.startsWith('anon_inode:') ? 'anon_inode' : 'unknown') };
  return { kind: 'unknown' };
}

/** What descriptor `fd` is, read from the kernel: fstat, /proc/self/fd, fcntl, getsockopt. */
export function describeFd(fd: number): FdDescription {
  fdNumber(fd);
  let target: string;
  try {
    target = readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    target = '';
  }
  let flags: number;
  try {
    flags = fcntlInt('fcntl', fd, C.F_GETFL);
  } catch (err) {
    if ((err as FdPassError).code === 'EBADF') throw notOpenError('fcntl', fd);
    throw err;
  }
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

/**
 * Something that keeps an Fd's descriptor in use without a duplicate of its own: a send waiting
 * in a queue (src/send-op.ts). While an Fd is held, close() closes it for its owner but leaves
 * the number open until the last holder lets go, so the number cannot be reused for another file
 * meanwhile. release() hands the number to someone fdpass does not control: each holder is told
 * to take a duplicate at that moment.
 */
export interface FdHolder {
  /** `fd` is being released as number `n`: stop relying on that number. */
  releasing(fd: Fd, n: number): void;
}

interface Hold {
  holders: Set<FdHolder>;
  /** The number close() left open for the holders, or -1. */
  closeLater: number;
}

const held = new Map<Fd, Hold>();

/** Keep `fd`'s descriptor open for `holder` (see FdHolder); returns the number. Throws if `fd` is closed. */
export function holdFd(fd: Fd, holder: FdHolder): number {
  const n = fd.fd;
  let hold = held.get(fd);
  if (hold === undefined) held.set(fd, (hold = { holders: new Set(), closeLater: -1 }));
  hold.holders.add(holder);
  return n;
}

/** `holder` no longer needs `fd`'s descriptor; a close() that waited for it happens now. */
export function unholdFd(fd: Fd, holder: FdHolder): void {
  const hold = held.get(fd);
  if (hold === undefined || !hold.holders.delete(holder) || hold.holders.size > 0) return;
  held.delete(fd);
  if (hold.closeLater >= 0) closeQuietly(hold.closeLater);
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

  /** Take ownership of descriptor `fd` (not checked to be open; it must be an integer from 0 to 2^31-1). */
  constructor(fd: number) {
    this.#fd = fdNumber(fd);
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

  /** True after close() or release(). */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /** Close the descriptor; idempotent, never throws. (A send still waiting to pass it keeps the number open until it has gone.) */
  close(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#fd = -1;
    const hold = held.size === 0 ? undefined : held.get(this);
    if (hold !== undefined) hold.closeLater = fd;
    else closeQuietly(fd);
  }

  /** close(), for `using`. */
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
    const hold = held.size === 0 ? undefined : held.get(this);
    if (hold !== undefined) {
      held.delete(this);
      for (const holder of hold.holders) holder.releasing(this, fd);
    }
    return fd;
  }

  /** What the descriptor is, asked of the kernel (see describeFd). */
  describe(): FdDescription {
    return describeFd(this.fd);
  }

  /** Clears close-on-exec, so a spawned child inherits this fd. */
  setCloseOnExec(on: boolean): void {
    const flags = fcntlInt('fcntl', this.fd, C.F_GETFD);
    check('fcntl', fcntlInt('fcntl', this.fd, C.F_SETFD, on ? flags | C.FD_CLOEXEC : flags & ~C.FD_CLOEXEC));
  }

  /** 'Fd(7)', or 'Fd(closed)'. */
  toString(): string {
    return this.#fd < 0 ? 'Fd(closed)' : `Fd(${this.#fd})`;
  }
}
