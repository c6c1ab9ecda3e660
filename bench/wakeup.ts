/**
 * What a wake-up costs: ping-pong of a 1-byte message between this process and a child, one
 * message in flight. With the sync API both sides block in the kernel; with the async API every
 * message is one readiness event, delivered through the event loop (src/readiness.ts), on each
 * side. Half the difference per round trip is the cost of one wake-up over a blocking receive.
 * Run alone: `npx tsx bench/wakeup.ts` (BENCH_WAKEUP_N, default 20000); `FDPASS_POLL=thread` for
 * the backend Bun uses, or under Bun itself: `bun bench/wakeup.ts`.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { socketPair } from '../src/index.js';

const n = Number(process.env.BENCH_WAKEUP_N ?? 20_000);
const child = fileURLToPath(new URL('./wakeup-child.ts', import.meta.url));

/** ns per round trip, the child echoing with `mode` and this side using the same API. */
async function pingPong(mode: 'sync' | 'async', count: number): Promise<number> {
  const [ours, theirs] = socketPair('seqpacket');
  // Bun runs TypeScript itself; Node needs tsx's loader.
  const loader = process.versions.bun === undefined ? ['--import', 'tsx'] : [];
  const proc = spawn(process.execPath, [...loader, child, mode], { stdio: ['ignore', 'inherit', 'inherit', theirs.fd] });
  theirs.close();
  const byte = Buffer.from('x');
  // Warm-up round trips (child startup, JIT) are not timed.
  for (let i = 0; i < 2000; i++) {
    ours.sendSync(byte);
    ours.recvSync();
  }
  const t0 = process.hrtime.bigint();
  if (mode === 'sync') {
    for (let i = 0; i < count; i++) {
      ours.sendSync(byte);
      ours.recvSync();
    }
  } else {
    for (let i = 0; i < count; i++) {
      await ours.send(byte);
      await ours.recv();
    }
  }
  const ns = Number(process.hrtime.bigint() - t0) / count;
  ours.close();
  await new Promise((r) => proc.once('exit', r));
  return ns;
}

export async function wakeupBench(rounds: number): Promise<{ syncNs: number; asyncNs: number; wakeupNs: number }> {
  const sync: number[] = [];
  const asyncNs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    sync.push(await pingPong('sync', n));
    asyncNs.push(await pingPong('async', n));
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const s = median(sync);
  const a = median(asyncNs);
  console.log('');
  console.log('| ping-pong with a child, 1 message in flight     | per round trip |');
  console.log('|-------------------------------------------------|----------------|');
  console.log(`| sendSync/recvSync on both sides (blocking)      | ${s.toFixed(0).padStart(11)} ns |`);
  console.log(`| send()/await recv() on both sides (event loop)  | ${a.toFixed(0).padStart(11)} ns |`);
  const runtime = process.versions.bun === undefined ? `node ${process.version}` : `bun ${process.versions.bun}`;
  console.log(`wake-up cost: ${((a - s) / 2).toFixed(0)} ns per readiness event over a blocking receive (${runtime}, medians of ${rounds})`);
  return { syncNs: s, asyncNs: a, wakeupNs: (a - s) / 2 };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await wakeupBench(Number(process.env.BENCH_ROUNDS ?? 3));
