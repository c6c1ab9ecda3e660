/** listen / connect / accept, in one process (python3 only to leave a stale socket file behind). */
import { spawnSync } from 'node:child_process';
import * as fs from './fdfs.js';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adoptServer, connect, connectSync, describeFd, Fd, FdPassError, listen, socketPair, type UnixSocket } from '../src/index.js';
import { catchError, expectNoFdLeak, fdCount, rejection, requirePeer } from './helpers.js';
import { MESSAGE_KERNEL_TYPE, MESSAGE_TYPE, MINIMAL } from './mode.js';

/**
 * What connect() detects on a SOCK_STREAM server: 'stream' where SEQPACKET exists, 'framed'
 * (fdpass's message type there) where it does not. Servers below listen with it so the two match.
 */
const STREAM_DETECTED = MINIMAL ? 'framed' : 'stream';

let dir: string;
let seq = 0;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-server-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const sockPath = (): string => path.join(dir, `s${++seq}.sock`);
const abstractName = (): string => `fdpass-test-${process.pid}-${Date.now()}-${++seq}`;
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** client -> server and server -> client, each with an fd; checks both arrive intact. */
function roundTrip(client: UnixSocket, conn: UnixSocket, file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    client.sendSync('ping', [fd]);
    const m = conn.recvSync({ timeoutMs: 5000 })!;
    expect(m.data.toString()).toBe('ping');
    expect(m.fds).toHaveLength(1);
    expect(m.fds[0].describe().path).toBe(file);
    conn.sendSync('pong', m.fds);
    m.fds[0].close();
    const back = client.recvSync({ timeoutMs: 5000 })!;
    expect(back.data.toString()).toBe('pong');
    expect(back.fds[0].describe().path).toBe(file);
    back.fds[0].close();
  } finally {
    fs.closeSync(fd);
  }
}

function dataFile(): string {
  const f = path.join(dir, `data${++seq}.txt`);
  fs.writeFileSync(f, 'data');
  return f;
}

