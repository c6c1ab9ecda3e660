/**
 * Where readiness events come from, and how they reach JavaScript.
 *
 * Delivery: a backend only records that a descriptor is ready; the work (syscalls, resolving
 * promises, user callbacks) runs from one `setImmediate` per event-loop turn. Node enters an
 * immediate through a proper callback scope, so promise continuations and nextTicks run right
 * after it, on every Node version. koffi 3.3.4 calls the uv_poll callback with plain
 * `napi_call_function`, outside any callback scope; since Node 26.4.0 (nodejs/node#62969) no
 * microtask checkpoint follows such a call, so a promise resolved there would continue only when
 * some unrelated callback ran. (The koffi fix: open a callback scope in `PollHandle::OnPoll` —
 * `napi_make_callback` with an async context, or `napi_open_callback_scope` around the call.)
 *
 * Backends:
 * - 'uv': koffi.node.poll, libuv's uv_poll on this thread's own loop (Node, Deno). No threads,
 *   no timers. Deno's uv_poll reports once per start, so there it is re-armed after each event.
 * - 'thread': one poll(2) at a time on a helper thread (koffi's async call), covering every
 *   watched descriptor plus a wake-up pipe (Bun, whose uv compatibility lacks uv_poll).
 */
import { FdPassError } from './errors.js';
import { Fd, pipe } from './fd.js';
import { C, E, L, fcntlInt, koffi, sys } from './libc.js';

export interface ReadinessSink {
  /** Called on the JS thread when the descriptor may be readable/writable. */
  deliver(readable: boolean, writable: boolean): void;
}

/** One descriptor's registration with a backend. */
export interface Registration {
  /** Watch for these events (both false: stop watching, keep the registration). */
  update(readable: boolean, writable: boolean): void;
  ref(): void;
  unref(): void;
  /** Stop for good; must happen before the descriptor is closed. */
  close(): void;
}

export interface Backend {
  readonly name: 'uv' | 'thread';
  register(fd: number, sink: ReadinessSink, referenced: boolean): Registration;
  /**
   * Whether a registration may stay armed while nothing waits (to skip a stop and restart between
   * two operations in a row). Not on Deno: a uv_poll handle kept started across turns there
   * crashed Deno 2.9.6 (SIGSEGV, mid-run or at exit, in about one run in three).
   */
  readonly lingers: boolean;
  /** Descriptors the backend itself holds open right now (for fd accounting in tests). */
  descriptors(): number[];
}

// ---------------------------------------------------------------------------------------------
// Delivery: one immediate per loop turn for everything that became ready

interface Pending {
  sink: ReadinessSink;
  readable: boolean;
  writable: boolean;
  queued: boolean;
  /** Runs after the event was delivered (e.g. re-arm), if set. */
  after: (() => void) | null;
}

let queue: Pending[] = [];
let spare: Pending[] = [];
let scheduled = false;
/** Run once the pending delivery has run, in the same immediate (see whenDelivered). */
let afterDelivery: (() => void)[] = [];

/**
 * Run `fn` right after the delivery already scheduled, in the same immediate, or (none
 * scheduled) from an immediate of its own. The thread backend restarts its poll so: Bun's
 * `expect(promise).rejects` waits in a nested event loop that runs no other immediate of the
 * batch the awaiting code resumed from, so a restart in an immediate of its own never came.
 */
function whenDelivered(fn: () => void): void {
  if (scheduled) afterDelivery.push(fn);
  else setImmediate(fn);
}

function enqueue(p: Pending, readable: boolean, writable: boolean): void {
  p.readable ||= readable;
  p.writable ||= writable;
  if (p.queued) return;
  p.queued = true;
  queue.push(p);
  if (!scheduled) {
    scheduled = true;
    setImmediate(deliverAll);
  }
}

