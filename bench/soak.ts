/**
 * Soak: pass N descriptors (default 1,000,000) parent -> child through the async API
 * (pipelined send(), for-await recv), checking order and that each arrived, and sample both
 * processes' descriptor counts and RSS at the start (after a warm-up), the middle and the end.
 * Fails (exit 1) if a descriptor count grows or an RSS grows by more than 10%.
 *
 *   npx tsx bench/soak.ts [N]          (or SOAK_N=…)
 *
 * test/soak.test.ts runs a shortened soak through the same `soak()` function.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { adopt, pipe, socketPair, type UnixSocket } from '../src/index.js';
import { denoOwnSocketPair } from '../test/fixtures/child-util.js';

const self = fileURLToPath(import.meta.url);
const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const IN_FLIGHT = 1024;
const RSS_GROWTH_LIMIT = 0.1;

export interface ProcessSample {
  fds: number;
  rss: number;
}

export interface SoakSample {
  label: 'start' | 'middle' | 'end';
  /** Descriptors passed before this sample. */
  at: number;
  parent: ProcessSample;
  child: ProcessSample;
}

export interface SoakResult {
  n: number;
  samples: SoakSample[];
  /** Time spent passing descriptors (sampling left out). */
  seconds: number;
  /** Messages the child received, all in order with exactly one fd. */
  received: number;
  failures: string[];
  ok: boolean;
}

export interface SoakOptions {
  /** Descriptors to pass (default 1,000,000). */
  n?: number;
  /** Where progress lines go (default console.log). */
  log?: (line: string) => void;
}

/**
 * Node flags for both measured processes. V8 starts its young generation small and doubles it
 * (up to 16 MiB per semi-space) as a program runs — a one-time growth of ~25 MiB that would
 * read as a leak. Starting it at that size leaves only growth that does not stop.
 */
const NODE_FLAGS = ['--expose-gc', '--min-semi-space-size=1', '--max-semi-space-size=1', '--import', 'tsx'];

function gc(): void {
  (globalThis as { gc?: () => void }).gc!();
}

/** Descriptors and RSS after a full GC, once V8 has returned the freed pages (it unmaps them in the background). */
async function sampleSelf(): Promise<ProcessSample> {
  gc();
  await new Promise((r) => setTimeout(r, 100));
  gc();
  return { fds: readdirSync('/proc/self/fd').length - 1, rss: process.memoryUsage.rss() };
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const num = (n: number): string => n.toLocaleString('en-US');

type SenderLine = { sample: SoakSample } | { done: { seconds: number; received: number; childExit: number | null; error?: string } };

/**
 * Run a soak: a sender process (the "parent") passes `n` fds to a receiver process it spawns
 * (the "child"). Both are fresh Node processes, so the figures are theirs alone.
 */
export async function soak(options: SoakOptions = {}): Promise<SoakResult> {
  const n = options.n ?? 1_000_000;
  const log = options.log ?? ((line: string) => console.log(line));
  const sender = spawn(process.execPath, [...NODE_FLAGS, self, '--sender', String(n)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: repoRoot,
  });
  const samples: SoakSample[] = [];
  let done: Extract<SenderLine, { done: unknown }>['done'] | undefined;
  log(`soak: ${num(n)} fds parent -> child, async send()/for-await recv(), the default message type, ${num(IN_FLIGHT)} sends in flight`);
  log(`sample          passed   parent fds   parent RSS   child fds    child RSS`);
  let partial = '';
  sender.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    for (let i = partial.indexOf('\n'); i >= 0; i = partial.indexOf('\n')) {
      const line = JSON.parse(partial.slice(0, i)) as SenderLine;
      partial = partial.slice(i + 1);
      if ('sample' in line) {
        const s = line.sample;
        samples.push(s);
        log(`${s.label.padEnd(7)} ${num(s.at).padStart(10)}   ${String(s.parent.fds).padStart(10)}   ${mib(s.parent.rss).padStart(10)}   ${String(s.child.fds).padStart(9)}   ${mib(s.child.rss).padStart(10)}`);
      } else done = line.done;
    }
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    sender.once('error', reject);
    sender.once('close', (c) => resolve(c));
  });

  const failures: string[] = [];
  if (code !== 0) failures.push(`the sender exited with code ${code}`);
  if (!done) failures.push('the sender did not finish');
  else {
    if (done.error) failures.push(`error: ${done.error}`);
    if (done.childExit !== 0) failures.push(`the child exited with code ${done.childExit}`);
    if (done.received !== n) failures.push(`the child received ${num(done.received)} of ${num(n)} in order`);
  }
  const start = samples.find((s) => s.label === 'start');
  if (start) {
    for (const s of samples) {
      if (s === start) continue;
      for (const who of ['parent', 'child'] as const) {
        if (s[who].fds > start[who].fds) failures.push(`${who} fd count grew: ${start[who].fds} at the start, ${s[who].fds} at the ${s.label}`);
        const growth = s[who].rss / start[who].rss - 1;
        if (growth > RSS_GROWTH_LIMIT) failures.push(`${who} RSS grew ${(growth * 100).toFixed(1)}% (limit ${RSS_GROWTH_LIMIT * 100}%): ${mib(start[who].rss)} -> ${mib(s[who].rss)} at the ${s.label}`);
      }
    }
  } else failures.push('no start sample');
  const end = samples.find((s) => s.label === 'end');
  const growth = (who: 'parent' | 'child'): string => (start && end ? `${who} ${((end[who].rss / start[who].rss - 1) * 100).toFixed(1)}%` : `${who} ?`);
  const seconds = done?.seconds ?? NaN;
  log(`${num(n)} fds in ${seconds.toFixed(1)} s (${num(Math.round(n / seconds / 1000))}k fds/s); RSS start -> end: ${growth('parent')}, ${growth('child')}`);
  log(failures.length ? `FAILED:\n  ${failures.join('\n  ')}` : 'OK: every fd arrived in order; descriptor counts flat; RSS growth under 10%');
  return { n, samples, seconds, received: done?.received ?? 0, failures, ok: failures.length === 0 };
}

