/**
 * recvmmsg(2) buffers: an array of struct mmsghdr, one iovec and one control buffer per slot,
 * and one payload area cut into `maxBytes`-sized slots, so that one koffi call receives many
 * messages (Linux: CAPS.messageVectors). Built on first use, once per thread, and reused.
 *
 * As in src/msghdr.ts: every Buffer whose address is written into a struct is a field of the
 * RecvVector (the payload area until it is replaced, and then the old one is no longer in any
 * struct), and per-call preparation writes only what the kernel changes (msg_controllen,
 * msg_flags) and, when maxBytes or the payload area changed, the iovecs.
 *
 * Memory: a slot must hold a whole message of `maxBytes` (a seqpacket/dgram message longer than
 * its iovec is truncated and lost), so the number of slots per call is bounded by
 * PAYLOAD_BUDGET / maxBytes. The payload area grows up to PAYLOAD_BUDGET and is kept; it comes
 * from Buffer.alloc (calloc, mmap for large sizes), so only pages a message was written into
 * count in the process's resident memory.
 *
 * Descriptors: every fd in every slot is installed in the process by the one call, before
 * fdpass can close any it does not hand out. Near RLIMIT_NOFILE that could turn a later slot's
 * message into MSG_CTRUNC (its fds lost) where one recvmsg at a time would have closed the
 * earlier message's extra fds first. So a call uses only as many slots as could each carry
 * SCM_MAX_FD fds below the soft RLIMIT_NOFILE, counted from the highest descriptor number seen
 * (the socket's own, and those the previous vector call received: Linux hands out the lowest
 * free number, so they show how full the table is).
 */
import { Buffer } from 'node:buffer';
import { C, CAPS, E, EAGAIN, EINTR, L, koffi, lastErrno, lib, platform } from './libc.js';
import {
  I, IOV_BASE, IOV_LEN, MSG_CONTROL, MSG_CONTROLLEN, MSG_FLAGS, MSG_IOV, MSG_IOVLEN, RECV_CONTROL_BYTES, allocStruct, callAddress, int32View, writeAddress,
} from './msghdr.js';

/** Most messages one recvmmsg call receives. */
export const MAX_SLOTS = 64;
/** Most bytes of payload slots one call uses (slots × maxBytes), and the most the payload area grows to. */
export const PAYLOAD_BUDGET = 2 << 20;

const MMSG_SIZE = L.mmsghdr?.size ?? 0;
const MMSG_WORDS = MMSG_SIZE / I;
const MSG_LEN = (L.mmsghdr?.len ?? 0) / I; // unsigned int: a whole Int32Array element
const IOV_SIZE = L.iovec.size;
const IOV_WORDS = IOV_SIZE / I;
const CONTROL_STRIDE = Math.ceil(RECV_CONTROL_BYTES / 8) * 8;

const RLIMIT_NOFILE = platform.linux?.RLIMIT_NOFILE ?? 0;
/** rlim_t: unsigned long in glibc, unsigned long long in musl. */
const RLIM_SIZE: 4 | 8 = platform.libc === 'musl' ? 8 : L.pointerSize;
const getrlimitAt = CAPS.messageVectors
  ? (lib.func('int getrlimit(int resource, intptr_t rlim)') as unknown as (resource: number, rlim: number | bigint) => number)
  : null;
const SCM_MAX_FD = C.SCM_MAX_FD;
// recv(2) with no control buffer: a peek at a message that carries fds installs none of them.
const recvAt = CAPS.messageVectors
  ? (lib.func('intptr_t recv(int fd, intptr_t buf, uintptr_t len, int flags)') as unknown as (fd: number, buf: number | bigint, len: number, flags: number) => number)
  : null;
const PEEK_FLAGS = C.MSG_PEEK | C.MSG_DONTWAIT;
/** Vector calls between two reads of RLIMIT_NOFILE (it is read again at once after MSG_CTRUNC). */
const NOFILE_REUSE = 16;
const koffiAddress = (buf: Buffer): bigint => koffi.address(buf) as bigint;

export class RecvVector {
  /** The struct mmsghdr array, MAX_SLOTS long; its address is what recvmmsg takes. */
  readonly msgvec = allocStruct(MAX_SLOTS * MMSG_SIZE);
  readonly address = callAddress(this.msgvec);
  readonly #vec32 = int32View(this.msgvec);
  readonly #iovs = allocStruct(MAX_SLOTS * IOV_SIZE);
  readonly #iov32 = int32View(this.#iovs);
  /** One control buffer per slot, RECV_CONTROL_BYTES each (CONTROL_STRIDE apart). */
  readonly #control = allocStruct(MAX_SLOTS * CONTROL_STRIDE);
  /** Slot i's control buffer, and an Int32Array over it, for parseControl / singleRightsCount. */
  readonly controls: readonly Buffer[];
  readonly controls32: readonly Int32Array[];
  /** Where the payloads land: slot i at `i * stride`. */
  payload: Buffer = Buffer.alloc(0);
  /** The maxBytes the iovecs were written for, and how many slots' iovecs are. */
  #stride = 0;
  #addressed = 0;
  readonly #peek = allocStruct(8);
  readonly #peekAddress = callAddress(this.#peek);
  readonly #rlimit = allocStruct(16);
  readonly #rlimitAddress = callAddress(this.#rlimit);
  /** The highest descriptor number the latest call received (see the module comment). */
  highestFd = 0;
  /** The soft RLIMIT_NOFILE as last read, and how many more calls may use it before it is read again. */
  #nofile = 0;
  #nofileUses = 0;
  /** Slots whose msg_controllen/msg_flags the kernel overwrote in the latest call (the rest still hold the reset values). */
  #dirty = 0;