describe('listen / connect', () => {
  it('listen(path) defaults to seqpacket (framed without SEQPACKET); connect auto-detects it', async () => {
    await expectNoFdLeak(async () => {
      const p = sockPath();
      const server = listen(p);
      expect(server.type).toBe(MESSAGE_TYPE);
      expect(server.path).toBe(p);
      expect(server.abstract).toBeUndefined();
      expect(fs.lstatSync(p).isSocket()).toBe(true);
      expect(describeFd(server.fd).socket).toMatchObject({ family: 'unix', type: MESSAGE_KERNEL_TYPE, listening: true, path: p });
      const client = await connect(p);
      expect(client.type).toBe(MESSAGE_TYPE);
      const conn = await server.accept();
      expect(conn.type).toBe(MESSAGE_TYPE);
      // Message boundaries are kept: two sends are two receives.
      client.sendSync('one');
      client.sendSync('two');
      expect(conn.recvSync()!.data.toString()).toBe('one');
      expect(conn.recvSync()!.data.toString()).toBe('two');
      roundTrip(client, conn, dataFile());
      expect(conn.peerCredentials().pid).toBe(process.pid);
      client.close();
      expect(conn.recvSync()).toBeNull();
      conn.close();
      server.close();
    });
  });

  it(`connect auto-detects a SOCK_STREAM server ('${STREAM_DETECTED}'); connectSync too`, async () => {
    await expectNoFdLeak(async () => {
      const p = sockPath();
      const server = listen({ path: p, type: STREAM_DETECTED });
      expect(server.type).toBe(STREAM_DETECTED);
      expect(describeFd(server.fd).socket).toMatchObject({ type: 'stream', listening: true });
      const c1 = await connect(p);
      expect(c1.type).toBe(STREAM_DETECTED);
      const c2 = connectSync(p);
      expect(c2.type).toBe(STREAM_DETECTED);
      const c3 = connectSync({ path: p, type: STREAM_DETECTED });
      const s1 = server.acceptSync({ timeoutMs: 5000 });
      const s2 = await server.accept();
      const s3 = await server.accept();
      expect(s1.type).toBe(STREAM_DETECTED);
      roundTrip(c1, s1, dataFile());
      roundTrip(c2, s2, dataFile());
      roundTrip(c3, s3, dataFile());
      // The wrong explicit type is an error, not a silent fallback (and where there is no
      // SEQPACKET at all, asking for it is ERR_FDPASS_UNSUPPORTED before any syscall).
      expect(catchError(() => connectSync({ path: p, type: 'seqpacket' })).code).toBe(MINIMAL ? 'ERR_FDPASS_UNSUPPORTED' : 'EPROTOTYPE');
      expect(catchError(() => connectSync({ path: p, type: 'dgram' })).code).toBe('EPROTOTYPE');
      for (const s of [c1, c2, c3, s1, s2, s3]) s.close();
      server.close();
    });
  });

  it('connect to a missing path fails with ENOENT (path in the error); nothing leaks', async () => {
    await expectNoFdLeak(async () => {
      const p = sockPath();
      const err = await rejection(connect(p));
      expect(err).toBeInstanceOf(FdPassError);
      expect(err.code).toBe('ENOENT');
      expect((err as FdPassError).syscall).toBe('connect');
      expect((err as FdPassError).path).toBe(p);
      expect(catchError(() => connectSync(p)).code).toBe('ENOENT');
    });
  });

  it('acceptSync({ timeoutMs }) throws ETIMEDOUT when nobody connects', async () => {
    await expectNoFdLeak(() => {
      const server = listen({ abstract: abstractName() });
      try {
        const err = catchError(() => server.acceptSync({ timeoutMs: 20 }));
        expect(err).toBeInstanceOf(FdPassError);
        expect(err.code).toBe('ETIMEDOUT');
        // And it still accepts afterwards.
        const c = connectSync({ abstract: server.abstract! });
        const s = server.acceptSync({ timeoutMs: 5000 });
        c.close();
        expect(s.recvSync()).toBeNull();
        s.close();
      } finally {
        server.close();
      }
    });
  });

  it('for await (const c of server) yields connections and ends when the server is closed', async () => {
    await expectNoFdLeak(async () => {
      const server = listen(sockPath());
      const seen: string[] = [];
      const loop = (async () => {
        for await (const conn of server) {
          const m = await conn.recv();
          seen.push(m!.data.toString());
          conn.close();
        }
      })();
      for (let i = 0; i < 3; i++) {
        const c = await connect(server.path!);
        await c.send(`c${i}`);
        await tick();
        c.close();
      }
      while (seen.length < 3) await tick();
      server.close();
      await loop;
      expect(seen).toEqual(['c0', 'c1', 'c2']);
    });
  });
});

describe('socket file mode', () => {
  function withUmask<T>(mask: number, fn: () => T): T {
    const old = process.umask(mask);
    try {
      return fn();
    } finally {
      process.umask(old);
    }
  }

  it('defaults to 0600 whatever the umask', async () => {
    await expectNoFdLeak(() => {
      for (const mask of [0, 0o022, 0o077]) {
        const p = sockPath();
        const server = withUmask(mask, () => listen(p));
        expect((fs.lstatSync(p).mode & 0o777).toString(8)).toBe('600');
        server.close();
      }
    });
  });

  it('mode: 0o660 gives 0660 even with umask 022 (and 0o666 with umask 0)', async () => {
    await expectNoFdLeak(() => {
      const p = sockPath();
      const server = withUmask(0o022, () => listen({ path: p, mode: 0o660 }));
      expect((fs.lstatSync(p).mode & 0o777).toString(8)).toBe('660');
      server.close();
      const q = sockPath();
      const other = withUmask(0, () => listen({ path: q, mode: 0o666 }));
      expect((fs.lstatSync(q).mode & 0o777).toString(8)).toBe('666');
      other.close();
    });
  });

  it('an invalid mode is a RangeError before anything is created', async () => {
    await expectNoFdLeak(() => {
      const p = sockPath();
      const err = catchError(() => listen({ path: p, mode: 0o1777 }));
      expect(err).toBeInstanceOf(RangeError);
      expect(err.code).toBe('ERR_OUT_OF_RANGE');
      expect(fs.existsSync(p)).toBe(false);
    });
  });
});

