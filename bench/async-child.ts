/** Benchmark child: receives one-fd messages on fd 3, closes each fd, reports the count at EOF. */
import { adopt } from '../src/index.js';

const sock = adopt(3);
const expected = Number(process.argv[2]);
let received = 0;
for await (const msg of sock) {
  for (const fd of msg.fds) fd.close();
  if (++received === expected) break;
}
sock.sendSync(String(received));
sock.close();
