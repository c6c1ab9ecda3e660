/**
 * One sendmmsg for many queued messages: an array of struct mmsghdr, each with its own iovec,
 * payload slot and SCM_RIGHTS control buffer, built once per thread and reused (see msghdr.ts
 * for why every Buffer whose address is written here stays a field of this object).
 *
 * Used only for SEQPACKET and datagram sockets: each message there is sent whole or not at all,
 * so sendmmsg's count says exactly which sends completed. A stream could take part of one
 * message and go on with the next, which would corrupt it.
 */
import { Buffer } from 'node:buffer';
import { cmsgLen, FD_SIZE } from './cmsg.js';
import { C, CMSG, L, koffi } from './libc.js';
import {
  CMSG_DATA, CMSG_LEN, CMSG_LEVEL, CMSG_TYPE, I, IOV_BASE, IOV_LEN, MAX_FDS_CONTROL_BYTES, MSG_CONTROL, MSG_CONTROLLEN, MSG_IOV, MSG_IOVLEN,
  allocStruct, callAddress, int32View, rightsControlLength, writeAddress,
} from './msghdr.js';

/** Most messages one sendmmsg carries (the kernel takes up to UIO_MAXIOV = 1024). */
export const SEND_VECTOR_SLOTS = 64;
/** Payloads up to this size are copied into their slot; larger ones are sent from the caller's Buffer. */
const SLOT_BYTES = 256;

/** What the vector needs of a queued send: its bytes and the descriptors that go with them. */
export interface VectorMessage {
  readonly data: Buffer;
  readonly fds: readonly number[];
}

export class SendVector {
  readonly #mmsg: Buffer;
  readonly #mmsg32: Int32Array;
  /** The array's address, for sendmmsgAt. */
  readonly address: number | bigint;
  readonly #iovs: Buffer;
  readonly #iov32: Int32Array;
  readonly #controls: Buffer;
  readonly #control32: Int32Array;
  readonly #scratch: Buffer;
  readonly #scratchBase: bigint;
  /** Per slot: how many fds its control header describes, and whether its iovec points at its scratch slot. */
  readonly #headerFds = new Int32Array(SEND_VECTOR_SLOTS).fill(-1);
  readonly #offScratch = new Uint8Array(SEND_VECTOR_SLOTS);
  /** Callers' payloads whose addresses are in an iovec during the call. */
  readonly #pinned: Buffer[] = [];
  readonly #stride32: number;
  readonly #iovStride32: number;
  readonly #controlStride = MAX_FDS_CONTROL_BYTES;

  constructor() {
    const mmsghdr = L.mmsghdr!;
    this.#mmsg = allocStruct(mmsghdr.size * SEND_VECTOR_SLOTS);
    this.#mmsg32 = int32View(this.#mmsg);
    this.address = callAddress(this.#mmsg);
    this.#iovs = allocStruct(L.iovec.size * SEND_VECTOR_SLOTS);
    this.#iov32 = int32View(this.#iovs);
    this.#controls = allocStruct(MAX_FDS_CONTROL_BYTES * SEND_VECTOR_SLOTS);
    this.#control32 = int32View(this.#controls);
    this.#scratch = Buffer.alloc(SLOT_BYTES * SEND_VECTOR_SLOTS);
    this.#stride32 = mmsghdr.size / I;
    this.#iovStride32 = L.iovec.size / I;
    const iovBase = koffi.address(this.#iovs) as bigint;
    const controlBase = koffi.address(this.#controls) as bigint;
    const scratchBase = (this.#scratchBase = koffi.address(this.#scratch) as bigint);
    for (let i = 0; i < SEND_VECTOR_SLOTS; i++) {
      const hdr = i * mmsghdr.size;
      writeAddress(this.#mmsg, hdr + MSG_IOV, iovBase + BigInt(i * L.iovec.size));
      this.#mmsg32[i * this.#stride32 + MSG_IOVLEN] = 1;
      // msg_control may point at the buffer even when msg_controllen is 0: the kernel ignores it.
      writeAddress(this.#mmsg, hdr + MSG_CONTROL, controlBase + BigInt(i * this.#controlStride));
      writeAddress(this.#iovs, i * L.iovec.size + IOV_BASE, scratchBase + BigInt(i * SLOT_BYTES));
      const control = (i * this.#controlStride) / I;
      this.#control32[control + CMSG_LEVEL] = C.SOL_SOCKET;
      this.#control32[control + CMSG_TYPE] = C.SCM_RIGHTS;
    }
  }

  /** Fill the first `count` slots (count ≤ SEND_VECTOR_SLOTS) from `messages`; returns the array's address. */
  prepare(messages: readonly VectorMessage[], count: number): number | bigint {
    const mmsg32 = this.#mmsg32;
    const iov32 = this.#iov32;
    const control32 = this.#control32;
    const scratch = this.#scratch;
    for (let i = 0; i < count; i++) {
      const { data, fds } = messages[i];
      const length = data.length;
      if (length <= SLOT_BYTES) {
        const at = i * SLOT_BYTES;
        // A loop beats Buffer#copy's per-call setup for the tiny payloads fd messages usually have.
        if (length <= 16) for (let k = 0; k < length; k++) scratch[at + k] = data[k];
        else data.copy(scratch, at);
        if (this.#offScratch[i] !== 0) {
          writeAddress(this.#iovs, i * L.iovec.size + IOV_BASE, this.#scratchBase + BigInt(at));
          this.#offScratch[i] = 0;
        }
      } else {
        this.#pinned.push(data);
        writeAddress(this.#iovs, i * L.iovec.size + IOV_BASE, koffi.address(data) as bigint);
        this.#offScratch[i] = 1;
      }
      iov32[i * this.#iovStride32 + IOV_LEN] = length;
      const fdCount = fds.length;
      let controlLength = 0;
      if (fdCount > 0) {
        const control = (i * this.#controlStride) / I;
        if (this.#headerFds[i] !== fdCount) {
          control32[control + CMSG_LEN] = cmsgLen(fdCount * FD_SIZE, CMSG);
          this.#headerFds[i] = fdCount;
        }
        for (let k = 0; k < fdCount; k++) control32[control + CMSG_DATA + k] = fds[k];
        controlLength = rightsControlLength(fdCount * FD_SIZE, CMSG);
      }
      mmsg32[i * this.#stride32 + MSG_CONTROLLEN] = controlLength;
    }
    return this.address;
  }

  /** Drop the references to callers' payloads once the syscall returned. */
  unpin(): void {
    if (this.#pinned.length > 0) this.#pinned.length = 0;
  }
}
