/**
 * `npm run bench`: fdpass against a C baseline compiled at bench time, raw koffi (the FFI floor),
 * Python and Node's own mechanisms, in one run on this machine, every figure also as a ratio.
 *
 *   sync     one process: send 1 byte + 1 fd, receive it, close the received fd (per round trip)
 *   async    parent -> child process, pipelined send(), the child receives and closes each fd:
 *            per message (for await (const msg of socket)), batched (socket.batches()), and a
 *            raw koffi child (recvmsg until EAGAIN in one uv_poll callback, no library); the
 *            parent passes a plain fd number (a send that must wait duplicates it), and once
 *            more an fdpass Fd (a waiting send holds it: no syscall)
 *   wake-up  what one event-loop wake-up costs (bench/wakeup.ts)
 *   Node     handles into net.Socket vs child.send; the hand-off proxy vs cluster (bench/node-handoff.ts)
 *   streams  USocket vs net.Socket and the native usocket addon when it builds (bench/stream.ts)
 *
 * Each figure is the median of several rounds, the variants interleaved so that load on the
 * machine hits them alike; CPU time per fd (user + system, from getrusage) is shown next to
 * the wall clock, since on a busy machine the wall clock also measures the other load.
 * Environment: BENCH_ROUNDS (default 5), BENCH_SYNC_N (200000), BENCH_ASYNC_N (200000);
 * BENCH_WAKEUP=0, BENCH_NODE=0, BENCH_STREAM=0 skip those parts.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import { Fd, socketPair } from '../src/index.js';
import { FIRST_FD, MSG_CONTROLLEN, RAW_CONTROL_BYTES, RAW_RECV_FLAGS, close, rawReceiver, recvmsg, sendmsg } from './raw-koffi.js';

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

function cSync(exe: string, n: number): number {
  return Number(execFileSync(exe, ['sync', String(n)], { encoding: 'utf8' }).trim());
}

/** Wall ns per fd, and CPU ns per fd of the sending and the receiving process. */
interface Cross {
  ns: number;
  senderCpu: number;
  receiverCpu: number;
}

function cCross(exe: string, n: number): Cross {
  const [ns, senderCpu, receiverCpu] = execFileSync(exe, ['cross', String(n)], { encoding: 'utf8' }).trim().split(' ').map(Number);
  return { ns, senderCpu, receiverCpu };
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

/** One receive msghdr for every round of rawKoffiSync (the rounds run between the RSS readings). */
const rawSyncReceiver = rawReceiver();

/**
 * The FFI floor: the same three syscalls through koffi with hand-built structs, no library, in
 * koffi's cheapest form (pointers passed as integers: no Buffer or BigInt to inspect, and koffi's
 * fast call path). Linux x64/arm64 layouts.
 */
function rawKoffiSync(n: number): number {
  const [a, b] = socketPair('seqpacket');
  // Every Buffer whose address goes into a struct stays referenced from `keep`.
  const keep = { data: Buffer.from('x'), iov: Buffer.alloc(16), ctl: Buffer.alloc(24), msg: Buffer.alloc(56) };
  keep.iov.writeBigUInt64LE(koffi.address(keep.data), 0); keep.iov.writeBigUInt64LE(1n, 8);
  keep.ctl.writeBigUInt64LE(20n, 0); keep.ctl.writeInt32LE(1, 8); keep.ctl.writeInt32LE(1, 12); keep.ctl.writeInt32LE(devNull, 16);
  keep.msg.writeBigUInt64LE(koffi.address(keep.iov), 16); keep.msg.writeBigUInt64LE(1n, 24);
  keep.msg.writeBigUInt64LE(koffi.address(keep.ctl), 32); keep.msg.writeBigUInt64LE(24n, 40);
  const { msgAddress: recvAt, msg32: rmsg32, ctl32: rctl32 } = rawSyncReceiver;
  const sendAt = Number(koffi.address(keep.msg));
  const sfd = a.fd, rfd = b.fd;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    if (sendmsg(sfd, sendAt, 0x4040) < 0) throw new Error('sendmsg'); // MSG_NOSIGNAL | MSG_DONTWAIT
    rmsg32[MSG_CONTROLLEN] = RAW_CONTROL_BYTES;
    if (recvmsg(rfd, recvAt, RAW_RECV_FLAGS) < 0) throw new Error('recvmsg');
    close(rctl32[FIRST_FD]);
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

type Receiver = 'message' | 'batch' | 'raw';

/**
 * Parent -> child with fdpass's pipelined send(); the child receives with `receiver`. The parent
 * passes /dev/null as a number, or with `asFd` as an fdpass Fd.
 */
async function fdpassAsyncCross(n: number, receiver: Receiver, asFd = false): Promise<Cross> {
  const [parent, childEnd] = socketPair('seqpacket');
  const args = receiver === 'raw' ? [here('./raw-child.ts'), String(n)] : [here('./async-child.ts'), String(n), receiver];
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: ['ignore', 'inherit', 'inherit', childEnd.fd] });
  childEnd.close();
  // The child says 'ready' once it has started: its start-up (tsx compiling it) is not timed.
  const ready = await parent.recv();
  if (ready?.data.toString() !== 'ready') throw new Error(`the ${receiver} child did not start`);
  const held = asFd ? Fd.dup(devNull) : null;
  const fds = held === null ? [devNull] : [held];
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let last: Promise<number> = Promise.resolve(0);
  for (let i = 0; i < n; i++) {
    last = parent.send(oneByte, fds);
    if ((i & 1023) === 1023) await last; // at most 1,024 sends waiting in our queue
  }
  await last;
  const reply = await parent.recv();
  const ns = Number(process.hrtime.bigint() - t0) / n;
  const cpu = process.cpuUsage(cpu0);
  const report = JSON.parse(reply?.data.toString() ?? '{}') as { received?: number; cpuMicros?: number };
  if (report.received !== n) throw new Error(`the ${receiver} child received ${report.received} of ${n}`);
  parent.close();
  held?.close();
  await new Promise((r) => child.once('exit', r));
  return { ns, senderCpu: ((cpu.user + cpu.system) * 1000) / n, receiverCpu: (report.cpuMicros! * 1000) / n };
}

