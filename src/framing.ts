/**
 * The 'framed' socket type: messages with descriptors over a SOCK_STREAM socket, for platforms
 * without AF_UNIX SOCK_SEQPACKET (darwin). Each message is an 8-byte header and its payload:
 *
 *   byte 0     0xFD (magic)
 *   byte 1     1 (version)
 *   bytes 2-3  number of descriptors, uint16 big-endian
 *   bytes 4-7  payload length, uint32 big-endian
 *
 * The descriptors ride on the sendmsg that carries the header. A stream read may return the
 * end of one message together with the descriptors of the next (Linux stops a read after the
 * first chunk with descriptors, not before it), so the reader queues every descriptor it
 * receives and gives each message the number its header names, oldest first. A descriptor
 * still queued after the message whose bytes it arrived with is a protocol violation.
 *
 * When the kernel could not install every descriptor (MSG_CTRUNC), the lost ones belonged to
 * the one message with descriptors that starts in that read: that message fails with
 * ERR_FDPASS_CTRUNC when its turn comes (the ones that did arrive are closed), and the stream
 * stays in step. If no single such message can be found, reading stops for good.
 */
import { FdPassError } from './errors.js';
import { closeQuietly } from './libc.js';

export const FRAME_MAGIC = 0xfd;
export const FRAME_VERSION = 1;
export const FRAME_HEADER_BYTES = 8;
/** Largest payload a header can describe. */
export const FRAME_MAX_PAYLOAD = 0xffffffff;

/** The header for a payload of `length` bytes carrying `fdCount` descriptors. */
export function encodeFrameHeader(length: number, fdCount: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header[0] = FRAME_MAGIC;
  header[1] = FRAME_VERSION;
  header.writeUInt16BE(fdCount, 2);
  header.writeUInt32BE(length, 4);
  return header;
}

/** One complete message taken off the stream. */
export interface Frame {
  data: Buffer;
  /** The descriptors handed to the caller (at most maxFds), close-on-exec, owned by the caller. */
  fds: number[];
  /** Descriptors of this message beyond maxFds, already closed. */
  dropped: number;
}

export const NEED_MORE = Symbol('need more bytes');

function protocolError(message: string): FdPassError {
  return new FdPassError('ERR_FDPASS_PROTOCOL', `framed socket: ${message}`);
}

/** A queued slot for a descriptor that MSG_CTRUNC lost: counted, never closed. */
const LOST = -1;

/** Per-socket receive state: bytes read but not yet returned, and the descriptor queue. */
export class FrameReader {
  #buf = Buffer.alloc(0);
  #start = 0;
  #end = 0;
  /** Stream offset of #buf[#start]. */
  #position = 0;
  /** Queued descriptors, oldest first, with the stream offset at which the read that brought each ended. */
  #fds: number[] = [];
  #fdEnds: number[] = [];
  /** An oversized message being discarded: bytes still to drop and descriptors still to close. */
  #skipBytes = 0;
  #skipFds = 0;
  /** Set once the stream can no longer be read as messages: every later read fails with it. */
  #broken: FdPassError | null = null;
  /** Stream offsets of messages whose descriptors MSG_CTRUNC cut short. */
  readonly #truncated = new Set<number>();

  /** Bytes or descriptors read from the socket and not yet returned. */
  get holdsData(): boolean {
    return this.#end > this.#start || this.#fds.length > 0 || this.#skipBytes > 0;
  }

