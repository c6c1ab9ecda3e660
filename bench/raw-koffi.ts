/**
 * What the benchmarks' no-library loops share: libc's sendmsg/recvmsg/close through koffi in its
 * cheapest form (pointers passed as integers), and a receive msghdr built by hand. Linux
 * x64/arm64 layouts (bench only). The loops themselves stay in each benchmark, inline.
 */
import koffi from 'koffi';

export const lib = koffi.load('libc.so.6');
export const sendmsg = lib.func('intptr_t sendmsg(int, intptr_t, int)') as unknown as (fd: number, msg: number, flags: number) => number;
export const recvmsg = lib.func('intptr_t recvmsg(int, intptr_t, int)') as unknown as (fd: number, msg: number, flags: number) => number;
export const close = lib.func('int close(int)') as unknown as (fd: number) => number;

/** MSG_DONTWAIT | MSG_CMSG_CLOEXEC */
export const RAW_RECV_FLAGS = 0x40000040;
/** The receive control buffer's size; msg32[MSG_CONTROLLEN] must be reset to it before each recvmsg. */
export const RAW_CONTROL_BYTES = 1064;
/** msg_controllen as an Int32Array index of the msghdr. */
export const MSG_CONTROLLEN = 10;
/** The first fd of an SCM_RIGHTS message as an Int32Array index of the control buffer. */
export const FIRST_FD = 4;

// Every Buffer whose address goes into a struct stays referenced from here for the process's life.
const held: Buffer[] = [];

/**
 * A msghdr for recvmsg with a 64 KiB payload buffer and room for 253 fds: its address, and
 * Int32Array views of it and of its control buffer.
 */
export function rawReceiver(): { msgAddress: number; msg32: Int32Array; ctl32: Int32Array } {
  const data = Buffer.alloc(65536);
  const iov = Buffer.alloc(16);
  const ctl = Buffer.alloc(RAW_CONTROL_BYTES);
  const msg = Buffer.alloc(56);
  held.push(data, iov, ctl, msg);
  iov.writeBigUInt64LE(koffi.address(data) as bigint, 0);
  iov.writeBigUInt64LE(65536n, 8);
  msg.writeBigUInt64LE(koffi.address(iov) as bigint, 16);
  msg.writeBigUInt64LE(1n, 24);
  msg.writeBigUInt64LE(koffi.address(ctl) as bigint, 32);
  return {
    msgAddress: Number(koffi.address(msg)),
    msg32: new Int32Array(msg.buffer, msg.byteOffset, 14),
    ctl32: new Int32Array(ctl.buffer, ctl.byteOffset, RAW_CONTROL_BYTES / 4),
  };
}
