/**
 * Zero-downtime restart: an HTTP server replaces itself twice while a client sends requests
 * without pause — every request on a new connection (no keep-alive), the hard case — and not
 * one request fails or is refused.
 *
 *   launcher ──control (fd 3)──► gen 1: listen(0)
 *            'restart' ──────────► gen 1 spawns gen 2, sends [listener, control] in one message
 *                                  gen 2: toNetServer(listener, server) → 'ready' → gen 1 drains, exits
 *            'restart' ──────────► gen 2 → gen 3 the same way; the port never changes
 *
 * Runs with no arguments. In your own project, import from 'fdpass' instead of '../src/index.js'.
 */
import http from 'node:http';
import { forkWithSocket } from '../src/index.js';

const say = (text: string): void => console.log(`launcher: ${text}`);
const watchdog = setTimeout(() => {
  console.error('launcher: the example took more than 20 s, giving up');
  process.exit(1);
}, 20_000);
watchdog.unref();

const { socket: control } = forkWithSocket(new URL('./fixtures/zdt-server.ts', import.meta.url), ['1']);
async function nextEvent(): Promise<{ listening: number; generation: number; pid: number }> {
  const msg = await control.recv();
  if (!msg) throw new Error('the server closed its control channel');
  return JSON.parse(msg.data.toString());
}
const first = await nextEvent();
const port = first.listening;
say(`generation 1 (pid ${first.pid}) listens on 127.0.0.1:${port}`);

// The client: 4 loops, each sending requests back to back, a new connection every time.
let running = true;
let ok = 0;
const failures: string[] = [];
const byGeneration = new Map<string, number>();
function get(): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, headers: { connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(String(res.headers['x-generation'])) : reject(new Error(`status ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}
const client = Promise.all(Array.from({ length: 4 }, async () => {
  while (running && ok + failures.length < 50_000) {
    try {
      const generation = await get();
      ok++;
      byGeneration.set(generation, (byGeneration.get(generation) ?? 0) + 1);
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
}));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
for (const target of [2, 3]) {
  await sleep(400);
  say(`asking for a restart while the client runs (${ok} requests so far)`);
  control.sendSync('restart');
  const event = await nextEvent();
  if (event.generation !== target || event.listening !== port) throw new Error(`unexpected ${JSON.stringify(event)}`);
  say(`generation ${event.generation} (pid ${event.pid}) now serves on the same port`);
}
await sleep(400);
running = false;
await client;
control.sendSync('stop');
await control.recv(); // end of stream: the last generation closed the channel
control.close();

for (const [generation, n] of [...byGeneration].sort()) say(`generation ${generation} answered ${n} requests`);
say(`${ok} requests answered, ${failures.length} failed${failures.length ? `: ${[...new Set(failures)].join(', ')}` : ''}`);
if (failures.length > 0 || byGeneration.size !== 3) process.exit(1);
