/**
 * Readiness on the event loop: each fdpass object that waits owns one Watcher, which registers
 * with this thread's readiness backend (src/readiness.ts) only while an operation waits. An idle
 * socket watches nothing, so it does not keep the process alive.
 */
import { FdPassError } from './errors.js';
import { C, E, EINTR, L, lastErrno, sys } from './libc.js';
import { readinessBackend, type ReadinessSink, type Registration } from './readiness.js';

/** Called when the fd may be readable/writable (the next syscall says what really happened). */
export type ReadyCallback = (readable: boolean, writable: boolean) => void;

export class Watcher implements ReadinessSink {
  readonly #fd: number;
  readonly #onReady: ReadyCallback;
  #registration: Registration | null = null;
  #referenced = true;
  #closed = false;

  constructor(fd: number, onReady: ReadyCallback) {
    this.#fd = fd;
    this.#onReady = onReady;
  }

  /** Say which readiness events are wanted now; none stops watching. */
  want(readable: boolean, writable: boolean): void {
    if (this.#closed) return;
    if (this.#registration === null) {
      if (!readable && !writable) return;
      this.#registration = readinessBackend().register(this.#fd, this, this.#referenced);
    }
    try {
      this.#registration.update(readable, writable);
    } catch (err) {
      // Could not start watching (e.g. another object watches this fd): nothing is registered.
      this.#registration.close();
      this.#registration = null;
      throw err;
    }
  }

  /** From the backend, on the JS thread, inside a proper callback scope. */
  deliver(readable: boolean, writable: boolean): void {
    if (!this.#closed) this.#onReady(readable, writable);
  }

  ref(): void {
    this.#referenced = true;
    this.#registration?.ref();
  }

  unref(): void {
    this.#referenced = false;
    this.#registration?.unref();
  }

  /** Stop watching for good. Must happen before the fd itself is closed. */
  close(): void {
    this.#closed = true;
    this.#registration?.close();
    this.#registration = null;
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
