/**
 * `npm run bench`: fdpass against a C baseline compiled at bench time, in one run on this machine.
 *
 *   sync   one process: send 1 byte + 1 fd, receive it, close the received fd (per round trip)
 *   async  parent -> child process, pipelined send() / for-await recv(), child closes each fd
 *
 * Each figure is the median of several rounds; ratios are fdpass / C from the same run.
 * Environment: BENCH_ROUNDS (default 5), BENCH_SYNC_N (200000), BENCH_ASYNC_N (200000);
 * BENCH_NODE=0 skips the Node-integration part (bench/node-handoff.ts), BENCH_STREAM=0 the
 * stream part (bench/stream.ts: USocket vs net.Socket and usocket). bench/wakeup.ts adds the
 * cost of one event-loop wake-up (async vs sync ping-pong with a child).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import { socketPair } from '../src/index.js';

const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const syncN = Number(process.env.BENCH_SYNC_N ?? 200_000);
const asyncN = Number(process.env.BENCH_ASYNC_N ?? 200_000);
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function compileBaseline(dir: string): string {
  const exe = join(dir, 'baseline');
  execFileSync('cc', ['-O2', '-o', exe, here('./baseline.c')], { stdio: 'inherit' });
  return exe;
}

function cBaseline(exe: string, mode: 'sync' | 'cross', n: number): number {
  return Number(execFileSync(exe, [mode, String(n)], { encoding: 'utf8' }).trim());
}

const devNull = openSync('/dev/null', 'r');
const oneByte = Buffer.from('x');

/** ns per round trip through the public sync API. */
function fdpassSync(n: number): number {
  const [a, b] = socketPair('seqpacket');
  const fds = [devNull];
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    a.sendSync(oneByte, fds);
    const msg = b.recvSync()!;
    msg.fds[0].close();
  }
  const ns = Number(process.hrtime.bigint() - t0) / n;
  a.close();
  b.close();
  return ns;
}

/** The FFI floor: the same three syscalls through koffi with hand-built structs, no library. */
function rawKoffiSync(n: number): number {
  const lib = koffi.load('libc.so.6');
  const sendmsg = lib.func('intptr_t sendmsg(int, void *, int)');
  const recvmsg = lib.func('intptr_t recvmsg(int, void *, int)');
  const close = lib.func('int close(int)');
  const [a, b] = socketPair('seqpacket');
  // Every Buffer whose address goes into a struct stays referenced from `keep`.
  const keep = { data: Buffer.from('x'), iov: Buffer.alloc(16), ctl: Buffer.alloc(24), msg: Buffer.alloc(56), rdata: Buffer.alloc(65536), riov: Buffer.alloc(16), rctl: Buffer.alloc(1064), rmsg: Buffer.alloc(56) };
  keep.iov.writeBigUInt64LE(koffi.address(keep.data), 0); keep.iov.writeBigUInt64LE(1n, 8);
  keep.ctl.writeBigUInt64LE(20n, 0); keep.ctl.writeInt32LE(1, 8); keep.ctl.writeInt32LE(1, 12); keep.ctl.writeInt32LE(devNull, 16);
  keep.msg.writeBigUInt64LE(koffi.address(keep.iov), 16); keep.msg.writeBigUInt64LE(1n, 24);
  keep.msg.writeBigUInt64LE(koffi.address(keep.ctl), 32); keep.msg.writeBigUInt64LE(24n, 40);
  keep.riov.writeBigUInt64LE(koffi.address(keep.rdata), 0); keep.riov.writeBigUInt64LE(65536n, 8);
  keep.rmsg.writeBigUInt64LE(koffi.address(keep.riov), 16); keep.rmsg.writeBigUInt64LE(1n, 24);
  keep.rmsg.writeBigUInt64LE(koffi.address(keep.rctl), 32);
  const sfd = a.fd, rfd = b.fd;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    if ((sendmsg(sfd, keep.msg, 0x4000) as number) < 0) throw new Error('sendmsg');
    keep.rmsg.writeBigUInt64LE(1064n, 40);
    if ((recvmsg(rfd, keep.rmsg, 0x40000000) as number) < 0) throw new Error('recvmsg');
    close(keep.rctl.readInt32LE(16));
  }
  const ns = Number(process.hrtime.bigint() - t0) / n;
  a.close();
  b.close();
  return ns;
}

