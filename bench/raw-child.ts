/**
 * Benchmark child, no library: the receive loop with hand-built structs through koffi. One
 * koffi.node.poll (libuv uv_poll) readiness callback drains every queued message (recvmsg
 * until EAGAIN) and closes each fd — the floor for an event-loop receiver through koffi.
 * Says 'ready' first, then replies { received, cpuMicros }, both with a raw sendmsg. Linux x64/arm64 layouts (bench only).
 *   node --import tsx bench/raw-child.ts N
 */
import koffi from 'koffi';

const n = Number(process.argv[2]);
const lib = koffi.load('libc.so.6');
const recvmsg = lib.func('intptr_t recvmsg(int, intptr_t, int)') as unknown as (fd: number, msg: number, flags: number) => number;
const sendmsg = lib.func('intptr_t sendmsg(int, intptr_t, int)') as unknown as (fd: number, msg: number, flags: number) => number;
const close = lib.func('int close(int)') as unknown as (fd: number) => number;
const MSG_DONTWAIT = 0x40;
const MSG_CMSG_CLOEXEC = 0x40000000;
// Every Buffer whose address goes into a struct stays referenced from `keep`.
const keep = { data: Buffer.alloc(65536), iov: Buffer.alloc(16), ctl: Buffer.alloc(1064), msg: Buffer.alloc(56), reply: Buffer.alloc(64), siov: Buffer.alloc(16), smsg: Buffer.alloc(56) };
keep.iov.writeBigUInt64LE(koffi.address(keep.data), 0);
keep.iov.writeBigUInt64LE(65536n, 8);
keep.msg.writeBigUInt64LE(koffi.address(keep.iov), 16);
keep.msg.writeBigUInt64LE(1n, 24);
keep.msg.writeBigUInt64LE(koffi.address(keep.ctl), 32);
const msg32 = new Int32Array(keep.msg.buffer, keep.msg.byteOffset, 14);
const ctl32 = new Int32Array(keep.ctl.buffer, keep.ctl.byteOffset, 266);
const msgAddress = Number(koffi.address(keep.msg));
let received = 0;
let cpu0: NodeJS.CpuUsage | undefined;

/** One message on fd 3 through a raw sendmsg. */
function say(text: Buffer): void {
  text.copy(keep.reply);
  keep.siov.writeBigUInt64LE(koffi.address(keep.reply), 0);
  keep.siov.writeBigUInt64LE(BigInt(text.length), 8);
  keep.smsg.writeBigUInt64LE(koffi.address(keep.siov), 16);
  keep.smsg.writeBigUInt64LE(1n, 24);
  if (sendmsg(3, Number(koffi.address(keep.smsg)), 0) < 0) throw new Error(`sendmsg errno ${koffi.errno()}`);
}

function reply(): void {
  const cpu = process.cpuUsage(cpu0);
  say(Buffer.from(JSON.stringify({ received, cpuMicros: cpu.user + cpu.system })));
}

// Started: the parent times from here, not from spawn (tsx start-up takes longer than the transfer).
say(Buffer.from('ready'));

const poll = (koffi as unknown as { node: { poll(fd: number, o: { readable: boolean }, cb: () => void): { close(): void } } }).node.poll;
const handle = poll(3, { readable: true }, () => {
  cpu0 ??= process.cpuUsage();
  for (;;) {
    msg32[10] = 1064; // msg_controllen
    const got = recvmsg(3, msgAddress, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (got < 0) break; // EAGAIN: wait for the next readiness event
    if (msg32[10] > 0) close(ctl32[4]);
    if (++received === n) {
      handle.close();
      reply();
      return;
    }
  }
});
