/**
 * msghdr/iovec/control buffers for sendmsg and recvmsg, built once per thread and reused.
 *
 * The kernel follows raw addresses stored inside these Buffers, and a raw address does not
 * keep its Buffer alive: every Buffer whose address is written here is a field of this
 * object (or `#pinned` for the duration of one call), so it lives as long as the struct.
 *
 * Hot-path writes go through Int32Array views, which use the machine's own byte order — the
 * kernel's. A length field is 8 bytes (glibc LP64) or 4 (musl, BSD, ILP32); values fit in 32
 * bits, so only the low word of a zero-initialised field is written: at the field's offset on
 * little-endian, 4 bytes further on big-endian (s390x). musl's pad words stay zero.
 */
import { Buffer } from 'node:buffer';
import { lowWordOffset } from './byteorder.js';
import { cmsgAlign, cmsgLen, cmsgSpace, encodeCredentials, encodeRights, FD_SIZE, type Credentials } from './cmsg.js';
import { C, CAPS, CMSG, CREDENTIALS, E, L, koffi, lib, platform } from './libc.js';

/**
 * sendmsg/recvmsg taking the msghdr's address as an integer. With no pointer parameter koffi
 * takes its fast call path (nothing to inspect for callbacks or output buffers), and a Number
 * converts faster than a Buffer or a BigInt.
 */
export const sendmsgAt = lib.func('intptr_t sendmsg(int fd, intptr_t msg, int flags)') as unknown as (fd: number, msg: number | bigint, flags: number) => number;
export const recvmsgAt = lib.func('intptr_t recvmsg(int fd, intptr_t msg, int flags)') as unknown as (fd: number, msg: number | bigint, flags: number) => number;

/**
 * sendmmsg/recvmmsg (several messages in one call, `msgvec` an array of struct mmsghdr), where
 * CAPS.messageVectors says fdpass uses them; null elsewhere. recvmmsg's timeout stays 0 (NULL).
 */
export const sendmmsgAt = CAPS.messageVectors
  ? (lib.func('int sendmmsg(int fd, intptr_t msgvec, uint32_t vlen, int flags)') as unknown as (fd: number, msgvec: number | bigint, vlen: number, flags: number) => number)
  : null;
export const recvmmsgAt = CAPS.messageVectors
  ? (lib.func('int recvmmsg(int fd, intptr_t msgvec, uint32_t vlen, int flags, intptr_t timeout)') as unknown as (fd: number, msgvec: number | bigint, vlen: number, flags: number, timeout: 0) => number)
  : null;

/** A struct's address for an `intptr_t` parameter: a Number where it is exact (every user-space address today), else the BigInt. */
export function callAddress(buf: Buffer): number | bigint {
  const address = koffi.address(buf) as bigint;
  return address <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(address) : address;
}

// Where the fields live, as Int32Array indexes (the low word of 8-byte lengths) or byte offsets
// (pointers): shared with the sendmmsg/recvmmsg arrays (send-vector.ts, recv-vector.ts).
export const I = 4; // bytes per Int32Array element
export const word = (offset: number, size: 4 | 8): number => lowWordOffset(offset, size, platform.endianness) / I;
export const MSG_IOV = L.msghdr.iov;
export const MSG_IOVLEN = word(L.msghdr.iovlen, L.msghdr.iovlenSize);
export const MSG_CONTROL = L.msghdr.control;
export const MSG_CONTROLLEN = word(L.msghdr.controllen, L.msghdr.controllenSize);
export const MSG_FLAGS = L.msghdr.flags / I;
export const IOV_BASE = L.iovec.base;
export const IOV_LEN = word(L.iovec.len, L.iovec.lenSize);
export const CMSG_LEN = word(L.cmsghdr.len, L.cmsghdr.lenSize);
export const CMSG_LEVEL = L.cmsghdr.level / I;
export const CMSG_TYPE = L.cmsghdr.type / I;
export const CMSG_DATA = cmsgAlign(L.cmsghdr.size, CMSG) / I;
// Hot-path constants as module bindings: the platform table is a large object.
const SOL_SOCKET = C.SOL_SOCKET;
const SCM_RIGHTS = C.SCM_RIGHTS;
const ALIGN_MASK = CMSG.align - 1;
/**
 * What msg_controllen says for one SCM_RIGHTS message: CMSG_SPACE, or CMSG_LEN where the kernel
 * wants cmsg_len equal to msg_controllen (darwin; Linux accepts it too, which minimal mode uses).
 */
