/** UnixSocket behaviour, in one process: socketPair, send/recv (sync and async), fds, errors. */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import * as fs from './fdfs.js';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import koffi from 'koffi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adopt, connectSync, Fd, FdPassError, listen, pipe, platform, socketPair, UnixSocket, type Message, type SocketType } from '../src/index.js';
import { catchError, denoLimit, evalModuleCommand, expectNoFdLeak, fdCount, fillQueue, rejection, repoRoot, sameFile, scaled, spawnFixture, tcpConnection } from './helpers.js';
import { MESSAGE_TYPE, MINIMAL } from './mode.js';

/** Every type this platform has: its message type ('seqpacket', or 'framed' without SEQPACKET), 'framed' always. */
const TYPES: SocketType[] = [...new Set<SocketType>([MESSAGE_TYPE, 'framed', 'stream', 'dgram'])];
const MESSAGE_TYPES = [...new Set<SocketType>([MESSAGE_TYPE, 'framed'])];
const O_CLOEXEC = 0o2000000; // Linux

const libc = koffi.load(platform.libcName as string);
const pipe2 = libc.func('int pipe2(void *fds, int flags)');

/** An anonymous pipe: [read end, write end], close-on-exec. */
function makePipe(): [number, number] {
  const buf = Buffer.alloc(8);
  if ((pipe2(buf, O_CLOEXEC) as number) !== 0) throw new Error('pipe2 failed');
  return [buf.readInt32LE(0), buf.readInt32LE(4)];
}

let dir: string;
let file: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-socket-'));
  file = path.join(dir, 'data.txt');
  fs.writeFileSync(file, 'contents');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

function closeAll(msg: Message | null | undefined): void {
  for (const f of msg?.fds ?? []) f.close();
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * A socket pair whose peer queue is full (a send must wait) and two files: `secret`, the one to
 * pass, and `other`, to open under a number the caller has just closed. `done()` closes and
 * removes it all.
 */
function queuedScene(): { a: UnixSocket; b: UnixSocket; secret: string; other: string; drain(): void; done(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-queued-'));
  const secret = path.join(dir, 'secret');
  const other = path.join(dir, 'other');
  fs.writeFileSync(secret, 'the file that was passed');
  fs.writeFileSync(other, 'a file opened later');
  const [a, b] = socketPair(MESSAGE_TYPE);
  const queued = fillQueue(a);
  return {
    a, b, secret, other,
    drain: () => {
      for (let i = 0; i < queued; i++) b.recvSync();
    },
    done: () => {
      a.close();
      b.close();
      fs.rmSync(dir, { recursive: true });
    },
  };
}

describe('review regressions', () => {
  it('a queued send() delivers the file that was passed, even if the caller closes that fd and the number is reused', async () => {
    await expectNoFdLeak(async () => {
      const { a, b, secret, other, drain, done } = queuedScene();
      const passed = fs.openSync(secret, 'r');
      const sent = a.send('secret', [passed]); // must wait: the peer's queue is full
      fs.closeSync(passed);
      const reused = fs.openSync(other, 'r'); // very likely the same number
      drain();
      await sent;
      const msg = b.recvSync()!;
      expect(msg.data.toString()).toBe('secret');
      expect(fs.readFileSync(msg.fds[0].fd, 'utf8')).toBe('the file that was passed');
      msg.fds[0].close();
      fs.closeSync(reused);
      done();
    });
  });

  it('a queued send() of an Fd holds it instead of duplicating it: closing the Fd meanwhile keeps the number taken until the message has gone', async () => {
    await expectNoFdLeak(async () => {
      const { a, b, secret, other, drain, done } = queuedScene();
      const passed = new Fd(fs.openSync(secret, 'r'));
      const n = passed.fd;
      const count = fdCount();
      const sent = a.send('secret', [passed]); // must wait: the peer's queue is full
      expect(fdCount()).toBe(count); // no duplicate
      passed.close();
      expect(passed.closed).toBe(true);
      expect(fdCount()).toBe(count); // closed for its owner, the number still taken
      const reopened = fs.openSync(other, 'r');
      expect(reopened).not.toBe(n);
      drain();
      await sent;
      expect(fdCount()).toBe(count); // n closed once the message went; `reopened` open
      const msg = b.recvSync()!;
      expect(msg.data.toString()).toBe('secret');
      expect(fs.readFileSync(msg.fds[0].fd, 'utf8')).toBe('the file that was passed');
      msg.fds[0].close();
      fs.closeSync(reopened);
      done();
    });
  });

  it('releasing an Fd a queued send holds gives the send its own duplicate: the released number may be closed and reused', async () => {
    await expectNoFdLeak(async () => {
      const { a, b, secret, other, drain, done } = queuedScene();
      const passed = new Fd(fs.openSync(secret, 'r'));
      const sent = a.send('secret', [passed, passed]);
      const count = fdCount();
      const n = passed.release(); // as toNetSocket(fd) does: the number is someone else's now
      expect(fdCount()).toBe(count + 1); // the send's duplicate
      fs.closeSync(n);
      const reused = fs.openSync(other, 'r'); // very likely the same number
      drain();
      await sent;
      expect(fdCount()).toBe(count); // the duplicate closed; `reused` open in place of n
      const msg = b.recvSync()!;
      expect(msg.fds.length).toBe(2);
      expect(fs.readFileSync(msg.fds[0].fd, 'utf8')).toBe('the file that was passed');
      expect(sameFile(msg.fds[1].fd, msg.fds[0].fd)).toBe(true);
      for (const f of msg.fds) f.close();
      fs.closeSync(reused);
      done();
    });
  });

  it('an aborted or flushed send lets go of the Fds it held: a close() that waited for it happens then', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair(MESSAGE_TYPE);
      fillQueue(a);
      const [r, w] = pipe();
      const ac = new AbortController();
      const aborted = a.send('x', [r], { signal: ac.signal });
      const flushed = a.send('y', [w]);
      const count = fdCount();
      r.close();
      w.close();
      expect(fdCount()).toBe(count);
      ac.abort();
      expect((await rejection(aborted)).name).toBe('AbortError');
      expect(fdCount()).toBe(count - 1);
      a.close();
      expect((await rejection(flushed)).code).toBe('ERR_FDPASS_CLOSED');
      expect(fdCount()).toBe(count - 3); // w, and a's own descriptor
      b.close();
    });
  });

  it('waiting on the event loop leaves a blocking socket blocking (O_NONBLOCK is shared with other processes)', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair('stream');
      expect(new Fd(b.fd).describe().openFlags).not.toContain('O_NONBLOCK');
      const pending = b.recv(); // starts a uv poll handle on b
      a.sendSync('x');
      expect((await pending)!.data.toString()).toBe('x');
      expect(fs.readlinkSync(`/proc/self/fd/${b.fd}`)).toMatch(/^socket:/);
      const flags = fs.readFileSync(`/proc/self/fdinfo/${b.fd}`, 'utf8').match(/flags:\s*(\d+)/)![1];
      expect(parseInt(flags, 8) & 0o4000).toBe(0);
      a.close();
      b.close();
    });
  });

  it('adopt() takes only a number or an Fd, never a Node object (two owners, two libuv watchers)', async () => {
    await expectNoFdLeak(async () => {
      const server = net.createServer();
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const err = catchError(() => adopt(server as unknown as number));
      expect(err).toBeInstanceOf(TypeError);
      expect(err.code).toBe('ERR_INVALID_ARG_TYPE');
      await new Promise<void>((r) => server.close(() => r()));
    });
  });
});

