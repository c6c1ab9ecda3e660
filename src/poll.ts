/**
 * Readiness on Node's own event loop: one libuv uv_poll handle per descriptor (koffi.node.poll),
 * started only while an operation waits. No threads, no timers, no busy loops; an idle
 * socket's handle is stopped, so it does not keep the process alive.
 */
import { FdPassError } from './errors.js';
import { C, E, EINTR, L, fcntlInt, koffi, lastErrno, sys } from './libc.js';

interface PollHandle {
  start(opts: { readable?: boolean; writable?: boolean }, cb: (status: number, events: { readable: boolean; writable: boolean }) => void): void;
  stop(): void;
  close(): void;
  ref(): void;
  unref(): void;
}

type StartPoll = (fd: number, opts: { readable?: boolean; writable?: boolean }, cb: PollHandle['start'] extends (o: never, cb: infer F) => void ? F : never) => PollHandle;
const startPoll = (koffi as unknown as { node: { poll: StartPoll } }).node.poll;

/** Called when the fd may be readable/writable; `status` < 0 is a libuv error (e.g. EBADF). */
export type ReadyCallback = (readable: boolean, writable: boolean) => void;

/** Descriptors with a live fdpass poll handle on this thread's loop. */
const watched = new Set<number>();

export class Watcher {
  readonly #fd: number;
  readonly #onReady: ReadyCallback;
  #handle: PollHandle | null = null;
  #readable = false;
  #writable = false;
  #referenced = true;
  #closed = false;
  // One closure for the handle's lifetime: libuv passes (status, events) — two arguments.
  readonly #callback = (status: number, events: { readable: boolean; writable: boolean }): void => {
    if (status < 0) {
      // libuv stopped the handle: forget what it was watching (so want() re-arms it), and let
      // every waiter retry its syscall and see the real errno.
      const readable = this.#readable;
      const writable = this.#writable;
      this.#readable = this.#writable = false;
      this.#onReady(readable, writable);
    } else this.#onReady(events.readable, events.writable);
  };

  constructor(fd: number, onReady: ReadyCallback) {
    this.#fd = fd;
    this.#onReady = onReady;
  }

  /** Say which readiness events are wanted now; none stops the handle. */
  want(readable: boolean, writable: boolean): void {
    if (this.#closed || (readable === this.#readable && writable === this.#writable)) return;
    if (!readable && !writable) this.#handle?.stop();
    else if (this.#handle) this.#handle.start({ readable, writable }, this.#callback);
    else this.#handle = this.#open({ readable, writable });
    this.#readable = readable;
    this.#writable = writable;
  }

  #open(opts: { readable: boolean; writable: boolean }): PollHandle {
    const fd = this.#fd;
    // libuv allows one poll handle per fd in a loop; a second one aborts the process.
    if (watched.has(fd)) throw new FdPassError('ERR_FDPASS_BUSY', `fd ${fd} is already watched by another fdpass object`);
    // uv_poll_init sets O_NONBLOCK, a flag of the open file description that every process
    // holding it shares (a peer using blocking reads would get EAGAIN). fdpass's own I/O never
    // relies on it (MSG_DONTWAIT, WNOHANG), so put the flags back as they were.
    const flags = fcntlInt('fcntl', fd, C.F_GETFL);
    const handle = startPoll(fd, opts, this.#callback) as PollHandle | null;
    if (!handle) throw new FdPassError('ERR_FDPASS_POLL', `could not watch fd ${fd} on the event loop`);
    watched.add(fd);
    if (!(flags & C.O_NONBLOCK)) fcntlInt('fcntl', fd, C.F_SETFL, flags);
    if (!this.#referenced) handle.unref();
    return handle;
  }

  ref(): void {
    this.#referenced = true;
    this.#handle?.ref();
  }

  unref(): void {
    this.#referenced = false;
    this.#handle?.unref();
  }

  /** Stop and release the uv handle. Must happen before the fd itself is closed. */
  close(): void {
    this.#closed = true;
    this.#readable = this.#writable = false;
    if (this.#handle) {
      watched.delete(this.#fd);
      this.#handle.close();
      this.#handle = null;
    }
  }
}

const pollfd = Buffer.alloc(L.pollfd.size);

/**
 * Block the thread until `fd` is ready for `events` (POLLIN/POLLOUT), for the sync API.
 * Returns false on timeout. POLLERR/POLLHUP count as ready: the next syscall reports them.
 */
export function waitSync(fd: number, events: number, timeoutMs: number): boolean {
  const deadline = timeoutMs < 0 ? Infinity : Date.now() + timeoutMs;
  for (;;) {
    E.writeInt32(pollfd, L.pollfd.fd, fd);
    E.writeInt16(pollfd, L.pollfd.events, events);
    E.writeInt16(pollfd, L.pollfd.revents, 0);
    const wait = deadline === Infinity ? -1 : Math.max(0, Math.ceil(deadline - Date.now()));
    const n = sys.poll(pollfd, 1, wait) as number;
    if (n > 0) return true;
    if (n === 0) return false;
    const errno = lastErrno();
    if (errno !== EINTR) throw FdPassError.fromErrno("poll", errno);
  }
}

export const POLLIN = C.POLLIN;
export const POLLOUT = C.POLLOUT;
