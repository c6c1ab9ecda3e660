/**
 * spawnWithSocket / forkWithSocket / inheritedSocket: a child gets a socket at fd 3 (or the fd
 * asked for), learns which from FDPASS_FD, and the parent keeps no copy of the child's end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, openSync, rmSync, writeFileSync } from './fdfs.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Fd, forkWithSocket, spawnWithSocket, type UnixSocket } from '../src/index.js';
import { denoLimit, expectNoFdLeak, repoRoot, requirePeer, tsArgs } from './helpers.js';
import { MESSAGE_TYPE, MINIMAL } from './mode.js';

const running = new Set<ChildProcess>();
function track<T extends { child: ChildProcess }>(x: T): T {
  running.add(x.child);
  x.child.on('exit', () => running.delete(x.child));
  return x;
}
afterEach(() => {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
});

let dir: string;
let filePath: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fdpass-spawn-'));
  filePath = join(dir, 'passed.txt');
  writeFileSync(filePath, 'content only the parent opened');
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}.ts`, import.meta.url));

async function recvJson(socket: UnixSocket): Promise<Record<string, any>> {
  const msg = await socket.recv();
  if (msg === null) throw new Error('child closed the socket');
  for (const f of msg.fds) f.close();
  return JSON.parse(msg.data.toString()) as Record<string, any>;
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
}

describe('spawnWithSocket', () => {
  it('gives a Node child its end at fd 3, FDPASS_FD=3, and keeps no copy of it', async () => {
    await expectNoFdLeak(async () => {
      const { child, socket } = track(spawnWithSocket(process.execPath, [...tsArgs(fixture('node-child-echo')), 'arg1'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] }));
      const hello = await recvJson(socket);
      expect(hello).toMatchObject({ hello: true, pid: child.pid, envBefore: '3', envAfter: null, fd: 3, type: MESSAGE_TYPE, same: true, closeOnExec: true, args: ['arg1'] });
      using file = new Fd(openSync(filePath, 'r'));
      await socket.send('a file', [file]);
      expect(await recvJson(socket)).toEqual({ got: 'a file', contents: ['content only the parent opened'] });
      // Half-close: the child sees end of stream, exits; then the parent sees end of stream
      // too, which it could not if it still held a copy of the child's end.
      socket.shutdown('write');
      expect(await exitOf(child)).toEqual({ code: 0, signal: null });
      expect(await socket.recv()).toBeNull();
      socket.close();
    });
  });

  it('puts the socket at another fd when asked, with the stdio you give, and a stream type', async () => {
    await expectNoFdLeak(async () => {
      const { child, socket } = track(spawnWithSocket(process.execPath, [...tsArgs(fixture('node-child-echo'))], {
        cwd: repoRoot, fd: 5, type: 'stream', stdio: ['ignore', 'ignore', 'inherit'],
      }));
      expect(socket.type).toBe('stream');
      const hello = await recvJson(socket);
      expect(hello).toMatchObject({ envBefore: '5', fd: 5, type: 'stream' });
      socket.close();
      expect(await exitOf(child)).toEqual({ code: 0, signal: null });
    });
  });

  it('works with a non-Node child: python3 reads fd $FDPASS_FD with socket.recv_fds', async () => {
    requirePeer('python3');
    await expectNoFdLeak(async () => {
      const script = `
import os, socket
fd = int(os.environ['FDPASS_FD'])
s = socket.socket(fileno=fd)
data, fds, _, _ = socket.recv_fds(s, 1024, 4)
content = os.pread(fds[0], 100, 0).decode()
for f in fds: os.close(f)
s.send(('python got %r on fd %d: %s' % (data.decode(), fd, content)).encode())
`;
      // Python speaks seqpacket (the default) or, where fdpass's default is 'framed', raw stream
      // bytes (one small message each way; the end-of-stream check below needs a connection).
      const { child, socket } = track(spawnWithSocket('python3', ['-c', script], { type: MINIMAL ? 'stream' : 'seqpacket', stdio: ['ignore', 'ignore', 'inherit'] }));
      using file = new Fd(openSync(filePath, 'r'));
      await socket.send('from node', [file]);
      const reply = await socket.recv();
      expect(reply!.data.toString()).toBe("python got 'from node' on fd 3: content only the parent opened");
      expect(await exitOf(child)).toEqual({ code: 0, signal: null });
      expect(await socket.recv()).toBeNull();
      socket.close();
    });
  });

  it('closes both ends when the command cannot be spawned', async () => {
    await expectNoFdLeak(async () => {
      const { child, socket } = spawnWithSocket(join(dir, 'no-such-command'), [], { stdio: 'ignore' });
      const [err] = (await once(child, 'error')) as [NodeJS.ErrnoException];
      expect(err.code).toBe('ENOENT');
      expect(await socket.recv()).toBeNull(); // nobody holds the other end
      socket.close();
    });
  });

  it('refuses a taken stdio slot and a bad fd before spawning anything', async () => {
    await expectNoFdLeak(() => {
      expect(() => spawnWithSocket('true', [], { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('descriptor 3') }),
      );
      expect(() => spawnWithSocket('true', [], { fd: 2 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
      expect(() => spawnWithSocket('true', [], { fd: 3.5 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    });
  });
});

describe('forkWithSocket', () => {
  it('runs a .ts module under Node with tsx and a socket at fd 3', async () => {
    if (await denoLimit('command-line')) return;
    await expectNoFdLeak(async () => {
      const { child, socket } = track(forkWithSocket(new URL('./fixtures/node-child-echo.ts', import.meta.url), ['x'], {
        cwd: repoRoot, execArgv: [], stdio: ['ignore', 'ignore', 'inherit'],
      }));
      expect(child.spawnargs.slice(1, 3)).toEqual(['--import', 'tsx']);
      expect(await recvJson(socket)).toMatchObject({ hello: true, fd: 3, args: ['x'] });
      socket.close();
      expect(await exitOf(child)).toEqual({ code: 0, signal: null });
    });
  });
});

describe('inheritedSocket', () => {
  async function runNoInherit(stdio: (string | number)[], env: Record<string, string | undefined> = {}): Promise<Record<string, any>> {
    const child = spawn(process.execPath, [...tsArgs(fixture('node-child-noinherit'))], {
      cwd: repoRoot,
      stdio: stdio as never,
      env: { ...process.env, FDPASS_FD: undefined, ...env },
    });
    running.add(child);
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    expect(await exitOf(child)).toEqual({ code: 0, signal: null });
    return JSON.parse(out) as Record<string, any>;
  }

  it('says clearly when there is no socket at fd 3', async () => {
    const result = await runNoInherit(['ignore', 'pipe', 'inherit']);
    expect(result).toMatchObject({ ok: false, name: 'FdPassError', code: 'ERR_FDPASS_NO_INHERITED_SOCKET' });
    // In a Node process nobody gave fd 3 to, libuv itself may hold fd 3 (its epoll instance).
    expect(result.message).toMatch(/^inheritedSocket: fd 3 \(FDPASS_FD is not set; 3 is the default\) is (not open|an? .+, not a connected Unix socket);/);
    expect(result.message).toContain('spawnWithSocket()');
  });

  it('names what is there instead, and rejects a FDPASS_FD that is not a number', async () => {
    await expectNoFdLeak(async () => {
      const file = new Fd(openSync(filePath, 'r'));
      const wrong = await runNoInherit(['ignore', 'pipe', 'inherit', file.fd], { FDPASS_FD: '3' });
      file.close();
      expect(wrong).toMatchObject({ ok: false, code: 'ERR_FDPASS_NO_INHERITED_SOCKET' });
      expect(wrong.message).toContain(`fd 3 (FDPASS_FD=3) is a regular file (${filePath}), not a connected Unix socket`);
      const garbage = await runNoInherit(['ignore', 'pipe', 'inherit'], { FDPASS_FD: 'three' });
      expect(garbage).toMatchObject({ ok: false, code: 'ERR_FDPASS_NO_INHERITED_SOCKET', message: expect.stringContaining('FDPASS_FD=three, which is not a descriptor number') });
    });
  });
});