describe('sendSync / recvSync with fds', () => {
  for (const type of TYPES) {
    it(`${type}: data and a new close-on-exec fd for the same open file`, async () => {
      await expectNoFdLeak(() => {
        const [a, b] = socketPair(type);
        expect(a.type).toBe(type);
        const fd = fs.openSync(file, 'r+');
        try {
          expect(a.sendSync('hello', [fd])).toBe(5);
          const msg = b.recvSync({ timeoutMs: 5000 })!;
          expect(msg.data.toString()).toBe('hello');
          expect(msg.fds).toHaveLength(1);
          expect(msg.droppedFds).toBe(0);
          const got = msg.fds[0];
          expect(got).toBeInstanceOf(Fd);
          expect(got.fd).not.toBe(fd);
          expect(sameFile(got.fd, fd)).toBe(true);
          expect(got.describe().closeOnExec).toBe(true);
          expect(got.describe().path).toBe(file);
          // Same open file description: a write through one is read through the other.
          fs.writeSync(got.fd, `via ${type}`, 0);
          const buf = Buffer.alloc(64);
          const n = fs.readSync(fd, buf, 0, 64, 0);
          expect(buf.toString('utf8', 0, n)).toBe(`via ${type}`);
          // And the other way round, both directions of the pair work.
          b.sendSync('back', [got]);
          const back = a.recvSync({ timeoutMs: 5000 })!;
          expect(back.data.toString()).toBe('back');
          expect(sameFile(back.fds[0].fd, fd)).toBe(true);
          closeAll(back);
          got.close();
        } finally {
          fs.writeFileSync(file, 'contents');
          fs.closeSync(fd);
          a.close();
          b.close();
        }
      });
    });
  }

  it('253 fds in one message arrive as 253 distinct new descriptors', async () => {
    await expectNoFdLeak(() => {
      const [a, b] = socketPair();
      const fd = fs.openSync(file, 'r');
      try {
        const count = fdCount();
        a.sendSync('many', new Array(253).fill(fd));
        const msg = b.recvSync({ timeoutMs: 5000 })!;
        expect(msg.fds).toHaveLength(253);
        expect(msg.droppedFds).toBe(0);
        expect(new Set(msg.fds.map((f) => f.fd)).size).toBe(253);
        expect(msg.fds.every((f) => sameFile(f.fd, fd))).toBe(true);
        expect(fdCount()).toBe(count + 253);
        closeAll(msg);
      } finally {
        fs.closeSync(fd);
        a.close();
        b.close();
      }
    });
  });

  it('254 fds are refused with a RangeError that names the limit, before any syscall', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      b.close(); // a syscall would fail with EPIPE: the RangeError proves there was none
      const fds = new Array(254).fill(0);
      const err = catchError(() => a.sendSync('x', fds));
      expect(err).toBeInstanceOf(RangeError);
      expect(err.code).toBe('ERR_OUT_OF_RANGE');
      expect(err.message).toContain('253');
      const asyncErr = await rejection(a.send('x', fds));
      expect(asyncErr).toBeInstanceOf(RangeError);
      expect(asyncErr.code).toBe('ERR_OUT_OF_RANGE');
      // With the peer gone a real syscall fails with EPIPE, which shows the check came first.
      expect(codeOf(() => a.sendSync('x', [0]))).toBe('EPIPE');
      a.close();
    });
  });
});

