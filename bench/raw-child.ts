/**
 * Benchmark child, no library: the receive loop with hand-built structs through koffi. One
 * koffi.node.poll (libuv uv_poll) readiness callback drains every queued message (recvmsg
 * until EAGAIN) and closes each fd — the floor for an event-loop receiver through koffi.
 * Says 'ready' first, then replies { received, cpuMicros }, both with a raw sendmsg. Linux x64/arm64 layouts (bench only).
 *   node --import tsx bench/raw-child.ts N
 */
import koffi from 'koffi';
import { FIRST_FD, MSG_CONTROLLEN, RAW_CONTROL_BYTES, RAW_RECV_FLAGS, close, rawReceiver, recvmsg, sendmsg } from './raw-koffi.js';

const n = Number(process.argv[2]);
// Every Buffer whose address goes into a struct stays referenced from `keep`.
const keep = { reply: Buffer.alloc(64), siov: Buffer.alloc(16), smsg: Buffer.alloc(56) };
const { msgAddress, msg32, ctl32 } = rawReceiver();
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
    msg32[MSG_CONTROLLEN] = RAW_CONTROL_BYTES;
    const got = recvmsg(3, msgAddress, RAW_RECV_FLAGS);
    if (got < 0) break; // EAGAIN: wait for the next readiness event
    if (msg32[MSG_CONTROLLEN] > 0) close(ctl32[FIRST_FD]);
    if (++received === n) {
      handle.close();
      reply();
      return;
    }
  }
});
