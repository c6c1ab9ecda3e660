/**
 * Bench HTTP worker, the same tiny handler in both set-ups:
 *   mode 'handoff' — connections arrive over fd 3 (fdpass) and are served with emit('connection')
 *   mode 'cluster' — a cluster worker listening on the port the primary shares (round-robin)
 */
import http from 'node:http';
import { inheritedSocket, toNetSocket } from '../src/index.js';

const handler: http.RequestListener = (_req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end('hello\n');
};
const server = http.createServer(handler);
const mode = process.argv[2];
if (mode === 'handoff') {
  const front = inheritedSocket();
  front.sendSync('ready');
  for await (const msg of front) for (const fd of msg.fds) server.emit('connection', toNetSocket(fd, { noDelay: true }));
  server.closeAllConnections();
  process.exit(0);
} else {
  server.listen(Number(process.argv[3] ?? 0), '127.0.0.1');
}