describe('existing files at the path', () => {
  it('a stale socket file (nothing listening) is replaced', async () => {
    requirePeer('python3');
    await expectNoFdLeak(async () => {
      const p = sockPath();
      // python binds (and listens), then exits without unlinking: a stale socket file.
      const r = spawnSync('python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.bind(sys.argv[1]); s.listen(1)', p]);
      expect(r.status, r.stderr.toString()).toBe(0);
      expect(fs.lstatSync(p).isSocket()).toBe(true);
      expect(catchError(() => connectSync(p)).code).toBe('ECONNREFUSED'); // really stale
      const server = listen(p);
      const c = await connect(p);
      const s = await server.accept();
      roundTrip(c, s, dataFile());
      c.close();
      s.close();
      server.close();
      expect(fs.existsSync(p)).toBe(false);
    });
  });

  for (const type of [...new Set([MESSAGE_TYPE, 'stream'] as const)]) {
    it(`a live ${type} server: listen fails with EADDRINUSE and the live server keeps working`, async () => {
      await expectNoFdLeak(async () => {
        const p = sockPath();
        const live = listen({ path: p, type });
        const ino = fs.lstatSync(p).ino;
        for (const t of [...new Set([MESSAGE_TYPE, 'stream'] as const)]) {
          const err = catchError(() => listen({ path: p, type: t }));
          expect(err).toBeInstanceOf(FdPassError);
          expect(err.code).toBe('EADDRINUSE');
          expect((err as FdPassError).syscall).toBe('bind');
        }
        expect(fs.lstatSync(p).ino).toBe(ino);
        expect(fs.lstatSync(p).isSocket()).toBe(true);
        const c = await connect({ path: p, type });
        c.sendSync('mine');
        // Connections listen() made while probing (if any) come first and are already closed.
        let s: UnixSocket | undefined;
        for (let i = 0; i < 3 && !s; i++) {
          const conn = live.acceptSync({ timeoutMs: 5000 });
          const m = conn.recvSync({ timeoutMs: 5000 });
          if (m === null) conn.close();
          else {
            expect(m.data.toString()).toBe('mine');
            s = conn;
          }
        }
        expect(s).toBeDefined();
        roundTrip(c, s!, dataFile());
        c.close();
        s!.close();
        live.close();
      });
    });

    it(`a failed listen() does not inject connections into a live ${type} server`, async () => {
      await expectNoFdLeak(async () => {
        const p = sockPath();
        const live = listen({ path: p, type });
        expect(catchError(() => listen({ path: p, type })).code).toBe('EADDRINUSE');
        // Nobody has connected to the live server: its accept queue must be empty.
        let injected = 0;
        for (;;) {
          try {
            live.acceptSync({ timeoutMs: 0 }).close();
            injected++;
          } catch (err) {
            expect((err as FdPassError).code).toBe('ETIMEDOUT');
            break;
          }
        }
        live.close();
        expect(injected, 'connections the failed listen() left in the live server\'s accept queue').toBe(0);
      });
    });
  }

  it('a regular file: listen fails with EADDRINUSE and the file is untouched', async () => {
    await expectNoFdLeak(() => {
      const p = sockPath();
      fs.writeFileSync(p, 'precious', { mode: 0o644 });
      const before = fs.lstatSync(p);
      const err = catchError(() => listen(p));
      expect(err).toBeInstanceOf(FdPassError);
      expect(err.code).toBe('EADDRINUSE');
      const after = fs.lstatSync(p);
      expect(after.isFile()).toBe(true);
      expect(after.ino).toBe(before.ino);
      expect(after.mode).toBe(before.mode);
      expect(fs.readFileSync(p, 'utf8')).toBe('precious');
    });
  });
});

