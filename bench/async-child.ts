/**
 * Benchmark child: says 'ready' on fd 3, receives one-fd messages there, closes each fd, and at the end replies
 * { received, cpuMicros } (its CPU time from the first message on).
 *   node --import tsx bench/async-child.ts N [message|batch]
 * message: `for await (const msg of socket)` (default); batch: `for await (const batch of socket.batches())`.
 */
import { adopt } from '../src/index.js';

const sock = adopt(3);
// Started: the parent times from here, not from spawn (tsx start-up takes longer than the transfer).
sock.sendSync('ready');
const expected = Number(process.argv[2]);
const mode = process.argv[3] ?? 'message';
let received = 0;
let cpu0: NodeJS.CpuUsage | undefined;
if (mode === 'batch') {
  outer: for await (const batch of sock.batches()) {
    cpu0 ??= process.cpuUsage();
    for (const msg of batch) {
      for (const fd of msg.fds) fd.close();
      if (++received === expected) break outer;
    }
  }
} else {
  for await (const msg of sock) {
    cpu0 ??= process.cpuUsage();
    for (const fd of msg.fds) fd.close();
    if (++received === expected) break;
  }
}
const cpu = process.cpuUsage(cpu0);
sock.sendSync(JSON.stringify({ received, cpuMicros: cpu.user + cpu.system }));
sock.close();
