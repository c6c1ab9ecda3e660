/**
 * Errors that name the culprit: which fd of a send is not open, "fd N is not open", a path that
 * is not a socket. The `code` stays Node's (EBADF, EADDRINUSE, ECONNREFUSED); the message says why.
 */
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from './fdfs.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adopt, adoptServer, connect, connectSync, describeFd, Fd, listen, PidFd, pipe, socketPair, toNetSocket, type UnixSocket } from '../src/index.js';
import { catchError, expectNoFdLeak, rejection } from './helpers.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fdpass-errors-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A descriptor number that was open a moment ago and is not now. */
function justClosed(): number {
  const fd = openSync('/dev/null', 'r');
  closeSync(fd);
  return fd;
}

function fillQueue(sock: UnixSocket): number {
  for (let n = 0; ; n++) {
    try {
      sock.sendSync(`f${n}`, [], { timeoutMs: 0 });
    } catch (err) {
      if ((err as { code?: string }).code === 'ETIMEDOUT') return n;
      throw err;
    }
  }
}

describe('a send with a descriptor that is not open', () => {
  it('sendSync and send say which entry (index and number) is not open; code EBADF; nothing is sent', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      const [r, w] = pipe();
      const bad = justClosed();
      const syncErr = catchError(() => a.sendSync('x', [r, bad, w]));
      expect(syncErr).toMatchObject({ code: 'EBADF', errno: -9, syscall: 'sendmsg', message: `sendmsg EBADF: fds[1] (fd ${bad}) is not open` });
      const asyncErr = await rejection(a.send('x', [r, w, bad]));
      expect(asyncErr).toMatchObject({ code: 'EBADF', syscall: 'sendmsg', message: `sendmsg EBADF: fds[2] (fd ${bad}) is not open` });
      expect(catchError(() => b.recvSync({ timeoutMs: 0 })).code).toBe('ETIMEDOUT');
      for (const x of [a, b, r, w]) x.close();
    });
  });

  // A waiting send duplicates its fds; a duplicate takes the lowest free number, which was the
  // closed entry's: that entry used to be sent as a copy of another one, silently.
  it('a send that has to wait (the peer queue is full) fails the same way, instead of sending a duplicate of another entry in its place', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      const queued = fillQueue(a);
      const first = a.send('first'); // waits for room, so the next send queues behind it
      const [r, w] = pipe();
      const bad = justClosed();
      const err = await rejection(a.send('x', [r, w, bad]));
      expect(err).toMatchObject({ code: 'EBADF', syscall: 'fcntl', message: `fcntl EBADF: fds[2] (fd ${bad}) is not open` });
      for (let i = 0; i < queued; i++) b.recvSync();
      await first;
      expect(b.recvSync()!.data.toString()).toBe('first');
      expect(catchError(() => b.recvSync({ timeoutMs: 0 })).code).toBe('ETIMEDOUT');
      for (const x of [a, b, r, w]) x.close();
    });
  });

  it("the socket's own descriptor closed behind its back is named too", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      const n = a.fd;
      closeSync(n); // what a careless caller does
      const err = catchError(() => a.sendSync('x'));
      expect(err).toMatchObject({ code: 'EBADF', message: `sendmsg EBADF: the socket's own fd ${n} is not open (was it closed behind this UnixSocket's back?)` });
      a.release();
      b.close();
    });
  });
});

describe('"fd N is not open"', () => {
  it('describeFd, Fd#describe, adopt, adoptServer, PidFd.adopt and toNetSocket say it, with code EBADF', async () => {
    await expectNoFdLeak(async () => {
      const n = 9999;
      expect(catchError(() => describeFd(n))).toMatchObject({ code: 'EBADF', errno: -9, syscall: 'fcntl', message: 'fcntl EBADF: fd 9999 is not open' });
      const f = new Fd(n);
      expect(catchError(() => f.describe()).message).toBe('fcntl EBADF: fd 9999 is not open');
      f.release();
      expect(catchError(() => adopt(n))).toMatchObject({ code: 'EBADF', errno: -9, syscall: 'getsockopt', message: 'getsockopt EBADF: fd 9999 is not open' });
      expect(catchError(() => adoptServer(n))).toMatchObject({ code: 'EBADF', message: 'getsockopt EBADF: fd 9999 is not open' });
      expect(catchError(() => PidFd.adopt(n))).toMatchObject({ code: 'EBADF', message: 'fcntl EBADF: fd 9999 is not open' });
      expect(catchError(() => toNetSocket(n))).toMatchObject({ code: 'EBADF', message: expect.stringContaining('fd 9999 is not open') });
    });
  });
});

describe('paths that are not sockets', () => {
  it('listen() on a regular file or a directory: EADDRINUSE that says the path is not a socket, and leaves it alone', async () => {
    await expectNoFdLeak(async () => {
      const file = join(dir, 'file.txt');
      writeFileSync(file, 'keep me');
      const err = catchError(() => listen(file));
      expect(err).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind', message: `bind EADDRINUSE ${file}: the path exists and is a regular file, not a socket; listen() never replaces it: remove it or choose another path` });
      expect(readFileSync(file, 'utf8')).toBe('keep me');
      const sub = join(dir, 'a-directory');
      mkdirSync(sub);
      expect(catchError(() => listen(sub)).message).toBe(`bind EADDRINUSE ${sub}: the path exists and is a directory, not a socket; listen() never replaces it: remove it or choose another path`);
    });
  });

  it('listen() on a live server says a server is there', async () => {
    await expectNoFdLeak(async () => {
      const path = join(dir, 'live.sock');
      const server = listen(path);
      expect(catchError(() => listen(path))).toMatchObject({ code: 'EADDRINUSE', message: `bind EADDRINUSE ${path}: a server is listening on this socket file` });
      server.close();
    });
  });

  it('connect() to a regular file or a directory: ECONNREFUSED that says it is not a socket; to a stale socket file, that nothing listens', async () => {
    await expectNoFdLeak(async () => {
      const file = join(dir, 'plain.txt');
      writeFileSync(file, '');
      const err = await rejection(connect(file));
      expect(err).toMatchObject({ code: 'ECONNREFUSED', errno: -111, syscall: 'connect', message: `connect ECONNREFUSED ${file}: the path is a regular file, not a socket` });
      expect(catchError(() => connectSync(dir)).message).toBe(`connect ECONNREFUSED ${dir}: the path is a directory, not a socket`);
      const stale = join(dir, 'stale.sock');
      closeSync(listen(stale).release()); // a crashed server's leftover: the file, and nobody listening
      expect(catchError(() => connectSync(stale)).message).toBe(`connect ECONNREFUSED ${stale}: nothing is listening on this socket file (a server that exited?)`);
    });
  });
});