  /** Bytes worth reading next: the rest of the message in progress, at least `minimum`. */
  wanted(minimum: number, maxBytes: number): number {
    const have = this.#end - this.#start;
    if (this.#skipBytes > 0) return Math.max(minimum, Math.min(this.#skipBytes, 1 << 20));
    if (have < FRAME_HEADER_BYTES) return minimum;
    const length = this.#buf.readUInt32BE(this.#start + 4);
    if (length > maxBytes) return minimum;
    return Math.max(minimum, Math.min(FRAME_HEADER_BYTES + length - have, 1 << 20));
  }

  /**
   * Take `n` bytes of `data` and the descriptors that came with them. `truncated`: the kernel set
   * MSG_CTRUNC on this read (some descriptors were lost); throws ERR_FDPASS_CTRUNC at once when
   * the message they belonged to cannot be told.
   */
  push(data: Buffer, n: number, fds: readonly number[], truncated = false): void {
    const readStart = this.#position + (this.#end - this.#start);
    const readEnd = readStart + n;
    for (const fd of fds) {
      this.#fds.push(fd);
      this.#fdEnds.push(readEnd);
    }
    if (this.#broken !== null) {
      this.#closeQueued();
      return;
    }
    let skip = Math.min(this.#skipBytes, n);
    if (skip > 0 && this.#end === this.#start) {
      // Discard straight from the read: an oversized message is never buffered.
      this.#skipBytes -= skip;
      this.#position += skip;
    } else skip = 0;
    const rest = n - skip;
    if (rest > 0) {
      if (this.#buf.length - this.#end < rest) {
        const have = this.#end - this.#start;
        if (this.#start > 0 && this.#buf.length - have >= rest) {
          this.#buf.copy(this.#buf, 0, this.#start, this.#end);
        } else {
          const grown = Buffer.allocUnsafe(Math.max(have + rest, this.#buf.length * 2, 4096));
          this.#buf.copy(grown, 0, this.#start, this.#end);
          this.#buf = grown;
        }
        this.#start = 0;
        this.#end = have;
      }
      data.copy(this.#buf, this.#end, skip, n);
      this.#end += rest;
    }
    if (truncated) this.#attributeLoss(readStart, readEnd, fds.length);
  }

  /**
   * MSG_CTRUNC: find the one message with descriptors that starts in [readStart, readEnd) — a
   * read carries the descriptors of one sendmsg, which starts at a header — and fill its
   * missing descriptors with LOST slots, so later messages still get their own.
   */
  #attributeLoss(readStart: number, readEnd: number, arrived: number): void {
    let candidate: { start: number; count: number } | null = null;
    let ambiguous = false;
    let pos = this.#position + this.#skipBytes;
    while (pos < readEnd) {
      const at = this.#start + (pos - this.#position);
      if (at + FRAME_HEADER_BYTES > this.#end) break;
      const count = this.#buf.readUInt16BE(at + 2);
      if (pos >= readStart && count > 0) {
        if (candidate !== null) ambiguous = true;
        candidate = { start: pos, count };
      }
      pos += FRAME_HEADER_BYTES + this.#buf.readUInt32BE(at + 4);
    }
    if (candidate === null || ambiguous || arrived > candidate.count) {
      this.#fail(new FdPassError(
        'ERR_FDPASS_CTRUNC',
        `recvmsg: control data was truncated (MSG_CTRUNC): descriptors were lost${arrived ? `; the ${arrived} that arrived were closed` : ''}, and this framed socket cannot tell which message they belonged to, so it can no longer be read. The receiver may be out of file descriptors (EMFILE)`,
        { syscall: 'recvmsg' },
      ));
    }
    for (let i = arrived; i < candidate.count; i++) {
      this.#fds.push(LOST);
      this.#fdEnds.push(readEnd);
    }
    this.#truncated.add(candidate.start);
  }

  /**
   * The next complete message, NEED_MORE, or a throw: ERR_FDPASS_TRUNC for a message longer
   * than maxBytes (skipped, its descriptors closed), ERR_FDPASS_PROTOCOL when the stream is not
   * fdpass's framing (then it stays broken: every later call throws the same error).
   */
  next(maxBytes: number, maxFds: number): Frame | typeof NEED_MORE {
    if (this.#broken !== null) throw this.#broken;
    if (this.#skipBytes > 0) {
      const drop = Math.min(this.#skipBytes, this.#end - this.#start);
      this.#skipBytes -= drop;
      this.#start += drop;
      this.#position += drop;
      if (this.#skipBytes > 0) return NEED_MORE;
    }
    if (this.#skipFds > 0) this.#skipFds -= this.#closeOldest(this.#skipFds);
    const have = this.#end - this.#start;
    if (have < FRAME_HEADER_BYTES) {
      if (have > 0 && (this.#buf[this.#start] !== FRAME_MAGIC || (have > 1 && this.#buf[this.#start + 1] !== FRAME_VERSION))) this.#badHeader();
      return NEED_MORE;
    }
    const h = this.#start;
    if (this.#buf[h] !== FRAME_MAGIC || this.#buf[h + 1] !== FRAME_VERSION) this.#badHeader();
    const count = this.#buf.readUInt16BE(h + 2);
    const length = this.#buf.readUInt32BE(h + 4);
    const frameEnd = this.#position + FRAME_HEADER_BYTES + length;
    if (length > maxBytes) {
      // Skip it to stay in step with the sender; its descriptors arrived with its header.
      this.#start += FRAME_HEADER_BYTES;
      this.#position += FRAME_HEADER_BYTES;
      this.#skipBytes = length;
      const closed = this.#closeOldest(count);
      this.#skipFds = count - closed;
      const drop = Math.min(this.#skipBytes, this.#end - this.#start);
      this.#skipBytes -= drop;
      this.#start += drop;
      this.#position += drop;
      throw new FdPassError(
        'ERR_FDPASS_TRUNC',
        `recvmsg: a message longer than maxBytes (${length} > ${maxBytes}) was skipped${count ? `, and its ${count} fds closed` : ''}`,
        { syscall: 'recvmsg' },
      );
    }
    if (have < FRAME_HEADER_BYTES + length) return NEED_MORE;
    if (this.#fds.length < count) {
      this.#fail(protocolError(`a message header announced ${count} descriptors but ${this.#fds.length} arrived with it`));
    }
    const frameStart = this.#position;
    const data = Buffer.allocUnsafe(length);
    this.#buf.copy(data, 0, h + FRAME_HEADER_BYTES, h + FRAME_HEADER_BYTES + length);
    this.#start += FRAME_HEADER_BYTES + length;
    this.#position = frameEnd;
    const fds = this.#fds.splice(0, count);
    this.#fdEnds.splice(0, count);
    // Descriptors that came with this message's bytes (or earlier) but were not announced.
    if (this.#fdEnds.length > 0 && this.#fdEnds[0] <= frameEnd) {
      closeAll(fds);
      this.#fail(protocolError('descriptors arrived that no message header announced'));
    }
    if (this.#truncated.delete(frameStart)) {
      const arrived = fds.filter((fd) => fd !== LOST).length;
      closeAll(fds);
      throw new FdPassError(
        'ERR_FDPASS_CTRUNC',
        `recvmsg: control data was truncated (MSG_CTRUNC): descriptors were lost${arrived ? `; the ${arrived} that arrived were closed` : ''}. The receiver may be out of file descriptors (EMFILE)`,
        { syscall: 'recvmsg' },
      );
    }
    const keep = Math.min(count, maxFds);
    closeAll(fds.slice(keep));
    if (keep < count) fds.length = keep;
    return { data, fds, dropped: count - keep };
  }

  /** End of stream: null at a message boundary, else ERR_FDPASS_PROTOCOL. */
  atEof(): null {
    if (this.#broken !== null) throw this.#broken;
    const have = this.#end - this.#start;
    if (have > 0 || this.#skipBytes > 0) {
      const what = have >= FRAME_HEADER_BYTES
        ? `${have - FRAME_HEADER_BYTES} of ${this.#buf.readUInt32BE(this.#start + 4)} payload bytes`
        : this.#skipBytes > 0 ? 'an oversized message being skipped' : `${have} of ${FRAME_HEADER_BYTES} header bytes`;
      this.#fail(protocolError(`the peer closed the stream in the middle of a message (${what} received)`));
    }
    if (this.#fds.length > 0) this.#fail(protocolError('descriptors arrived that no message header announced'));
    return null;
  }

  /** Close every queued descriptor (the socket is being closed). */
  close(): void {
    this.#closeQueued();
    this.#buf = Buffer.alloc(0);
    this.#start = this.#end = 0;
  }

  #badHeader(): never {
    const b = this.#buf;
    const got = [...b.subarray(this.#start, Math.min(this.#end, this.#start + 2))].map((x) => `0x${x.toString(16).padStart(2, '0')}`).join(' ');
    this.#fail(protocolError(`expected a message header (0xfd 0x01), got ${got}: the peer does not speak fdpass's framing (use type 'stream' for raw bytes)`));
  }

  #fail(err: FdPassError): never {
    this.#broken = err;
    this.#closeQueued();
    this.#buf = Buffer.alloc(0);
    this.#start = this.#end = 0;
    throw err;
  }

  /** Close up to `count` of the oldest queued descriptors; returns how many. */
  #closeOldest(count: number): number {
    const n = Math.min(count, this.#fds.length);
    closeAll(this.#fds.splice(0, n));
    this.#fdEnds.splice(0, n);
    return n;
  }

  #closeQueued(): void {
    closeAll(this.#fds);
    this.#fds = [];
    this.#fdEnds = [];
  }
}

function closeAll(fds: readonly number[]): void {
  for (const fd of fds) if (fd !== LOST) closeQuietly(fd);
}
