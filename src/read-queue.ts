/**
 * Messages a UnixSocket took out of the kernel before a receive asked for them (the async
 * iterator's read-ahead, a recvmmsg's messages beyond a batch's limits), served in order.
 */

/** A receive error that came after messages read ahead: thrown when its turn comes. */
export class Deferred {
  /** What isDeferred looks at. */
  readonly deferred = true;
  constructor(readonly error: unknown) {}
}

/**
 * `entry instanceof Deferred`, as a property check: V8 did not fold that instanceof (the class
 * comes from another module) and ran the generic Symbol.hasInstance lookup for every message.
 */
export function isDeferred(entry: object): entry is Deferred {
  return (entry as { deferred?: boolean }).deferred === true;
}

/**
 * A FIFO with a moving head: shift() clears a slot instead of moving the array, and an array
 * handed over by `adopt` becomes the queue without a copy.
 */
export class ReadQueue<T> {
  #items: T[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  /** The next entry (the queue must not be empty). */
  peek(): T {
    return this.#items[this.#head];
  }

  /** Take the next entry (the queue must not be empty). */
  shift(): T {
    const items = this.#items;
    const entry = items[this.#head];
    items[this.#head] = undefined as T;
    if (++this.#head === items.length) {
      items.length = 0;
      this.#head = 0;
    }
    return entry;
  }

  /** Put `entry` back in front. */
  unshift(entry: T): void {
    if (this.#head > 0) this.#items[--this.#head] = entry;
    else this.#items.unshift(entry);
  }

  /** `items[from..]` go before whatever is queued; an empty queue takes the array itself. */
  prepend(items: T[], from: number): void {
    if (this.size === 0) {
      for (let i = 0; i < from; i++) items[i] = undefined as T;
      this.#items = items;
      this.#head = from;
    } else {
      this.#items = [...items.slice(from), ...this.#items.slice(this.#head)];
      this.#head = 0;
    }
  }

  /** Empty the queue; returns what was in it, in order. */
  clear(): T[] {
    const rest = this.#items.slice(this.#head);
    this.#items = [];
    this.#head = 0;
    return rest;
  }
}