describe('close()', () => {
  it('unlinks the socket file it created; idempotent', async () => {
    await expectNoFdLeak(() => {
      const p = sockPath();
      const server = listen(p);
      expect(fs.existsSync(p)).toBe(true);
      server.close();
      expect(fs.existsSync(p)).toBe(false);
      server.close();
      expect(server.closed).toBe(true);
      expect(catchError(() => server.fd).code).toBe('ERR_FDPASS_CLOSED');
      expect(catchError(() => connectSync(p)).code).toBe('ENOENT');
    });
  });

  it('leaves alone a file that replaced the socket after listen', async () => {
    await expectNoFdLeak(() => {
      const p = sockPath();
      const server = listen(p);
      fs.unlinkSync(p);
      fs.writeFileSync(p, 'someone else');
      server.close();
      expect(fs.readFileSync(p, 'utf8')).toBe('someone else');
      fs.unlinkSync(p);
    });
  });

  it('leaves alone another server’s socket that replaced ours', async () => {
    await expectNoFdLeak(() => {
      const p = sockPath();
      const first = listen(p);
      fs.unlinkSync(p);
      const second = listen(p);
      first.close();
      expect(fs.lstatSync(p).isSocket()).toBe(true);
      const c = connectSync(p);
      const s = second.acceptSync({ timeoutMs: 5000 });
      roundTrip(c, s, dataFile());
      c.close();
      s.close();
      second.close();
      expect(fs.existsSync(p)).toBe(false);
    });
  });

  it('`using` closes (and unlinks)', async () => {
    await expectNoFdLeak(() => {
      const p = sockPath();
      {
        using server = listen(p);
        expect(server.closed).toBe(false);
      }
      expect(fs.existsSync(p)).toBe(false);
    });
  });
});

describe('abstract names', () => {
  it('listen({ abstract }) / connect({ abstract }): no file is created', async () => {
    await expectNoFdLeak(async () => {
      const name = abstractName();
      const entries = fs.readdirSync(process.cwd());
      const tmpEntries = fs.readdirSync(dir);
      const server = listen({ abstract: name });
      expect(server.abstract).toBe(name);
      expect(server.path).toBeUndefined();
      expect(describeFd(server.fd).socket!.path).toBe(`@${name}`);
      expect(fs.readdirSync(process.cwd())).toEqual(entries);
      expect(fs.readdirSync(dir)).toEqual(tmpEntries);
      const c = await connect({ abstract: name });
      const s = await server.accept();
      roundTrip(c, s, dataFile());
      // A second listener on the same live name fails.
      expect(catchError(() => listen({ abstract: name })).code).toBe('EADDRINUSE');
      c.close();
      s.close();
      server.close();
      // The name is free again once closed.
      expect(catchError(() => connectSync({ abstract: name })).code).toBe('ECONNREFUSED');
      listen({ abstract: name }).close();
    });
  });

  it(`connect({ abstract }) auto-detects a SOCK_STREAM server ('${STREAM_DETECTED}') too`, async () => {
    // Linux looks abstract names up per socket type: a seqpacket connect to a stream listener gets
    // ECONNREFUSED (not EPROTOTYPE, as for paths), so auto-detection must go on to the next type.
    await expectNoFdLeak(async () => {
      const server = listen({ abstract: abstractName(), type: STREAM_DETECTED });
      try {
        const c = await connect({ abstract: server.abstract! });
        expect(c.type).toBe(STREAM_DETECTED);
        const s = await server.accept();
        roundTrip(c, s, dataFile());
        c.close();
        s.close();
        const c2 = connectSync({ abstract: server.abstract! });
        expect(c2.type).toBe(STREAM_DETECTED);
        c2.close();
        server.acceptSync({ timeoutMs: 5000 }).close();
        // With nobody listening at all, the error is ECONNREFUSED.
        const err = catchError(() => connectSync({ abstract: `${server.abstract}-none` }));
        expect(err.code).toBe('ECONNREFUSED');
      } finally {
        server.close();
      }
    });
  });

  it('path and abstract together are rejected', () => {
    const err = catchError(() => listen({ path: sockPath(), abstract: 'x' }));
    expect(err).toBeInstanceOf(TypeError);
    expect(err.code).toBe('ERR_INVALID_ARG_VALUE');
  });
});