/** The sender ("parent"): spawn the receiver, pass n fds pipelined, sample at start/middle/end. */
async function sender(n: number): Promise<void> {
  const print = (line: SenderLine): void => {
    process.stdout.write(`${JSON.stringify(line)}\n`);
  };
  // The start sample comes after a warm-up: a quarter of the run, at most 20,000. Deno's RSS keeps
  // growing by ~4 MiB for the first ~20,000 fds and is flat after it (at a tenth, the 50,000-fd
  // test saw 5.7-10.0% from the start, 0.1-1.4% from the middle to the end).
  const warmup = Math.min(20_000, Math.floor(n / 4));
  const middle = Math.floor(n / 2);
  const [parent, childEnd] = socketPair(); // seqpacket, or framed where there is none (the child's adopt(3) agrees)
  const child = spawn(process.execPath, [...NODE_FLAGS, self, '--child'], { stdio: ['ignore', 'inherit', 'inherit', childEnd.fd], cwd: repoRoot });
  childEnd.close();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const [r, w] = pipe(); // the descriptor passed: a pipe write end
  let received = 0;
  let error: string | undefined;

  async function sample(label: SoakSample['label'], at: number): Promise<void> {
    const t = process.hrtime.bigint();
    await parent.send('stat');
    const reply = await parent.recv();
    if (reply === null) throw new Error(`the child exited before the ${label} sample`);
    const c = JSON.parse(reply.data.toString()) as ProcessSample & { received: number };
    received = c.received;
    print({ sample: { label, at, parent: await sampleSelf(), child: { fds: c.fds, rss: c.rss } } });
    sampling += process.hrtime.bigint() - t;
  }

  let sampling = 0n; // time spent sampling or starting, left out of the rate
  const t0 = process.hrtime.bigint();
  try {
    if ((await parent.recv())?.data.toString() !== 'ready') throw new Error('the child did not start');
    sampling += process.hrtime.bigint() - t0; // its start-up is not part of the rate
    const fds = [w];
    let last: Promise<number> = Promise.resolve(0);
    for (let i = 0; i < n; i++) {
      if (i === warmup || i === middle) {
        await last;
        await sample(i === warmup ? 'start' : 'middle', i);
      }
      last = parent.send(String(i), fds);
      if ((i & (IN_FLIGHT - 1)) === IN_FLIGHT - 1) await last;
    }
    await last;
    await sample('end', n);
  } catch (err) {
    error = (err as Error).message;
  }
  const seconds = Number(process.hrtime.bigint() - t0 - sampling) / 1e9;
  parent.close();
  const childExit = await exited;
  w.close();
  r.close();
  print({ done: { seconds, received, childExit, ...(error === undefined ? {} : { error }) } });
}

/** The child: receive on fd 3, check order, close every fd; answer "stat" with its counts. */
async function child(): Promise<void> {
  const sock: UnixSocket = adopt(3);
  // Under Deno, its own socket pair (opened ~500 ms after start) must not count as growth.
  await denoOwnSocketPair();
  await sock.send('ready');
  let expected = 0;
  let bad = 0;
  for await (const msg of sock) {
    const text = msg.data.toString();
    if (text === 'stat') {
      const s = await sampleSelf();
      await sock.send(JSON.stringify({ ...s, received: bad === 0 ? expected : -1 }));
      continue;
    }
    if (Number(text) !== expected || msg.fds.length !== 1) bad++;
    for (const f of msg.fds) f.close();
    expected++;
  }
  sock.close();
  process.exitCode = bad === 0 ? 0 : 2;
}

if (process.argv[1] === self) {
  if (process.argv[2] === '--child') await child();
  else if (process.argv[2] === '--sender') await sender(Number(process.argv[3]));
  else {
    const n = Number(process.argv[2] ?? process.env.SOAK_N ?? 1_000_000);
    if (!Number.isInteger(n) || n < 10) throw new RangeError(`N must be an integer of at least 10, got ${process.argv[2] ?? process.env.SOAK_N}`);
    const result = await soak({ n });
    process.exitCode = result.ok ? 0 : 1;
  }
}
