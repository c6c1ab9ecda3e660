/**
 * Take a descriptor from another process without its cooperation (Linux 5.6+, pidfd_getfd).
 *
 *   tsx examples/grab.ts <pid> <fd>   print what fd <fd> of process <pid> is; if it is a
 *                                     listening socket, serve HTTP on it here until Ctrl-C
 *   tsx examples/grab.ts              self-contained demo: start a victim HTTP server, stop it,
 *                                     take its listening socket, answer one request ourselves
 *
 * Needs ptrace access to the target (same user and no Yama restriction, or CAP_SYS_PTRACE).
 * The grabbed socket is the SAME socket: while the owner runs, both processes accept from one
 * queue, so the demo stops the victim (SIGSTOP) first.
 * In your own project, import from 'fdpass' instead of '../src/index.js'.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { PidFd, fdOf, type Fd } from '../src/index.js';

const [first, second] = process.argv.slice(2);

if (first === '--victim') {
  // The demo's victim: an ordinary HTTP server that knows nothing about fdpass.
  const server = http.createServer((_req, res) => res.end(`served by the victim, pid ${process.pid}\n`));
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port, fd: fdOf(server) }) + '\n');
  });
} else if (first !== undefined) {
  await inspect(Number(first), Number(second));
} else {
  await demo();
}

/** Serve HTTP on a grabbed listening socket. Node takes the fd over (it closes it on close()). */
function serveOn(fd: Fd, onRequest?: () => void): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    res.end(`served by the grabber, pid ${process.pid}: ${req.method} ${req.url}\n`);
    onRequest?.();
  });
  return new Promise((resolve) => server.listen({ fd: fd.release() }, () => resolve(server)));
}

async function inspect(pid: number, targetFd: number): Promise<void> {
  if (!Number.isInteger(pid) || !Number.isInteger(targetFd)) {
    console.error('usage: tsx examples/grab.ts <pid> <fd>   (or no arguments for the demo)');
    process.exit(2);
  }
  let grabbed: Fd;
  {
    using pidfd = PidFd.open(pid);
    grabbed = pidfd.getFd(targetFd);
  }
  const desc = grabbed.describe();
  console.log(`fd ${targetFd} of process ${pid}:`, desc);
  const s = desc.socket;
  if (!s?.listening || s.type !== 'stream') {
    grabbed.close();
    return;
  }
  const server = await serveOn(grabbed, () => console.log('answered a request'));
  const where = s.family === 'unix' ? s.path : `http://${s.localAddress}:${s.localPort}/`;
  console.log(`took over the listening socket: serving on ${where} (the owner still accepts too) — Ctrl-C to stop`);
  process.once('SIGINT', () => server.close());
}

async function demo(): Promise<void> {
  const step = (text: string): void => console.log(`• ${text}`);
  // 1. A victim process: this file again, in --victim mode, under the same runtime (tsx).
  const victim = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--victim'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const { port, fd } = JSON.parse(await new Promise<string>((resolve) => createInterface({ input: victim.stdout! }).once('line', resolve))) as { port: number; fd: number };
  step(`victim pid ${victim.pid} serves http://127.0.0.1:${port}/ on its fd ${fd}`);
  console.log(`  a request now gets: ${await get(port)}`);

  using pidfd = PidFd.fromChild(victim);
  step(`pidfd_open(${victim.pid}) -> pidfd ${pidfd.fd}`);
  pidfd.sendSignal('SIGSTOP');
  step('sent SIGSTOP through the pidfd: the victim no longer accepts connections');

  const grabbed = pidfd.getFd(fd);
  const desc = grabbed.describe();
  step(`pidfd_getfd(pidfd, ${fd}) -> our fd ${grabbed.fd}: ${desc.kind}, ${desc.socket?.family} ${desc.socket?.type}, listening=${desc.socket?.listening}, port ${desc.socket?.localPort}`);

  const server = await serveOn(grabbed);
  step('serving on the grabbed socket; one request:');
  console.log(`  ${await get(port)}`);
  await new Promise((resolve) => server.close(resolve));

  const exited = pidfd.exited;
  pidfd.sendSignal('SIGTERM');
  pidfd.sendSignal('SIGCONT'); // a stopped process acts on SIGTERM once continued
  const exit = await exited;
  step(`sent SIGTERM + SIGCONT; the pidfd became readable: victim exited (signal ${exit.signal}, code ${exit.code})`);
}

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/hello', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve(body.trim()));
    }).on('error', reject);
  });
}
