/**
 * USocket / UServer (src/usocket/): the `usocket`-compatible stream that carries fds with its
 * bytes — its API in one process, then its semantics against real other processes (tsx fixture
 * children and a plain Python reader).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, existsSync, fstatSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from './fdfs.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listen, pipe, socketPair, UnixStream, UnixStreamServer, UServer, USocket, type ReadWithFds } from '../src/index.js';
import { catchError, expectNoFdLeak, gc, repoRoot, requirePeer, scaled, spawnFixture, type Fixture } from './helpers.js';

const running = new Set<ChildProcess>();
afterEach(() => {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
});

let dir: string;
let seq = 0;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fdpass-usocket-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const sockPath = (): string => join(dir, `s${++seq}`);

function start(args: string[]): Fixture {
  const fx = spawnFixture('usocket-peer', args);
  running.add(fx.child);
  fx.child.on('exit', () => running.delete(fx.child));
  return fx;
}

/** A connected pair of USockets in this process (each end owns one fd of a stream socketpair). */
async function usocketPair(): Promise<[USocket, USocket]> {
  const [a, b] = socketPair('stream');
  const x = new USocket({ fd: a.release() });
  const y = new USocket({ fd: b.release() });
  await Promise.all([once(x, 'connected'), once(y, 'connected')]);
  return [x, y];
}

/** 'close' (events.once would reject on an 'error' emitted first). */
const closed = (s: USocket): Promise<void> => new Promise((r) => s.once('close', () => r()));

async function destroyBoth(...streams: USocket[]): Promise<void> {
  for (const s of streams) {
    if (!s.destroyed) {
      s.destroy();
    }
    if (!s.closed) await closed(s);
  }
}

/** A pipe whose read end holds `text` (and is the fd to pass); the caller closes the returned fd. */
function pipeHolding(text: string): number {
  const [r, w] = pipe();
  writeSync(w.fd, text);
  w.close();
  return r.release();
}

function readAll(fd: number): string {
  const buf = Buffer.alloc(256);
  const n = readSync(fd, buf, 0, buf.length, null);
  return buf.toString('utf8', 0, n);
}

/** Wait until `read(size, count)` gives something. */
async function readWhen(s: USocket, size: number | null, count: number | null): Promise<ReadWithFds> {
  for (;;) {
    const m = s.read(size, count) as ReadWithFds | null;
    if (m !== null) return m;
    await once(s, 'readable');
  }
}

const fdFlags = (fd: number): number => parseInt(/flags:\s*(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1], 8);
const O_CLOEXEC = 0o2000000;

async function listening(path: string): Promise<UServer> {
  const server = new UServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return server;
}

