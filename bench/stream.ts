/**
 * Stream benchmark (part of `npm run bench`; alone: `npx tsx bench/stream.ts`): throughput of
 * fdpass's USocket parent → child process over a Unix stream socketpair, against net.Socket on
 * the same kind of socket (bytes only) and against the native `usocket` addon when it builds here.
 *
 *   bulk   64 KiB writes, no fds (MiB/s)
 *   small  1-byte writes, no fds (writes/s)
 *   fds    1 byte + 1 fd per write (writes/s); the child counts the fds that actually arrived
 *
 * The writer waits for 'drain' whenever write() returns false, and for its last write's callback
 * before end(); the time runs from the first write until the child has read everything. usocket
 * 1.1.0 is built in a scratch directory (npm install with its install script allowed, node-gyp
 * against this Node's headers); if that fails the column says why and the rest still runs.
 * Environment: BENCH_ROUNDS (default 3 here), BENCH_STREAM_MB (256), BENCH_STREAM_SMALL (100000),
 * BENCH_STREAM_FDS (100000), BENCH_USOCKET=0 (do not try usocket), BENCH_USOCKET_DIR (a directory
 * whose node_modules/usocket is already built).
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { socketPair, USocket } from '../src/index.js';
import type { Target } from './run.js';

const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const rounds = Math.min(env('BENCH_ROUNDS', 3), 3);
const bulkBytes = env('BENCH_STREAM_MB', 256) << 20;
const smallN = env('BENCH_STREAM_SMALL', 100_000);
const fdsN = env('BENCH_STREAM_FDS', 100_000);
const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

type Impl = 'fdpass' | 'net' | 'usocket';
type Mode = 'bulk' | 'small' | 'fds';
type Writer = Duplex & { write(chunk: unknown, cb?: (err?: Error | null) => void): boolean };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Build usocket 1.1.0 in `dir`; returns the path to require it from, or why it is not there. */
function buildUsocket(dir: string): { module: string; version: string } | { error: string } {
  if (process.env.BENCH_USOCKET === '0') return { error: 'not tried (BENCH_USOCKET=0)' };
  let root = process.env.BENCH_USOCKET_DIR;
  if (root === undefined) {
    root = join(dir, 'usocket');
    spawnSync('mkdir', ['-p', root]);
    writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'bench-usocket', private: true, allowScripts: { usocket: true } }));
    // node-gyp needs this Node's headers: use the installed ones rather than a download.
    const headers = join(dirname(dirname(process.execPath)), 'include', 'node');
    const npmEnv = { ...process.env, ...(existsSync(join(headers, 'node.h')) ? { npm_config_nodedir: dirname(dirname(headers)) } : {}) };
    const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', 'usocket@1.1.0'], { cwd: root, env: npmEnv, encoding: 'utf8', timeout: 300_000 });
    if (r.status !== 0) return { error: `did not build: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' / ')}` };
  }
  const module = join(root, 'index.js');
  try {
    const require = createRequire(module);
    require('usocket');
    return { module, version: (require('usocket/package.json') as { version: string }).version };
  } catch (err) {
    return { error: `does not load: ${(err as Error).message.split('\n')[0]}` };
  }
}

function wrap(impl: Impl, fd: number, usocketModule: string | undefined): Writer {
  if (impl === 'fdpass') return new USocket({ fd }) as Writer;
  if (impl === 'net') return new net.Socket({ fd, readable: true, writable: true }) as Writer;
  const usocket = createRequire(usocketModule!)('usocket') as { USocket: new (o: object) => Writer };
  return new usocket.USocket({ fd });
}

