/** Shared test helpers: fd accounting, GC pressure, fixture children. */
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export { emulatedArch, emulationLimit, scaled } from './emulation.js';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/** This process's open descriptors (numbers), excluding the one readdir itself used. */
export function openFds(): number[] {
  const fds = readdirSync('/proc/self/fd').map(Number);
  return fds.filter((fd) => {
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
  const after = openFds();
  const leaked = after.filter((fd) => !before.has(fd));
  expect(describeOpen(leaked), 'descriptors leaked').toEqual([]);
}

/** Force a full GC (vitest runs tests with --expose-gc). */
export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('tests must run with --expose-gc (see vitest.config.ts)');
  g();
}

export interface Fixture {
  child: ChildProcess;
  /** Everything the child printed on stdout, once it exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/**
 * Spawn `test/fixtures/<name>.ts` under tsx. `extraFds` are placed at fd 3, 4, … in the child
 * (Node dup2()s them, which clears close-on-exec on the child's copy).
 */
export function spawnFixture(name: string, args: string[] = [], extraFds: number[] = [], env: NodeJS.ProcessEnv = {}): Fixture {
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe', ...extraFds];
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(`./fixtures/${name}.ts`, import.meta.url)), ...args], {
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