describe('paths', () => {
  it('a 108-byte path is a TypeError ERR_INVALID_ARG_VALUE before any syscall; 107 bytes works', async () => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      await expectNoFdLeak(() => {
        const long = 'a'.repeat(108);
        const before = fdCount();
        for (const fn of [() => listen(long), () => connectSync(long), () => listen({ path: long, type: 'stream' })]) {
          const err = catchError(fn);
          expect(err).toBeInstanceOf(TypeError);
          expect(err.code).toBe('ERR_INVALID_ARG_VALUE');
          expect(err.message).toContain('107');
        }
        expect(fdCount()).toBe(before);
        expect(fs.existsSync(long)).toBe(false);
        // A multi-byte path counts bytes, not characters: 54 × 'é' = 108 bytes.
        expect(catchError(() => listen('é'.repeat(54))).code).toBe('ERR_INVALID_ARG_VALUE');
        const ok = 'b'.repeat(107);
        const server = listen(ok);
        expect(fs.lstatSync(path.join(dir, ok)).isSocket()).toBe(true);
        const c = connectSync(ok);
        server.acceptSync({ timeoutMs: 5000 }).close();
        c.close();
        server.close();
        expect(fs.existsSync(path.join(dir, ok))).toBe(false);
      });
    } finally {
      process.chdir(cwd);
    }
  });

  it('relative paths are relative to the cwd, and close() unlinks the right file after a chdir', async () => {
    const cwd = process.cwd();
    const sub = fs.mkdtempSync(path.join(dir, 'rel-'));
    process.chdir(sub);
    try {
      await expectNoFdLeak(async () => {
        const server = listen('rel.sock');
        expect(server.path).toBe('rel.sock');
        expect(fs.lstatSync(path.join(sub, 'rel.sock')).isSocket()).toBe(true);
        const c = await connect('./rel.sock');
        const s = await server.accept();
        roundTrip(c, s, dataFile());
        c.close();
        s.close();
        process.chdir(dir);
        server.close();
        expect(fs.existsSync(path.join(sub, 'rel.sock'))).toBe(false);
      });
    } finally {
      process.chdir(cwd);
    }
  });

  it('an empty path or one with a NUL byte is refused', () => {
    expect(catchError(() => listen('')).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(catchError(() => listen('a\0b')).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(catchError(() => listen(42 as never)).code).toBe('ERR_INVALID_ARG_TYPE');
  });
});

describe('accept() cancellation', () => {
  it('an aborted accept() rejects with AbortError; the server still accepts afterwards', async () => {
    await expectNoFdLeak(async () => {
      const server = listen({ abstract: abstractName() });
      const ac = new AbortController();
      const pending = server.accept({ signal: ac.signal });
      await tick();
      ac.abort();
      const err = await rejection(pending);
      expect(err.name).toBe('AbortError');
      expect(err.code).toBe('ABORT_ERR');
      // Already aborted: immediate rejection, and the waiting connection is not taken.
      const c = connectSync({ abstract: server.abstract! });
      expect((await rejection(server.accept({ signal: AbortSignal.abort() }))).name).toBe('AbortError');
      const s = await server.accept();
      roundTrip(c, s, dataFile());
      c.close();
      s.close();
      server.close();
    });
  });

  it('a pending accept() rejects with ERR_FDPASS_CLOSED when the server closes', async () => {
    await expectNoFdLeak(async () => {
      const server = listen(sockPath());
      const pending = [server.accept(), server.accept()];
      await tick();
      server.close();
      for (const p of pending) {
        const err = await rejection(p);
        expect(err).toBeInstanceOf(FdPassError);
        expect(err.code).toBe('ERR_FDPASS_CLOSED');
      }
      expect((await rejection(server.accept())).code).toBe('ERR_FDPASS_CLOSED');
    });
  });

  it('concurrent accept() calls are served in call order', async () => {
    await expectNoFdLeak(async () => {
      const server = listen({ path: sockPath(), type: 'stream' });
      const accepts = Array.from({ length: 5 }, () => server.accept());
      await tick();
      const clients: UnixSocket[] = [];
      for (let i = 0; i < 5; i++) {
        const c = connectSync({ path: server.path!, type: 'stream' });
        c.sendSync(`n${i}`);
        clients.push(c);
      }
      const conns = await Promise.all(accepts);
      expect(conns.map((s) => s.recvSync()!.data.toString())).toEqual(['n0', 'n1', 'n2', 'n3', 'n4']);
      for (const s of [...conns, ...clients]) s.close();
      server.close();
    });
  });
});

