/**
 * Bench child for Node's own handle passing: child.send(msg, socket) arrives as a net.Socket;
 * destroy it. Replies { received, cpuMicros } (CPU time from the first handle on).
 */
import type { Socket } from 'node:net';

const expected = Number(process.argv[2]);
let received = 0;
let cpu0: NodeJS.CpuUsage | undefined;
process.on('message', (_msg: unknown, socket: Socket | undefined) => {
  cpu0 ??= process.cpuUsage();
  socket?.destroy();
  if (++received === expected) {
    const cpu = process.cpuUsage(cpu0);
    process.send!(JSON.stringify({ received, cpuMicros: cpu.user + cpu.system }), () => process.disconnect());
  }
});
process.send!('ready');