describe('FdLike values', () => {
  it('accepts number, Fd, net.Socket, net.Server, dgram.Socket, FileHandle, ReadStream, { fd }, UnixSocket', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      const { server, port, client, accepted: serverSide } = await tcpConnection();
      const udp = dgram.createSocket('udp4');
      await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
      const handle = await fs.promises.open(file, 'r');
      const stream = fs.createReadStream(file);
      await new Promise<void>((r) => stream.once('open', () => r()));
      const plain = fs.openSync(file, 'r');
      const owned = new Fd(fs.openSync(file, 'r'));
      const [u1, u2] = socketPair('stream');
      try {
        const fileIno = fs.statSync(file).ino;
        a.sendSync('all', [plain, owned, client, server, udp, handle, stream as unknown as { fd: number }, { fd: plain }, u1]);
        const msg = b.recvSync({ timeoutMs: 5000 })!;
        expect(msg.fds).toHaveLength(9);
        const [fNum, fFd, fClient, fServer, fUdp, fHandle, fStream, fObj, fUnix] = msg.fds.map((f) => f.describe());
        for (const d of [fNum, fFd, fHandle, fStream, fObj]) {
          expect(d.kind).toBe('file');
          expect(d.path).toBe(file);
        }
        expect(fs.fstatSync(msg.fds[0].fd).ino).toBe(fileIno);
        expect(sameFile(msg.fds[1].fd, owned.fd)).toBe(true);
        expect(sameFile(msg.fds[5].fd, handle.fd)).toBe(true);
        expect(fClient.socket).toMatchObject({ family: 'inet', type: 'stream', listening: false, localAddress: '127.0.0.1', localPort: client.localPort });
        expect(fServer.socket).toMatchObject({ family: 'inet', type: 'stream', listening: true, localPort: port });
        expect(fUdp.socket).toMatchObject({ family: 'inet', type: 'dgram', localPort: udp.address().port });
        expect(fUnix.socket).toMatchObject({ family: 'unix', type: 'stream', listening: false });
        // The passed TCP socket is really the connection: write through it, read from the peer.
        const got = new Promise<string>((r) => serverSide.once('data', (d) => r(d.toString())));
        fs.writeSync(msg.fds[2].fd, 'over tcp');
        expect(await got).toBe('over tcp');
        closeAll(msg);
      } finally {
        a.close();
        b.close();
        u1.close();
        u2.close();
        fs.closeSync(plain);
        owned.close();
        await handle.close();
        await new Promise<void>((r) => stream.close(() => r()));
        await new Promise<void>((r) => udp.close(r));
        client.destroy();
        serverSide.destroy();
        await new Promise<void>((r) => server.close(() => r()));
      }
    });
  });

  const invalid: Array<[string, unknown, string, typeof TypeError | typeof RangeError]> = [
    ['a string', 'string', 'ERR_INVALID_ARG_TYPE', TypeError],
    ['-1', -1, 'ERR_OUT_OF_RANGE', RangeError],
    ['1.5', 1.5, 'ERR_OUT_OF_RANGE', RangeError],
    ['{}', {}, 'ERR_INVALID_ARG_TYPE', TypeError],
    ['{ fd: -3 }', { fd: -3 }, 'ERR_OUT_OF_RANGE', RangeError],
    ['a closed net.Socket (fd unknown)', new net.Socket(), 'ERR_INVALID_ARG_TYPE', TypeError],
  ];
  for (const [label, value, code, ctor] of invalid) {
    it(`rejects ${label} with ${code} before any syscall`, async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair();
        const fd = fs.openSync(file, 'r');
        try {
          const bad = [fd, value] as never[];
          const err = catchError(() => a.sendSync('x', bad));
          expect(err).toBeInstanceOf(ctor);
          expect(err.code).toBe(code);
          expect(err.message).toContain('fds[1]');
          const asyncErr = await rejection(a.send('x', bad));
          expect(asyncErr).toBeInstanceOf(ctor);
          expect(asyncErr.code).toBe(code);
          // Nothing was sent.
          expect(codeOf(() => b.recvSync({ timeoutMs: 0 }))).toBe('ETIMEDOUT');
          // Even with the peer gone (where sendmsg would fail with EPIPE) it is the argument error.
          b.close();
          expect(catchError(() => a.sendSync('x', bad)).code).toBe(code);
        } finally {
          fs.closeSync(fd);
          a.close();
          b.close();
        }
      });
    });
  }

  it('rejects a non-array fds and a bad payload type', async () => {
    await expectNoFdLeak(() => {
      const [a, b] = socketPair();
      expect(codeOf(() => a.sendSync('x', 3 as never))).toBe('ERR_INVALID_ARG_TYPE');
      expect(codeOf(() => a.sendSync(42 as never))).toBe('ERR_INVALID_ARG_TYPE');
      expect(codeOf(() => b.recvSync({ timeoutMs: 0 }))).toBe('ETIMEDOUT');
      a.close();
      b.close();
    });
  });
});

describe('payloads', () => {
  const empties: Array<[string, unknown]> = [
    ["''", ''],
    ['undefined', undefined],
    ['null', null],
    ['an empty Buffer', Buffer.alloc(0)],
    ['an empty Uint8Array', new Uint8Array(0)],
  ];
  for (const [label, value] of empties) {
    it(`${label} arrives as exactly one NUL byte; sendSync returns 1`, async () => {
      await expectNoFdLeak(() => {
        for (const type of TYPES) {
          const [a, b] = socketPair(type);
          expect(a.sendSync(value as string)).toBe(1);
          const msg = b.recvSync({ timeoutMs: 5000 })!;
          expect([...msg.data]).toEqual([0]);
          expect(msg.fds).toEqual([]);
          a.close();
          b.close();
        }
      });
    });
  }

  it('send()/sendSync() return the byte length; a Uint8Array view sends only its own bytes', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      expect(a.sendSync('héllo')).toBe(6);
      expect(b.recvSync()!.data.toString()).toBe('héllo');
      const backing = new Uint8Array([1, 2, 3, 4, 5, 6]);
      expect(await a.send(backing.subarray(2, 5))).toBe(3);
      expect([...(await b.recv())!.data]).toEqual([3, 4, 5]);
      a.close();
      b.close();
    });
  });
});

