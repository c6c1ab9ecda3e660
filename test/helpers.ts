/** Shared test helpers: fd accounting, GC pressure, fixture children. */
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import * as dgram from 'node:dgram';
import { once } from 'node:events';
import * as nodeFs from 'node:fs';
import { cpSync, existsSync, fstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from './fdfs.js';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { expect } from 'vitest';
import { socketPair, type UnixSocket } from '../src/index.js';
import { fdOf } from '../src/fdlike.js';
import { readinessDescriptors } from '../src/readiness.js';
import { denoOwnSocketPair } from './fixtures/child-util.js';
import { tsArgs } from './run-ts.js';

export { emulatedArch, emulationLimit, scaled } from './emulation.js';
export { tsArgs } from './run-ts.js';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/** Running under Bun (bun test runs these files: docs/runtimes.md). */
export const isBun = process.versions.bun !== undefined;
/** Running under Deno (scripts/runner/run.mjs --deno runs these files: docs/runtimes.md). */
export const isDeno = process.versions.deno !== undefined;
// Bun's first spawnSync opens an epoll and an eventfd that stay for the life of the process:
// opened here, before any test counts descriptors.
if (isBun) spawnSync('true');
// Deno 2.9 opens a Unix socket pair of its own (and a thread) about 500 ms after its event loop
// starts, kept for the life of the process: waited for here, before any test counts.
await denoOwnSocketPair();

/**
 * This process's open descriptors (numbers), excluding the one readdir itself used and the ones
 * fdpass's readiness backend holds for itself (the 'thread' backend's wake-up pipe, which opens
 * and closes with activity, a few event-loop turns after it).
 */
export function openFds(): number[] {
  const own = new Set(readinessDescriptors());
  const fds = readdirSync('/proc/self/fd').map(Number);
  return fds.filter((fd) => {
    if (own.has(fd)) return false;
    try {
      readlinkSync(`/proc/self/fd/${fd}`);
      return true;
    } catch {
      return false; // the directory fd readdir had open, now closed
    }
  });
}

export function fdCount(): number {
  return openFds().length;
}

function describeOpen(fds: number[]): string[] {
  return fds.map((fd) => {
    try {
      return `${fd} -> ${readlinkSync(`/proc/self/fd/${fd}`)}`;
    } catch {
      return `${fd} -> ?`;
    }
  });
}

/**
 * Run `fn` and assert the process holds exactly the same descriptors afterwards.
 * Lets the event loop turn first so libuv handles closed by `fn` are really gone.
 */
export async function expectNoFdLeak(fn: () => unknown | Promise<unknown>): Promise<void> {
  const before = new Set(openFds());
  await fn();
  await new Promise((r) => setImmediate(r));
  let leaked = openFds().filter((fd) => !before.has(fd));
  // Bun closes a child's stdio sockets and pidfd a few milliseconds after the child's 'close'
  // event (after one more turn in about a third of runs): its own descriptors, not fdpass's. A
  // leak stays open; they are given up to a second to go.
  for (let waited = 0; isBun && leaked.length > 0 && waited < 1000; waited += 20) {
    await new Promise((r) => setTimeout(r, 20));
    leaked = openFds().filter((fd) => !before.has(fd));
  }
  expect(describeOpen(leaked), 'descriptors leaked').toEqual([]);
}

/**
 * expect(fdCount()).toBe(expected), after a child process ended: under Bun, once its late-closed
 * stdio is gone (see expectNoFdLeak; up to a second).
 */
export async function expectFdCountAfterChild(expected: number): Promise<void> {
  for (let waited = 0; isBun && fdCount() !== expected && waited < 1000; waited += 20) await new Promise((r) => setTimeout(r, 20));
  expect(fdCount()).toBe(expected);
}

/** Whether descriptor `fd` is open in this process (fstat succeeds). */
export function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

/** Two descriptors for the same file (device and inode). */
export function sameFile(a: number, b: number): boolean {
  const x = fstatSync(a);
  const y = fstatSync(b);
  return x.dev === y.dev && x.ino === y.ino;
}

/** Force a full GC (vitest runs tests with --expose-gc; Bun has Bun.gc(true)). */
export function gc(): void {
  const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  if (bun) return bun.gc(true);
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('tests must run with --expose-gc (see vitest.config.ts)');
  g();
}

/**
 * The command line that runs TypeScript file `file` under this runtime, as a child that may not
 * get this process's environment (systemd-socket-activate passes only what it is told to):
 * `node <tsArgs(file)>` (a fixture's bundle, or `--import tsx file`: run-ts.ts; Bun runs it as
 * given); under Deno `deno run -A --sloppy-imports file`
 * (what Deno makes of `--import tsx`, plus the '.js' to '.ts' resolution that scripts/runner/run.mjs
 * otherwise turns on through DENO_COMPAT in the environment).
 */
export function tsCommand(file: string): string[] {
  return isDeno ? [process.execPath, 'run', '-A', '--sloppy-imports', file] : [process.execPath, ...tsArgs(file)];
}

/**
 * The command line that runs ES module source `code` (imports, top-level await) under this
 * runtime, with `nodeFlags` (--expose-gc…): `node [nodeFlags] --import tsx --input-type=module
 * -e code`; under Deno `deno eval [--v8-flags=…] code` (Deno's translation of that node command
 * line runs the code as a script, where an import statement is a SyntaxError).
 */
export function evalModuleCommand(code: string, nodeFlags: string[] = []): [string, string[]] {
  if (!isDeno) return [process.execPath, [...nodeFlags, '--import', 'tsx', '--input-type=module', '-e', code]];
  return [process.execPath, ['eval', ...(nodeFlags.length > 0 ? [`--v8-flags=${nodeFlags.join(',')}`] : []), code]];
}

export interface Fixture {
  child: ChildProcess;
  /** Everything the child printed on stdout, once it exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/**
 * Spawn `test/fixtures/<name>.ts` (its bundle under Node: run-ts.ts). `extraFds` are placed at fd 3, 4, … in the child
 * (Node dup2()s them, which clears close-on-exec on the child's copy).
 */
export function spawnFixture(name: string, args: string[] = [], extraFds: number[] = [], env: NodeJS.ProcessEnv = {}): Fixture {
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe', ...extraFds];
  const child = spawn(process.execPath, [...tsArgs(new URL(`./fixtures/${name}.ts`, import.meta.url)), ...args], {
    stdio,
    cwd: repoRoot,
    env: { ...process.env, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, exited };
}

/** In CI a missing peer (python3, cc, perl) is a failure, never a skip. */
export function requirePeer(command: string): void {
  const which = spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status;
  if (which !== 0) throw new Error(`this test needs '${command}' on PATH (.ci/run installs it)`);
}


/**
 * Compile a C peer with `cc` (strict warnings) into `outDir` and return the binary's path.
 * Fails the test, never skips, when cc is missing.
 */
export function compileC(source: string, outDir: string): string {
  requirePeer('cc');
  const binary = `${outDir}/${source.replace(/^.*\//, '').replace(/\.c$/, '')}`;
  const cc = spawnSync('cc', ['-std=c99', '-D_GNU_SOURCE', '-O1', '-Wall', '-Werror', '-o', binary, source], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cc failed (${cc.status}): ${cc.stderr}${cc.error?.message ?? ''}`);
  return binary;
}

/** The shape of the errors fdpass throws (Node's system-error shape plus fdpass's extras). */
export type CaughtError = Error & { code?: string; errno?: number; syscall?: string; cause?: unknown; bytesWritten?: number };

/** The error `fn` throws; fails the test if it does not throw. */
export function catchError(fn: () => unknown): CaughtError {
  try {
    fn();
  } catch (err) {
    return err as CaughtError;
  }
  throw new Error('expected the call to throw');
}

/** The reason `p` rejects with; fails the test if it resolves. */
export async function rejection(p: Promise<unknown>): Promise<CaughtError> {
  try {
    await p;
  } catch (err) {
    return err as CaughtError;
  }
  throw new Error('expected the promise to reject');
}

/** A listening TCP server on 127.0.0.1 and one connection to it: the client and the accepted side. */
export async function tcpConnection(): Promise<{ server: net.Server; port: number; client: net.Socket; accepted: net.Socket }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const connection = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect(port, '127.0.0.1');
  await new Promise<void>((r) => client.once('connect', r));
  return { server, port, client, accepted: await connection };
}

let readable: string | undefined;

/**
 * A world-readable copy of what a TypeScript fixture run as another user (`spawn(…, { uid })`)
 * loads: src/, the fixture directories, package.json, and the packages tsx and koffi need. The
 * checkout itself may be unreadable to that user (a clone under root's home or `mktemp -d`, both
 * 0700), and a child started as nobody must read its code from somewhere. Made once per test
 * file, removed when it exits. Run such a child with this directory as `cwd`.
 */
export function readableCopy(): string {
  if (readable !== undefined) return readable;
  const root = mkdtempSync(join(tmpdir(), 'fdpass-readable-'));
  process.on('exit', () => rmSync(root, { recursive: true, force: true }));
  for (const entry of ['package.json', 'tsconfig.json', 'src', 'test/fixtures', 'test/fdfs.ts', 'examples/fixtures']) {
    cpSync(join(repoRoot, entry), join(root, entry), { recursive: true });
  }
  // The packages the loader and the library load, with everything they depend on that is installed.
  const queue = ['tsx', 'koffi'];
  const copied = new Set<string>();
  while (queue.length > 0) {
    const name = queue.shift()!;
    const from = join(repoRoot, 'node_modules', name);
    if (copied.has(name) || !existsSync(from)) continue;
    copied.add(name);
    cpSync(from, join(root, 'node_modules', name), { recursive: true });
    const pkg = JSON.parse(readFileSync(join(from, 'package.json'), 'utf8')) as { dependencies?: object; optionalDependencies?: object };
    queue.push(...Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies }));
  }
  // Whatever the checkout's modes (a umask of 077 makes files 0600): readable and searchable by all.
  const chmod = spawnSync('chmod', ['-R', 'a+rX', root]);
  if (chmod.status !== 0) throw new Error(`chmod -R a+rX ${root} failed`);
  readable = root;
  return root;
}

/** Send until the peer's queue is full, so that the next send() must wait; returns how many went. */
export function fillQueue(sock: UnixSocket): number {
  for (let n = 0; n < 100_000; n++) {
    try {
      sock.sendSync(`f${n}`, [], { timeoutMs: 0 });
    } catch (err) {
      if ((err as { code?: string }).code === 'ETIMEDOUT') return n;
      throw err;
    }
  }
  throw new Error('the queue never filled');
}

/**
 * What Deno (2.9) does not have that some tests check, each with its proof: code that shows the
 * limit still holds and throws once Deno lifts it. Used through `denoLimit`.
 */
const denoLimits = {
  'net-no-fd': {
    reason: "Deno's net.Socket, net.Server and dgram.Socket expose no descriptor (fdpass refuses them with ERR_INVALID_ARG_TYPE)",
    async proof(): Promise<void> {
      const { server, client, accepted } = await tcpConnection();
      const udp = dgram.createSocket('udp4');
      await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
      try {
        for (const [name, obj] of Object.entries({ server, client, accepted, udp })) {
          expect(catchError(() => fdOf(obj)).code, `fdOf(${name})`).toBe('ERR_INVALID_ARG_TYPE');
        }
      } finally {
        client.destroy();
        accepted.destroy();
        udp.close();
        await new Promise((r) => server.close(r));
      }
    },
  },
  'fs-foreign-fd': {
    reason: "Deno's node:fs refuses descriptors it did not open (EBADF), and so do fs streams, usocket's and dbus-next's reads of a received fd",
    async proof(): Promise<void> {
      const [a, b] = socketPair();
      try {
        expect(catchError(() => nodeFs.fstatSync(a.fd)).code, 'node:fs on a descriptor fdpass opened').toBe('EBADF');
      } finally {
        a.close();
        b.close();
      }
    },
  },
  'no-setgroups': {
    reason: 'Deno has no process.setgroups, so a child cannot drop its groups to run as nobody',
    async proof(): Promise<void> {
      expect(typeof process.setgroups).toBe('undefined');
    },
  },
  'command-line': {
    reason: "Deno runs a Node command line as its own: child.spawnargs is `deno run -A …`, not the node arguments fdpass built",
    async proof(): Promise<void> {
      const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'test/emulation.ts')], { stdio: 'ignore' });
      const exited = once(child, 'exit');
      expect(child.spawnargs.slice(1, 3)).toEqual(['run', '-A']);
      expect(child.spawnargs).not.toContain('--import');
      await exited;
    },
  },
  'worker-fds': {
    reason: 'Deno keeps an eventfd and an epoll descriptor of every worker thread after it ended',
    async proof(): Promise<void> {
      const before = new Set(openFds());
      const worker = new Worker(new URL('data:text/javascript,export {}'));
      await once(worker, 'exit');
      await new Promise((r) => setTimeout(r, 50));
      const kept = openFds().filter((fd) => !before.has(fd)).map((fd) => readlinkSync(`/proc/self/fd/${fd}`));
      expect(kept.sort()).toEqual(['anon_inode:[eventfd]', 'anon_inode:[eventpoll]']);
    },
  },
} as const;

export type DenoLimit = keyof typeof denoLimits;

/**
 * A test that checks what Deno does not have (docs/runtimes.md), in the spirit of
 * `emulationLimit`: under Deno the limit's proof runs instead — it throws when the limit no
 * longer holds, so the test comes back — one `[runtime limit]` line is printed, and this returns
 * true: the test returns early. On Node and Bun it returns false and runs nothing.
 * `if (await denoLimit('net-no-fd')) return;` first in the test body.
 */
export async function denoLimit(limit: DenoLimit): Promise<boolean> {
  if (!isDeno) return false;
  await denoLimits[limit].proof();
  console.warn(`[runtime limit] Deno ${process.versions.deno}: ${denoLimits[limit].reason} (checked; the rest of the test does not run)`);
  return true;
}
