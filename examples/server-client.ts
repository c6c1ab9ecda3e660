/**
 * A Unix socket server at a path, a client that connects to it, and descriptors sent over the
 * connection: listen(), connect(), accept(), peerCredentials(), `for await` over messages.
 * Both sides live in this one process to keep the example short; in real use they are
 * different programs (possibly different users: see peerCredentials()).
 * In your own project, import from 'fdpass' instead of '../src/index.js'.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, listen } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'fdpass-server-client-'));
const path = join(dir, 'app.sock');

// The server: a seqpacket socket file, mode 0600 (only this user may connect).
const server = listen(path);
console.log(`server: listening on ${server.path} (${server.type}, mode ${(statSync(path).mode & 0o777).toString(8)})`);

// The client connects (the socket type is detected: seqpacket here), the server accepts.
const client = await connect(path);
const conn = await server.accept();
const peer = conn.peerCredentials();
console.log(`server: accepted a ${conn.type} connection from pid ${peer.pid} (uid ${peer.uid}, gid ${peer.gid})`);

// The client sends three messages: a log file to append to, /dev/null, and a goodbye.
const logPath = join(dir, 'client.log');
const logFd = openSync(logPath, 'a');
const nullFd = openSync('/dev/null', 'r+');
await client.send('append your report here', [logFd]);
await client.send('a bit bucket', [nullFd]);
await client.send('bye'); // no fds: a plain message
closeSync(logFd); // the server holds its own descriptors for these files now
closeSync(nullFd);
client.close(); // the server's `for await` ends after the last message (end of stream)
console.log(`client: sent 3 messages (2 with an fd) and closed its end`);

for await (const msg of conn) {
  const what = msg.fds.map((f) => f.describe()).map((d) => `${d.kind} ${d.path}`).join(', ');
  console.log(`server: got ${JSON.stringify(msg.data.toString())}${what ? ` with ${what}` : ''}`);
  if (msg.data.toString().startsWith('append')) {
    using log = msg.fds[0]; // closed at the end of this block
    // log.fd is a plain descriptor: every fs API takes it. The client opened it O_APPEND.
    writeSync(log.fd, `server pid ${process.pid} was here\n`);
  } else {
    for (const f of msg.fds) f.close(); // every received Fd is ours to close
  }
}
console.log('server: end of stream (the client closed)');
console.log(`client: the log file now says: ${JSON.stringify(readFileSync(logPath, 'utf8').trim())}`);

conn.close();
server.close(); // unlinks the socket file this server created
console.log(`server: closed; ${path} ${existsSync(path) ? 'still exists (unexpected!)' : 'was removed'}`);
rmSync(dir, { recursive: true, force: true });
