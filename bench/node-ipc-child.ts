/** Bench child for Node's own handle passing: child.send(msg, socket) arrives as a net.Socket; destroy it. */
import type { Socket } from 'node:net';

const expected = Number(process.argv[2]);
let received = 0;
process.on('message', (_msg: unknown, socket: Socket | undefined) => {
  socket?.destroy();
  if (++received === expected) process.send!(String(received), () => process.disconnect());
});
process.send!('ready');
