/**
 * Bench child: each message on fd 3 carries one TCP socket. Mode 'wrap' (default): turn it into
 * a net.Socket and destroy that; mode 'close': just close the fd (the transport alone). Replies
 * { received, cpuMicros } (CPU time from the first message on).
 */
import { inheritedSocket, toNetSocket } from '../src/index.js';

const channel = inheritedSocket();
const expected = Number(process.argv[2]);
const wrap = process.argv[3] !== 'close';
channel.sendSync('ready');
let received = 0;
let cpu0: NodeJS.CpuUsage | undefined;
for await (const msg of channel) {
  cpu0 ??= process.cpuUsage();
  for (const fd of msg.fds) {
    if (wrap) toNetSocket(fd).destroy();
    else fd.close();
  }
  if (++received === expected) break;
}
const cpu = process.cpuUsage(cpu0);
channel.sendSync(JSON.stringify({ received, cpuMicros: cpu.user + cpu.system }));
channel.close();