describe('USocket in one process', () => {
  it('is exported under usocket names and fdpass names', () => {
    expect(UnixStream).toBe(USocket);
    expect(UnixStreamServer).toBe(UServer);
  });

  it('writes a Buffer, a string, an array of fds, and { data, fds, callback }; reads them with read(size, count)', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = await usocketPair();
      const f1 = pipeHolding('one');
      const f2 = pipeHolding('two');
      const order: string[] = [];
      a.write(Buffer.from('ab'));
      a.write('cd');
      a.write([f1]); // no bytes: rides with the next ones
      const request = { data: Buffer.from('ef'), fds: [f2], callback: (r: unknown) => order.push(r === request ? 'request callback' : 'wrong argument') };
      a.write(request, () => order.push('write callback'));
      const m1 = await readWhen(b, 4, 0);
      expect(m1.data!.toString()).toBe('abcd');
      expect(m1.fds).toEqual([]);
      const m2 = await readWhen(b, 2, 2);
      expect(m2.data!.toString()).toBe('ef');
      expect(m2.fds.map(readAll)).toEqual(['one', 'two']);
      await new Promise((r) => setImmediate(r));
      // The request's callback comes once the fds are in the kernel, before the Writable's own.
      expect(order).toEqual(['request callback', 'write callback']);
      m2.fds.forEach((fd) => closeSync(fd));
      closeSync(f1);
      closeSync(f2);
      await destroyBoth(a, b);
    });
  });

  it('read(size, count) is null until both the bytes and the fds are there, and takes nothing then', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = await usocketPair();
      const f = pipeHolding('x');
      a.write({ data: Buffer.from('abc'), fds: [f], callback: () => closeSync(f) });
      await once(b, 'readable');
      expect(b.read(4, 1)).toBeNull(); // 3 of 4 bytes
      expect(b.read(3, 2)).toBeNull(); // 1 of 2 fds
      const m = b.read(3, 1) as ReadWithFds;
      expect(m.data!.toString()).toBe('abc');
      expect(m.fds.map(readAll)).toEqual(['x']);
      closeSync(m.fds[0]);
      await destroyBoth(a, b);
    });
  });

  it('a read(size) without count leaves the fds queued for the next read(size, count)', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = await usocketPair();
      const f = pipeHolding('kept');
      a.write({ data: Buffer.from('header+body'), fds: [f], callback: () => closeSync(f) });
      await once(b, 'readable');
      expect((b.read(6) as Buffer).toString()).toBe('header');
      const m = b.read(5, 1) as ReadWithFds;
      expect(m.data!.toString()).toBe('+body');
      expect(m.fds.map(readAll)).toEqual(['kept']);
      closeSync(m.fds[0]);
      await destroyBoth(a, b);
    });
  });

  it('count null takes the fds that came with the bytes read so far, not those of later bytes; count 0 takes none; size null takes all bytes', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = await usocketPair();
      const fds = ['m1', 'm2a', 'm2b'].map(pipeHolding);
      let sent = 0;
      const closeWhenSent = () => {
        if (++sent === 2) fds.forEach((fd) => closeSync(fd));
      };
      a.write({ data: Buffer.from('first'), fds: [fds[0]], callback: closeWhenSent });
      a.write({ data: Buffer.from('second'), fds: [fds[1], fds[2]], callback: closeWhenSent });
      a.end();
      await once(b, 'readable');
      while (b.readableLength < 11) await once(b, 'readable');
      const first = b.read(5, null) as ReadWithFds;
      expect(first.data!.toString()).toBe('first');
      expect(first.fds.map(readAll)).toEqual(['m1']);
      const none = b.read(0, 0) as ReadWithFds;
      expect(none).toEqual({ data: null, fds: [] });
      expect(b.read(0, null)).toEqual({ data: null, fds: [] }); // 'second' not read yet: its fds wait
      const rest = b.read(null, null) as ReadWithFds;
      expect(rest.data!.toString()).toBe('second');
      expect(rest.fds.map(readAll)).toEqual(['m2a', 'm2b']);
      [...first.fds, ...rest.fds].forEach((fd) => closeSync(fd));
      await destroyBoth(a, b);
    });
  });

  it('count null: bytes without fds and bytes with fds joined by one recvmsg give the fds to the later bytes only', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = await usocketPair();
      const f = pipeHolding('late');
      // Both writes are in the kernel before b reads: one recvmsg returns all 8 bytes and the fd
      // (the kernel stops after the write that carried fds, so they belong to the chunk's end).
      a.write(Buffer.from('aaaa'));
      a.write({ data: Buffer.from('bbbb'), fds: [f], callback: () => closeSync(f) });
      await new Promise((r) => setImmediate(r));
      const first = await readWhen(b, 4, null);
      expect(first).toEqual({ data: Buffer.from('aaaa'), fds: [] });
      const second = await readWhen(b, 4, null);
      expect(second.data!.toString()).toBe('bbbb');
      expect(second.fds.map(readAll)).toEqual(['late']);
      closeSync(second.fds[0]);
      await destroyBoth(a, b);
    });
  });

  it('the same Buffer written plain and then with fds: the fds ride with the second write (corked, sent by one _writev)', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = await usocketPair();
      const f = pipeHolding('second');
      const buf = Buffer.from('ab');
      a.cork();
      a.write(buf);
      a.write({ data: buf, fds: [f], callback: () => closeSync(f) });
      a.write('cd');
      a.uncork();
      while (b.readableLength < 6) {
        b.read(0);
        await once(b, 'readable');
      }
      expect(b.read(2, null)).toEqual({ data: Buffer.from('ab'), fds: [] });
      const second = b.read(2, null) as ReadWithFds;
      expect(second.data!.toString()).toBe('ab');
      expect(second.fds.map(readAll)).toEqual(['second']);
      expect(b.read(2, null)).toEqual({ data: Buffer.from('cd'), fds: [] });
      closeSync(second.fds[0]);
      await destroyBoth(a, b);
    });
  });

  it('unshift(buffer, fds) puts the bytes and the fds back, in order, for the next read', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = await usocketPair();
      const f1 = pipeHolding('p');
      const f2 = pipeHolding('q');
      a.write({ data: Buffer.from('12345678'), fds: [f1, f2], callback: () => [f1, f2].forEach((fd) => closeSync(fd)) });
      const m = await readWhen(b, 8, 2);
      b.unshift(m.data!.subarray(4), m.fds.slice(1));
      b.unshift(m.data!.subarray(0, 4), m.fds.slice(0, 1));
      const again = b.read(8, null) as ReadWithFds;
      expect(again.data!.toString()).toBe('12345678');
      expect(again.fds).toEqual(m.fds);
      expect(again.fds.map(readAll)).toEqual(['p', 'q']);
      again.fds.forEach((fd) => closeSync(fd));
      await destroyBoth(a, b);
    });
  });

  it('closes the fds still queued when the stream is destroyed, and emits close', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = await usocketPair();
      const fds = [pipeHolding('1'), pipeHolding('2'), pipeHolding('3')];
      a.write({ data: Buffer.from('xyz'), fds, callback: () => fds.forEach((fd) => closeSync(fd)) });
      await once(b, 'readable');
      expect((b.read(3) as Buffer).toString()).toBe('xyz'); // the bytes, not the fds
      const done = closed(b);
      b.destroy();
      await done;
      expect(b.read(0, null)).toBeNull();
      // Handed back after destroy: closed too, not leaked.
      const late = pipeHolding('late');
      b.unshift(null, [late]);
      expect(() => fstatSync(late)).toThrow(/EBADF/);
      await destroyBoth(a);
    });
  });

  it('fds written with no bytes ride with the next bytes; end() with such fds still waiting fails', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = await usocketPair();
      const f = pipeHolding('alone');
      const errors: string[] = [];
      a.on('error', (err: Error & { code?: string }) => errors.push(err.code!));
      a.write([f]);
      a.end();
      await closed(a);
      expect(errors).toEqual(['ERR_FDPASS_NO_BYTES']);
      closeSync(f);
      await destroyBoth(b);
    });
  });

  it('received fds are close-on-exec', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = await usocketPair();
      const f = pipeHolding('c');
      a.write({ data: Buffer.from('c'), fds: [f], callback: () => closeSync(f) });
      const m = await readWhen(b, 1, 1);
      expect(fdFlags(f) & O_CLOEXEC).toBe(O_CLOEXEC); // pipe() makes them so too; check the received one
      expect(fdFlags(m.fds[0]) & O_CLOEXEC).toBe(O_CLOEXEC);
      closeSync(m.fds[0]);
      await destroyBoth(a, b);
    });
  });

  it('survives GC pressure: 64 KiB writes whose buffers are dropped at once arrive intact', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = await usocketPair();
      const want = createHash('sha256');
      const got = createHash('sha256');
      let received = 0;
      b.on('data', (d: Buffer) => {
        got.update(d);
        received += d.length;
      });
      const total = 64;
      for (let i = 0; i < total; i++) {
        const chunk = Buffer.alloc(65536, i);
        want.update(chunk);
        if (!a.write(chunk)) {
          gc();
          await once(a, 'drain');
        }
        if (i % 8 === 0) gc();
      }
      a.end();
      await once(b, 'end');
      expect(received).toBe(total * 65536);
      expect(got.digest('hex')).toBe(want.digest('hex'));
      await destroyBoth(a, b);
    });
  });

  it('connects by path, by { path }, by an abstract "\\0name", and { fd }; the callback runs on connected', async () => {
    await expectNoFdLeak(async () => {
      const path = sockPath();
      const abstractName = `\0fdpass-usocket-test-${process.pid}`;
      const server = await listening(path);
      const abstractServer = new UServer();
      await new Promise<void>((r) => abstractServer.listen({ path: abstractName }, () => r()));
      const forms: [string, UServer, (onConnected: () => void) => USocket][] = [
        ['path', server, (cb) => new USocket(path, cb)],
        ['{ path }', server, (cb) => new USocket({ path }, cb)],
        ['connect(path, cb)', server, (cb) => new USocket().connect(path, cb)],
        ['abstract', abstractServer, (cb) => new USocket(abstractName, cb)],
        ['{ path: abstract }', abstractServer, (cb) => new USocket().connect({ path: abstractName }, cb)],
      ];
      for (const [form, srv, make] of forms) {
        const accepted = once(srv, 'connection') as Promise<[USocket]>;
        let client!: USocket;
        await new Promise<void>((r) => (client = make(r)));
        const [conn] = await accepted;
        expect(typeof client.fd, form).toBe('number');
        expect(typeof conn.fd, form).toBe('number');
        client.write(form);
        const m = await readWhen(conn, form.length, 0);
        expect(m.data!.toString()).toBe(form);
        expect(() => client.connect(path)).toThrow(/already connected/);
        await destroyBoth(client, conn);
      }
      // { fd }: a connected stream socket made elsewhere; 'connected' comes too.
      const [x, y] = socketPair('stream');
      const viaFd = await new Promise<USocket>((r) => {
        const s: USocket = new USocket({ fd: x.release() }, () => r(s));
      });
      y.sendSync('hi');
      expect((await readWhen(viaFd, 2, 0)).data!.toString()).toBe('hi');
      y.close();
      await destroyBoth(viaFd);
      server.close();
      abstractServer.close();
      expect(existsSync(path)).toBe(false);
    });
  });

  it('writes made before the connection completes go once it does', async () => {
    await expectNoFdLeak(async () => {
      const path = sockPath();
      const server = await listening(path);
      const client = new USocket(path);
      const f = pipeHolding('early');
      client.write({ data: Buffer.from('early'), fds: [f], callback: () => closeSync(f) });
      client.end();
      const [conn] = (await once(server, 'connection')) as [USocket];
      const m = await readWhen(conn, 5, 1);
      expect(m.data!.toString()).toBe('early');
      expect(m.fds.map(readAll)).toEqual(['early']);
      closeSync(m.fds[0]);
      await destroyBoth(client, conn);
      server.close();
    });
  });

  it('a failed connect emits error then close; { fd } of a datagram socket is refused', async () => {
    await expectNoFdLeak(async () => {
      const events: string[] = [];
      const s = new USocket(join(dir, 'nobody-listens'));
      s.on('error', (err: Error & { code?: string; syscall?: string }) => events.push(`error ${err.code} ${err.syscall}`));
      s.on('close', () => events.push('close'));
      s.on('connected', () => events.push('connected'));
      await closed(s);
      expect(events).toEqual(['error ENOENT connect', 'close']);

      const [x, y] = socketPair('dgram');
      const t = new USocket({ fd: x.fd });
      const [err] = (await once(t, 'error')) as [Error & { code?: string }];
      expect(err.code).toBe('ERR_FDPASS_WRONG_KIND');
      expect(fstatSync(x.fd).isSocket()).toBe(true); // refused, so not taken: still the caller's
      x.close();
      y.close();
    });
  });

  it("writing to a peer that closed is an 'error' EPIPE (MSG_NOSIGNAL: no SIGPIPE), then 'close'", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = await usocketPair();
      b.destroy();
      await closed(b);
      const events: string[] = [];
      a.on('error', (err: Error & { code?: string; syscall?: string }) => events.push(`error ${err.code} ${err.syscall}`));
      const done = closed(a);
      a.write('into the void');
      await done;
      expect(events).toEqual(['error EPIPE sendmsg']);
    });
  });

  it('bad arguments throw TypeError/RangeError before any syscall', async () => {
    const [a, b] = await usocketPair();
    expect(catchError(() => a.write(42 as never)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(catchError(() => a.write({ data: 5 } as never)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(catchError(() => a.write({ data: Buffer.from('x'), fds: 'no' } as never)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(catchError(() => a.write({ data: Buffer.from('x'), callback: 1 } as never)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(catchError(() => a.write({} as never)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(catchError(() => a.write([-1])).code).toBe('ERR_OUT_OF_RANGE');
    expect(catchError(() => a.write(['x'] as never)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(catchError(() => a.write(new Array(254).fill(0))).code).toBe('ERR_OUT_OF_RANGE');
    expect(catchError(() => b.read(1, -1)).code).toBe('ERR_OUT_OF_RANGE');
    expect(catchError(() => b.read(1.5, 0)).code).toBe('ERR_OUT_OF_RANGE');
    expect(catchError(() => b.read(1, 'x' as never)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(catchError(() => new USocket().connect({} as never)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(catchError(() => new UServer().listen(3 as never)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(catchError(() => new UServer().listen(join(dir, 'x'), -2)).code).toBe('ERR_OUT_OF_RANGE');
    await destroyBoth(a, b);
  });

  it('UServer: listen(path, backlog, cb) and listen({ path, backlog }, cb); a live path is EADDRINUSE, a stale one replaced', async () => {
    await expectNoFdLeak(async () => {
      const path = sockPath();
      const first = new UServer();
      await new Promise<void>((r) => first.listen(path, 8, () => r()));
      expect(first.listening).toBe(true);
      const second = new UServer();
      second.listen({ path, backlog: 4 }, () => {
        throw new Error('must not listen');
      });
      const [err] = (await once(second, 'error')) as [Error & { code?: string }];
      expect(err.code).toBe('EADDRINUSE');
      // A socket file nobody listens on any more (its descriptor closed, the file left behind) is replaced.
      const stalePath = sockPath();
      closeSync(listen({ path: stalePath, type: 'stream' }).release());
      expect(existsSync(stalePath)).toBe(true);
      const third = new UServer();
      await new Promise<void>((r) => third.listen({ path: stalePath, backlog: 2 }, () => r()));
      const c = new USocket(stalePath);
      const [conn] = (await once(third, 'connection')) as [USocket];
      await destroyBoth(c, conn);
      first.close();
      third.close();
      await once(third, 'close');
      expect(existsSync(path)).toBe(false);
    });
  });

  it('UServer: a paused server emits no connection until resumed', async () => {
    await expectNoFdLeak(async () => {
      const path = sockPath();
      const server = await listening(path);
      server.pause();
      const got: USocket[] = [];
      server.on('connection', (c: USocket) => got.push(c));
      const client = new USocket(path);
      await once(client, 'connected'); // the kernel completes it from the backlog
      await new Promise((r) => setTimeout(r, 200));
      expect(got).toHaveLength(0);
      server.resume();
      await once(server, 'connection');
      expect(got).toHaveLength(1);
      await destroyBoth(client, ...got);
      server.close();
    });
  });
});

type Line = Record<string, any>;
const lines = (stdout: string): Line[] => stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);

describe('USocket across processes', () => {
  it('fds stay with their bytes both ways: 300 records with 0-3 fds each, echoed by a child reading read(8, null)', async () => {
    await expectNoFdLeak(async () => {
      const path = sockPath();
      const server = await listening(path);
      const fx = start(['echo', path]);
      const [conn] = (await once(server, 'connection')) as [USocket];
      const n = 300;
      const sent: number[][] = [];
      for (let i = 0; i < n; i++) {
        const fds = Array.from({ length: i % 4 }, (_, k) => pipeHolding(`r${i}f${k}`));
        sent.push(fds);
        const data = Buffer.alloc(8);
        data.writeUInt32LE(i, 0);
        data.writeUInt32LE(fds.length, 4);
        // Written back to back, so the child finds many records (and their fds) queued at once.
        conn.write({ data, fds, callback: () => fds.forEach((fd) => closeSync(fd)) });
      }
      conn.end();
      for (let i = 0; i < n; i++) {
        const header = await readWhen(conn, 8, 0);
        expect(header.data!.readUInt32LE(0)).toBe(i);
        const count = header.data!.readUInt32LE(4);
        expect(count).toBe(i % 4);
        const { fds } = await readWhen(conn, 0, count);
        expect(fds.map(readAll)).toEqual(Array.from({ length: count }, (_, k) => `r${i}f${k}`));
        for (const fd of fds) {
          expect(fdFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);
          closeSync(fd);
        }
      }
      const ended = once(conn, 'end');
      conn.read(0);
      await ended;
      const { code, stdout, stderr } = await fx.exited;
      expect(stderr).toBe('');
      expect(lines(stdout)).toEqual([]); // no mismatch reported by the child
      expect(code).toBe(0);
      server.close();
    });
  });

  it('receives 500 records with one pipe each from a child, in order (read(4, 1), or read(4) then read(0, 1)), then end; received fds are close-on-exec', async () => {
    await expectNoFdLeak(async () => {
      const path = sockPath();
      const server = await listening(path);
      const fx = start(['send', path, '500']);
      const [conn] = (await once(server, 'connection')) as [USocket];
      const ended = once(conn, 'end');
      for (let i = 0; i < 500; i++) {
        let m: ReadWithFds;
        if (i % 2 === 0) m = await readWhen(conn, 4, 1);
        else {
          // The bytes alone first: the fd stays queued for the next read(size, count).
          while (conn.readableLength < 4) await once(conn, 'readable');
          const bytes = conn.read(4) as Buffer;
          m = { ...(await readWhen(conn, 0, 1)), data: bytes };
        }
        expect(m.data!.readUInt32LE(0)).toBe(i);
        expect(fdFlags(m.fds[0]) & O_CLOEXEC).toBe(O_CLOEXEC);
        expect(readAll(m.fds[0])).toBe(`fd-${i}`);
        closeSync(m.fds[0]);
      }
      conn.read(0);
      await ended;
      conn.end();
      await closed(conn);
      expect((await fx.exited).code).toBe(0);
      server.close();
    });
  });

  it('closes the fds received from a child but not read when the stream is destroyed', async () => {
    await expectNoFdLeak(async () => {
      const path = sockPath();
      const server = await listening(path);
      const fx = start(['send', path, '200']);
      const [conn] = (await once(server, 'connection')) as [USocket];
      // Take bytes only, until some records' fds are surely queued here.
      let taken = 0;
      while (taken < 40) {
        const b = conn.read(4) as Buffer | null;
        if (b === null) await once(conn, 'readable');
        else taken++;
      }
      const done = closed(conn);
      conn.destroy();
      await done;
      await fx.exited; // the child may see EPIPE/ECONNRESET: only this process's fds matter here
      server.close();
    });
  });

  it('backpressure: write returns false while a child does not read, drain comes when it does, every byte and fd arrives', async () => {
    await expectNoFdLeak(async () => {
      const path = sockPath();
      const server = await listening(path);
      const fx = start(['sink', path, '400']);
      const [conn] = (await once(server, 'connection')) as [USocket];
      const hash = createHash('sha256');
      let drains = 0;
      let refusals = 0;
      let fdsSent = 0;
      const file = openSync(join(repoRoot, 'package.json'), 'r');
      let longestWait = 0;
      for (let i = 0; i < 256; i++) {
        const chunk = Buffer.alloc(32768, i & 0xff);
        hash.update(chunk);
        const withFd = i % 16 === 0;
        if (withFd) fdsSent++;
        const ok = withFd ? conn.write({ data: chunk, fds: [file] }) : conn.write(chunk);
        if (!ok) {
          refusals++;
          const waitFrom = Date.now();
          await once(conn, 'drain');
          longestWait = Math.max(longestWait, Date.now() - waitFrom);
          drains++;
        }
      }
      conn.end(() => closeSync(file)); // every write, and so every fd, has gone
      const { code, stdout } = await fx.exited;
      expect(code).toBe(0);
      expect(lines(stdout)).toEqual([{ bytes: 256 * 32768, fds: fdsSent, sha256: hash.digest('hex') }]);
      expect(refusals).toBeGreaterThan(0);
      expect(drains).toBe(refusals);
      // While the child did not read (400 ms), the socket filled up and 'drain' kept us waiting.
      expect(longestWait).toBeGreaterThan(200);
      await destroyBoth(conn);
      server.close();
    });
  });

  it('a write the kernel takes in parts sends its fds once, with its first byte (a plain Python reader counts them)', async () => {
    requirePeer('python3');
    await expectNoFdLeak(async () => {
      const path = sockPath();
      const server = await listening(path);
      // The reader sleeps this long before reading (longer under emulation, where filling `big`
      // alone takes a good part of 500 ms).
      const delayMs = scaled(500);
      const py = spawn('python3', [join(repoRoot, 'test/fixtures/usocket-fd-counter.py'), path, String(delayMs / 1000)], { stdio: ['ignore', 'pipe', 'pipe'] });
      running.add(py);
      let stdout = '';
      let stderr = '';
      py.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      py.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const exited = new Promise<number | null>((r) => py.on('close', (c) => r(c)));
      const [conn] = (await once(server, 'connection')) as [USocket];
      const big = Buffer.alloc(4 << 20);
      for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i * 2654435761 >>> 0, i);
      const second = Buffer.alloc(1 << 20, 7);
      const fds = [pipeHolding('a'), pipeHolding('b'), pipeHolding('c')];
      const firstDone = new Promise<number>((r) => conn.write({ data: big, fds: [fds[0]], callback: () => r(Date.now()) }));
      conn.write({ data: second, fds: [fds[1], fds[2]] });
      conn.end();
      // Listening before the first callback: when the reader drains fast, 'finish' comes in the
      // same turn as that callback.
      const finished = once(conn, 'finish');
      const firstDoneAt = await firstDone;
      await finished;
      fds.forEach((fd) => closeSync(fd));
      expect(await exited).toBe(0);
      expect(stderr).toBe('');
      const result = lines(stdout).at(-1)!;
      expect(result.bytes).toBe(big.length + second.length);
      expect(result.sha256).toBe(createHash('sha256').update(big).update(second).digest('hex'));
      // Three fds, each once: the first with the first bytes of the 4 MiB write, the other two
      // together, with a chunk holding the first byte of the second write.
      const chunks = result.fdChunks as [number, number][];
      expect(chunks).toHaveLength(3);
      expect(chunks[0][0]).toBe(0);
      expect(chunks[1]).toEqual(chunks[2]);
      expect(chunks[1][0]).toBeLessThanOrEqual(big.length);
      expect(chunks[1][1]).toBeGreaterThan(big.length);
      // The 4 MiB write went in parts: its callback waited for the reader to start reading.
      const readingAt = lines(stdout).find((l) => l.reading !== undefined)!.reading as number;
      expect(firstDoneAt).toBeGreaterThanOrEqual(Math.floor(readingAt));
      await destroyBoth(conn);
      server.close();
    });
  });

  it("the peer's end of stream is 'end'; a connection reset is 'error' ECONNRESET, then 'close'", async () => {
    await expectNoFdLeak(async () => {
      const path = sockPath();
      const server = await listening(path);
      const fx = start(['reset', path]);
      const [conn] = (await once(server, 'connection')) as [USocket];
      const events: string[] = [];
      conn.on('error', (err: Error & { code?: string; syscall?: string }) => events.push(`error ${err.code} ${err.syscall}`));
      conn.on('end', () => events.push('end'));
      conn.on('data', () => events.push('data'));
      conn.write(Buffer.alloc(1000)); // left unread by the child, which then exits
      await closed(conn);
      expect(events).toEqual(['error ECONNRESET recvmsg']);
      expect((await fx.exited).code).toBe(0);
      server.close();
    });
  });

  it('keeps the process alive only while connected and flowing', async () => {
    const path = sockPath();
    const server = await listening(path);
    const conns: USocket[] = [];
    server.on('connection', (c: USocket) => conns.push(c));
    const hows = ['flowing', 'paused', 'idle'] as const;
    const children = hows.map((how) => start(['keepalive', path, how]));
    const exits = children.map((fx) => fx.exited.then((r) => ({ ...r, at: Date.now() })));
    // All connected (each says so), then the paused and the idle one exit on their own.
    await Promise.all(children.map((fx) => new Promise<void>((resolve) => {
      let seen = '';
      fx.child.stdout!.on('data', (d: string) => {
        seen += d;
        if (seen.includes('"connected":true')) resolve();
      });
    })));
    const [paused, idle] = await Promise.all([exits[1], exits[2]]);
    // The flowing one is still there well after they left, with nothing coming in.
    await new Promise((r) => setTimeout(r, 700));
    expect(children[0].child.exitCode).toBeNull();
    expect(children[0].child.signalCode).toBeNull();
    // End its stream: at 'end' nothing holds it any more.
    const endedAt = Date.now();
    for (const c of conns) c.end();
    const flowing = await exits[0];
    for (const r of [flowing, paused, idle]) {
      expect(r.code).toBe(0);
      expect(lines(r.stdout).some((l) => 'exitAfterMs' in l)).toBe(true);
    }
    expect(flowing.at).toBeGreaterThanOrEqual(endedAt);
    await destroyBoth(...conns);
    server.close();
  });
});
