/**
 * npm run demo — hand a file, a pipe and a listening TCP socket to another process in ONE message.
 *
 *   parent                                     child (examples/fixtures/demo-child.ts)
 *   ──────                                     ─────
 *   open a file, a pipe, a TCP listener
 *   socketPair(); spawn child with one end as fd 3
 *   send('…', [file, pipe write end, listener]) ──► adopt(3).recv(): 3 new fds
 *   close its own copies                           read the file
 *   read the pipe  ◄──────────────────────────────  write a line to the pipe
 *   http.get(listener's port)  ──────────────────►  http.createServer().listen({ fd })
 *   print the response, wait for the child to exit  answer one request, exit 0
 *
 * In your own project, import from 'fdpass' instead of '../src/index.js'.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Fd, fdOf, pipe, socketPair } from '../src/index.js';

const say = (text: string): void => console.log(`parent: ${text}`);

// Never hang CI: if something goes wrong, give up after 20 seconds.
const watchdog = setTimeout(() => {
  console.error('parent: the demo took more than 20 s, giving up');
  process.exit(1);
}, 20_000);
watchdog.unref();

// 1. Three kinds of descriptor: a regular file, an anonymous pipe and a listening TCP socket.
const dir = mkdtempSync(join(tmpdir(), 'fdpass-demo-'));
const filePath = join(dir, 'greeting.txt');
writeFileSync(filePath, 'Hello from a file the parent opened.\n');
const file = new Fd(openSync(filePath, 'r'));
say(`opened file fd ${file.fd} (${filePath})`);

// Node has no API for an anonymous pipe (its stdio 'pipe' is a socketpair): fdpass's pipe() is pipe2(2).
const [pipeRead, pipeWrite] = pipe();
say(`made a pipe: read end fd ${pipeRead.fd}, write end fd ${pipeWrite.fd}`);

const server = net.createServer();
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address() as net.AddressInfo;
say(`listening on 127.0.0.1:${port} (fd ${fdOf(server)})`);

// 2. A connected socket pair; the child inherits one end as its fd 3.
const [parentEnd, childEnd] = socketPair();
const childScript = fileURLToPath(new URL('./fixtures/demo-child.ts', import.meta.url));
const child = spawn(process.execPath, ['--import', 'tsx', childScript], {
  cwd: fileURLToPath(new URL('..', import.meta.url)), // where node_modules/tsx is
  stdio: ['inherit', 'inherit', 'inherit', childEnd.fd],
});
// spawn() has forked and exec'd by the time it returns: the child has its own copy of fd 3,
// so ours must go — otherwise the child would never see end-of-stream from this side.
childEnd.close();
say(`spawned child pid ${child.pid} with a seqpacket socket at its fd 3`);
const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;

// 3. One message, three descriptors. The kernel installs new fds for the same open files in
//    the child; the numbers there will differ from ours.
await parentEnd.send('file, pipe, listener', [file, pipeWrite, server]);
say(`sent fds ${file.fd}, ${pipeWrite.fd}, ${fdOf(server)} in one message`);

// 4. Drop our copies. The file and the pipe's write end now belong to the child (and the pipe
//    reports end-of-file to us only once every write end is closed, ours included). The
//    listener must go too: the child holds an fd to the SAME listening socket, and if we kept
//    ours open, Node would keep accepting on it and steal connections meant for the child.
file.close();
pipeWrite.close();
server.close();
say('closed its own copies of the file, the pipe write end and the listener');

// 5. Read what the child writes into the pipe (net.Socket wraps a pipe fd without blocking).
const fromPipe = new net.Socket({ fd: pipeRead.release(), readable: true, writable: false });
let line = '';
for await (const chunk of fromPipe) line += String(chunk);
say(`read from the pipe: ${JSON.stringify(line.trim())}`);

// 6. Talk to the listener we no longer have: the child answers on it.
say(`GET http://127.0.0.1:${port}/`);
const body = await new Promise<string>((resolve, reject) => {
  http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
    let text = '';
    res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve(text)).on('error', reject);
  }).on('error', reject);
});
say(`HTTP response: ${JSON.stringify(body.trim())}`);

// 7. The child exits on its own after one request; then our end of the pair sees EOF.
const [code, signal] = await exited;
say(`child exited with ${signal ?? `code ${code}`}`);
const eof = await parentEnd.recv();
say(`parentEnd.recv() after the child exited: ${eof}`);
parentEnd.close();
rmSync(dir, { recursive: true, force: true });
if (code !== 0) process.exit(1);
say('done');