function deliverAll(): void {
  scheduled = false;
  const batch = queue;
  queue = spare;
  let i = 0;
  try {
    for (; i < batch.length; i++) {
      const p = batch[i];
      const { readable, writable } = p;
      p.readable = p.writable = p.queued = false;
      try {
        p.sink.deliver(readable, writable);
      } finally {
        p.after?.();
      }
    }
  } finally {
    // A throwing sink must not strand the rest: they go out on the next turn.
    for (i++; i < batch.length; i++) {
      const p = batch[i];
      p.queued = false;
      enqueue(p, p.readable, p.writable);
    }
    batch.length = 0;
    spare = batch;
    const after = afterDelivery;
    afterDelivery = [];
    for (const fn of after) fn();
  }
}

/** Drop a pending event of a registration that is closing. */
function forget(p: Pending): void {
  p.readable = p.writable = false;
  p.sink = NO_SINK;
  p.after = null;
}
const NO_SINK: ReadinessSink = { deliver() {} };

// ---------------------------------------------------------------------------------------------
// 'uv': koffi.node.poll

interface UvPollHandle {
  start(opts: { readable?: boolean; writable?: boolean }, cb: UvPollCallback): void;
  stop(): void;
  close(): void;
  ref(): void;
  unref(): void;
}
// libuv passes (status, events): two arguments, unlike koffi's .d.ts.
type UvPollCallback = (status: number, events: { readable: boolean; writable: boolean }) => void;
type StartUvPoll = (fd: number, opts: { readable?: boolean; writable?: boolean }, cb: UvPollCallback) => UvPollHandle | null;

/** Descriptors with a live fdpass uv_poll handle on this thread's loop. */
const uvWatched = new Set<number>();

function uvBackend(rearmAfterEvent: boolean): Backend {
  const startPoll = (koffi as unknown as { node: { poll: StartUvPoll } }).node.poll;
  return {
    name: 'uv',
    lingers: !rearmAfterEvent,
    register(fd, sink, referenced) {
      let handle: UvPollHandle | null = null;
      let readable = false;
      let writable = false;
      let isRef = referenced;
      const pending: Pending = { sink, readable: false, writable: false, queued: false, after: null };
      const callback: UvPollCallback = (status, events) => {
        // status < 0: libuv stopped the handle (e.g. EBADF). Forget what it watched, so the next
        // update() starts it again, and let every waiter retry its syscall to see the real errno.
        if (status < 0) {
          const r = readable;
          const w = writable;
          readable = writable = false;
          enqueue(pending, r, w);
        } else enqueue(pending, events.readable, events.writable);
      };
      if (rearmAfterEvent) {
        pending.after = () => {
          if (handle && (readable || writable)) handle.start({ readable, writable }, callback);
        };
      }
      const open = (): UvPollHandle => {
        // libuv allows one poll handle per fd in a loop; a second one aborts the process.
        if (uvWatched.has(fd)) throw new FdPassError('ERR_FDPASS_BUSY', `fd ${fd} is already watched by another fdpass object`);
        // uv_poll_init sets O_NONBLOCK, a flag of the open file description that every process
        // holding it shares (a peer using blocking reads would get EAGAIN). fdpass's own I/O never
        // relies on it (MSG_DONTWAIT, WNOHANG), so put the flags back as they were.
        const flags = fcntlInt('fcntl', fd, C.F_GETFL);
        const h = startPoll(fd, { readable, writable }, callback);
        if (!h) throw new FdPassError('ERR_FDPASS_POLL', `could not watch fd ${fd} on the event loop`);
        uvWatched.add(fd);
        if (!(flags & C.O_NONBLOCK)) fcntlInt('fcntl', fd, C.F_SETFL, flags);
        if (!isRef) h.unref();
        return h;
      };
      return {
        update(r, w) {
          if (r === readable && w === writable) return;
          const wasR = readable;
          const wasW = writable;
          readable = r;
          writable = w;
          try {
            if (!r && !w) handle?.stop();
            else if (handle) handle.start({ readable: r, writable: w }, callback);
            else handle = open();
          } catch (err) {
            readable = wasR;
            writable = wasW;
            throw err;
          }
        },
        ref() {
          isRef = true;
          handle?.ref();
        },
        unref() {
          isRef = false;
          handle?.unref();
        },
        close() {
          readable = writable = false;
          forget(pending);
          if (handle) {
            uvWatched.delete(fd);
            if (rearmAfterEvent) {
              // Deno 2.9.6: closing a started handle whose event is not delivered yet crashes the
              // process (SIGSEGV) once the event comes; stopped, and closed from a later timer, it
              // does not (the descriptor may be closed meanwhile).
              const stopped = handle;
              stopped.stop();
              setTimeout(() => stopped.close(), 0).unref();
            } else handle.close();
            handle = null;
          }
        },
      };
    },
    descriptors: () => [],
  };
}

