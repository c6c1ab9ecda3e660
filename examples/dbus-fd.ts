/**
 * D-Bus with file descriptors (UNIX_FD), through a real dbus-daemon, on fdpass's USocket.
 *
 *   npx tsx examples/dbus-fd.ts        (needs `dbus-daemon`: apt-get install dbus-daemon)
 *
 * Starts a private bus, then two connections: a service that owns org.fdpass.Example and reads
 * any file handed to its ReadFile(h) method, and a client that opens a file and passes the open
 * descriptor in a method call. The fd goes client → dbus-daemon → service: the daemon receives
 * it over SCM_RIGHTS and sends it on. The service reads a file it never opened by name.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPrivateBus } from './fixtures/dbus-bus.js';
import { Connection } from './fixtures/dbus-wire.js';

const dir = mkdtempSync(join(tmpdir(), 'fdpass-dbus-'));
const bus = await startPrivateBus(dir);
let service: Connection | undefined;
let client: Connection | undefined;
try {
  console.log(`private bus at ${bus.pathAddress}`);

  service = await Connection.open(bus.pathAddress);
  if (!(await service.requestName('org.fdpass.Example'))) throw new Error('could not own org.fdpass.Example');
  service.handle('org.fdpass.Example', 'ReadFile', (call) => {
    const fd = call.fds[call.body[0] as number];
    try {
      const buf = Buffer.alloc(4096);
      const n = readSync(fd, buf, 0, buf.length, 0);
      console.log(`service ${service!.uniqueName}: got fd ${fd} from ${call.sender}, read ${n} bytes`);
      return { signature: 's', body: [buf.toString('utf8', 0, n)] };
    } finally {
      for (const f of call.fds) closeSync(f);
    }
  });

  // The client connects by the abstract name: the same bus, another socket.
  client = await Connection.open(bus.abstractAddress);
  const secret = join(dir, 'secret.txt');
  const content = `written by pid ${process.pid} at ${new Date().toISOString()}\n`;
  writeFileSync(secret, content);
  const fd = openSync(secret, 'r');
  let reply;
  try {
    reply = await client.call({
      destination: 'org.fdpass.Example', path: '/org/fdpass/Example', interface: 'org.fdpass.Example', member: 'ReadFile',
      signature: 'h', body: [0], fds: [fd],
    });
  } finally {
    closeSync(fd); // the reply came, so the message (and the fd) went long ago
  }
  console.log(`client ${client.uniqueName}: ReadFile returned ${JSON.stringify(reply.body[0])}`);
  if (reply.body[0] !== content) throw new Error('the service read something else');
} finally {
  client?.close();
  service?.close();
  await bus.stop();
  rmSync(dir, { recursive: true, force: true });
}
