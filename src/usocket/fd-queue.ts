/**
 * Received fds waiting to be read, each with a position in the byte stream: the offset of the
 * last byte of the chunk it arrived with. On a stream, recvmsg may join the bytes of several
 * writes and stops right after the one that carried fds, so the fds belong to the last write in
 * the chunk: they are due once the chunk's last byte has been read, not its first.
 */
import { closeQuietly } from '../libc.js';

export class FdQueue {
  #fds: number[] = [];
  /** Offset in the byte stream of the last byte of the chunk each fd arrived with. */
  #positions: number[] = [];
  #head = 0;

  get length(): number {
    return this.#fds.length - this.#head;
  }

  push(fds: readonly number[], position: number): void {
    for (const fd of fds) {
      this.#fds.push(fd);
      this.#positions.push(position);
    }
  }

  /** Put fds back in front, in order, due once the byte at `position` has been read. */
  unshift(fds: readonly number[], position: number): void {
    this.#compact();
    this.#fds.unshift(...fds);
    this.#positions.unshift(...fds.map(() => position));
  }

  /** How many queued fds are due once the bytes before stream offset `limit` have been read. */
  countBefore(limit: number): number {
    let i = this.#head;
    while (i < this.#fds.length && this.#positions[i] < limit) i++;
    return i - this.#head;
  }

  /** Remove and return the first `count` fds (the caller owns them). */
  take(count: number): number[] {
    const start = this.#head;
    const taken = this.#fds.slice(start, start + count);
    this.#head += taken.length;
    if (this.#head === this.#fds.length) this.clear();
    else if (this.#head > 1024 && this.#head * 2 > this.#fds.length) this.#compact();
    return taken;
  }

  /** Close every queued fd (nobody will read them). */
  closeAll(): void {
    for (let i = this.#head; i < this.#fds.length; i++) closeQuietly(this.#fds[i]);
    this.clear();
  }

  clear(): void {
    this.#fds = [];
    this.#positions = [];
    this.#head = 0;
  }

  #compact(): void {
    if (this.#head === 0) return;
    this.#fds = this.#fds.slice(this.#head);
    this.#positions = this.#positions.slice(this.#head);
    this.#head = 0;
  }
}