// ---------------------------------------------------------------------------------------------
// 'thread': poll(2) on a helper thread

interface ThreadEntry {
  fd: number;
  readable: boolean;
  writable: boolean;
  referenced: boolean;
  pending: Pending;
}

type AsyncPoll = { async(fds: Buffer, nfds: number, timeout: number, cb: (err: unknown, ret: number) => void): void };

/** How often descriptors that only unref()'d objects wait on are checked (see below). */
const UNREF_TICK_MS = 10;

function threadBackend(): Backend {
  const poll = sys.poll as unknown as AsyncPoll;
  const { read, write } = sys;
  const entries = new Set<ThreadEntry>();
  // The wake-up pipe: a byte written to it makes the poll in flight return, to pick up changes.
  // It exists only while a poll may be in flight, so an idle thread (or an exiting worker) holds
  // no descriptors.
  let wake: { read: Fd; write: Fd } | null = null;
  const one = Buffer.from([1]);
  const drainBuf = Buffer.alloc(64);
  let inFlight: { fds: Buffer; watched: ThreadEntry[] } | null = null;
  let woken = false;
  let restartScheduled = false;
  let tick: NodeJS.Timeout | null = null;

  const wanted = (e: ThreadEntry): boolean => e.readable || e.writable;

  /** A pollfd array: `first` (the wake-up pipe) if given, then every watched entry. */
  function pollSet(watched: ThreadEntry[], first: number | null): Buffer {
    const size = L.pollfd.size;
    const offset = first === null ? 0 : 1;
    const fds = Buffer.alloc(size * (watched.length + offset));
    if (first !== null) {
      E.writeInt32(fds, L.pollfd.fd, first);
      E.writeInt16(fds, L.pollfd.events, C.POLLIN);
    }
    watched.forEach((e, i) => {
      const at = size * (i + offset);
      E.writeInt32(fds, at + L.pollfd.fd, e.fd);
      E.writeInt16(fds, at + L.pollfd.events, (e.readable ? C.POLLIN : 0) | (e.writable ? C.POLLOUT : 0));
    });
    return fds;
  }

  /** Hand what poll(2) reported to the waiters (entries closed meanwhile are skipped). */
  function report(fds: Buffer, watched: ThreadEntry[], offset: number): void {
    watched.forEach((e, i) => {
      const revents = E.readInt16(fds, L.pollfd.size * (i + offset) + L.pollfd.revents);
      if (revents === 0 || !entries.has(e)) return;
      // POLLERR/POLLHUP/POLLNVAL: let every waiter retry and see the real result.
      const failed = (revents & (C.POLLERR | C.POLLHUP | POLLNVAL)) !== 0;
      enqueue(e.pending, e.readable && (failed || (revents & C.POLLIN) !== 0), e.writable && (failed || (revents & C.POLLOUT) !== 0));
    });
  }

  function closeWake(): void {
    wake?.read.close();
    wake?.write.close();
    wake = null;
  }

  function start(): void {
    if (inFlight || tick) return;
    const watched = [...entries].filter(wanted);
    if (!watched.some((e) => e.referenced)) {
      closeWake();
      // Only unref()'d objects wait: a poll in flight would keep the process alive (koffi's
      // async call is a libuv work request, which cannot be unref'd), so check them from an
      // unref'd timer instead, with a poll that does not block.
      if (watched.length > 0) tick = setTimeout(checkUnreferenced, UNREF_TICK_MS).unref();
      return;
    }
    if (wake === null) {
      const [r, w] = pipe();
      wake = { read: r, write: w };
      for (const end of [r, w]) fcntlInt('fcntl', end.fd, C.F_SETFL, fcntlInt('fcntl', end.fd, C.F_GETFL) | C.O_NONBLOCK);
    }
    const wakeRead = wake.read.fd;
    const fds = pollSet(watched, wakeRead);
    // `fds` stays referenced from `inFlight` until the call returns: the thread writes into it.
    const call = (inFlight = { fds, watched });
    poll.async(fds, watched.length + 1, -1, (err) => {
      inFlight = null;
      if (woken) {
        woken = false;
        while ((read(wakeRead, drainBuf, drainBuf.length) as number) > 0);
      }
      if (!err) report(call.fds, call.watched, 1);
      // Poll again only after the events were handled: poll(2) is level-triggered, and a
      // descriptor nobody has read yet would wake it at once, in a loop.
      scheduleRestart();
    });
  }

  function checkUnreferenced(): void {
    tick = null;
    const watched = [...entries].filter(wanted);
    if (watched.length > 0) {
      const fds = pollSet(watched, null);
      if ((sys.poll(fds, watched.length, 0) as number) > 0) report(fds, watched, 0);
    }
    scheduleRestart();
  }

  function scheduleRestart(): void {
    if (restartScheduled) return;
    restartScheduled = true;
    whenDelivered(() => {
      restartScheduled = false;
      start();
    });
  }

  /** What is watched changed: wake the poll in flight (it restarts), or start anew. */
  function changed(): void {
    if (inFlight) {
      if (!woken) {
        woken = true;
        write(wake!.write.fd, one, 1);
      }
      return;
    }
    if (tick) {
      clearTimeout(tick);
      tick = null;
    }
    scheduleRestart();
  }

  return {
    name: 'thread',
    lingers: true,
    register(fd, sink, referenced) {
      const e: ThreadEntry = { fd, readable: false, writable: false, referenced, pending: { sink, readable: false, writable: false, queued: false, after: null } };
      entries.add(e);
      return {
        update(r, w) {
          if (r === e.readable && w === e.writable) return;
          e.readable = r;
          e.writable = w;
          changed();
        },
        ref() {
          if (e.referenced) return;
          e.referenced = true;
          if (wanted(e)) changed();
        },
        unref() {
          if (!e.referenced) return;
          e.referenced = false;
          if (wanted(e)) changed();
        },
        close() {
          e.readable = e.writable = false;
          forget(e.pending);
          entries.delete(e);
          // The descriptor is about to be closed and its number reused: the poll in flight must
          // not report on it, so wake it up.
          if (inFlight?.watched.includes(e)) changed();
        },
      };
    },
    descriptors() {
      return wake === null ? [] : [wake.read.fd, wake.write.fd];
    },
  };
}