describe('maxFds', () => {
  it('keeps the first maxFds fds and really closes the rest', async () => {
    await expectNoFdLeak(() => {
      const [a, b] = socketPair();
      const fds = [0, 1, 2, 3, 4].map(() => fs.openSync(file, 'r'));
      try {
        a.sendSync('five', fds);
        const count = fdCount();
        const msg = b.recvSync({ maxFds: 2 })!;
        expect(msg.data.toString()).toBe('five');
        expect(msg.fds).toHaveLength(2);
        expect(msg.droppedFds).toBe(3);
        expect(sameFile(msg.fds[0].fd, fds[0])).toBe(true);
        expect(fdCount()).toBe(count + 2); // the other 3 are not open
        closeAll(msg);
        expect(fdCount()).toBe(count);
      } finally {
        for (const fd of fds) fs.closeSync(fd);
        a.close();
        b.close();
      }
    });
  });

  it('maxFds 0 returns the data and closes every fd (async recv too)', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      const fd = fs.openSync(file, 'r');
      try {
        a.sendSync('x', [fd, fd, fd]);
        a.sendSync('y', [fd]);
        const count = fdCount();
        const m1 = b.recvSync({ maxFds: 0 })!;
        expect(m1.data.toString()).toBe('x');
        expect(m1.fds).toEqual([]);
        expect(m1.droppedFds).toBe(3);
        const m2 = (await b.recv({ maxFds: 0 }))!;
        expect(m2.data.toString()).toBe('y');
        expect(m2.droppedFds).toBe(1);
        expect(fdCount()).toBe(count);
      } finally {
        fs.closeSync(fd);
        a.close();
        b.close();
      }
    });
  });

  it('rejects out-of-range maxFds / maxBytes / timeoutMs with ERR_OUT_OF_RANGE', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      a.sendSync('kept');
      for (const opts of [{ maxFds: -1 }, { maxFds: 254 }, { maxFds: 1.5 }, { maxBytes: 0 }, { timeoutMs: -2 }]) {
        const err = catchError(() => b.recvSync(opts));
        expect(err).toBeInstanceOf(RangeError);
        expect(err.code).toBe('ERR_OUT_OF_RANGE');
      }
      expect((await rejection(b.recv({ maxFds: 300 }))).code).toBe('ERR_OUT_OF_RANGE');
      // The message was not consumed by any of those.
      expect(b.recvSync()!.data.toString()).toBe('kept');
      a.close();
      b.close();
    });
  });
});

describe('maxBytes', () => {
  for (const type of [...MESSAGE_TYPES, 'dgram'] as const) {
    it(`${type}: a longer message fails with ERR_FDPASS_TRUNC, its fds are closed, the socket still works`, async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        const fd = fs.openSync(file, 'r');
        try {
          a.sendSync(Buffer.alloc(100, 7), [fd, fd]);
          a.sendSync('after', [fd]);
          const count = fdCount();
          const err = catchError(() => b.recvSync({ maxBytes: 10 }));
          expect(err).toBeInstanceOf(FdPassError);
          expect(err.code).toBe('ERR_FDPASS_TRUNC');
          expect(fdCount()).toBe(count);
          const next = b.recvSync({ maxBytes: 10 })!;
          expect(next.data.toString()).toBe('after');
          expect(next.fds).toHaveLength(1);
          closeAll(next);
          // Async path too.
          a.sendSync(Buffer.alloc(50), [fd]);
          expect((await rejection(b.recv({ maxBytes: 49 }))).code).toBe('ERR_FDPASS_TRUNC');
          expect(fdCount()).toBe(count);
          a.sendSync('fits');
          expect((await b.recv({ maxBytes: 4 }))!.data.toString()).toBe('fits');
        } finally {
          fs.closeSync(fd);
          a.close();
          b.close();
        }
      });
    });
  }

  it('stream: the rest of the bytes come with the next recv, the fd only with the first', async () => {
    await expectNoFdLeak(() => {
      const [a, b] = socketPair('stream');
      const fd = fs.openSync(file, 'r');
      try {
        a.sendSync('abcdefghij', [fd]);
        const first = b.recvSync({ maxBytes: 4 })!;
        expect(first.data.toString()).toBe('abcd');
        expect(first.fds).toHaveLength(1);
        const second = b.recvSync({ maxBytes: 100 })!;
        expect(second.data.toString()).toBe('efghij');
        expect(second.fds).toEqual([]);
        closeAll(first);
      } finally {
        fs.closeSync(fd);
        a.close();
        b.close();
      }
    });
  });
});

