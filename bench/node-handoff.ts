/**
 * Node-integration benchmark (part of `npm run bench`; alone: `npx tsx bench/node-handoff.ts`).
 *
 *   handles  parent -> child, one connected TCP socket per message, wrapped as a net.Socket
 *            and destroyed in the child: fdpass send() + toNetSocket() vs Node's own
 *            child.send(msg, socket, { keepOpen: true }) (the same socket every time).
 *   http     the same tiny handler, the same number of workers, the same load generator
 *            (bench/node-loadgen.ts, a separate process, 127.0.0.1 only, bounded): an fdpass
 *            hand-off front vs Node's cluster with round-robin scheduling.
 *            conn/s: a new connection per request; req/s: keep-alive connections.
 *
 * Medians of several rounds, the variants interleaved. Environment: BENCH_ROUNDS (default 3),
 * BENCH_HANDLES_FDPASS (50000), BENCH_HANDLES_NODE (20000), BENCH_WORKERS (2),
 * BENCH_HTTP_CONN (20000), BENCH_HTTP_KEEPALIVE (100000), BENCH_HTTP_SECONDS (5), BENCH_HTTP_CONCURRENCY (32).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { fdOf, forkWithSocket } from '../src/index.js';
import type { Target } from './run.js';

const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const rounds = env('BENCH_ROUNDS', 3);
const fdpassN = env('BENCH_HANDLES_FDPASS', 50_000);
const nodeN = env('BENCH_HANDLES_NODE', 20_000);
const workers = env('BENCH_WORKERS', 2);
const connTotal = env('BENCH_HTTP_CONN', 20_000);
const keepAliveTotal = env('BENCH_HTTP_KEEPALIVE', 100_000);
const httpSeconds = env('BENCH_HTTP_SECONDS', 5);
const concurrency = env('BENCH_HTTP_CONCURRENCY', 32);
const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const tsxArgs = ['--import', 'tsx'];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function exited(child: ChildProcess): Promise<unknown> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit');
}

/** A connected TCP pair on loopback; the server side is what gets passed. */
async function tcpConnection(): Promise<{ socket: net.Socket; close(): void }> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [[accepted]] = await Promise.all([once(server, 'connection') as Promise<[net.Socket]>, once(client, 'connect')]);
  return {
    socket: accepted,
    close() {
      client.destroy();
      accepted.destroy();
      server.close();
    },
  };
}

/** Handles per second, and the receiving child's CPU time per handle (µs). */
interface Handles {
  rate: number;
  childCpu: number;
}

/** fdpass: pipelined sends of the same TCP socket; the child wraps and destroys each. */
async function fdpassHandles(socket: net.Socket, n: number, mode: 'wrap' | 'close' = 'wrap'): Promise<Handles> {
  const { child, socket: channel } = forkWithSocket(here('./node-fdpass-child.ts'), [String(n), mode], { execArgv: tsxArgs, stdio: ['ignore', 'inherit', 'inherit'] });
  await channel.recv(); // ready: startup is not timed
  const fds = [fdOf(socket)];
  const one = Buffer.from('h');
  const t0 = performance.now();
  let last: Promise<number> = Promise.resolve(0);
  for (let i = 0; i < n; i++) {
    last = channel.send(one, fds);
    if ((i & 1023) === 1023) await last; // at most 1,024 sends waiting in our queue
  }
  await last;
  const reply = await channel.recv();
  const seconds = (performance.now() - t0) / 1000;
  const report = JSON.parse(reply?.data.toString() ?? '{}') as { received?: number; cpuMicros?: number };
  if (report.received !== n) throw new Error(`fdpass child got ${report.received} of ${n}`);
  channel.close();
  await exited(child);
  return { rate: n / seconds, childCpu: report.cpuMicros! / n };
}

/**
 * Handles/s: Node's child.send(msg, socket) to a fork()ed child. Node waits for the child's
 * ack of each handle before sending the next; at most NODE_WINDOW sends are outstanding (an
 * unbounded queue makes Node slower: 4k/s with 5,000 queued, 1.2k/s with 20,000, here).
 */
