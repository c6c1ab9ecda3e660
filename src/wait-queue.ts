/**
 * Operations waiting for readiness, served strictly in order: shared by UnixSocket (sends and
 * receives), UnixServer (accepts) and the protocol helpers.
 */
import { abortError } from './errors.js';

/** What an attempt returns when the syscall would block (EAGAIN). */
export const AGAIN = Symbol('EAGAIN');

export interface Waiter<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
  signal: AbortSignal | undefined;
}


export interface WaitQueueHooks<Op, R> {
  /** The op was aborted by its signal; `err` (an AbortError) may be annotated before it is thrown. */
  onAbort?(op: Op, err: Error): void;
  /** The op is about to wait in the queue (it could not complete at once). May throw: the op fails. */
  onQueue?(op: Op): void;
  /** A queued op left the queue (done, failed, aborted or flushed). */
  onLeave?(op: Op): void;
  /** A result produced for an op that was settled meanwhile (user code ran inside `attempt`). */
  onOrphan?(result: R): void;
  /**
   * Serve several ops from the head in one syscall (sendmmsg): the results of the first k ops
   * (k ≥ 1), which complete in order; AGAIN when the head would block; null when the head must go
   * alone through `attempt` (it cannot be batched, or it fails there with its own error). Must
   * not run user code, so the head ops are still queued when it returns.
   */
  attemptMany?(ops: readonly Op[]): R[] | typeof AGAIN | null;
}

/**
 * A queue of operations waiting for readiness, served strictly in order. `attempt` runs the
 * syscall for the head: it returns AGAIN (wait for the next readiness event) or a result.
 */
export class WaitQueue<Op extends Waiter<R>, R> {
  readonly ops: Op[] = [];
  /**
   * One 'abort' listener per signal, however many queued ops share it: a signal reused for many
   * pending operations must not pile up listeners (Node warns past 10: MaxListenersExceededWarning).
   */
  readonly #bySignal = new Map<AbortSignal, { ops: Set<Op>; listener: () => void }>();
  constructor(
    readonly attempt: (op: Op) => R | typeof AGAIN,
    readonly onChange: () => void,
    readonly hooks: WaitQueueHooks<Op, R> = {},
  ) {}

  get waiting(): boolean {
    return this.ops.length > 0;
  }

  /** Try the head now (only when nothing is queued, to keep order); queue the rest. */
  submit(op: Op): Promise<R> {
    if (this.ops.length === 0) {
      // Done at once (the common case): no executor, no resolving functions.
      let result: R | typeof AGAIN;
      try {
        result = this.attempt(op);
      } catch (err) {
        return Promise.reject(err);
      }
      if (result !== AGAIN) return Promise.resolve(result);
    }
    const promise = new Promise<R>((resolve, reject) => {
      op.resolve = resolve;
      op.reject = reject;
    });
    try {
      this.hooks.onQueue?.(op);
    } catch (err) {
      op.reject(err);
      return promise;
    }
    if (op.signal) this.#watchSignal(op, op.signal);
    this.ops.push(op);
    try {
      this.onChange();
    } catch (err) {
      // Could not start waiting (e.g. the fd is already watched elsewhere): fail this op.
      this.finish(op);
      op.reject(err);
    }
    return promise;
  }

  /** Serve queued operations until one would block. */
  drain(): void {
    const attemptMany = this.hooks.attemptMany;
    while (this.ops.length > 0) {
      if (attemptMany !== undefined && this.ops.length > 1) {
        const results = attemptMany(this.ops);
        if (results === AGAIN) break;
        if (results !== null) {
          for (let k = 0; k < results.length; k++) {
            const done = this.ops.shift()!;
            this.left(done);
            done.resolve(results[k]);
          }
          continue;
        }
      }
      const op = this.ops[0];
      let result: R | typeof AGAIN;
      try {
        result = this.attempt(op);
      } catch (err) {
        if (this.ops[0] !== op) continue; // settled meanwhile (aborted, or closed)
        this.finish(op);
        op.reject(err);
        continue;
      }
      if (this.ops[0] !== op) {
        // User code inside attempt (authorize) aborted this op or closed the queue's owner.
        if (result !== AGAIN) this.hooks.onOrphan?.(result);
        continue;
      }
      if (result === AGAIN) break;
      this.finish(op);
      op.resolve(result);
    }
    this.onChange();
  }

  /** Settle everything still queued (on close). */
  flush(settle: (op: Op) => void): void {
    for (const op of this.ops.splice(0)) {
      this.left(op);
      settle(op);
    }
  }

  /** Remove `op` (by identity: user code may have changed the queue meanwhile). */
  private finish(op: Op): void {
    const ops = this.ops;
    // The head, nearly always: shift() is O(1) in V8, splice(0, 1) moves the whole queue.
    if (ops[0] === op) ops.shift();
    else {
      const i = ops.indexOf(op);
      if (i >= 0) ops.splice(i, 1);
    }
    this.left(op);
  }

  private left(op: Op): void {
    const signal = op.signal;
    const entry = signal && this.#bySignal.get(signal);
    if (entry && entry.ops.delete(op) && entry.ops.size === 0) {
      signal!.removeEventListener('abort', entry.listener);
      this.#bySignal.delete(signal!);
    }
    this.hooks.onLeave?.(op);
  }

  #watchSignal(op: Op, signal: AbortSignal): void {
    let entry = this.#bySignal.get(signal);
    if (entry === undefined) {
      const ops = new Set<Op>();
      // Abort in queue order; each abort removes its op (and, with the last one, this listener).
      const listener = (): void => {
        for (const queued of [...ops]) this.abort(queued, signal);
      };
      entry = { ops, listener };
      this.#bySignal.set(signal, entry);
      signal.addEventListener('abort', listener, { once: true });
    }
    entry.ops.add(op);
  }

  private abort(op: Op, signal: AbortSignal): void {
    if (!this.ops.includes(op)) return;
    this.finish(op);
    const err = abortError(signal);
    this.hooks.onAbort?.(op, err);
    op.reject(err);
    this.onChange();
  }
}


export function newWaiter<T>(signal: AbortSignal | undefined): Waiter<T> {
  return { resolve: noop, reject: noop, signal };
}
export function noop(): void {}