describe('MSG_CTRUNC', () => {
  it('a receiver out of descriptor slots gets ERR_FDPASS_CTRUNC, keeps its fd table, and receives the next message', async () => {
    // Route: a tsx child lowers its own RLIMIT_NOFILE with setrlimit(2) (via koffi) so that
    // only 3 descriptor numbers are free, then receives a message carrying 20 fds.
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      const [r, w] = makePipe();
      try {
        a.sendSync('many', new Array(20).fill(w));
        a.sendSync('one', [w]);
        const fixture = spawnFixture('ctrunc-receiver', [], [b.fd]);
        b.close();
        fs.closeSync(w);
        const result = await fixture.exited;
        expect(result.stderr).toBe('');
        expect(result.code).toBe(0);
        const report = JSON.parse(result.stdout.trim());
        expect(report.first.code).toBe('ERR_FDPASS_CTRUNC');
        expect(report.first.syscall).toBe('recvmsg');
        expect(report.first.message).toContain('the 3 that arrived were closed');
        expect(report.fdsAfterCtrunc).toEqual(report.fdsBefore);
        expect(report.fdsUnchanged).toBe(true);
        expect(report.second).toEqual({ data: 'one', fds: 1, kind: 'pipe' });
        const buf = Buffer.alloc(16);
        const n = fs.readSync(r, buf);
        expect(buf.toString('utf8', 0, n)).toBe('ok');
        expect(fs.readSync(r, buf)).toBe(0); // EOF: the child held no other copy of w
      } finally {
        fs.closeSync(r);
        a.close();
        b.close();
      }
    });
  });
});

describe('end of stream', () => {
  for (const type of ['stream', ...MESSAGE_TYPES] as const) {
    it(`${type}: recvSync()/recv() return queued messages, then null once the peer closed`, async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        a.sendSync('last');
        a.close();
        expect(b.recvSync()!.data.toString()).toBe('last');
        expect(b.recvSync()).toBeNull();
        expect(await b.recv()).toBeNull();
        expect(b.recvSync()).toBeNull();
        b.close();
      });
    });

    it(`${type}: a pending recv() resolves null when the peer closes`, async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        const pending = b.recv();
        await tick();
        a.close();
        expect(await pending).toBeNull();
        b.close();
      });
    });

    it(`${type}: for await yields every message, then ends at EOF`, async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        const fd = fs.openSync(file, 'r');
        const got: string[] = [];
        let fds = 0;
        const reader = (async () => {
          for await (const m of b) {
            got.push(m.data.toString());
            fds += m.fds.length;
            closeAll(m);
          }
        })();
        for (let i = 0; i < 5; i++) {
          await a.send(type === 'stream' ? `${i};` : `m${i}`, [fd]);
          await tick();
        }
        a.close();
        await reader;
        fs.closeSync(fd);
        b.close();
        if (type === 'stream') expect(got.join('')).toBe('0;1;2;3;4;');
        else expect(got).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
        expect(fds).toBe(5);
      });
    });
  }

  it('dgram: queued datagrams still arrive after the peer closed, and there is no EOF (null)', async () => {
    await expectNoFdLeak(() => {
      const [a, b] = socketPair('dgram');
      a.sendSync('1');
      a.sendSync('2');
      a.close();
      expect(b.recvSync({ timeoutMs: 1000 })!.data.toString()).toBe('1');
      expect(b.recvSync({ timeoutMs: 1000 })!.data.toString()).toBe('2');
      const err = catchError(() => b.recvSync({ timeoutMs: 0 }));
      expect(err.code).toBe('ETIMEDOUT');
      expect(err.syscall).toBe('recvmsg');
      b.close();
    });
  });
});

describe('async send/recv', () => {
  it('send() and recv() resolve', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      const fd = fs.openSync(file, 'r');
      expect(await a.send('async', [fd])).toBe(5);
      const msg = (await b.recv())!;
      expect(msg.data.toString()).toBe('async');
      expect(sameFile(msg.fds[0].fd, fd)).toBe(true);
      closeAll(msg);
      fs.closeSync(fd);
      a.close();
      b.close();
    });
  });

  it('1,000 concurrent send() calls with an fd each, on a queue that fills, all complete in order', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      const fd = fs.openSync(file, 'r');
      const ino = fs.fstatSync(fd).ino;
      const order: number[] = [];
      const sends: Promise<number>[] = [];
      for (let i = 0; i < 1000; i++) {
        sends.push(a.send(String(i), [fd]).then((n) => (order.push(i), n)));
      }
      await tick();
      // The queue is full: some sends went straight through, the rest are waiting.
      expect(order.length).toBeGreaterThan(0);
      expect(order.length).toBeLessThan(1000);
      expect(codeOf(() => a.sendSync('x'))).toBe('ERR_FDPASS_BUSY');
      const received: string[] = [];
      for (let i = 0; i < 1000; i++) {
        const m = (await b.recv())!;
        received.push(m.data.toString());
        expect(m.fds).toHaveLength(1);
        expect(fs.fstatSync(m.fds[0].fd).ino).toBe(ino);
        closeAll(m);
      }
      const lengths = await Promise.all(sends);
      expect(lengths).toEqual(Array.from({ length: 1000 }, (_, i) => String(i).length));
      expect(received).toEqual(Array.from({ length: 1000 }, (_, i) => String(i)));
      expect(order).toEqual(Array.from({ length: 1000 }, (_, i) => i));
      expect(codeOf(() => b.recvSync({ timeoutMs: 0 }))).toBe('ETIMEDOUT');
      fs.closeSync(fd);
      a.close();
      b.close();
    });
  });

  it('100 concurrent recv() calls are served in call order', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      const fd = fs.openSync(file, 'r');
      const recvs = Array.from({ length: 100 }, () => b.recv());
      await tick();
      expect(codeOf(() => b.recvSync({ timeoutMs: 0 }))).toBe('ERR_FDPASS_BUSY');
      for (let i = 0; i < 100; i++) a.sendSync(`r${i}`, i % 2 ? [fd] : []);
      const msgs = await Promise.all(recvs);
      expect(msgs.map((m) => m!.data.toString())).toEqual(Array.from({ length: 100 }, (_, i) => `r${i}`));
      expect(msgs.map((m) => m!.fds.length)).toEqual(Array.from({ length: 100 }, (_, i) => i % 2));
      msgs.forEach(closeAll);
      fs.closeSync(fd);
      a.close();
      b.close();
    });
  });

  it('stream: a multi-MB send with 1 fd, read slowly in chunks, arrives intact with exactly one fd', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair('stream');
      const fd = fs.openSync(file, 'r');
      const size = 6 * 1024 * 1024 + 123;
      const payload = Buffer.alloc(size);
      for (let i = 0; i < size; i++) payload[i] = (i * 131 + (i >>> 11)) & 0xff;
      let settled = false;
      const sending = a.send(payload, [fd]).finally(() => (settled = true));
      await tick();
      expect(settled).toBe(false); // a partial write happened: the rest waits for room
      const chunks: Buffer[] = [];
      let total = 0;
      let fdsSeen = 0;
      let reads = 0;
      while (total < size) {
        const m = (await b.recv({ maxBytes: 65536 }))!;
        expect(m).not.toBeNull();
        chunks.push(m.data);
        total += m.data.length;
        fdsSeen += m.fds.length;
        if (m.fds.length) expect(sameFile(m.fds[0].fd, fd)).toBe(true);
        closeAll(m);
        if (++reads % 4 === 0) await tick();
      }
      expect(await sending).toBe(size);
      expect(total).toBe(size);
      expect(Buffer.concat(chunks).equals(payload)).toBe(true);
      expect(fdsSeen).toBe(1);
      expect(codeOf(() => b.recvSync({ timeoutMs: 0 }))).toBe('ETIMEDOUT');
      fs.closeSync(fd);
      a.close();
      b.close();
    });
  });
});

