/**
 * A tsx script hands a live TCP connection to a Python process, which answers on it.
 *
 * The Node side accepts a TCP connection, then sends that socket to Python over a Unix
 * socket pair with fdpass; Python (standard library only: socket.recv_fds, 3.9+) picks it
 * up, reads the request and replies on the same connection; the TCP client never knows it
 * changed hands. This is the shape of a hand-off proxy or a zero-downtime restart.
 * In your own project, import from 'fdpass' instead of '../src/index.js'.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { socketPair } from '../src/index.js';

const PYTHON = `
import os, socket
ctl = socket.socket(fileno=3)                        # the socket pair end Node put at fd 3
note, fds, _, _ = socket.recv_fds(ctl, 1024, 1)      # one message: bytes + descriptors
conn = socket.socket(fileno=fds[0])                  # family/type read from the fd itself
conn.setblocking(True)  # Node made it non-blocking, and that flag travels with the socket
request = conn.recv(1024).decode()
conn.sendall(f"python pid {os.getpid()} answers {request!r}\\n".encode())
conn.close()
ctl.send(f"done: {note.decode()!r} handled".encode())
`;

const version = spawnSync('python3', ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' });
const [major = 0, minor = 0] = (version.stdout ?? '').trim().split('.').map(Number);
if (version.error || version.status !== 0 || major < 3 || (major === 3 && minor < 9)) {
  console.error('python-peer: this example needs python3 >= 3.9 on PATH (for socket.recv_fds); ' +
    (version.error ? `running python3 failed: ${version.error.message}` : `found Python ${version.stdout.trim() || '?'}`));
  process.exit(1);
}

// A TCP server and a client of it. pauseOnConnect: Node must not start reading the accepted
// socket — the request bytes are for Python.
const tcp = net.createServer({ pauseOnConnect: true }).listen(0, '127.0.0.1');
await once(tcp, 'listening');
const { port } = tcp.address() as net.AddressInfo;
const client = net.connect(port, '127.0.0.1');
const [accepted] = (await once(tcp, 'connection')) as [net.Socket];
tcp.close();
console.log(`node:   accepted a TCP connection on 127.0.0.1:${port}`);

// Python gets one end of a socket pair as its fd 3. A datagram pair: one recv_fds() call is one
// message on every platform (fdpass's own default is seqpacket, or its 'framed' format on macOS).
const [ours, theirs] = socketPair('dgram');
const python = spawn('python3', ['-c', PYTHON], { stdio: ['ignore', 'inherit', 'inherit', theirs.fd] });
theirs.close();

await ours.send('the TCP connection', [accepted]); // any FdLike: here a net.Socket
accepted.destroy(); // close Node's copy only (no shutdown): Python's copy keeps the connection
console.log(`node:   handed it to python pid ${python.pid}`);

client.setEncoding('utf8').write('hello?');
const [reply] = (await once(client, 'data')) as [string];
console.log(`client: ${reply.trim()}`);
client.destroy();

const report = await ours.recv();
console.log(`python: ${report?.data.toString()}`);
const [code] = (await once(python, 'exit')) as [number | null];
ours.close();
console.log(`node:   python exited with code ${code}`);
process.exitCode = code === 0 ? 0 : 1;