/** Python's socket.send_fds/recv_fds, same loop, for context (null when python3 is missing). */
function pythonSync(n: number): number | null {
  const script = `
import os, socket, time
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
f = os.open('/dev/null', os.O_RDONLY)
n = ${n}
t = time.perf_counter_ns()
for _ in range(n):
    socket.send_fds(a, [b'x'], [f])
    _, fds, _, _ = socket.recv_fds(b, 65536, 253)
    os.close(fds[0])
print((time.perf_counter_ns() - t) / n)
`;
  const r = spawnSync('python3', ['-c', script], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : null;
}

/** ns per fd passed parent -> child process with the async API, pipelined. */
async function fdpassAsyncCross(n: number): Promise<number> {
  const [parent, childEnd] = socketPair('seqpacket');
  const child = spawn(process.execPath, ['--import', 'tsx', here('./async-child.ts'), String(n)], {
    stdio: ['ignore', 'inherit', 'inherit', childEnd.fd],
  });
  childEnd.close();
  // Wait until the child is up (it answers nothing before EOF), so startup is not timed.
  await new Promise((r) => child.once('spawn', r));
  await new Promise((r) => setTimeout(r, 300));
  const fds = [devNull];
  const t0 = process.hrtime.bigint();
  let last: Promise<number> = Promise.resolve(0);
  for (let i = 0; i < n; i++) {
    last = parent.send(oneByte, fds);
    if ((i & 1023) === 1023) await last; // at most 1,024 sends waiting in our queue
  }
  await last;
  const reply = await parent.recv();
  const ns = Number(process.hrtime.bigint() - t0) / n;
  if (reply === null || Number(reply.data.toString()) !== n) throw new Error(`child received ${reply?.data.toString()} of ${n}`);
  parent.close();
  await new Promise((r) => child.once('exit', r));
  return ns;
}

function row(name: string, ns: number, cNs: number): string {
  const rate = (1e9 / ns / 1000).toFixed(0);
  return `| ${name.padEnd(44)} | ${ns.toFixed(0).padStart(7)} ns | ${`${rate}k/s`.padStart(8)} | ${(ns / cNs).toFixed(2).padStart(5)}× |`;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fdpass-bench-'));
  try {
    const exe = compileBaseline(dir);
    const c = { sync: [] as number[], cross: [] as number[] };
    const fp = { sync: [] as number[], raw: [] as number[], async: [] as number[] };
    // Warm up the JIT before timing.
    fdpassSync(20_000);
    rawKoffiSync(20_000);
    const rss0 = process.memoryUsage().rss;
    for (let r = 0; r < rounds; r++) {
      // Interleave the variants so machine noise hits them alike.
      c.sync.push(cBaseline(exe, 'sync', syncN));
      fp.sync.push(fdpassSync(syncN));
      fp.raw.push(rawKoffiSync(syncN));
    }
    const rss1 = process.memoryUsage().rss;
    for (let r = 0; r < Math.min(rounds, 3); r++) {
      c.cross.push(cBaseline(exe, 'cross', asyncN));
      fp.async.push(await fdpassAsyncCross(asyncN));
    }
    const py = pythonSync(Math.min(syncN, 100_000));
    const cSync = median(c.sync);
    const cCross = median(c.cross);
    const sync = median(fp.sync);
    const asyncNs = median(fp.async);
    console.log(`fdpass benchmark — ${new Date().toISOString()} — node ${process.version}, ${process.platform}-${process.arch}, medians of ${rounds} rounds`);
    console.log('');
    console.log('| one-fd round trip (send + recv + close)      |   per op |     rate | vs C  |');
    console.log('|----------------------------------------------|-----------|----------|-------|');
    console.log(row('C baseline, one process (sendmsg/recvmsg)', cSync, cSync));
    console.log(row('fdpass sendSync/recvSync, one process', sync, cSync));
    console.log(row('raw koffi, no library (the FFI floor)', median(fp.raw), cSync));
    if (py !== null) console.log(row('Python socket.send_fds/recv_fds', py, cSync));
    console.log(row('C baseline, parent -> child (fork)', cCross, cCross));
    console.log(row('fdpass send()/for-await, parent -> child', asyncNs, cCross));
    console.log('');
    const syncRatio = sync / cSync;
    const asyncRate = 1e9 / asyncNs;
    console.log(`sync: ${syncRatio.toFixed(2)}× C (target ≤ 1.20×) — ${syncRatio <= 1.2 ? 'met' : 'NOT met'}`);
    console.log(`async cross-process: ${(asyncRate / 1000).toFixed(0)}k fds/s (target ≥ 120k) — ${asyncRate >= 120_000 ? 'met' : 'NOT met'}`);
    console.log(`memory: RSS ${(rss0 / 2 ** 20).toFixed(1)} MiB before the sync rounds, ${(rss1 / 2 ** 20).toFixed(1)} MiB after ${rounds * syncN * 2} more round trips`);
    await (await import('./wakeup.js')).wakeupBench(Math.min(rounds, 3));
    if (process.env.BENCH_NODE !== '0') await (await import('./node-handoff.js')).nodeHandoffBench();
    if (process.env.BENCH_STREAM !== '0') await (await import('./stream.js')).streamBench();
  } finally {
    rmSync(dir, { recursive: true, force: true });
    closeSync(devNull);
  }
}

await main();