describe('AbortSignal', () => {
  it('aborting a pending recv() rejects with AbortError and does not consume the next message', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      const ac = new AbortController();
      const reason = new Error('stop');
      const pending = b.recv({ signal: ac.signal });
      await tick();
      ac.abort(reason);
      const err = await rejection(pending);
      expect(err.name).toBe('AbortError');
      expect(err.code).toBe('ABORT_ERR');
      expect(err.cause).toBe(reason);
      a.sendSync('still here');
      expect((await b.recv())!.data.toString()).toBe('still here');
      await a.send('and again');
      expect(b.recvSync()!.data.toString()).toBe('and again');
      a.close();
      b.close();
    });
  });

  it('an already-aborted signal rejects at once, without a syscall', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      a.sendSync('queued');
      const signal = AbortSignal.abort();
      const err = await rejection(b.recv({ signal }));
      expect(err.name).toBe('AbortError');
      expect(err.code).toBe('ABORT_ERR');
      // recvmsg was never called: the queued message is still there.
      expect(b.recvSync()!.data.toString()).toBe('queued');
      const sendErr = await rejection(a.send('never', [], { signal }));
      expect(sendErr.name).toBe('AbortError');
      expect(codeOf(() => b.recvSync({ timeoutMs: 0 }))).toBe('ETIMEDOUT');
      a.close();
      b.close();
    });
  });

  it('rejects a signal that is not an AbortSignal', async () => {
    const [a, b] = socketPair();
    expect((await rejection(b.recv({ signal: {} as AbortSignal }))).code).toBe('ERR_INVALID_ARG_TYPE');
    expect((await rejection(a.send('x', [], { signal: 'no' as never }))).code).toBe('ERR_INVALID_ARG_TYPE');
    a.close();
    b.close();
  });

  it('aborting a send() blocked on a full queue rejects it; later sends still arrive in order', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      const fd = fs.openSync(file, 'r');
      const filled = fillQueue(a);
      expect(filled).toBeGreaterThan(0);
      // Waiting sends hold duplicates of their fds until they leave the queue.
      const count = fdCount();
      const ac = new AbortController();
      const blocked = a.send('aborted', [fd], { signal: ac.signal });
      const later = [a.send('later1', [fd]), a.send('later2')];
      expect(fdCount()).toBe(count + 2);
      await tick();
      ac.abort();
      const err = await rejection(blocked);
      expect(err.name).toBe('AbortError');
      expect(err.code).toBe('ABORT_ERR');
      expect(fdCount()).toBe(count + 1); // the aborted send's duplicate is closed at once
      // Drain with the async API: the queued sends need the event loop to go out.
      const got: string[] = [];
      for (let i = 0; i < filled + 2; i++) {
        const m = (await b.recv())!;
        got.push(m.data.toString());
        closeAll(m);
      }
      expect(got.slice(0, filled)).toEqual(Array.from({ length: filled }, (_, i) => `f${i}`));
      expect(got.slice(filled)).toEqual(['later1', 'later2']);
      expect(await Promise.all(later)).toEqual([6, 6]);
      expect(fdCount()).toBe(count);
      expect(codeOf(() => b.recvSync({ timeoutMs: 0 }))).toBe('ETIMEDOUT');
      fs.closeSync(fd);
      a.close();
      b.close();
    });
  });
});