/** One run: seconds from the first write until the child read it all, and what the child counted. */
async function run(impl: Impl, mode: Mode, usocketModule: string | undefined, fileFd: number): Promise<{ seconds: number; cpuMicros: number; bytes: number; fds: number; writes: number }> {
  const [mine, theirs] = socketPair('stream');
  const child = spawn(process.execPath, ['--import', 'tsx', here('./stream-child.ts'), impl, mode === 'fds' ? 'fds' : 'bytes'], {
    stdio: ['ignore', 'pipe', 'inherit', theirs.fd],
    env: { ...process.env, BENCH_USOCKET_MODULE: usocketModule ?? '' },
  });
  theirs.close();
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = once(child, 'exit');
  while (!out.includes('ready\n')) await once(child.stdout!, 'data');
  const s = wrap(impl, mine.release(), usocketModule);
  s.on('error', (err) => {
    throw err;
  });
  const chunk = mode === 'bulk' ? Buffer.alloc(65536, 7) : Buffer.from('x');
  const writes = mode === 'bulk' ? Math.ceil(bulkBytes / chunk.length) : mode === 'small' ? smallN : fdsN;
  const item = mode === 'fds' ? { data: chunk, fds: [fileFd] } : chunk;
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < writes - 1; i++) {
    // usocket's write() returns undefined, never false (it drops Writable's return value), so
    // it never asks to wait: its writes pile up in the Writable's buffer instead.
    if (s.write(item) === false) await once(s, 'drain');
  }
  // usocket shuts the socket down in end() even while a write waits: let every write finish first.
  await new Promise<void>((resolve) => s.write(item, () => resolve()));
  s.end();
  await exited;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  s.destroy();
  if (child.exitCode !== 0) throw new Error(`stream-child ${impl} ${mode} exited ${child.exitCode}`);
  const result = JSON.parse(out.slice(out.indexOf('ready\n') + 6)) as { bytes: number; fds: number; cpuMicros: number };
  // CPU time of both processes: unlike the wall clock, not inflated by other load on the machine.
  return { seconds, writes, bytes: result.bytes, fds: result.fds, cpuMicros: result.cpuMicros + cpu.user + cpu.system };
}