const pad = (s: string, n: number): string => s.padEnd(n);
function row(name: string, ns: number, base: number, extra = ''): string {
  const rate = `${(1e9 / ns / 1000).toFixed(0)}k/s`;
  return `| ${pad(name, 52)} | ${ns.toFixed(0).padStart(6)} ns | ${rate.padStart(8)} | ${(ns / base).toFixed(2).padStart(5)}× |${extra}`;
}
const crossExtra = (x: Cross): string => ` ${x.senderCpu.toFixed(0).padStart(5)} + ${x.receiverCpu.toFixed(0).padStart(5)} ns |`;

export interface Target {
  what: string;
  value: string;
  target: string;
  met: boolean;
  note?: string;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fdpass-bench-'));
  const targets: Target[] = [];
  try {
    const exe = compileBaseline(dir);
    const load0 = loadavg()[0];
    const sync = { c: [] as number[], fdpass: [] as number[], raw: [] as number[] };
    // Warm up the JIT before timing.
    fdpassSync(20_000);
    rawKoffiSync(20_000);
    const rss0 = process.memoryUsage().rss;
    for (let r = 0; r < rounds; r++) {
      sync.c.push(cSync(exe, syncN));
      sync.fdpass.push(fdpassSync(syncN));
      sync.raw.push(rawKoffiSync(syncN));
    }
    const rss1 = process.memoryUsage().rss;
    const py = pythonSync(Math.min(syncN, 100_000));

    const receivers: Receiver[] = ['message', 'batch', 'raw'];
    const cross = { c: [] as Cross[], message: [] as Cross[], batch: [] as Cross[], raw: [] as Cross[], held: [] as Cross[] };
    for (let r = 0; r < rounds; r++) {
      cross.c.push(cCross(exe, asyncN));
      for (const receiver of receivers) cross[receiver].push(await fdpassAsyncCross(asyncN, receiver));
      cross.held.push(await fdpassAsyncCross(asyncN, 'message', true));
    }
    const med = (xs: Cross[]): Cross => ({ ns: median(xs.map((x) => x.ns)), senderCpu: median(xs.map((x) => x.senderCpu)), receiverCpu: median(xs.map((x) => x.receiverCpu)) });
    const c = { sync: median(sync.c), cross: med(cross.c) };
    const f = { sync: median(sync.fdpass), raw: median(sync.raw), message: med(cross.message), batch: med(cross.batch), raw_child: med(cross.raw), held: med(cross.held) };

    console.log(`fdpass benchmark — ${new Date().toISOString()} — node ${process.version}, ${process.platform}-${process.arch}, medians of ${rounds} rounds; load average ${load0.toFixed(1)} at the start`);
    console.log('');
    console.log(`| ${pad('one-fd round trip, one process (send + recv + close)', 52)} |    per op |     rate | vs C  |`);
    console.log(`|${'-'.repeat(54)}|-----------|----------|-------|`);
    console.log(row('C baseline (sendmsg/recvmsg)', c.sync, c.sync));
    console.log(row('raw koffi, no library (the FFI floor)', f.raw, c.sync));
    console.log(row('fdpass sendSync/recvSync', f.sync, c.sync));
    if (py !== null) console.log(row('Python socket.send_fds/recv_fds', py, c.sync));
    else console.log(`| ${pad('Python socket.send_fds/recv_fds', 52)} |  skipped: python3 did not run |`);
    console.log('');
    console.log(`| ${pad('parent -> child, one fd per message, pipelined', 52)} |    per fd |     rate | vs C  | CPU/fd sender + receiver |`);
    console.log(`|${'-'.repeat(54)}|-----------|----------|-------|--------------------------|`);
    console.log(row('C baseline (fork, blocking send and receive)', c.cross.ns, c.cross.ns, crossExtra(c.cross)));
    console.log(row('fdpass send() -> for await (const msg of socket)', f.message.ns, c.cross.ns, crossExtra(f.message)));
    console.log(row('fdpass send() -> for await (const batch of batches())', f.batch.ns, c.cross.ns, crossExtra(f.batch)));
    console.log(row('fdpass send() -> raw koffi child (drain per wake-up)', f.raw_child.ns, c.cross.ns, crossExtra(f.raw_child)));
    console.log(row('fdpass send(Fd) -> for await (waiting sends hold it)', f.held.ns, c.cross.ns, crossExtra(f.held)));
    console.log('');
    console.log(`memory: RSS ${(rss0 / 2 ** 20).toFixed(1)} MiB before the sync rounds, ${(rss1 / 2 ** 20).toFixed(1)} MiB after ${rounds * syncN * 2} more round trips`);

    targets.push({ what: 'sync round trip vs raw koffi', value: `${(f.sync / f.raw).toFixed(2)}×`, target: '≤ 1.10×', met: f.sync / f.raw <= 1.1 });
    targets.push({ what: 'sync round trip vs C', value: `${(f.sync / c.sync).toFixed(2)}×`, target: '≤ 1.25×', met: f.sync / c.sync <= 1.25, note: `raw koffi itself: ${(f.raw / c.sync).toFixed(2)}× C` });
    for (const [what, x] of [['async per message', f.message], ['async batched', f.batch]] as const) {
      const ratio = c.cross.ns / x.ns;
      targets.push({
        what: `${what}: rate vs C fork`,
        value: `${ratio.toFixed(2)}×`,
        target: '≥ 0.70×',
        met: ratio >= 0.7,
        note: `CPU per fd ${(x.senderCpu + x.receiverCpu).toFixed(0)} ns vs C ${(c.cross.senderCpu + c.cross.receiverCpu).toFixed(0)} ns; raw koffi child ${(c.cross.ns / f.raw_child.ns).toFixed(2)}×; sending an Fd ${(c.cross.ns / f.held.ns).toFixed(2)}×`,
      });
    }
    targets.push({ what: 'RSS over the sync rounds', value: `${(((rss1 - rss0) / rss0) * 100).toFixed(1)}%`, target: 'flat (≤ +10%)', met: rss1 <= rss0 * 1.1 });

    if (process.env.BENCH_WAKEUP !== '0') {
      const w = await (await import('./wakeup.js')).wakeupBench(Math.min(rounds, 3));
      targets.push({ what: 'one event-loop wake-up over a blocking receive', value: `${w.wakeupNs.toFixed(0)} ns`, target: '(reported)', met: true, note: `async ping-pong ${(w.asyncNs / w.syncNs).toFixed(2)}× the sync one` });
    }
    if (process.env.BENCH_NODE !== '0') targets.push(...(await (await import('./node-handoff.js')).nodeHandoffBench()));
    if (process.env.BENCH_STREAM !== '0') targets.push(...(await (await import('./stream.js')).streamBench()));

    console.log('');
    console.log(`Summary — ratios from this run (load average ${loadavg()[0].toFixed(1)} at the end)`);
    console.log('');
    console.log(`| ${pad('measure', 52)} | ${'value'.padStart(13)} | ${pad('target', 14)} | met |`);
    console.log(`|${'-'.repeat(54)}|---------------|----------------|-----|`);
    for (const t of targets) console.log(`| ${pad(t.what, 52)} | ${t.value.padStart(13)} | ${pad(t.target, 14)} | ${t.met ? 'yes' : 'NO '} |${t.note ? ` ${t.note}` : ''}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    closeSync(devNull);
  }
}

await main();