describe('close()', () => {
  it('pending recv() resolves null; pending send() rejects with ERR_FDPASS_CLOSED; idempotent', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      const [c, d] = socketPair();
      const recv = b.recv();
      const filled = fillQueue(c);
      expect(filled).toBeGreaterThan(0);
      const send = c.send('blocked');
      const sendErr = rejection(send);
      await tick();
      b.close();
      c.close();
      expect(await recv).toBeNull();
      const err = await sendErr;
      expect(err).toBeInstanceOf(FdPassError);
      expect(err.code).toBe('ERR_FDPASS_CLOSED');
      b.close();
      c.close();
      expect(b.closed).toBe(true);
      expect(c.closed).toBe(true);
      // The blocked message never went out: d holds exactly the filler messages, then EOF.
      let n = 0;
      for (let m = d.recvSync(); m !== null; m = d.recvSync()) n++;
      expect(n).toBe(filled);
      a.close();
      d.close();
    });
  });

  it('using the socket after close throws ERR_FDPASS_CLOSED', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      a.close();
      expect(codeOf(() => a.fd)).toBe('ERR_FDPASS_CLOSED');
      expect(codeOf(() => a.sendSync('x'))).toBe('ERR_FDPASS_CLOSED');
      expect(codeOf(() => a.recvSync())).toBe('ERR_FDPASS_CLOSED');
      expect(codeOf(() => a.peerCredentials())).toBe('ERR_FDPASS_CLOSED');
      expect(codeOf(() => a.release())).toBe('ERR_FDPASS_CLOSED');
      expect((await rejection(a.send('x'))).code).toBe('ERR_FDPASS_CLOSED');
      expect((await rejection(a.recv())).code).toBe('ERR_FDPASS_CLOSED');
      b.close();
    });
  });

  it('`using` closes the socket at scope end (Symbol.dispose)', async () => {
    await expectNoFdLeak(() => {
      const [first, other] = socketPair();
      const count = fdCount();
      {
        using a = first;
        expect(a.closed).toBe(false);
      }
      expect(first.closed).toBe(true);
      expect(fdCount()).toBe(count - 1);
      expect(other.recvSync()).toBeNull(); // EOF: really closed
      other[Symbol.dispose]();
      expect(other.closed).toBe(true);
      expect(fdCount()).toBe(count - 2);
    });
  });
});

describe('keep-alive', () => {
  function waitForLine(child: ReturnType<typeof spawnFixture>['child'], line: string): Promise<void> {
    return new Promise((resolve, reject) => {
      let seen = '';
      child.stdout!.on('data', (d: Buffer | string) => {
        seen += d.toString();
        if (seen.split('\n').includes(line)) resolve();
      });
      child.once('exit', (code) => reject(new Error(`child exited (${code}) before printing ${line}; stdout: ${seen}`)));
    });
  }

  async function exitsOnItsOwn(fixture: ReturnType<typeof spawnFixture>): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const guard = setTimeout(() => fixture.child.kill('SIGKILL'), scaled(15_000));
    const result = await fixture.exited;
    clearTimeout(guard);
    expect(result.signal, `child had to be killed; stdout: ${result.stdout}`).toBeNull();
    return result;
  }

  it('idle sockets (after async work) do not keep the process alive', async () => {
    const result = await exitsOnItsOwn(spawnFixture('keepalive', ['idle']));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('idle ping pong\n');
  });

  it('a pending recv() keeps the process alive until a message arrives', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      const fixture = spawnFixture('keepalive', ['pending'], [b.fd]);
      b.close();
      try {
        await waitForLine(fixture.child, 'waiting');
        await new Promise((r) => setTimeout(r, 1000));
        expect(fixture.child.exitCode).toBeNull();
        expect(fixture.child.signalCode).toBeNull();
        a.sendSync('wake up');
        const result = await exitsOnItsOwn(fixture);
        expect(result.code).toBe(0);
        expect(result.stdout).toBe('waiting\ngot wake up\n');
      } finally {
        fixture.child.kill('SIGKILL');
        a.close();
      }
    });
  });

  it('a pending accept() keeps the process alive until a client connects', async () => {
    const name = `fdpass-keepalive-${process.pid}-${Date.now()}`;
    const fixture = spawnFixture('keepalive', ['accept', name]);
    try {
      await waitForLine(fixture.child, 'waiting');
      await new Promise((r) => setTimeout(r, 1000));
      expect(fixture.child.exitCode).toBeNull();
      const c = connectSync({ abstract: name });
      const result = await exitsOnItsOwn(fixture);
      expect(result.code).toBe(0);
      expect(result.stdout).toBe('waiting\naccepted\n');
      c.close();
    } finally {
      fixture.child.kill('SIGKILL');
    }
  });

  for (const mode of ['unref', 'unref-after']) {
    it(`${mode}: a pending recv() on an unref()'d socket does not keep the process alive`, async () => {
      const result = await exitsOnItsOwn(spawnFixture('keepalive', [mode]));
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toBe('waiting\n');
    });
  }
});

describe('peerCredentials()', () => {
  it('a socketPair peer is this process', async () => {
    await expectNoFdLeak(() => {
      const [a, b] = socketPair();
      expect(a.peerCredentials()).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
      expect(b.peerCredentials()).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
      a.close();
      b.close();
    });
  });
});

