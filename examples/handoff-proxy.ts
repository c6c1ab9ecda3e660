/**
 * Hand-off proxy: ONE front process accepts TCP connections and passes each accepted socket
 * to one of N worker processes over a Unix socket. The workers serve HTTP with a plain
 * http.Server that never listens (`server.emit('connection', socket)`); the clients talk to
 * the worker directly — the front never touches a byte.
 *
 *   client ──TCP──► front (accept, pauseOnConnect) ──send('', [conn], { close: true })──► worker
 *          ◄────────────────────────── HTTP response, on the same connection ──────────────┘
 *
 * Runs with no arguments: starts 3 workers, makes 200 requests (20 at a time, each on a new
 * connection), prints which worker answered how many, shuts down.
 * In your own project, import from 'fdpass' instead of '../src/index.js'.
 */
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { forkWithSocket, type ChildWithSocket } from '../src/index.js';

const WORKERS = 3;
const REQUESTS = 200;
const CONCURRENCY = 20;
const say = (text: string): void => console.log(`front: ${text}`);

const watchdog = setTimeout(() => {
  console.error('front: the example took more than 20 s, giving up');
  process.exit(1);
}, 20_000);
watchdog.unref();

// 1. Workers, each with a socket pair end at its fd 3.
const workers: ChildWithSocket[] = [];
for (let i = 0; i < WORKERS; i++) {
  const w = forkWithSocket(new URL('./fixtures/handoff-worker.ts', import.meta.url), [`worker-${i}`]);
  const hello = JSON.parse((await w.socket.recv())!.data.toString()) as { ready: string; pid: number };
  say(`${hello.ready} is ready (pid ${hello.pid})`);
  workers.push(w);
}

// 2. The front: accept without reading (pauseOnConnect), hand each connection to the next worker.
//    close: true — the front's copy is destroyed once the kernel has the message.
let next = 0;
const front = net.createServer({ pauseOnConnect: true }, (conn) => {
  const worker = workers[next++ % workers.length];
  worker.socket.send('', [conn], { close: true }).catch((err: Error) => {
    console.error(`front: hand-off failed (${err.message}); dropping the connection`);
    conn.destroy();
  });
});
front.listen(0, '127.0.0.1');
await once(front, 'listening');
const { port } = front.address() as net.AddressInfo;
say(`listening on 127.0.0.1:${port}, handing connections to ${WORKERS} workers`);

// 3. A small load: REQUESTS requests, CONCURRENCY at a time, each on its own connection.
function get(): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/hello', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.headers['x-worker'])));
    }).on('error', reject);
  });
}
const counts = new Map<string, number>();
let started = 0;
let failed = 0;
await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
  while (started < REQUESTS) {
    started++;
    try {
      const who = await get();
      counts.set(who, (counts.get(who) ?? 0) + 1);
    } catch {
      failed++;
    }
  }
}));
for (const [who, n] of [...counts].sort()) say(`${who} answered ${n} requests`);
say(`${REQUESTS - failed} of ${REQUESTS} requests answered, ${failed} failed`);

// 4. Shut down: stop accepting, close each channel (the worker sees end of stream and exits).
front.close();
for (const w of workers) w.socket.close();
const exits = await Promise.all(workers.map((w) => w.child.exitCode !== null ? [w.child.exitCode] : once(w.child, 'exit')));
say(`workers exited with codes ${exits.map((e) => e[0]).join(', ')}`);
if (failed > 0 || counts.size < 2 || exits.some((e) => e[0] !== 0)) process.exit(1);
