/**
 * Linux process descriptors (pidfd): take an fd from another process without its cooperation
 * (pidfd_getfd, Linux 5.6+), signal a process without pid-reuse races (pidfd_send_signal, 5.1+),
 * await its exit on Node's event loop (pidfd_open, 5.3+), the peer of a Unix socket
 * (SO_PEERPIDFD, 6.5+), and the /proc/<pid>/fd reopen that people reach for first.
 *
 * The syscalls are made through libc's `syscall(2)` with numbers from src/platform/syscalls.ts,
 * so they work on every libc (glibc < 2.36 and musl lack the pidfd_* wrappers).
 */
import type { ChildProcess } from 'node:child_process';
import { constants as fsConstants, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { constants as osConstants, release } from 'node:os';
import { FdPassError, abortError, errnoName, invalidArgType, invalidArgValue, outOfRange } from './errors.js';
import { Fd, describeFd, type FdKind } from './fd.js';
import { fdNumber } from './fdlike.js';
import { integerOption } from './args.js';
import { C, CAPS, E, closeQuietly, lastErrno, lib, platform, sys, unsupported } from './libc.js';
import type { PidfdSyscalls } from './platform/syscalls.js';
import { Watcher } from './poll.js';
import type { SocketDescription } from './sockopt.js';

interface Native {
  S: PidfdSyscalls;
  syscall: KoffiFunction;
  waitid: KoffiFunction;
}
type KoffiFunction = ReturnType<typeof lib.func>;
let native: Native | undefined;

/** Loaded at first use, so importing fdpass never fails where pidfd does not exist. */
function linux(): Native {
  if (native) return native;
  const S = platform.linux;
  if (!CAPS.pidfd || S === null) {
    throw unsupported(
      'pidfd (PidFd, peerPidFd(), peer.pidfd())',
      'process descriptors are Linux-only: use peerCredentials().pid with process.kill() (racy once the process exits and its pid is reused), or have the process send the descriptor over a Unix socket',
    );
  }
  native = {
    S,
    // long syscall(long number, ...): variadic in C, so declared variadic here; every argument is
    // passed as a full `long`, which is what the kernel reads from each register.
    syscall: lib.func('long syscall(long number, ...)'),
    waitid: lib.func('int waitid(int idtype, uint32_t id, void *info, int options)'),
  };
  return native;
}

/** The minimum kernel for each call, for ENOSYS messages. */
const KERNEL_NEEDED: Record<string, string> = {
  pidfd_open: '5.3',
  pidfd_getfd: '5.6',
  pidfd_send_signal: '5.1',
  'getsockopt(SO_PEERPIDFD)': '6.5',
};

const PTRACE_HINT =
  'it needs ptrace access to the target: the same user and no Yama restriction ' +
  '(/proc/sys/kernel/yama/ptrace_scope 0, or the target is our descendant with scope 1), or CAP_SYS_PTRACE';

interface ErrorContext {
  pid?: number;
  targetFd?: number;
  path?: string;
}

/** An FdPassError with Node's shape (`code` errno name, negative `errno`, `syscall`) and a message that says what to do. */
export function explainError(syscall: string, errno: number, ctx: ErrorContext = {}): FdPassError {
  const code = errnoName(errno);
  const who = ctx.pid === undefined ? 'the process' : `process ${ctx.pid}`;
  let why: string | undefined;
  switch (code) {
    case 'ENOSYS':
      why = `this kernel (${release()}) does not have ${syscall.replace(/\(.*$/, '')}; it needs Linux ${KERNEL_NEEDED[syscall] ?? '5.6'} or newer`;
      break;
    case 'ENOPROTOOPT':
      if (syscall === 'getsockopt(SO_PEERPIDFD)') why = `SO_PEERPIDFD needs Linux 6.5 or newer (this kernel is ${release()}); use peerCredentials().pid with PidFd.open() instead (racy if the peer exits)`;
      break;
    case 'ENODATA':
      if (syscall === 'getsockopt(SO_PEERPIDFD)') why = 'the socket has no peer (it is not connected)';
      break;
    case 'EPERM':
    case 'EACCES':
      if (syscall === 'pidfd_send_signal') why = `no permission to signal ${who}: it needs the same user or CAP_KILL`;
      else if (syscall === 'pidfd_getfd') why = `no permission to take an fd from ${who}: ${PTRACE_HINT}`;
      else if (syscall === 'open') why = `cannot reopen fd ${ctx.targetFd} of ${who} through /proc: it needs ptrace read access to the target (same user, or CAP_SYS_PTRACE) and permission to open the file itself`;
      break;
    case 'ESRCH':
      why = syscall === 'getsockopt(SO_PEERPIDFD)' ? 'the peer process has exited' : `${who} does not exist (it has exited)`;
      break;
    case 'EBADF':
      if (syscall === 'pidfd_getfd') why = `${who} has no open fd ${ctx.targetFd}`;
      break;
    case 'EINVAL':
      if (syscall === 'pidfd_open') why = `${ctx.pid} is not a process id (a thread id, or out of range)`;
      break;
    case 'ENOENT':
      if (syscall === 'open') why = `${who} has no fd ${ctx.targetFd}, or does not exist`;
      break;
    case 'ENXIO':
      if (syscall === 'open') {
        why = `fd ${ctx.targetFd} of ${who} is a socket (or another object without a path) and cannot be reopened through /proc; ` +
          'take the same open file with PidFd.open(pid).getFd(fd) (pidfd_getfd, Linux 5.6+) or have the process send it over a Unix socket (SCM_RIGHTS)';
      }
      break;
  }
  const head = ctx.path === undefined ? `${syscall} ${code}` : `${syscall} ${code} ${ctx.path}`;
  return new FdPassError(code, why === undefined ? head : `${head}: ${why}`, { errno, syscall, path: ctx.path });
}

function checkPid(pid: unknown, name = 'pid'): number {
  if (typeof pid !== 'number') throw invalidArgType(name, 'of type number', pid);
  if (!Number.isInteger(pid) || pid <= 0 || pid > 0x3fffffff) throw outOfRange(name, 'a process id (an integer > 0)', pid);
  return pid;
}


function signalNumber(signal: unknown): number {
  if (typeof signal === 'number') {
    if (!Number.isInteger(signal) || signal < 0 || signal > 64) throw outOfRange('signal', 'a signal number from 0 to 64', signal);
    return signal;
  }
  if (typeof signal === 'string') {
    const n = (osConstants.signals as Record<string, number | undefined>)[signal];
    if (n === undefined) throw Object.assign(new TypeError(`Unknown signal: ${signal}`), { code: 'ERR_UNKNOWN_SIGNAL' });
    return n;
  }
  throw invalidArgType('signal', 'a signal name or number', signal);
}

const signalNames = new Map<number, NodeJS.Signals>(
  Object.entries(osConstants.signals).map(([name, n]) => [n, name as NodeJS.Signals]),
);

/** The pid a pidfd refers to, from /proc/self/fdinfo ("Pid:"); -1 once it was reaped, 0 in another pid namespace. */
function pidOfPidfd(fd: number): number {
  try {
    const m = /^Pid:\s*(-?\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
}

/** How a process ended. Both null: it was not our child, so the kernel does not tell us (see `PidFd.waitExit`). */
export interface ProcessExit {
  /** Exit status when it called exit(). */
  code: number | null;
  /** The signal that killed it. */
  signal: NodeJS.Signals | null;
}

/** Options of `PidFd.open()` and `PidFd.fromChild()`. */
export interface PidFdOpenOptions {
  /** PIDFD_NONBLOCK: a waitid(P_PIDFD) of your own on `fd` fails with EAGAIN instead of blocking. */
  nonblocking?: boolean;
}

/** Options of `PidFd#waitExit()`. */
export interface WaitExitOptions {
  /** Stops waiting (the promise rejects with an AbortError); the PidFd stays usable. */
  signal?: AbortSignal;
}

interface ExitWaiter {
  resolve(exit: ProcessExit): void;
  reject(err: unknown): void;
}

/**
 * A process descriptor: refers to one process for as long as it is open, so the pid cannot be
 * reused under us. Close it with `close()` or `using`.
 *
 * Exit: `exited` / `waitExit()` watch the pidfd on Node's event loop (it becomes readable when the
 * process exits; uv_poll, no timers). Nothing is watched until one of them is first used, so a
 * PidFd held only for `getFd()`/`sendSignal()` never keeps Node running. While a wait is pending
 * the process is kept alive, as an awaited ChildProcess would; `unref()` stops that.
 */
export class PidFd {
  #fd: number;
  /** The process id when this PidFd was made (-1 if it had already been reaped, 0 if in another pid namespace). */
  readonly pid: number;
  readonly #child: ChildProcess | undefined;
  /** Watches for exit (the pidfd turns readable); holds no uv handle until someone waits. */
  readonly #watcher: Watcher;
  readonly #waiters = new Set<ExitWaiter>();
  /** One 'abort' listener per signal, however many waits share it (Node warns past 10). */
  readonly #bySignal = new Map<AbortSignal, { waiters: Set<ExitWaiter>; listener: () => void }>();
  #exit: ProcessExit | null = null;
  #exitPending = false;
  #exited: Promise<ProcessExit> | null = null;

  private constructor(fd: number, pid: number, child?: ChildProcess) {
    this.#fd = fd;
    this.pid = pid;
    this.#child = child;
    this.#watcher = new Watcher(fd, () => this.#onReadable());
  }

  /** pidfd_open(pid): Linux 5.3+. The descriptor is close-on-exec. */
  static open(pid: number, options: PidFdOpenOptions = {}): PidFd {
    checkPid(pid);
    const { S, syscall } = linux();
    const flags = options.nonblocking ? S.PIDFD_NONBLOCK : 0;
    const fd = syscall(S.SYS_pidfd_open, 'long', pid, 'long', flags) as number;
    if (fd < 0) throw explainError('pidfd_open', lastErrno(), { pid });
    return new PidFd(fd, pid);
  }

  /**
   * A PidFd for a child spawned by `child_process`. Its exit code and signal are then always
   * known (from the ChildProcess). Throws ESRCH if the child has already been reaped.
   */
  static fromChild(child: ChildProcess, options: PidFdOpenOptions = {}): PidFd {
    if (child === null || typeof child !== 'object' || !('exitCode' in child)) throw invalidArgType('child', 'a ChildProcess', child);
    const pid = child.pid;
    if (pid === undefined) throw new FdPassError('ESRCH', 'pidfd_open ESRCH: the child process was not spawned (spawn failed)', { errno: osConstants.errno.ESRCH, syscall: 'pidfd_open' });
    const reaped = (): boolean => child.exitCode !== null || child.signalCode !== null;
    if (reaped()) throw explainError('pidfd_open', osConstants.errno.ESRCH, { pid });
    const { S, syscall } = linux();
    const fd = syscall(S.SYS_pidfd_open, 'long', pid, 'long', options.nonblocking ? S.PIDFD_NONBLOCK : 0) as number;
    if (fd < 0) throw explainError('pidfd_open', lastErrno(), { pid });
    // Node reaps children only between event-loop turns, never during this synchronous code:
    // if it had not reaped the child before pidfd_open, the pid was still this child's.
    return new PidFd(fd, pid, child);
  }

  /** Take ownership of a pidfd received from elsewhere (SCM_RIGHTS, SCM_PIDFD, SO_PEERPIDFD). */
  static adopt(fd: number | Fd): PidFd {
    const n = fd instanceof Fd ? fd.fd : fdNumber(fd, 'fd');
    const desc = describeFd(n);
    if (desc.kind !== 'pidfd') throw Object.assign(new TypeError(`fd ${n} is not a pidfd (it is ${desc.kind}: ${desc.target})`), { code: 'ERR_INVALID_ARG_VALUE' });
    const owned = fd instanceof Fd ? fd.release() : n;
    return new PidFd(owned, pidOfPidfd(owned));
  }

  /** The pidfd number (owned by this object). Throws once closed. */
  get fd(): number {
    if (this.#fd < 0) throw new FdPassError('ERR_FDPASS_CLOSED', 'PidFd is closed');
    return this.#fd;
  }

  /** True after close(). */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /**
   * pidfd_getfd (Linux 5.6+): a duplicate of the target's descriptor `targetFd` in this process,
   * close-on-exec. Same open file description as theirs: shared offset, status flags and, for a
   * socket, the same socket. The target is not notified. Needs ptrace access (see docs).
   */
  getFd(targetFd: number): Fd {
    fdNumber(targetFd, 'targetFd');
    const { S, syscall } = linux();
    const fd = syscall(S.SYS_pidfd_getfd, 'long', this.fd, 'long', targetFd, 'long', 0) as number;
    if (fd < 0) throw explainError('pidfd_getfd', lastErrno(), { pid: this.pid, targetFd });
    return new Fd(fd);
  }

  /** pidfd_send_signal (Linux 5.1+): 'SIGTERM', 9, … — 0 checks that the process still exists. */
  sendSignal(signal: NodeJS.Signals | number = 'SIGTERM'): void {
    const sig = signalNumber(signal);
    const { S, syscall } = linux();
    const ret = syscall(S.SYS_pidfd_send_signal, 'long', this.fd, 'long', sig, 'void *', null, 'long', 0) as number;
    if (ret < 0) throw explainError('pidfd_send_signal', lastErrno(), { pid: this.pid });
  }

  /**
   * Resolves when the process exits (the same promise every time; see `waitExit`). Using it
   * starts the watch; it rejects with ERR_FDPASS_CLOSED if the PidFd is closed first.
   */
  get exited(): Promise<ProcessExit> {
    if (!this.#exited) {
      this.#exited = this.waitExit();
      this.#exited.catch(() => {}); // a rejection reaches those who await it, never as "unhandled"
    }
    return this.#exited;
  }

  /**
   * Wait on Node's event loop until the process exits. `code`/`signal` are known for children
   * of this process (exact for `fromChild`, read with waitid(WNOWAIT) — never reaping — for other
   * children) and both null for any other process: Linux tells only the parent how it ended.
   */
  waitExit(options: WaitExitOptions = {}): Promise<ProcessExit> {
    const signal = options.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) return Promise.reject(invalidArgType('options.signal', 'an AbortSignal', signal));
    if (this.#exit) return Promise.resolve(this.#exit);
    if (this.#fd < 0) return Promise.reject(new FdPassError('ERR_FDPASS_CLOSED', 'PidFd is closed'));
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise<ProcessExit>((resolve, reject) => {
      const waiter: ExitWaiter = {
        resolve: (exit) => {
          this.#unwatchSignal(waiter, signal);
          resolve(exit);
        },
        reject: (err) => {
          this.#unwatchSignal(waiter, signal);
          reject(err);
        },
      };
      if (signal) this.#watchSignal(waiter, signal);
      this.#waiters.add(waiter);
      if (!this.#exitPending) this.#watcher.want(true, false);
    });
  }

  #watchSignal(waiter: ExitWaiter, signal: AbortSignal): void {
    let entry = this.#bySignal.get(signal);
    if (entry === undefined) {
      const waiters = new Set<ExitWaiter>();
      const listener = (): void => {
        for (const w of [...waiters]) {
          this.#waiters.delete(w);
          w.reject(abortError(signal));
        }
        if (this.#waiters.size === 0 && !this.#exitPending) this.#watcher.want(false, false);
      };
      entry = { waiters, listener };
      this.#bySignal.set(signal, entry);
      signal.addEventListener('abort', listener, { once: true });
    }
    entry.waiters.add(waiter);
  }

  #unwatchSignal(waiter: ExitWaiter, signal: AbortSignal | undefined): void {
    const entry = signal && this.#bySignal.get(signal);
    if (entry && entry.waiters.delete(waiter) && entry.waiters.size === 0) {
      signal!.removeEventListener('abort', entry.listener);
      this.#bySignal.delete(signal!);
    }
  }

  /** Let a pending `exited`/`waitExit()` keep Node running (the default). */
  ref(): this {
    this.#watcher.ref();
    return this;
  }

  /** A pending `exited`/`waitExit()` no longer keeps Node running on its own. */
  unref(): this {
    this.#watcher.unref();
    return this;
  }

  /** Close the pidfd (idempotent). Pending waits reject with ERR_FDPASS_CLOSED. */
  close(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#watcher.close(); // the uv handle must go before the fd
    this.#fd = -1;
    closeQuietly(fd);
    this.#settle(null, new FdPassError('ERR_FDPASS_CLOSED', 'PidFd was closed before the process exited'));
  }

  /** close(), for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** 'PidFd(7, pid 1234)', or 'PidFd(closed, pid 1234)'. */
  toString(): string {
    return this.#fd < 0 ? `PidFd(closed, pid ${this.pid})` : `PidFd(${this.#fd}, pid ${this.pid})`;
  }

  // The pidfd is readable: the process has exited. Level-triggered, so stop the handle at once.
  #onReadable(): void {
    this.#watcher.want(false, false);
    if (this.#fd < 0 || this.#exitPending) return;
    const child = this.#child;
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      this.#settle({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    const exit = this.#peekExit();
    if (exit) this.#settle(exit);
    else if (child) {
      // Reaped by Node between our poll and waitid: its 'exit' event carries the status.
      this.#exitPending = true;
      child.once('exit', (code, sig) => this.#settle({ code, signal: sig }));
    } else this.#settle({ code: null, signal: null });
  }

  /** waitid(P_PIDFD, WNOWAIT): the status of our own exited child, leaving it for its owner to reap. */
  #peekExit(): ProcessExit | null {
    const { S, waitid } = linux();
    const info = Buffer.alloc(S.siginfo.size);
    const ret = waitid(S.P_PIDFD, this.#fd, info, S.WEXITED | S.WNOHANG | S.WNOWAIT) as number;
    if (ret < 0 || E.readInt32(info, S.siginfo.pid) === 0) return null; // ECHILD: not our child
    const code = E.readInt32(info, S.siginfo.code);
    const status = E.readInt32(info, S.siginfo.status);
    if (code === S.CLD_EXITED) return { code: status, signal: null };
    if (code === S.CLD_KILLED || code === S.CLD_DUMPED) return { code: null, signal: signalNames.get(status) ?? null };
    return null;
  }

  #settle(exit: ProcessExit | null, err?: unknown): void {
    if (exit) {
      this.#exit = exit;
      this.#exitPending = false;
    }
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) {
      if (exit) w.resolve(exit);
      else w.reject(err);
    }
  }
}

// One scratch pair for SO_PEERPIDFD: filled and read synchronously.
const optValue = Buffer.alloc(4);
const optLen = Buffer.alloc(4);

/**
 * getsockopt(SO_PEERPIDFD), Linux 6.5+: a PidFd for the process at the other end of a Unix
 * socket (accepted: the one that connected; connected: the one that called listen(); a socket
 * pair: its creator), without the pid-reuse race of SO_PEERCRED. On older kernels fails with
 * ENOPROTOOPT and says so; ENODATA on a socket with no peer.
 */
export function peerPidFdOf(fd: number): PidFd {
  fdNumber(fd, 'fd');
  E.writeUInt32(optLen, 0, 4);
  const ret = sys.getsockopt(fd, C.SOL_SOCKET, linux().S.SO_PEERPIDFD, optValue, optLen) as number;
  if (ret < 0) throw explainError('getsockopt(SO_PEERPIDFD)', lastErrno());
  const pidfd = E.readInt32(optValue, 0);
  try {
    return PidFd.adopt(pidfd);
  } catch (err) {
    closeQuietly(pidfd);
    throw err;
  }
}

/**
 * Open `/proc/<pid>/fd/<fd>` again, like `fs.openSync(path, flags)` ('r', 'r+', 'w', 'a',
 * numbers): a NEW open file description of the same file — its own offset and status flags,
 * unlike pidfd_getfd / SCM_RIGHTS which share the target's. Works for files, directories,
 * pipes, fifos and deleted files; sockets fail with ENXIO (use `PidFd.getFd` or SCM_RIGHTS).
 * The result is close-on-exec. Needs ptrace read access to the process and permission to open the file.
 */
export function reopenFromProc(pid: number, fd: number, flags: string | number = 'r'): Fd {
  checkPid(pid);
  fdNumber(fd, 'fd');
  if (typeof flags === 'number') integerOption(flags, 'flags', 0, 0x7fffffff, 0);
  else if (typeof flags !== 'string') throw invalidArgType('flags', 'a string or a number', flags);
  if (!CAPS.procFs) throw unsupported('reopenFromProc() (/proc/<pid>/fd)', 'have the process send the descriptor over a Unix socket (SCM_RIGHTS)');
  const path = `/proc/${pid}/fd/${fd}`;
  // libc's open, not node:fs's: under Deno a descriptor node:fs opened stays in its own table,
  // and once the Fd closes it, the next node:fs open given the same number was closed by Deno.
  const bits = typeof flags === 'number' ? flags : openFlags(flags);
  const opened = sys.open(path, bits | C.O_CLOEXEC, 'int', 0o666) as number; // close-on-exec, as libuv opens
  if (opened < 0) throw explainError('open', lastErrno(), { pid, targetFd: fd, path });
  return new Fd(opened);
}

const { O_APPEND, O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_SYNC, O_TRUNC, O_WRONLY } = fsConstants;
const OPEN_FLAGS: Readonly<Record<string, number>> = {
  r: O_RDONLY, rs: O_RDONLY | O_SYNC, sr: O_RDONLY | O_SYNC,
  'r+': O_RDWR, 'rs+': O_RDWR | O_SYNC, 'sr+': O_RDWR | O_SYNC,
  w: O_TRUNC | O_CREAT | O_WRONLY, wx: O_TRUNC | O_CREAT | O_WRONLY | O_EXCL, xw: O_TRUNC | O_CREAT | O_WRONLY | O_EXCL,
  'w+': O_TRUNC | O_CREAT | O_RDWR, 'wx+': O_TRUNC | O_CREAT | O_RDWR | O_EXCL, 'xw+': O_TRUNC | O_CREAT | O_RDWR | O_EXCL,
  a: O_APPEND | O_CREAT | O_WRONLY, ax: O_APPEND | O_CREAT | O_WRONLY | O_EXCL, xa: O_APPEND | O_CREAT | O_WRONLY | O_EXCL,
  as: O_APPEND | O_CREAT | O_WRONLY | O_SYNC, sa: O_APPEND | O_CREAT | O_WRONLY | O_SYNC,
  'a+': O_APPEND | O_CREAT | O_RDWR, 'ax+': O_APPEND | O_CREAT | O_RDWR | O_EXCL, 'xa+': O_APPEND | O_CREAT | O_RDWR | O_EXCL,
  'as+': O_APPEND | O_CREAT | O_RDWR | O_SYNC, 'sa+': O_APPEND | O_CREAT | O_RDWR | O_SYNC,
};

/** fs.openSync's flag strings ('r', 'a+', 'rs+', …) as open(2) bits, as Node's stringToFlags reads them (internal; test/fdfs.ts uses it too). */
export function openFlags(flags: string): number {
  const bits = Object.hasOwn(OPEN_FLAGS, flags) ? OPEN_FLAGS[flags] : undefined;
  if (bits === undefined) throw invalidArgValue('flags', `is invalid. Received ${JSON.stringify(flags).replace(/^"|"$/g, "'")}`);
  return bits;
}

/** One descriptor of another process, as `fdpass ls` shows it. */
export interface ProcessFdInfo {
  /** The descriptor number in that process. */
  fd: number;
  /** What it refers to (as FdDescription.kind). */
  kind: FdKind;
  /** The /proc/<pid>/fd link: "/etc/hosts", "socket:[1234]", "anon_inode:[eventfd]". */
  target: string;
  /** Filesystem path, or a Unix socket's address when the socket could be inspected. */
  path?: string;
  /** The file was unlinked after it was opened. */
  deleted?: boolean;
  /** From /proc/<pid>/fdinfo: access mode, then O_APPEND, O_NONBLOCK, … */
  openFlags: string[];
  /** O_CLOEXEC is set on it in that process. */
  closeOnExec: boolean;
  /** File offset (fdinfo "pos"). */
  position?: number;
  /** Size in bytes for regular files and memfds. */
  size?: number;
  /** Sockets, when `inspectSockets` could take a copy with pidfd_getfd. */
  socket?: SocketDescription;
  /** Why socket details are missing (e.g. "EPERM"). */
  socketError?: string;
  /**
   * Why this entry could not be read at all (e.g. "EACCES": listing /proc/<pid>/fd is allowed but
   * reading an entry needs ptrace read access); `kind` is then 'unknown' and the other fields empty.
   */
  error?: string;
}

const listedFlags = ['O_APPEND', 'O_NONBLOCK', 'O_SYNC', 'O_DSYNC', 'O_DIRECT', 'O_NOATIME', 'O_DIRECTORY'] as const;

function flagNames(flags: number): string[] {
  if (C.O_PATH !== null && flags & C.O_PATH) return ['O_PATH'];
  const fsc = fsConstants as Record<string, number | undefined>;
  const names = [flags & fsConstants.O_RDWR ? 'O_RDWR' : flags & fsConstants.O_WRONLY ? 'O_WRONLY' : 'O_RDONLY'];
  for (const name of listedFlags) {
    const bit = fsc[name];
    if (bit && (flags & bit) === bit && !(name === 'O_DSYNC' && fsc.O_SYNC && (flags & fsc.O_SYNC) === fsc.O_SYNC)) names.push(name);
  }
  return names;
}

const anonKinds: Record<string, FdKind> = {
  eventfd: 'eventfd', pidfd: 'pidfd', eventpoll: 'epoll', timerfd: 'timerfd', signalfd: 'signalfd',
  inotify: 'inotify', fanotify: 'fanotify', io_uring: 'io_uring', userfaultfd: 'userfaultfd',
};

function kindFromProc(path: string, target: string): { kind: FdKind; size?: number } {
  if (target.startsWith('socket:')) return { kind: 'socket' };
  if (target.startsWith('pipe:')) return { kind: 'pipe' };
  if (target.startsWith('anon_inode:')) {
    const name = /^anon_inode:\[?([a-z_]+)/.exec(target)?.[1] ?? '';
    return { kind: anonKinds[name] ?? 'anon_inode' };
  }
  if (target.startsWith('pidfd:')) return { kind: 'pidfd' }; // pidfs (6.9+) may show "pidfd:[…]"
  let st;
  try {
    st = statSync(path); // follows the magic link to the open inode
  } catch {
    return { kind: 'unknown' };
  }
  if (st.isFile()) return { kind: target.startsWith('/memfd:') ? 'memfd' : 'file', size: st.size };
  if (st.isDirectory()) return { kind: 'directory' };
  if (st.isFIFO()) return { kind: 'fifo' };
  if (st.isSocket()) return { kind: 'socket' };
  if (st.isCharacterDevice()) return { kind: /^\/dev\/(pts\/|tty|console)/.test(target) ? 'tty' : 'char' };
  if (st.isBlockDevice()) return { kind: 'block' };
  return { kind: 'unknown' };
}

/** Options of `listProcessFds()`. */
export interface ListFdsOptions {
  /**
   * Take a copy of each socket with pidfd_getfd, describe it (family, type, listening,
   * address) and close it at once. Default true; needs ptrace access, else `socketError`.
   */
  inspectSockets?: boolean;
}

/**
 * The open descriptors of process `pid`, read from /proc/<pid>/fd and /proc/<pid>/fdinfo
 * (a focused lsof). Needs the same access as reading those directories.
 */
export function listProcessFds(pid: number, options: ListFdsOptions = {}): ProcessFdInfo[] {
  checkPid(pid);
  if (!CAPS.procFs) throw unsupported('listProcessFds() (/proc/<pid>/fd)', 'use lsof -p <pid>');
  const dir = `/proc/${pid}/fd`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (typeof e.errno !== 'number') throw err;
    const errno = -e.errno;
    if (e.code === 'ENOENT') throw explainError('open', osConstants.errno.ESRCH, { pid, path: dir });
    throw new FdPassError(e.code ?? errnoName(errno), `open ${e.code} ${dir}: cannot list the fds of process ${pid} (it needs ptrace read access: same user, or CAP_SYS_PTRACE)`, { errno, syscall: 'open', path: dir });
  }
  let pidfd: PidFd | null = null;
  let pidfdError: string | undefined;
  const result: ProcessFdInfo[] = [];
  try {
    for (const fd of names.map(Number).sort((a, b) => a - b)) {
      const link = `${dir}/${fd}`;
      let target: string;
      let fdinfo: string;
      try {
        target = readlinkSync(link);
        fdinfo = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? String(err);
        if (code === 'ENOENT') continue; // closed while we looked
        result.push({ fd, kind: 'unknown', target: '', openFlags: [], closeOnExec: false, error: code });
        continue;
      }
      const flags = parseInt(/^flags:\s*([0-7]+)/m.exec(fdinfo)?.[1] ?? '0', 8);
      const { kind, size } = kindFromProc(link, target);
      const info: ProcessFdInfo = { fd, kind, target, openFlags: flagNames(flags), closeOnExec: (flags & C.O_CLOEXEC) !== 0 };
      const pos = /^pos:\s*(\d+)/m.exec(fdinfo);
      if (pos && (kind === 'file' || kind === 'memfd' || kind === 'directory' || kind === 'block')) info.position = Number(pos[1]);
      if (size !== undefined) info.size = size;
      if (target.startsWith('/')) {
        const deleted = target.endsWith(' (deleted)');
        info.path = deleted ? target.slice(0, -' (deleted)'.length) : target;
        if (deleted) info.deleted = true;
      }
      if (kind === 'socket' && options.inspectSockets !== false) {
        try {
          if (!pidfd && pidfdError === undefined) pidfd = PidFd.open(pid);
          if (pidfd) {
            using copy = pidfd.getFd(fd);
            const desc = describeFd(copy.fd);
            if (desc.socket) info.socket = desc.socket;
            if (desc.path !== undefined) info.path = desc.path;
          } else info.socketError = pidfdError;
        } catch (err) {
          const code = (err as { code?: string }).code ?? String(err);
          if (!pidfd) pidfdError = code;
          info.socketError = code;
        }
      }
      result.push(info);
    }
  } finally {
    pidfd?.close();
  }
  return result;
}