describe('errors', () => {
  for (const type of [...MESSAGE_TYPES, 'stream'] as const) {
    it(`${type}: sending to a closed peer is an EPIPE FdPassError with Node's error shape`, async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        b.close();
        const err = catchError(() => a.sendSync('x'));
        expect(err).toBeInstanceOf(FdPassError);
        expect(err).toBeInstanceOf(Error);
        expect(err.name).toBe('FdPassError');
        expect(err.code).toBe('EPIPE');
        expect(err.errno).toBe(-os.constants.errno.EPIPE);
        expect(err.errno).toBe(-32);
        expect(err.syscall).toBe('sendmsg');
        expect(err.message).toBe('sendmsg EPIPE');
        const asyncErr = await rejection(a.send('x'));
        expect(asyncErr.code).toBe('EPIPE');
        a.close();
      });
    });
  }

  it('no SIGPIPE: with SIGPIPE at its default action, an EPIPE send does not kill the process', async () => {
    // Node ignores SIGPIPE, which would hide a missing MSG_NOSIGNAL; the child restores the default
    // action, sees EPIPE from fdpass, then proves the signal is live with a plain write(2).
    const code = `
      import koffi from 'koffi';
      import { writeSync } from 'node:fs';
      const { socketPair, platform } = await import(${JSON.stringify(pathToFileURL(path.join(repoRoot, 'src/index.ts')).href)});
      const libc = koffi.load(platform.libcName);
      libc.func('void *signal(int sig, void *handler)')(13, null);
      const write = libc.func('intptr_t write(int fd, const void *buf, uintptr_t count)');
      for (const type of ${JSON.stringify([MESSAGE_TYPE, 'stream'])}) {
        const [a, b] = socketPair(type);
        b.close();
        try { a.sendSync('x'); writeSync(1, 'sent\\n'); } catch (e) { writeSync(1, e.code + '\\n'); }
        try { await a.send('x'); writeSync(1, 'sent\\n'); } catch (e) { writeSync(1, e.code + '\\n'); }
        // A plain write(2) on the stream socket raises SIGPIPE: proof the default action is live.
        if (type === 'stream') write(a.fd, Buffer.from('x'), 1);
      }
      writeSync(1, 'survived\\n');
    `;
    const child = spawn(...evalModuleCommand(code), { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('close', (c, s) => r([c, s])));
    expect(stderr).toBe('');
    // Minimal mode has neither MSG_NOSIGNAL nor (Linux has none) SO_NOSIGPIPE: only Node's own
    // SIG_IGN protects it, so with the default action restored the first stream send kills.
    expect(stdout).toBe(MINIMAL ? '' : 'EPIPE\nEPIPE\nEPIPE\nEPIPE\n');
    expect(signal).toBe('SIGPIPE');
    expect(exitCode).toBeNull();
  });
});

describe('adopt()', () => {
  it('wraps a socketpair fd obtained with release()', async () => {
    await expectNoFdLeak(() => {
      // A SOCK_STREAM socket is adopted as 'stream' where SEQPACKET exists, as 'framed' (the
      // message type a peer using fdpass's defaults speaks) where it does not.
      const streamType = MINIMAL ? 'framed' : 'stream';
      const [a, b] = socketPair(streamType);
      const n = a.release();
      expect(a.closed).toBe(true);
      expect(fs.fstatSync(n).isSocket()).toBe(true); // still open
      const s = adopt(n);
      expect(s.type).toBe(streamType);
      expect(s.fd).toBe(n);
      const fd = fs.openSync(file, 'r');
      s.sendSync('adopted', [fd]);
      const msg = b.recvSync()!;
      expect(msg.data.toString()).toBe('adopted');
      expect(sameFile(msg.fds[0].fd, fd)).toBe(true);
      closeAll(msg);
      fs.closeSync(fd);
      s.close();
      b.close();
    });
  });

  it('takes over an Fd (releasing it) and reads the socket type from the kernel', async () => {
    await expectNoFdLeak(() => {
      const [a, b] = socketPair('dgram');
      const owned = new Fd(a.release());
      const s = adopt(owned);
      expect(owned.closed).toBe(true);
      expect(s.type).toBe('dgram');
      s.sendSync('d');
      expect(b.recvSync()!.data.toString()).toBe('d');
      s.close();
      b.close();
    });
  });

  it('refuses a TCP socket with ERR_FDPASS_NOT_UNIX_SOCKET (and leaves it open)', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const { server, client, accepted } = await tcpConnection();
      try {
        const tcpFd = (client as unknown as { _handle: { fd: number } })._handle.fd;
        for (const value of [tcpFd, Fd.dup(tcpFd)]) {
          const err = catchError(() => adopt(value));
          expect(err).toBeInstanceOf(FdPassError);
          expect(err.code).toBe('ERR_FDPASS_NOT_UNIX_SOCKET');
          if (value instanceof Fd) {
            expect(value.closed).toBe(false); // not taken over
            value.close();
          }
        }
        expect(client.destroyed).toBe(false);
        expect(fs.fstatSync(tcpFd).isSocket()).toBe(true);
      } finally {
        client.destroy();
        accepted.destroy();
        await new Promise<void>((r) => server.close(() => r()));
      }
    });
  });

  it('refuses a pipe with ERR_FDPASS_NOT_UNIX_SOCKET', async () => {
    await expectNoFdLeak(() => {
      const [r, w] = makePipe();
      try {
        for (const fd of [r, w]) {
          const err = catchError(() => adopt(fd));
          expect(err).toBeInstanceOf(FdPassError);
          expect(err.code).toBe('ERR_FDPASS_NOT_UNIX_SOCKET');
        }
      } finally {
        fs.closeSync(r);
        fs.closeSync(w);
      }
    });
  });

  it('refuses a listening socket with an error pointing to adoptServer()', async () => {
    await expectNoFdLeak(() => {
      const server = listen({ abstract: `fdpass-adopt-${process.pid}-${Date.now()}` });
      try {
        const err = catchError(() => adopt(server.fd));
        expect(err).toBeInstanceOf(FdPassError);
        expect(err.code).toMatch(/^ERR_FDPASS_/);
        expect(err.message).toContain('adoptServer');
      } finally {
        server.close();
      }
    });
  });
});
