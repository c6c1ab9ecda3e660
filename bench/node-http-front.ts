/**
 * Bench HTTP front: `handoff` — accept (pauseOnConnect) and pass each connection to one of N
 * workers round-robin with send(..., { close: true }); `cluster` — a Node cluster primary with
 * SCHED_RR and N workers. Prints {"port": n} on stdout once every worker is ready; runs until
 * its stdin closes.
 *   node-http-front.ts handoff|cluster <workers>
 */
import cluster from 'node:cluster';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { forkWithSocket, type ChildWithSocket } from '../src/index.js';

const [mode, count = '2'] = process.argv.slice(2);
const workers = Number(count);
const workerPath = fileURLToPath(new URL('./node-http-worker.ts', import.meta.url));
const stop: (() => void)[] = [];

if (mode === 'handoff') {
  const pool: ChildWithSocket[] = [];
  for (let i = 0; i < workers; i++) {
    const w = forkWithSocket(workerPath, ['handoff'], { stdio: ['ignore', 'inherit', 'inherit'] });
    await w.socket.recv();
    pool.push(w);
  }
  let next = 0;
  const front = net.createServer({ pauseOnConnect: true }, (conn) => {
    pool[next++ % workers].socket.send('', [conn], { close: true }).catch(() => conn.destroy());
  });
  front.listen(0, '127.0.0.1', 4096);
  await once(front, 'listening');
  process.stdout.write(JSON.stringify({ port: (front.address() as net.AddressInfo).port }) + '\n');
  stop.push(() => {
    front.close();
    for (const w of pool) w.socket.close();
  });
} else if (mode === 'cluster') {
  cluster.schedulingPolicy = cluster.SCHED_RR;
  cluster.setupPrimary({ exec: workerPath, args: ['cluster', '0'], execArgv: process.execArgv, silent: false });
  let port = 0;
  const listening = Array.from({ length: workers }, () => {
    const w = cluster.fork();
    return once(w, 'listening').then(([address]) => (port = (address as net.AddressInfo).port));
  });
  await Promise.all(listening);
  process.stdout.write(JSON.stringify({ port }) + '\n');
  stop.push(() => {
    for (const w of Object.values(cluster.workers ?? {})) w?.kill();
  });
} else {
  throw new Error(`mode must be handoff or cluster, not ${mode}`);
}
process.stdin.resume();
process.stdin.on('end', () => {
  for (const s of stop) s();
  setTimeout(() => process.exit(0), 200).unref();
});
