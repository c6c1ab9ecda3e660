/** Linux pidfd: pidfd_open/getfd/send_signal, exit on the event loop, SO_PEERPIDFD, /proc reopen. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { constants as fsConstants, mkdtempSync, readFileSync, readSync, rmSync, writeFileSync } from './fdfs.js';
import * as nodeFs from 'node:fs';
import { createServer, connect as netConnect, type AddressInfo } from 'node:net';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { Fd, listen, pipe, socketPair, type FdPassError } from '../src/index.js';
import { PidFd, explainError, listProcessFds, peerPidFdOf, reopenFromProc } from '../src/pidfd.js';
import { C, check, sys } from '../src/libc.js';
import { pidfdSyscalls } from '../src/platform/syscalls.js';
import { expectNoFdLeak, readableCopy, repoRoot, requirePeer, tsArgs } from './helpers.js';

const osErrno = osConstants.errno as Record<string, number | undefined>;
const children = new Set<ChildProcess>();
afterEach(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
});

interface Spawned {
  child: ChildProcess;
  /** The next line the child prints on stdout. */
  line(): Promise<string>;
  /** Resolves once the child exited and its pipes are closed. */
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/** Spawn test/fixtures/<name>.ts under tsx with stdin, stdout and stderr pipes. */
function spawnTsx(name: string, args: string[] = [], options: { uid?: number; gid?: number } = {}): Spawned {
  // Another user may not be able to read the checkout: such a child runs from a readable copy.
  const root = options.uid === undefined ? repoRoot : readableCopy();
  const child = spawn(process.execPath, [...tsArgs(join(root, `test/fixtures/${name}.ts`)), ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    cwd: root,
    ...options,
  });
  children.add(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else lines.push(l);
  });
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
  const line = (): Promise<string> => {
    const l = lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      waiting.push(resolve);
      void closed.then(({ code, signal, stderr: err }) => reject(new Error(`${name} ended (${code ?? signal}) before printing a line: ${err}`)));
    });
  };
  return { child, line, closed };
}

interface Victim extends Spawned {
  pid: number;
  port: number;
  listenFd: number;
  fileFd: number | null;
}

async function startVictim(file?: string, readFirst = 0): Promise<Victim> {
  const s = spawnTsx('pidfd-victim', file ? [file, String(readFirst)] : []);
  const info = JSON.parse(await s.line()) as { pid: number; port: number; listenFd: number; fileFd: number | null };
  return { ...s, ...info };
}

async function stop(s: Spawned): Promise<void> {
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  await s.closed;
}

function tempFile(content: string): { path: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'fdpass-pidfd-'));
  const path = join(dir, 'data.txt');
  writeFileSync(path, content);
  return { path, dir };
}

function fdinfoPos(pid: number, fd: number): number {
  return Number(/^pos:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))![1]);
}

function countTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'Immediate').length;
}