const NODE_WINDOW = 64;
async function nodeHandles(socket: net.Socket, n: number): Promise<Handles> {
  const child = fork(here('./node-ipc-child.ts'), [String(n)], { execArgv: tsxArgs, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await once(child, 'message'); // ready
  const t0 = performance.now();
  const done = new Promise<unknown>((resolve) => child.on('message', (m) => m !== 'ready' && resolve(m)));
  await new Promise<void>((resolve, reject) => {
    let sent = 0;
    let outstanding = 0;
    const pump = (): void => {
      while (outstanding < NODE_WINDOW && sent < n) {
        outstanding++;
        sent++;
        child.send('h', socket, { keepOpen: true }, (err) => {
          if (err) return reject(err);
          outstanding--;
          if (sent < n) pump();
          else if (outstanding === 0) resolve();
        });
      }
    };
    pump();
  });
  const reply = JSON.parse(String(await done)) as { received?: number; cpuMicros?: number };
  const seconds = (performance.now() - t0) / 1000;
  if (reply.received !== n) throw new Error(`node child got ${reply.received} of ${n}`);
  await exited(child);
  return { rate: n / seconds, childCpu: reply.cpuMicros! / n };
}

interface LoadResult {
  ok: number;
  errors: number;
  seconds: number;
}

async function loadgen(port: number, mode: 'conn' | 'keepalive', total: number): Promise<LoadResult> {
  const child = spawn(process.execPath, [...tsxArgs, here('./node-loadgen.ts'), String(port), mode, String(total), String(concurrency), String(httpSeconds)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  await exited(child);
  return JSON.parse(out) as LoadResult;
}

/** Start a front (fdpass hand-off or cluster), run the load, stop it. Rates per second. */
async function httpRound(mode: 'handoff' | 'cluster'): Promise<{ conn: number; req: number; errors: number }> {
  const front = spawn(process.execPath, [...tsxArgs, here('./node-http-front.ts'), mode, String(workers)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    front.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) resolve((JSON.parse(out.split('\n')[0]) as { port: number }).port);
    });
    front.on('exit', (code) => reject(new Error(`${mode} front exited (${code}) before listening`)));
  });
  try {
    await loadgen(port, 'keepalive', 2_000); // warm up the JIT in every process
    const conn = await loadgen(port, 'conn', connTotal);
    const req = await loadgen(port, 'keepalive', keepAliveTotal);
    return { conn: conn.ok / conn.seconds, req: req.ok / req.seconds, errors: conn.errors + req.errors };
  } finally {
    front.stdin!.end();
    await exited(front);
  }
}

const fmt = (perSecond: number): string => `${(perSecond / 1000).toFixed(1)}k/s`;
function row(name: string, fdpass: number, node: number, extra = ''): string {
  return `| ${name.padEnd(56)} | ${fmt(fdpass).padStart(10)} | ${fmt(node).padStart(10)} | ${(fdpass / node).toFixed(1).padStart(6)}× |${extra}`;
}
const cpuCell = (fdpass: number, node: number): string => ` ${fdpass.toFixed(1).padStart(5)} µs | ${node.toFixed(1).padStart(5)} µs |`;

export async function nodeHandoffBench(): Promise<Target[]> {
  const tcp = await tcpConnection();
  const handles = { fdpass: [] as Handles[], transport: [] as Handles[], node: [] as Handles[] };
  try {
    await fdpassHandles(tcp.socket, Math.min(fdpassN, 5_000)); // warm-up
    for (let r = 0; r < rounds; r++) {
      handles.node.push(await nodeHandles(tcp.socket, nodeN));
      handles.fdpass.push(await fdpassHandles(tcp.socket, fdpassN));
      handles.transport.push(await fdpassHandles(tcp.socket, fdpassN, 'close'));
    }
  } finally {
    tcp.close();
  }
  const http = { handoff: [] as { conn: number; req: number; errors: number }[], cluster: [] as { conn: number; req: number; errors: number }[] };
  for (let r = 0; r < rounds; r++) {
    http.cluster.push(await httpRound('cluster'));
    http.handoff.push(await httpRound('handoff'));
  }
  const m = (xs: Handles[]): Handles => ({ rate: median(xs.map((x) => x.rate)), childCpu: median(xs.map((x) => x.childCpu)) });
  const h = { fdpass: m(handles.fdpass), transport: m(handles.transport), node: m(handles.node) };
  const conn = { fdpass: median(http.handoff.map((x) => x.conn)), node: median(http.cluster.map((x) => x.conn)) };
  const req = { fdpass: median(http.handoff.map((x) => x.req)), node: median(http.cluster.map((x) => x.req)) };
  const errors = [...http.handoff, ...http.cluster].reduce((a, x) => a + x.errors, 0);

  console.log('');
  console.log(`Node integration — medians of ${rounds} rounds; ${workers} HTTP workers, ${concurrency} concurrent client connections`);
  console.log('');
  console.log(`| ${'measure'.padEnd(56)} | ${'fdpass'.padStart(10)} | ${'Node'.padStart(10)} | ratio  | child CPU/handle, fdpass | Node |`);
  console.log(`|${'-'.repeat(58)}|${'-'.repeat(12)}|${'-'.repeat(12)}|--------|--------------------------|----------|`);
  console.log(row('handles parent→child, wrapped as net.Socket, destroyed', h.fdpass.rate, h.node.rate, cpuCell(h.fdpass.childCpu, h.node.childCpu)));
  console.log(row('  the same, child only closes the fd (fdpass transport)', h.transport.rate, h.node.rate, cpuCell(h.transport.childCpu, h.node.childCpu)));
  console.log(row('HTTP, new connection per request (conn/s) vs cluster', conn.fdpass, conn.node));
  console.log(row('HTTP, keep-alive (req/s) vs cluster', req.fdpass, req.node));
  if (errors > 0) console.log(`WARNING: the load generator saw ${errors} failed requests`);
  const ratio = h.fdpass.rate / h.node.rate;
  return [
    {
      what: "handles into net.Socket vs Node's child.send",
      value: `${ratio.toFixed(1)}×`,
      target: '≥ 5×',
      met: ratio >= 5,
      note: `${fmt(h.fdpass.rate)} vs ${fmt(h.node.rate)}; child CPU per handle ${h.fdpass.childCpu.toFixed(1)} µs (of which the fdpass transport ${h.transport.childCpu.toFixed(1)} µs) vs ${h.node.childCpu.toFixed(1)} µs`,
    },
    { what: 'hand-off proxy vs cluster, new connections', value: `${(conn.fdpass / conn.node).toFixed(2)}×`, target: '≥ 0.95×', met: conn.fdpass >= conn.node * 0.95, note: `${fmt(conn.fdpass)} vs ${fmt(conn.node)}` },
    { what: 'hand-off proxy vs cluster, keep-alive requests', value: `${(req.fdpass / req.node).toFixed(2)}×`, target: '≥ 0.95×', met: req.fdpass >= req.node * 0.95, note: `${fmt(req.fdpass)} vs ${fmt(req.node)}${errors ? `; ${errors} failed requests` : ''}` },
  ];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) console.table(await nodeHandoffBench());