  constructor() {
    const controls: Buffer[] = [];
    const controls32: Int32Array[] = [];
    const iovBase = koffiAddress(this.#iovs);
    const controlBase = koffiAddress(this.#control);
    for (let i = 0; i < MAX_SLOTS; i++) {
      const at = i * MMSG_SIZE;
      writeAddress(this.msgvec, at + MSG_IOV, iovBase + BigInt(i * IOV_SIZE));
      writeAddress(this.msgvec, at + MSG_CONTROL, controlBase + BigInt(i * CONTROL_STRIDE));
      this.#vec32[i * MMSG_WORDS + MSG_IOVLEN] = 1;
      this.#vec32[i * MMSG_WORDS + MSG_CONTROLLEN] = RECV_CONTROL_BYTES;
      const control = this.#control.subarray(i * CONTROL_STRIDE, (i + 1) * CONTROL_STRIDE);
      controls.push(control);
      controls32.push(int32View(control));
    }
    this.controls = controls;
    this.controls32 = controls32;
  }

  /**
   * How many slots a call may use for `maxMessages` messages of up to `maxBytes` on socket `fd`:
   * 0 when fewer than two (one recvmsg is then the better call).
   */
  slots(maxMessages: number, maxBytes: number, fd: number): number {
    let n = Math.min(maxMessages, MAX_SLOTS, Math.floor(PAYLOAD_BUDGET / maxBytes));
    if (n < 2) return 0;
    if (this.#nofileUses-- <= 0) {
      this.#nofile = this.#softNofile();
      this.#nofileUses = NOFILE_REUSE;
    }
    const byFds = Math.floor((this.#nofile - 1 - Math.max(fd, this.highestFd)) / SCM_MAX_FD);
    if (byFds < n) n = byFds;
    return n < 2 ? 0 : n;
  }

  /**
   * After a call that filled every slot and ended in zero-length reads: whether they were
   * zero-length messages the peer sent, rather than end of stream (which fills every slot left).
   * So they were if the socket can still receive: a peek finds a message, or would block. A
   * peek that reads 0 bytes is either (another zero-length message, or the end): taken as the end.
   */
  zeroReadsWereMessages(fd: number): boolean {
    for (;;) {
      const n = recvAt!(fd, this.#peekAddress, 1, PEEK_FLAGS);
      if (n >= 0) return n > 0;
      const errno = lastErrno();
      if (errno !== EINTR) return errno === EAGAIN;
    }
  }

  /** Read the soft RLIMIT_NOFILE again before the next call (after a slot lost fds: MSG_CTRUNC). */
  recheckNofile(): void {
    this.#nofileUses = 0;
  }

  /** The soft RLIMIT_NOFILE (0 if getrlimit fails: then no vector calls). */
  #softNofile(): number {
    if (getrlimitAt!(RLIMIT_NOFILE, this.#rlimitAddress) !== 0) return 0;
    return E.readLength(this.#rlimit, 0, RLIM_SIZE);
  }

  /** Reset what recvmmsg writes back in the first `slots` slots, for messages of up to `maxBytes`. Returns the msgvec address. */
  prepare(slots: number, maxBytes: number): number | bigint {
    if (maxBytes !== this.#stride || slots * maxBytes > this.payload.length) {
      if (slots * maxBytes > this.payload.length) {
        // Grow to what this call needs (slots() keeps that within PAYLOAD_BUDGET), doubling up to
        // the budget; the old area is in no struct the kernel is given once the iovecs are rewritten.
        this.payload = Buffer.alloc(Math.max(slots * maxBytes, Math.min(PAYLOAD_BUDGET, 2 * this.payload.length)));
      }
      this.#stride = maxBytes;
      this.#addressed = 0;
    }
    if (slots > this.#addressed) {
      const base = koffiAddress(this.payload);
      const iov32 = this.#iov32;
      for (let i = this.#addressed; i < slots; i++) {
        writeAddress(this.#iovs, i * IOV_SIZE + IOV_BASE, base + BigInt(i * maxBytes));
        iov32[i * IOV_WORDS + IOV_LEN] = maxBytes;
      }
      this.#addressed = slots;
    }
    // The kernel writes msg_controllen and msg_flags only in the slots it fills.
    const vec32 = this.#vec32;
    for (let i = 0, at = 0; i < this.#dirty; i++, at += MMSG_WORDS) {
      vec32[at + MSG_CONTROLLEN] = RECV_CONTROL_BYTES;
      vec32[at + MSG_FLAGS] = 0;
    }
    this.#dirty = slots;
    return this.address;
  }

  /** After a call: how many slots the kernel filled (so that `prepare` resets only those). */
  filled(count: number): void {
    this.#dirty = count;
  }

  /** Slot i's msg_flags, as the kernel wrote them. */
  flags(i: number): number {
    return this.#vec32[i * MMSG_WORDS + MSG_FLAGS];
  }

  /** Slot i's msg_controllen, as the kernel wrote it. */
  controlLength(i: number): number {
    return this.#vec32[i * MMSG_WORDS + MSG_CONTROLLEN];
  }

  /** Slot i's msg_len: the payload bytes received. */
  length(i: number): number {
    return this.#vec32[i * MMSG_WORDS + MSG_LEN];
  }

  /** Where slot i's payload starts in `payload`. */
  offset(i: number): number {
    return i * this.#stride;
  }
}