export const rightsControlLength = CAPS.singleRightsMessage ? cmsgLen : cmsgSpace;

/** Store a raw address in a struct. The Buffer at `addr` must stay referenced by whoever owns `buf`. */
export function writeAddress(buf: Buffer, offset: number, addr: bigint): void {
  E.writePointer(buf, offset, L.pointerSize, addr);
}

/** An Int32Array over the whole of `buf` (its length a multiple of 4). */
export function int32View(buf: Buffer): Int32Array {
  return new Int32Array(buf.buffer, buf.byteOffset, buf.length / I);
}

/** Buffer.alloc, rounded to whole ints and never from the shared pool. */
export function allocStruct(size: number): Buffer {
  return Buffer.alloc(Math.ceil(size / 8) * 8);
}

/** Payloads up to this size are copied into a buffer whose address is written once. */
const SCRATCH_BYTES = 4096;
export const MAX_FDS_CONTROL_BYTES = cmsgSpace(C.SCM_MAX_FD * FD_SIZE, CMSG);
const CREDENTIALS_BYTES = CREDENTIALS === null ? 0 : cmsgSpace(CREDENTIALS.maxSize, CMSG);

export class SendBuffers {
  readonly msghdr = allocStruct(L.msghdr.size);
  /** The msghdr's address, for sendmsgAt. */
  readonly address = callAddress(this.msghdr);
  readonly #msg32 = int32View(this.msghdr);
  readonly #iov = allocStruct(L.iovec.size);
  readonly #iov32 = int32View(this.#iov);
  readonly #control = allocStruct(MAX_FDS_CONTROL_BYTES);
  readonly #control32 = int32View(this.#control);
  readonly #scratch = Buffer.alloc(SCRATCH_BYTES);
  readonly #scratchAddress = koffi.address(this.#scratch) as bigint;
  #iovOnScratch = false;
  /** How many fds the control header currently describes, and the msg_controllen that goes with it. */
  #headerFds = -1;
  #headerControlLength = 0;
  /** The caller's payload while its address is in the iovec. */
  #pinned: Buffer | null = null;
  /**
   * A second msghdr for sends that carry SCM_CREDENTIALS: same iovec, its own control buffer,
   * so the one-SCM_RIGHTS layout of the hot path is never disturbed. Built on first use.
   */
  #credentials: { msghdr: Buffer; address: number | bigint; msg32: Int32Array; control: Buffer } | null = null;

