/**
 * Per-socket msghdr/iovec/control buffers for sendmsg and recvmsg, built once.
 *
 * The kernel follows raw addresses stored inside these Buffers, and a raw address does not
 * keep its Buffer alive: every Buffer whose address is written here is a field of this
 * object (or `pinned` for the duration of one call), so it lives as long as the struct.
 */
import { cmsgSpace, encodeRights, FD_SIZE, readUint, writeUint } from './cmsg.js';
import { C, L, koffi } from './libc.js';

const addressOf = (buf: Buffer): bigint => koffi.address(buf);

function writeAddress(buf: Buffer, offset: number, addr: bigint): void {
  if (L.pointerSize === 8) buf.writeBigUInt64LE(addr, offset);
  else buf.writeUInt32LE(Number(addr), offset);
}

function writePointer(buf: Buffer, offset: number, target: Buffer | null): void {
  writeAddress(buf, offset, target === null ? 0n : addressOf(target));
}

/** Payloads up to this size are copied into a buffer whose address is written once. */
const SCRATCH_BYTES = 4096;
export const MAX_FDS_CONTROL_BYTES = cmsgSpace(C.SCM_MAX_FD * FD_SIZE, L.cmsghdr);

export class SendBuffers {
  readonly msghdr = Buffer.alloc(L.msghdr.size);
  readonly #iov = Buffer.alloc(L.iovec.size);
  readonly #control = Buffer.alloc(MAX_FDS_CONTROL_BYTES);
  readonly #scratch = Buffer.alloc(SCRATCH_BYTES);
  readonly #scratchAddress = addressOf(this.#scratch);
  /** The caller's payload while its address is in the iovec. */
  #pinned: Buffer | null = null;

  constructor() {
    writePointer(this.msghdr, L.msghdr.iov, this.#iov);
    writeUint(this.msghdr, L.msghdr.iovlen, L.msghdr.iovlenSize, 1);
  }

  /** Point the msghdr at `data[offset..]` and (when `fds` is non-empty) an SCM_RIGHTS message. */
  prepare(data: Buffer, offset: number, fds: readonly number[] | null): Buffer {
    const length = data.length - offset;
    if (length <= SCRATCH_BYTES) {
      data.copy(this.#scratch, 0, offset);
      writeAddress(this.#iov, L.iovec.base, this.#scratchAddress);
      this.#pinned = null;
    } else {
      const view = data.subarray(offset);
      this.#pinned = view;
      writeAddress(this.#iov, L.iovec.base, addressOf(view));
    }
    writeUint(this.#iov, L.iovec.len, L.iovec.lenSize, length);
    if (fds !== null && fds.length > 0) {
      const space = encodeRights(this.#control, 0, fds, L.cmsghdr, C);
      writePointer(this.msghdr, L.msghdr.control, this.#control);
      writeUint(this.msghdr, L.msghdr.controllen, L.msghdr.controllenSize, space);
    } else {
      writePointer(this.msghdr, L.msghdr.control, null);
      writeUint(this.msghdr, L.msghdr.controllen, L.msghdr.controllenSize, 0);
    }
    return this.msghdr;
  }

  /** Drop the reference to a large payload once the syscall returned. */
  unpin(): void {
    this.#pinned = null;
  }
}

/** Control space for a full SCM_RIGHTS message plus SCM_CREDENTIALS and an SCM_PIDFD. */
const RECV_CONTROL_BYTES = MAX_FDS_CONTROL_BYTES + cmsgSpace(L.ucred.size, L.cmsghdr) + cmsgSpace(FD_SIZE, L.cmsghdr);

export class RecvBuffers {
  readonly msghdr = Buffer.alloc(L.msghdr.size);
  readonly #iov = Buffer.alloc(L.iovec.size);
  readonly control = Buffer.alloc(RECV_CONTROL_BYTES);
  data: Buffer = Buffer.alloc(0);

  constructor() {
    writePointer(this.msghdr, L.msghdr.iov, this.#iov);
    writeUint(this.msghdr, L.msghdr.iovlen, L.msghdr.iovlenSize, 1);
    writePointer(this.msghdr, L.msghdr.control, this.control);
  }

  /** Reset the fields recvmsg writes back, for a read of up to `maxBytes`. */
  prepare(maxBytes: number): Buffer {
    if (this.data.length < maxBytes) {
      this.data = Buffer.alloc(maxBytes);
      writePointer(this.#iov, L.iovec.base, this.data);
    }
    writeUint(this.#iov, L.iovec.len, L.iovec.lenSize, maxBytes);
    writeUint(this.msghdr, L.msghdr.controllen, L.msghdr.controllenSize, RECV_CONTROL_BYTES);
    this.msghdr.writeInt32LE(0, L.msghdr.flags);
    return this.msghdr;
  }

  get flags(): number {
    return this.msghdr.readInt32LE(L.msghdr.flags);
  }

  get controlLength(): number {
    return readUint(this.msghdr, L.msghdr.controllen, L.msghdr.controllenSize);
  }
}
