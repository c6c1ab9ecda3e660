/**
 * Readiness on Node's own event loop: one libuv uv_poll handle per descriptor (koffi.node.poll),
 * started only while an operation waits. No threads, no timers, no busy loops; an idle
 * socket's handle is stopped, so it does not keep the process alive.
 */
import { FdPassError } from './errors.js';
import { C, EINTR, L, koffi, lastErrno, sys } from './libc.js';

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
    // On a poll error, let every waiter retry its syscall and see the real errno.
    if (status < 0) this.#onReady(this.#readable, this.#writable);
    else this.#onReady(events.readable, events.writable);
  };

  constructor(fd: number, onReady: ReadyCallback) {
    this.#fd = fd;
    this.#onReady = onReady;
  }

  /** Say which readiness events are wanted now; none stops the handle. */
  want(readable: boolean, writable: boolean): void {
    if (this.#closed || (readable === this.#readable && writable === this.#writable)) return;
    this.#readable = readable;
    this.#writable = writable;
    if (!readable && !writable) {
      this.#handle?.stop();
      return;
    }
    const opts = { readable, writable };
    if (this.#handle) this.#handle.start(opts, this.#callback);
    else {
      this.#handle = startPoll(this.#fd, opts, this.#callback);
      if (!this.#referenced) this.#handle.unref();
    }
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
    this.#handle?.close();
    this.#handle = null;
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
    pollfd.writeInt32LE(fd, L.pollfd.fd);
    pollfd.writeInt16LE(events, L.pollfd.events);
    pollfd.writeInt16LE(0, L.pollfd.revents);
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