describe('platform data', () => {
  it('syscall numbers, waitid constants and the siginfo_t layout match the C headers', () => {
    requirePeer('cc');
    const dir = mkdtempSync(join(tmpdir(), 'fdpass-pidfd-cc-'));
    try {
      // Native headers for this architecture; asm-generic/unistd.h alone for arm64 (the generic ABI).
      writeFileSync(join(dir, 'native.c'), `
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/pidfd.h>
int main(void) {
  printf("{\\"SYS_pidfd_send_signal\\":%d,\\"SYS_pidfd_open\\":%d,\\"SYS_pidfd_getfd\\":%d,\\"PIDFD_NONBLOCK\\":%d,",
    (int)SYS_pidfd_send_signal, (int)SYS_pidfd_open, (int)SYS_pidfd_getfd, (int)PIDFD_NONBLOCK);
  printf("\\"SYS_close_range\\":%d,", (int)SYS_close_range);
  printf("\\"RLIMIT_NOFILE\\":%d,", (int)RLIMIT_NOFILE);
  printf("\\"P_PIDFD\\":%d,\\"WNOHANG\\":%d,\\"WEXITED\\":%d,\\"WNOWAIT\\":%d,\\"CLD_EXITED\\":%d,\\"CLD_KILLED\\":%d,\\"CLD_DUMPED\\":%d,",
    (int)P_PIDFD, WNOHANG, WEXITED, WNOWAIT, CLD_EXITED, CLD_KILLED, CLD_DUMPED);
  printf("\\"siginfo\\":{\\"size\\":%d,\\"signo\\":%d,\\"code\\":%d,\\"pid\\":%d,\\"status\\":%d}}\\n",
    (int)sizeof(siginfo_t), (int)offsetof(siginfo_t, si_signo), (int)offsetof(siginfo_t, si_code),
    (int)offsetof(siginfo_t, si_pid), (int)offsetof(siginfo_t, si_status));
  return 0;
}`);
      writeFileSync(join(dir, 'generic.c'), `
#include <stdio.h>
#include <asm-generic/unistd.h>
int main(void) {
  printf("{\\"SYS_pidfd_send_signal\\":%d,\\"SYS_pidfd_open\\":%d,\\"SYS_pidfd_getfd\\":%d,\\"SYS_close_range\\":%d}\\n",
    __NR_pidfd_send_signal, __NR_pidfd_open, __NR_pidfd_getfd, __NR_close_range);
  return 0;
}`);
      const run = (name: string): Record<string, unknown> => {
        const cc = spawnSync('cc', ['-o', join(dir, name), join(dir, `${name}.c`)], { encoding: 'utf8' });
        expect(cc.status, cc.stderr).toBe(0);
        return JSON.parse(spawnSync(join(dir, name), { encoding: 'utf8' }).stdout) as Record<string, unknown>;
      };
      const { SO_PEERPIDFD: _so, ...ours } = pidfdSyscalls[process.arch]!;
      // SO_PEERPIDFD (77) is newer than these headers: the peerPidFdOf tests check it against the kernel.
      expect(ours).toEqual(run('native'));
      const arm64 = pidfdSyscalls.arm64!;
      expect({ SYS_pidfd_send_signal: arm64.SYS_pidfd_send_signal, SYS_pidfd_open: arm64.SYS_pidfd_open, SYS_pidfd_getfd: arm64.SYS_pidfd_getfd, SYS_close_range: arm64.SYS_close_range }).toEqual(run('generic'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('PidFd.getFd (pidfd_getfd)', () => {
  it('takes a listening TCP socket from an unrelated process and accepts a connection on it here', async () => {
    await expectNoFdLeak(async () => {
      const victim = await startVictim();
      try {
        using pidfd = PidFd.open(victim.pid);
        expect(pidfd.pid).toBe(victim.pid);
        const grabbed = pidfd.getFd(victim.listenFd);
        const desc = grabbed.describe();
        expect(desc).toMatchObject({ kind: 'socket', closeOnExec: true, socket: { family: 'inet', type: 'stream', listening: true, localPort: victim.port } });
        expect(desc.openFlags).not.toContain('O_NONBLOCK');

        const accepted: string[] = [];
        const server = createServer((conn) => {
          accepted.push(`${conn.remoteAddress}:${conn.remotePort}`);
          conn.end(`served by ${process.pid}`);
        });
        await new Promise<void>((resolve) => server.listen({ fd: grabbed.release() }, resolve));
        try {
          expect((server.address() as AddressInfo).port).toBe(victim.port);
          const client = netConnect(victim.port, '127.0.0.1');
          let clientPort: number | undefined;
          client.on('connect', () => (clientPort = client.localPort));
          let reply = '';
          client.setEncoding('utf8').on('data', (d: string) => (reply += d));
          await new Promise((resolve) => client.on('close', resolve));
          expect(reply).toBe(`served by ${process.pid}`);
          expect(accepted).toEqual([`127.0.0.1:${clientPort}`]);
          // Same open file description: Node made it non-blocking here, and the victim's fd shows it.
          const theirs = listProcessFds(victim.pid).find((f) => f.fd === victim.listenFd)!;
          expect(theirs.openFlags).toContain('O_NONBLOCK');
          expect(theirs.socket).toMatchObject({ listening: true, localPort: victim.port });
        } finally {
          await new Promise((resolve) => server.close(resolve));
        }
      } finally {
        await stop(victim);
      }
    });
  });

  it('shares the file offset with the target process (same open file description)', async () => {
    const { path, dir } = tempFile('0123456789abcdefghijklmnopqrstuvwxyz');
    try {
      await expectNoFdLeak(async () => {
        const victim = await startVictim(path, 3); // it has read "012"
        try {
          using pidfd = PidFd.open(victim.pid);
          using file = pidfd.getFd(victim.fileFd!);
          expect(file.describe()).toMatchObject({ kind: 'file', path, closeOnExec: true });
          const buf = Buffer.alloc(5);
          // Our read starts where theirs stopped …
          expect(buf.toString('utf8', 0, readSync(file.fd, buf, 0, 5, null))).toBe('34567');
          expect(fdinfoPos(victim.pid, victim.fileFd!)).toBe(8);
          // … and theirs continues where ours stopped (SIGUSR1 makes it read 5 bytes).
          pidfd.sendSignal('SIGUSR1');
          expect(JSON.parse(await victim.line())).toEqual({ read: '89abc' });
          expect(buf.toString('utf8', 0, readSync(file.fd, buf, 0, 5, null))).toBe('defgh');
        } finally {
          await stop(victim);
        }
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('explains EBADF (no such fd there), ESRCH (process gone) and bad arguments', async () => {
    await expectNoFdLeak(async () => {
      const victim = await startVictim();
      const pidfd = PidFd.open(victim.pid);
      try {
        expect(() => pidfd.getFd(987654)).toThrow(expect.objectContaining({
          code: 'EBADF', errno: -osErrno.EBADF!, syscall: 'pidfd_getfd',
          message: `pidfd_getfd EBADF: process ${victim.pid} has no open fd 987654`,
        }));
        expect(() => pidfd.getFd(-1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
        expect(() => pidfd.getFd('3' as unknown as number)).toThrow(TypeError);
        expect(() => PidFd.open(0)).toThrow(RangeError);
        expect(() => PidFd.open(1.5)).toThrow(RangeError);
        await stop(victim);
        // Reaped: the pidfd still refers to that (dead) process, never to a reused pid.
        expect(() => pidfd.getFd(0)).toThrow(expect.objectContaining({ code: 'ESRCH', syscall: 'pidfd_getfd', message: `pidfd_getfd ESRCH: process ${victim.pid} does not exist (it has exited)` }));
        expect(() => pidfd.sendSignal(0)).toThrow(expect.objectContaining({ code: 'ESRCH', syscall: 'pidfd_send_signal' }));
        expect(() => PidFd.open(victim.pid)).toThrow(expect.objectContaining({ code: 'ESRCH', errno: -osErrno.ESRCH!, syscall: 'pidfd_open' }));
        expect(() => PidFd.fromChild(victim.child)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
      } finally {
        pidfd.close();
        pidfd.close(); // idempotent
        expect(() => pidfd.fd).toThrow(expect.objectContaining({ code: 'ERR_FDPASS_CLOSED' }));
      }
    });
  });

  it('explains EPERM for a process without ptrace access (uid nobody grabbing from root)', async () => {
    expect(process.getuid!()).toBe(0); // this machine runs the tests as root
    const { path, dir } = tempFile('secret');
    try {
      await expectNoFdLeak(async () => {
        const victim = await startVictim(path);
        try {
          const grabber = spawnTsx('pidfd-grabber', [String(victim.pid), String(victim.fileFd)], { uid: 65534, gid: 65534 });
          const getFd = JSON.parse(await grabber.line());
          const reopen = JSON.parse(await grabber.line());
          expect((await grabber.closed).code).toBe(0);
          expect(getFd).toMatchObject({ op: 'getFd', code: 'EPERM', errno: -1, syscall: 'pidfd_getfd' });
          expect(getFd.message).toMatch(/^pidfd_getfd EPERM: no permission to take an fd from process \d+: it needs ptrace access .*same user.*Yama.*CAP_SYS_PTRACE/);
          expect(reopen).toMatchObject({ op: 'reopen', syscall: 'open' });
          expect(['EACCES', 'EPERM']).toContain(reopen.code);
          expect(reopen.message).toMatch(/ptrace read access/);
        } finally {
          await stop(victim);
        }
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sendSignal and exit', () => {
  it('signals a child by name and by number; `exited` resolves with the signal', async () => {
    await expectNoFdLeak(async () => {
      const a = await startVictim();
      const b = await startVictim();
      try {
        using pa = PidFd.fromChild(a.child);
        using pb = PidFd.fromChild(b.child);
        pa.sendSignal(0); // alive
        const exitedA = pa.exited;
        expect(pa.exited).toBe(exitedA); // one promise
        pa.sendSignal('SIGTERM');
        pb.sendSignal(9);
        expect(await exitedA).toEqual({ code: null, signal: 'SIGTERM' });
        expect(await pb.waitExit()).toEqual({ code: null, signal: 'SIGKILL' });
        expect((await a.closed).signal).toBe('SIGTERM');
        expect((await b.closed).signal).toBe('SIGKILL');
        expect(() => pa.sendSignal('SIGNOPE' as NodeJS.Signals)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_SIGNAL' }));
        expect(() => pa.sendSignal(65)).toThrow(RangeError);
        // Already exited: later waits resolve at once with the same status.
        expect(await pa.waitExit()).toEqual({ code: null, signal: 'SIGTERM' });
      } finally {
        await stop(a);
        await stop(b);
      }
    });
  });

  it('`exited` resolves with the exit code of a child that exits by itself, with no timers', async () => {
    await expectNoFdLeak(async () => {
      const s = spawnTsx('pidfd-exit', ['7']);
      try {
        expect(await s.line()).toBe('ready');
        using pidfd = PidFd.fromChild(s.child);
        const timersBefore = countTimers();
        const exited = pidfd.exited;
        // While it waits, nothing polls: no timer and no repeating immediate (a backend may use
        // one immediate to start watching, so look a turn later). At most as many as before: a
        // timer of someone else's (vitest's) may have expired meanwhile, a poller's never does.
        await new Promise((r) => setTimeout(r, 10));
        expect(countTimers()).toBeLessThanOrEqual(timersBefore);
        s.child.stdin!.end(); // it exits on its own when stdin ends
        expect(await exited).toEqual({ code: 7, signal: null });
        // Nothing left behind either: fdpass hands each readiness event over in one setImmediate,
        // which may still be counted while the continuation it resolved runs; a turn later it is gone.
        await new Promise((r) => setTimeout(r, 10));
        expect(countTimers()).toBeLessThanOrEqual(timersBefore);
      } finally {
        await stop(s);
      }
    });
  });

  it('reads the status of an unmanaged child with waitid(WNOWAIT), without reaping it', async () => {
    const exited = spawnTsx('pidfd-subreaper', ['exit']);
    const killed = spawnTsx('pidfd-subreaper', ['kill']);
    expect(JSON.parse(await exited.line())).toMatchObject({ exit: { code: 5, signal: null }, state: 'Z' });
    expect(JSON.parse(await killed.line())).toMatchObject({ exit: { code: null, signal: 'SIGKILL' }, state: 'Z' });
    expect((await exited.closed).code).toBe(0);
    expect((await killed.closed).code).toBe(0);
  });

  it('resolves with no code for a process that is not our child', async () => {
    await expectNoFdLeak(async () => {
      // sh stays the parent of `sleep`; we only observe it.
      const sh = spawn('/bin/sh', ['-c', 'sleep 1000 & echo $!; wait'], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.add(sh);
      const closed = new Promise((resolve) => sh.on('close', resolve));
      const pid = Number(await new Promise<string>((resolve) => createInterface({ input: sh.stdout! }).once('line', resolve)));
      using pidfd = PidFd.open(pid);
      const exited = pidfd.exited;
      pidfd.sendSignal('SIGTERM');
      expect(await exited).toEqual({ code: null, signal: null });
      await closed;
    });
  });

  it('a pending wait keeps Node running; an idle or unref()ed PidFd does not', async () => {
    const target = await startVictim();
    try {
      for (const mode of ['idle', 'unref']) {
        const w = spawnTsx('pidfd-wait', [String(target.pid), mode]);
        expect(await w.line()).toBe('waiting');
        const end = await w.closed; // ends by itself while the target lives
        expect(end, end.stderr).toMatchObject({ code: 0, signal: null });
        expect(target.child.exitCode).toBe(null);
      }
      const w = spawnTsx('pidfd-wait', [String(target.pid), 'ref']);
      expect(await w.line()).toBe('waiting');
      target.child.kill('SIGTERM'); // only this ends the waiting script
      expect(await w.line()).toBe('exited {"code":null,"signal":null}');
      expect((await w.closed).code).toBe(0);
    } finally {
      await stop(target);
    }
  });

  it('waitExit honours AbortSignal; close() rejects pending waits, also an unawaited `exited`', async () => {
    await expectNoFdLeak(async () => {
      const victim = await startVictim();
      try {
        const pidfd = PidFd.fromChild(victim.child);
        const ac = new AbortController();
        const aborted = pidfd.waitExit({ signal: ac.signal });
        ac.abort();
        await expect(aborted).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
        await expect(pidfd.waitExit({ signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
        const pending = pidfd.waitExit();
        void pidfd.exited; // never awaited: must not become an unhandled rejection
        pidfd.close();
        await expect(pending).rejects.toMatchObject({ code: 'ERR_FDPASS_CLOSED' });
        await expect(pidfd.exited).rejects.toMatchObject({ code: 'ERR_FDPASS_CLOSED' });
        await expect(pidfd.waitExit()).rejects.toMatchObject({ code: 'ERR_FDPASS_CLOSED' });
      } finally {
        await stop(victim);
      }
    });
  });
});

describe('peerPidFdOf (SO_PEERPIDFD)', () => {
  it('gives a pidfd of the socketpair creator (also as UnixSocket.peerPidFd())', async () => {
    await expectNoFdLeak(() => {
      const [a, b] = socketPair();
      try {
        using peer = peerPidFdOf(a.fd);
        expect(peer.pid).toBe(process.pid);
        expect(new Fd(peer.fd).describe().kind).toBe('pidfd'); // (not owned: no close)
        peer.sendSignal(0);
        using viaMethod = b.peerPidFd(); // UnixSocket.peerPidFd() is this function
        expect(viaMethod.pid).toBe(process.pid);
        expect(viaMethod.fd).not.toBe(peer.fd);
      } finally {
        a.close();
        b.close();
      }
    });
  });

  it('gives a pidfd of the process that connected, usable to signal and await it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fdpass-peerpidfd-'));
    try {
      await expectNoFdLeak(async () => {
        const server = listen({ path: join(dir, 's.sock'), type: 'stream' });
        const client = spawnTsx('pidfd-connect', [join(dir, 's.sock')]);
        try {
          const conn = await Promise.race([server.accept(), client.closed.then((c) => Promise.reject(new Error(`client ended: ${c.stderr}`)))]);
          expect(await client.line()).toBe('connected');
          using peer = peerPidFdOf(conn.fd);
          expect(peer.pid).toBe(client.child.pid);
          expect(peer.pid).toBe(conn.peerCredentials().pid);
          const exited = peer.exited;
          peer.sendSignal('SIGTERM');
          await exited;
          expect((await client.closed).signal).toBe('SIGTERM');
          conn.close();
        } finally {
          server.close();
          await stop(client);
        }
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails clearly on a socket that has no peer, and explains old kernels', async () => {
    await expectNoFdLeak(() => {
      using unconnected = new Fd(check('socket', sys.socket(C.AF_UNIX, C.SOCK_STREAM | C.SOCK_CLOEXEC!, 0) as number));
      expect(() => peerPidFdOf(unconnected.fd)).toThrow(expect.objectContaining({
        code: 'ENODATA', errno: -osErrno.ENODATA!, syscall: 'getsockopt(SO_PEERPIDFD)',
        message: 'getsockopt(SO_PEERPIDFD) ENODATA: the socket has no peer (it is not connected)',
      }));
      expect(() => PidFd.adopt(unconnected.fd)).toThrow(/is not a pidfd \(it is socket/);
      expect(unconnected.closed).toBe(false); // adopt refused it and left it alone
    });
    const old = explainError('getsockopt(SO_PEERPIDFD)', osErrno.ENOPROTOOPT!);
    expect(old).toMatchObject({ code: 'ENOPROTOOPT', errno: -osErrno.ENOPROTOOPT!, syscall: 'getsockopt(SO_PEERPIDFD)' });
    expect(old.message).toMatch(/^getsockopt\(SO_PEERPIDFD\) ENOPROTOOPT: SO_PEERPIDFD needs Linux 6\.5 or newer/);
    const nosys = explainError('pidfd_getfd', osErrno.ENOSYS!, { pid: 1, targetFd: 3 });
    expect(nosys).toMatchObject({ code: 'ENOSYS', errno: -osErrno.ENOSYS!, syscall: 'pidfd_getfd' });
    expect(nosys.message).toMatch(/^pidfd_getfd ENOSYS: this kernel \(.+\) does not have pidfd_getfd; it needs Linux 5\.6 or newer$/);
    expect(explainError('pidfd_open', osErrno.ENOSYS!).message).toMatch(/needs Linux 5\.3 or newer$/);
    expect(explainError('pidfd_send_signal', osErrno.ENOSYS!).message).toMatch(/needs Linux 5\.1 or newer$/);
  });

  it('PidFd.adopt takes ownership of a received pidfd', async () => {
    await expectNoFdLeak(async () => {
      const victim = await startVictim();
      try {
        const [a, b] = socketPair();
        {
          using mine = PidFd.open(victim.pid);
          a.sendSync('pidfd', [mine.fd]);
        }
        const msg = b.recvSync()!;
        using theirs = PidFd.adopt(msg.fds[0]!);
        expect(msg.fds[0]!.closed).toBe(true); // ownership moved
        expect(theirs.pid).toBe(victim.pid);
        const exited = theirs.exited;
        theirs.sendSignal('SIGKILL');
        expect(await exited).toEqual(expect.objectContaining({ code: null }));
        a.close();
        b.close();
      } finally {
        await stop(victim);
      }
    });
  });
});

describe('reopenFromProc', () => {
  it('reopens a file as a new open file description: own offset and flags, close-on-exec', async () => {
    const { path, dir } = tempFile('0123456789abcdef');
    try {
      await expectNoFdLeak(async () => {
        const victim = await startVictim(path, 4);
        try {
          using reopened = reopenFromProc(victim.pid, victim.fileFd!, 'r');
          const desc = reopened.describe();
          expect(desc).toMatchObject({ kind: 'file', path, closeOnExec: true, openFlags: ['O_RDONLY'] });
          const buf = Buffer.alloc(6);
          expect(buf.toString('utf8', 0, readSync(reopened.fd, buf, 0, 6, null))).toBe('012345'); // from 0, not 4
          expect(fdinfoPos(victim.pid, victim.fileFd!)).toBe(4); // theirs did not move
          // Flags are its own too: read-write although the process opened it read-only.
          using rw = reopenFromProc(victim.pid, victim.fileFd!, 'r+');
          expect(rw.describe().openFlags).toEqual(['O_RDWR']);
          using numeric = reopenFromProc(victim.pid, victim.fileFd!, fsConstants.O_RDONLY);
          expect(numeric.describe()).toMatchObject({ openFlags: ['O_RDONLY'], closeOnExec: true });
          // pidfd_getfd, by contrast, shares the offset.
          using pidfd = PidFd.open(victim.pid);
          using shared = pidfd.getFd(victim.fileFd!);
          expect(buf.toString('utf8', 0, readSync(shared.fd, buf, 0, 6, null))).toBe('456789');
        } finally {
          await stop(victim);
        }
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("closing what it returns leaves the runtime's node:fs alone: the next fs.openSync, likely given the same number, works", async () => {
    // node:fs itself here, not ./fdfs.js: under Deno a descriptor its node:fs opened stays in its
    // own table, and once something else closed it, Deno closed the next one opened under that
    // number (reopenFromProc used fs.openSync).
    const { path, dir } = tempFile('opened by node:fs');
    try {
      await expectNoFdLeak(() => {
        const [r, w] = pipe();
        const reopened = reopenFromProc(process.pid, r.fd);
        reopened.close();
        const fd = nodeFs.openSync(path, 'r');
        try {
          const buf = Buffer.alloc(32);
          expect(buf.toString('utf8', 0, nodeFs.readSync(fd, buf, 0, buf.length, null))).toBe('opened by node:fs');
        } finally {
          nodeFs.closeSync(fd);
          r.close();
          w.close();
        }
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails for a socket with ENXIO and a message pointing to pidfd_getfd and SCM_RIGHTS', async () => {
    await expectNoFdLeak(async () => {
      const victim = await startVictim();
      try {
        let err: FdPassError | undefined;
        try {
          reopenFromProc(victim.pid, victim.listenFd).close();
        } catch (e) {
          err = e as FdPassError;
        }
        expect(err).toMatchObject({ name: 'FdPassError', code: 'ENXIO', errno: -osErrno.ENXIO!, syscall: 'open', path: `/proc/${victim.pid}/fd/${victim.listenFd}` });
        expect(err!.message).toBe(
          `open ENXIO /proc/${victim.pid}/fd/${victim.listenFd}: fd ${victim.listenFd} of process ${victim.pid} is a socket (or another object without a path) ` +
          'and cannot be reopened through /proc; take the same open file with PidFd.open(pid).getFd(fd) (pidfd_getfd, Linux 5.6+) or have the process send it over a Unix socket (SCM_RIGHTS)',
        );
        expect(() => reopenFromProc(victim.pid, 987654)).toThrow(expect.objectContaining({ code: 'ENOENT', message: expect.stringContaining(`process ${victim.pid} has no fd 987654`) }));
        expect(() => reopenFromProc(victim.pid, -2)).toThrow(RangeError);
      } finally {
        await stop(victim);
      }
    });
  });
});
