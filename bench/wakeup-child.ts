/** Benchmark child: echoes every message on fd 3 back (sync or async API), until end of stream. */
import { adopt } from '../src/index.js';

const sock = adopt(3);
if (process.argv[2] === 'async') {
  for await (const msg of sock) await sock.send(msg.data, msg.fds);
} else {
  for (let msg = sock.recvSync(); msg !== null; msg = sock.recvSync()) sock.sendSync(msg.data, msg.fds);
}
sock.close();