const POLLNVAL = 0x20;

// ---------------------------------------------------------------------------------------------

export type BackendName = 'uv' | 'thread';

/** Which runtime this is, as far as readiness goes. */
export function detectBackend(): { name: BackendName; rearmAfterEvent: boolean } {
  const versions = process.versions as Record<string, string | undefined>;
  const forced = process.env.FDPASS_POLL;
  if (forced === 'uv' || forced === 'thread') return { name: forced, rearmAfterEvent: versions.deno !== undefined };
  if (forced !== undefined && forced !== '') {
    throw new FdPassError('ERR_FDPASS_UNSUPPORTED', `FDPASS_POLL must be 'uv' or 'thread', not '${forced}'`);
  }
  if (versions.bun !== undefined) return { name: 'thread', rearmAfterEvent: false };
  return { name: 'uv', rearmAfterEvent: versions.deno !== undefined };
}

let backend: Backend | undefined;

/** Descriptors the readiness machinery of this thread holds (not the caller's, not a leak). */
export function readinessDescriptors(): number[] {
  return backend?.descriptors() ?? [];
}

/** The backend for this thread, made on first use (importing fdpass starts nothing). */
export function readinessBackend(): Backend {
  if (!backend) {
    const { name, rearmAfterEvent } = detectBackend();
    backend = name === 'thread' ? threadBackend() : uvBackend(rearmAfterEvent);
  }
  return backend;
}