export async function streamBench(): Promise<Target[]> {
  const dir = mkdtempSync(join(tmpdir(), 'fdpass-stream-bench-'));
  const fileFd = openSync(here('./stream.ts'), 'r');
  try {
    const us = buildUsocket(dir);
    const usocketModule = 'module' in us ? us.module : undefined;
    const impls: Impl[] = usocketModule ? ['fdpass', 'net', 'usocket'] : ['fdpass', 'net'];
    const results = new Map<string, { seconds: number[]; cpu: number[]; bytes: number; fds: number; writes: number }>();
    // Round 0 warms up this process's JIT for every variant and is not counted.
    for (let r = 0; r <= rounds; r++) {
      for (const mode of ['bulk', 'small', 'fds'] as Mode[]) {
        for (const impl of impls) {
          if (mode === 'fds' && impl === 'net') continue;
          const x = await run(impl, mode, usocketModule, fileFd);
          if (r === 0) continue;
          const key = `${impl} ${mode}`;
          const prev = results.get(key);
          results.set(key, {
            seconds: [...(prev?.seconds ?? []), x.seconds],
            cpu: [...(prev?.cpu ?? []), x.cpuMicros],
            bytes: x.bytes,
            fds: Math.min(x.fds, prev?.fds ?? Infinity),
            writes: x.writes,
          });
        }
      }
    }
    const cell = (impl: Impl, mode: Mode): string => {
      const x = results.get(`${impl} ${mode}`);
      if (!x) return impl === 'usocket' ? 'n/a' : '—';
      const s = median(x.seconds);
      if (mode === 'bulk') return `${(x.bytes / 2 ** 20 / s).toFixed(0)} MiB/s`;
      const rate = `${(x.writes / s / 1000).toFixed(0)}k/s`;
      return mode === 'fds' ? `${rate}, ${x.fds}/${x.writes} fds` : rate;
    };
    const cpuCell = (impl: Impl, mode: Mode): string => {
      const x = results.get(`${impl} ${mode}`);
      if (!x) return impl === 'usocket' ? 'n/a' : '—';
      const micros = median(x.cpu);
      return mode === 'bulk' ? `${(micros / (x.bytes / 2 ** 20)).toFixed(0)} µs/MiB` : `${(micros / x.writes).toFixed(2)} µs/write`;
    };
    const load = (await import('node:os')).loadavg()[0];
    console.log('');
    console.log(`Streams with fds (USocket) — parent → child over a Unix stream socketpair, medians of ${rounds} rounds (load average ${load.toFixed(1)})`);
    console.log(`usocket: ${'version' in us ? `${us.version} (native addon, built here)` : us.error}`);
    console.log('');
    const header = (what: string): void => {
      console.log(`| ${what.padEnd(34)} | ${'fdpass USocket'.padStart(25)} | ${'net.Socket'.padStart(14)} | ${'usocket'.padStart(25)} |`);
      console.log(`|${'-'.repeat(36)}|${'-'.repeat(27)}|${'-'.repeat(16)}|${'-'.repeat(27)}|`);
    };
    const label: Record<Mode, string> = { bulk: `64 KiB, no fds (${bulkBytes >> 20} MiB)`, small: `1 byte, no fds (${smallN})`, fds: `1 byte + 1 fd (${fdsN})` };
    const modes: Mode[] = ['bulk', 'small', 'fds'];
    header('throughput (wall clock)');
    for (const mode of modes) console.log(`| ${label[mode].padEnd(34)} | ${cell('fdpass', mode).padStart(25)} | ${cell('net', mode).padStart(14)} | ${cell('usocket', mode).padStart(25)} |`);
    console.log('');
    header('CPU, writer + reader process');
    for (const mode of modes) console.log(`| ${label[mode].padEnd(34)} | ${cpuCell('fdpass', mode).padStart(25)} | ${cpuCell('net', mode).padStart(14)} | ${cpuCell('usocket', mode).padStart(25)} |`);
    console.log('');
    const bulk = (impl: Impl, what: 'seconds' | 'cpu'): number => median(results.get(`${impl} bulk`)![what]);
    const wallRatio = bulk('fdpass', 'seconds') / bulk('net', 'seconds');
    const cpuRatio = bulk('fdpass', 'cpu') / bulk('net', 'cpu');
    const fdpassFds = results.get('fdpass fds')!;
    const usFds = results.get('usocket fds');
    const targets: Target[] = [
      { what: 'USocket bulk bytes vs net.Socket, wall time', value: `${wallRatio.toFixed(2)}×`, target: '≤ 1.50×', met: wallRatio <= 1.5, note: `CPU ${cpuRatio.toFixed(2)}×` },
      { what: 'USocket 1 byte + 1 fd writes: fds that arrived', value: `${fdpassFds.fds}/${fdpassFds.writes}`, target: 'all', met: fdpassFds.fds === fdpassFds.writes },
    ];
    const rate = (impl: Impl, mode: Mode): number => { const x = results.get(`${impl} ${mode}`)!; return x.writes / median(x.seconds); };
    if (usFds) {
      targets.push({
        what: 'usocket 1 byte + 1 fd writes: fds that arrived',
        value: `${usFds.fds}/${usFds.writes}`,
        target: '(reported)',
        met: true,
        note: `${usFds.fds === usFds.writes ? 'none lost in this run' : `${usFds.writes - usFds.fds} lost: usocket resends only the bytes after EAGAIN`}; fdpass USocket ${(rate('fdpass', 'fds') / rate('usocket', 'fds')).toFixed(2)}× its write rate`,
      });
    } else {
      targets.push({ what: 'usocket (native addon) rows', value: 'skipped', target: '(reported)', met: true, note: 'error' in us ? us.error : '' });
    }
    return targets;
  } finally {
    closeSync(fileFd);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) console.table(await streamBench());