  constructor() {
    writeAddress(this.msghdr, MSG_IOV, koffi.address(this.#iov) as bigint);
    this.#msg32[MSG_IOVLEN] = 1;
    // msg_control may point at the buffer even when msg_controllen is 0: the kernel ignores it.
    writeAddress(this.msghdr, MSG_CONTROL, koffi.address(this.#control) as bigint);
    this.#control32[CMSG_LEVEL] = C.SOL_SOCKET;
    this.#control32[CMSG_TYPE] = C.SCM_RIGHTS;
  }

  /** Point the msghdr at `data[offset..]` and, when `fds` is non-empty, one SCM_RIGHTS message. */
  prepare(data: Buffer, offset: number, fds: readonly number[] | null): number | bigint {
    const length = data.length - offset;
    if (length <= SCRATCH_BYTES) {
      const scratch = this.#scratch;
      // A loop beats Buffer#copy's per-call setup for the tiny payloads fd messages usually have.
      if (length <= 16) for (let i = 0; i < length; i++) scratch[i] = data[offset + i];
      else data.copy(scratch, 0, offset);
      if (!this.#iovOnScratch) {
        writeAddress(this.#iov, IOV_BASE, this.#scratchAddress);
        this.#iovOnScratch = true;
      }
    } else {
      const view = offset === 0 ? data : data.subarray(offset);
      this.#pinned = view;
      writeAddress(this.#iov, IOV_BASE, koffi.address(view) as bigint);
      this.#iovOnScratch = false;
    }
    this.#iov32[IOV_LEN] = length;
    const count = fds === null ? 0 : fds.length;
    if (count > 0) {
      const control32 = this.#control32;
      if (count !== this.#headerFds) {
        control32[CMSG_LEN] = cmsgLen(count * FD_SIZE, CMSG);
        this.#headerFds = count;
        this.#headerControlLength = rightsControlLength(count * FD_SIZE, CMSG);
      }
      for (let i = 0; i < count; i++) control32[CMSG_DATA + i] = fds![i];
      this.#msg32[MSG_CONTROLLEN] = this.#headerControlLength;
    } else {
      this.#msg32[MSG_CONTROLLEN] = 0;
    }
    return this.address;
  }

  /**
   * Like `prepare`, plus an SCM_CREDENTIALS message claiming `credentials` (the kernel checks
   * the claim: EPERM unless they are the sender's own or it has CAP_SYS_ADMIN/CAP_SETUID/CAP_SETGID).
   * Only where the platform lets a sender claim credentials (the caller checks).
   */
  prepareWithCredentials(data: Buffer, offset: number, fds: readonly number[] | null, credentials: Credentials): number | bigint {
    const codec = CREDENTIALS!;
    this.prepare(data, offset, null);
    let c = this.#credentials;
    if (c === null) {
      const msghdr = allocStruct(L.msghdr.size);
      const control = allocStruct(CREDENTIALS_BYTES + MAX_FDS_CONTROL_BYTES);
      writeAddress(msghdr, MSG_IOV, koffi.address(this.#iov) as bigint);
      writeAddress(msghdr, MSG_CONTROL, koffi.address(control) as bigint);
      c = this.#credentials = { msghdr, address: callAddress(msghdr), msg32: int32View(msghdr), control };
      c.msg32[MSG_IOVLEN] = 1;
    }
    let length = encodeCredentials(c.control, 0, credentials, CMSG, codec, C);
    if (fds !== null && fds.length > 0) length += encodeRights(c.control, length, fds, CMSG, C);
    c.msg32[MSG_CONTROLLEN] = length;
    return c.address;
  }

  /** Drop the reference to a large payload once the syscall returned. */
  unpin(): void {
    this.#pinned = null;
  }
}

/** Payload buffers up to this size are kept for reuse; larger ones live for one read. */
const RETAIN_BYTES = 1 << 20;
const DEFAULT_RETAIN_BYTES = 1 << 16;

/** Control space for a full SCM_RIGHTS message plus a credentials message and an SCM_PIDFD. */
export const RECV_CONTROL_BYTES =
  MAX_FDS_CONTROL_BYTES + CREDENTIALS_BYTES + (C.SCM_PIDFD === null ? 0 : cmsgSpace(FD_SIZE, CMSG));

export class RecvBuffers {
  readonly msghdr = allocStruct(L.msghdr.size);
  /** The msghdr's address, for recvmsgAt. */
  readonly address = callAddress(this.msghdr);
  readonly #msg32 = int32View(this.msghdr);
  readonly #iov = allocStruct(L.iovec.size);
  readonly #iov32 = int32View(this.#iov);
  readonly control = allocStruct(RECV_CONTROL_BYTES);
  readonly control32 = int32View(this.control);
  /** Where recvmsg writes the payload: `#retained`, or a one-off buffer for a huge maxBytes. */
  data: Buffer = Buffer.alloc(0);
  /** The reusable payload buffer, grown up to RETAIN_BYTES and kept. */
  #retained: Buffer = this.data;

  constructor() {
    writeAddress(this.msghdr, MSG_IOV, koffi.address(this.#iov) as bigint);
    this.#msg32[MSG_IOVLEN] = 1;
    writeAddress(this.msghdr, MSG_CONTROL, koffi.address(this.control) as bigint);
  }

  /** Reset the fields recvmsg writes back, for a read of up to `maxBytes`. */
  prepare(maxBytes: number): number | bigint {
    if (this.data.length < maxBytes || this.data !== this.#retained) {
      if (maxBytes > RETAIN_BYTES) {
        // One huge read must not pin that much memory for the life of the process.
        this.data = Buffer.alloc(maxBytes);
      } else {
        if (this.#retained.length < maxBytes) this.#retained = Buffer.alloc(Math.max(maxBytes, DEFAULT_RETAIN_BYTES));
        this.data = this.#retained;
      }
      writeAddress(this.#iov, IOV_BASE, koffi.address(this.data) as bigint);
    }
    this.#iov32[IOV_LEN] = maxBytes;
    this.#msg32[MSG_CONTROLLEN] = RECV_CONTROL_BYTES;
    this.#msg32[MSG_FLAGS] = 0;
    return this.address;
  }

  /**
   * Like `prepare`, but the payload goes straight into the caller's `into` (all of it may be
   * written). `data` holds it, so it stays referenced while its address is in the iovec.
   */
  prepareInto(into: Buffer): number | bigint {
    this.data = into;
    writeAddress(this.#iov, IOV_BASE, koffi.address(into) as bigint);
    this.#iov32[IOV_LEN] = into.length;
    this.#msg32[MSG_CONTROLLEN] = RECV_CONTROL_BYTES;
    this.#msg32[MSG_FLAGS] = 0;
    return this.address;
  }

  get flags(): number {
    return this.#msg32[MSG_FLAGS];
  }

  get controlLength(): number {
    return this.#msg32[MSG_CONTROLLEN];
  }

  /**
   * The common case without a walk: exactly one SCM_RIGHTS message fills the control data.
   * Returns its fds, or null when the general parser must look.
   */
  singleRights(controlLength: number): number[] | null {
    const count = singleRightsCount(this.control32, controlLength);
    if (count < 0) return null;
    const c = this.control32;
    const fds = new Array<number>(count);
    for (let i = 0; i < count; i++) fds[i] = c[CMSG_DATA + i];
    return fds;
  }

  /** How many fds one SCM_RIGHTS message filling the control data holds (read them with `rightsFd`), or -1 when the general parser must look. */
  singleRightsCount(controlLength: number): number {
    return singleRightsCount(this.control32, controlLength);
  }

  /** The i-th fd of the SCM_RIGHTS message `singleRightsCount` found. */
  rightsFd(i: number): number {
    return this.control32[CMSG_DATA + i];
  }
}

/**
 * For control data received into `control32` (an Int32Array view of a control buffer, starting
 * at its first cmsghdr): how many fds one SCM_RIGHTS message filling all `controlLength` bytes
 * holds, or -1 when the general parser (parseControl) must look. Read them with `rightsFd`.
 */
export function singleRightsCount(control32: Int32Array, controlLength: number): number {
  const c = control32;
  if (c[CMSG_LEVEL] !== SOL_SOCKET || c[CMSG_TYPE] !== SCM_RIGHTS) return -1;
  const len = c[CMSG_LEN];
  if (len < CMSG_DATA * I || (len !== controlLength && ((len + ALIGN_MASK) & ~ALIGN_MASK) !== controlLength)) return -1;
  return (len - CMSG_DATA * I) >> 2;
}

/** The i-th fd of the SCM_RIGHTS message `singleRightsCount` found in `control32`. */
export function rightsFd(control32: Int32Array, i: number): number {
  return control32[CMSG_DATA + i];
}
