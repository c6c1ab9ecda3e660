/** The async iterators of a UnixSocket: messages one by one (read ahead in batches), or whole batches. */
import { abortError } from './errors.js';
import type { BatchLimits } from './recv-limits.js';
import type { Message, UnixSocket } from './socket.js';

/** What the iterators need from a UnixSocket's private state (socket.ts provides it). */
export interface Iteration {
  nextAhead(socket: UnixSocket): Message | undefined;
  recvAhead(socket: UnixSocket): Promise<Message | null>;
  recvBatch(socket: UnixSocket, limits: BatchLimits, signal: AbortSignal | undefined): Promise<Message[] | null>;
}

function done<T>(): IteratorResult<T, void> {
  return { value: undefined, done: true };
}

/**
 * What both socket iterators share. Hand-written rather than async generators: a message already
 * read ahead goes out as one resolved promise, with no generator resumption and no extra await
 * per `yield`. Like a generator, an iterator is finished after it ends, throws, or return().
 */
abstract class SocketIterator<T> implements AsyncGenerator<T, void, undefined> {
  protected socket: UnixSocket | null;
  protected readonly iteration: Iteration;

  constructor(socket: UnixSocket, iteration: Iteration) {
    this.socket = socket;
    this.iteration = iteration;
  }

  abstract next(): Promise<IteratorResult<T, void>>;

  /** The step `wait` gives: a value, or (null) the end; an error finishes the iterator too. */
  protected step(wait: Promise<T | null>): Promise<IteratorResult<T, void>> {
    return wait.then(
      (value): IteratorResult<T, void> => (value === null ? (this.socket = null, done()) : { value, done: false }),
      (err: unknown) => {
        this.socket = null;
        throw err;
      },
    );
  }

  return(): Promise<IteratorResult<T, void>> {
    return this.finish();
  }

  throw(err: unknown): Promise<IteratorResult<T, void>> {
    this.socket = null;
    return Promise.reject(err);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.socket = null;
  }

  protected finish(): Promise<IteratorResult<T, void>> {
    this.socket = null;
    return Promise.resolve(done());
  }
}

/** `for await (const msg of socket)`: messages read ahead in batches, handed out one by one. */
export class MessageIterator extends SocketIterator<Message> {
  next(): Promise<IteratorResult<Message, void>> {
    const socket = this.socket;
    if (socket === null || socket.closed) return this.finish();
    let msg: Message | undefined;
    try {
      msg = this.iteration.nextAhead(socket);
    } catch (err) {
      this.socket = null;
      return Promise.reject(err);
    }
    if (msg !== undefined) return Promise.resolve({ value: msg, done: false });
    return this.step(this.iteration.recvAhead(socket));
  }
}

/** `for await (const batch of socket.batches(options))`: one recvBatch per step. */
export class BatchIterator extends SocketIterator<Message[]> {
  readonly #limits: BatchLimits;
  readonly #signal: AbortSignal | undefined;

  constructor(socket: UnixSocket, iteration: Iteration, limits: BatchLimits, signal: AbortSignal | undefined) {
    super(socket, iteration);
    this.#limits = limits;
    this.#signal = signal;
  }

  next(): Promise<IteratorResult<Message[], void>> {
    const socket = this.socket;
    if (socket === null || socket.closed) return this.finish();
    if (this.#signal?.aborted) {
      this.socket = null;
      return Promise.reject(abortError(this.#signal));
    }
    return this.step(this.iteration.recvBatch(socket, this.#limits, this.#signal));
  }
}