describe('adoptServer()', () => {
  it('wraps a listening fd (here a dup of ours): accepts, knows its path, and close() never unlinks', async () => {
    await expectNoFdLeak(async () => {
      const p = sockPath();
      const original = listen({ path: p, type: 'stream' });
      // A SOCK_STREAM listener is adopted as the type connect() detects on it.
      const adopted = adoptServer(Fd.dup(original.fd));
      expect(adopted.type).toBe(STREAM_DETECTED);
      expect(adopted.path).toBe(p);
      const c = await connect(p);
      const s = await adopted.accept();
      roundTrip(c, s, dataFile());
      c.close();
      s.close();
      adopted.close();
      expect(fs.lstatSync(p).isSocket()).toBe(true); // not created by `adopted`: left alone
      original.close();
      expect(fs.existsSync(p)).toBe(false);
    });
  });

  it('refuses a connected socket (ERR_FDPASS_NOT_LISTENING) and a pipe (ERR_FDPASS_NOT_UNIX_SOCKET)', async () => {
    await expectNoFdLeak(() => {
      const [a, b] = socketPair();
      const err = catchError(() => adoptServer(a.fd));
      expect(err.code).toBe('ERR_FDPASS_NOT_LISTENING');
      expect(err.message).toContain('adopt()');
      a.close();
      b.close();
      const r = fs.openSync('/dev/null', 'r');
      try {
        expect(catchError(() => adoptServer(r)).code).toBe('ERR_FDPASS_NOT_UNIX_SOCKET');
      } finally {
        fs.closeSync(r);
      }
    });
  });
});

describe('many sockets', () => {
  it('1,000 connections to one server, each passing an fd both ways concurrently with the async API', async () => {
    await expectNoFdLeak(async () => {
      const N = 1000;
      const server = listen({ path: sockPath(), backlog: N });
      const files = [dataFile(), dataFile()];
      const fds = files.map((f) => fs.openSync(f, 'r'));
      const inos = fds.map((fd) => fs.fstatSync(fd).ino);
      const clients: UnixSocket[] = [];
      const conns: UnixSocket[] = [];
      const accepting = (async () => {
        for (let i = 0; i < N; i++) conns.push(await server.accept());
      })();
      for (let i = 0; i < N; i++) clients.push(await connect(server.path!));
      await accepting;
      expect(conns).toHaveLength(N);
      const before = fdCount();
      // Every connection at once: client sends its index and fds[0]; the server side answers with fds[1].
      const serverSide = conns.map(async (conn) => {
        const m = (await conn.recv())!;
        expect(m.fds).toHaveLength(1);
        const ok = fs.fstatSync(m.fds[0].fd).ino === inos[0];
        m.fds[0].close();
        await conn.send(`${m.data.toString()}:${ok}`, [fds[1]]);
      });
      const clientSide = clients.map(async (client, i) => {
        const reply = client.recv();
        await client.send(String(i), [fds[0]]);
        const m = (await reply)!;
        const ino = fs.fstatSync(m.fds[0].fd).ino;
        m.fds[0].close();
        return `${m.data.toString()}|${ino === inos[1]}`;
      });
      const [, replies] = await Promise.all([Promise.all(serverSide), Promise.all(clientSide)]);
      expect(replies).toEqual(Array.from({ length: N }, (_, i) => `${i}:true|true`));
      expect(fdCount()).toBe(before);
      // Server-side peers are the clients, in accept order == connect order.
      for (const s of [...clients, ...conns]) s.close();
      for (const fd of fds) fs.closeSync(fd);
      server.close();
    });
  });
});
