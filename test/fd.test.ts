/** Fd ownership (close/release/dup/dispose) and describe(): what kind of descriptor is this? */
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import * as fs from './fdfs.js';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { isatty } from 'node:tty';
import koffi from 'koffi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFd, Fd, FdPassError, listen, platform, socketPair, type FdDescription } from '../src/index.js';
import { denoLimit, expectNoFdLeak, fdCount, isOpen, requirePeer, tcpConnection } from './helpers.js';
import { MESSAGE_KERNEL_TYPE, PEER_MESSAGE_TYPE } from './mode.js';

const O_CLOEXEC = 0o2000000; // Linux
const libc = koffi.load(platform.libcName as string);
const pipe2 = libc.func('int pipe2(void *fds, int flags)');

function makePipe(): [number, number] {
  const buf = Buffer.alloc(8);
  if ((pipe2(buf, O_CLOEXEC) as number) !== 0) throw new Error('pipe2 failed');
  return [buf.readInt32LE(0), buf.readInt32LE(4)];
}


function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

let dir: string;
let file: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-fd-'));
  file = path.join(dir, 'data.txt');
  fs.writeFileSync(file, '0123456789');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('Fd ownership', () => {
  it('close() closes once: a second close() does not close a descriptor that reused the number', async () => {
    await expectNoFdLeak(() => {
      const f = new Fd(fs.openSync(file, 'r'));
      const n = f.fd;
      expect(f.closed).toBe(false);
      f.close();
      expect(f.closed).toBe(true);
      expect(isOpen(n)).toBe(false);
      const reused = fs.openSync(file, 'r'); // lowest free number: very likely n again
      f.close();
      expect(isOpen(reused)).toBe(true);
      fs.closeSync(reused);
      expect(codeOf(() => f.fd)).toBe('ERR_FDPASS_CLOSED');
      expect(codeOf(() => f.dup())).toBe('ERR_FDPASS_CLOSED');
      expect(codeOf(() => f.describe())).toBe('ERR_FDPASS_CLOSED');
      expect(String(f)).toBe('Fd(closed)');
    });
  });

  it('release() returns the number and leaves it open; the Fd no longer owns it', async () => {
    await expectNoFdLeak(() => {
      const f = new Fd(fs.openSync(file, 'r'));
      const n = f.fd;
      expect(String(f)).toBe(`Fd(${n})`);
      expect(f.release()).toBe(n);
      expect(f.closed).toBe(true);
      expect(isOpen(n)).toBe(true);
      f.close(); // no effect on the released number
      expect(isOpen(n)).toBe(true);
      expect(codeOf(() => f.release())).toBe('ERR_FDPASS_CLOSED');
      fs.closeSync(n);
    });
  });

  it('dup() gives a new close-on-exec fd for the same open file (shared offset)', async () => {
    await expectNoFdLeak(() => {
      const raw = fs.openSync(file, 'r');
      const f = new Fd(raw);
      f.setCloseOnExec(false);
      expect(f.describe().closeOnExec).toBe(false);
      const d = f.dup();
      try {
        expect(d.fd).not.toBe(f.fd);
        expect(d.describe().closeOnExec).toBe(true);
        const buf = Buffer.alloc(3);
        fs.readSync(f.fd, buf, 0, 3, null); // advances the shared offset
        expect(buf.toString()).toBe('012');
        fs.readSync(d.fd, buf, 0, 3, null);
        expect(buf.toString()).toBe('345');
        f.close();
        fs.readSync(d.fd, buf, 0, 3, null); // the duplicate outlives the original
        expect(buf.toString()).toBe('678');
      } finally {
        f.close();
        d.close();
      }
    });
  });

  it('setCloseOnExec() toggles FD_CLOEXEC', async () => {
    await expectNoFdLeak(() => {
      const f = new Fd(fs.openSync(file, 'r'));
      expect(f.describe().closeOnExec).toBe(true);
      f.setCloseOnExec(false);
      expect(f.describe().closeOnExec).toBe(false);
      f.setCloseOnExec(true);
      expect(f.describe().closeOnExec).toBe(true);
      f.close();
    });
  });

  it('`using` / Symbol.dispose closes', async () => {
    await expectNoFdLeak(() => {
      let n = -1;
      let kept: Fd | undefined;
      {
        using f = new Fd(fs.openSync(file, 'r'));
        n = f.fd;
        kept = f;
        expect(isOpen(n)).toBe(true);
      }
      expect(kept!.closed).toBe(true);
      expect(isOpen(n)).toBe(false);
      const g = new Fd(fs.openSync(file, 'r'));
      g[Symbol.dispose]();
      expect(g.closed).toBe(true);
    });
  });

  it('Fd.dup(FdLike) duplicates numbers, Fds, net/dgram sockets and FileHandles; the originals stay owned', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const server = net.createServer();
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const udp = dgram.createSocket('udp4');
      await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
      const handle = await fs.promises.open(file, 'r');
      const raw = fs.openSync(file, 'r');
      const owned = new Fd(fs.openSync(file, 'r'));
      try {
        const dups = [Fd.dup(raw), Fd.dup(owned), Fd.dup(server), Fd.dup(udp), Fd.dup(handle), Fd.dup({ fd: raw })];
        const [dRaw, dOwned, dServer, dUdp, dHandle, dObj] = dups.map((d) => d.describe());
        expect(dRaw.path).toBe(file);
        expect(dRaw.fd).not.toBe(raw);
        expect(dOwned.path).toBe(file);
        expect(dHandle.path).toBe(file);
        expect(dObj.path).toBe(file);
        expect(dServer.socket).toMatchObject({ family: 'inet', listening: true, localPort: (server.address() as net.AddressInfo).port });
        expect(dUdp.socket).toMatchObject({ family: 'inet', type: 'dgram', localPort: udp.address().port });
        for (const d of dups) {
          expect(d.describe().closeOnExec).toBe(true);
          d.close();
        }
        expect(owned.closed).toBe(false);
        expect(isOpen(raw)).toBe(true);
        expect(codeOf(() => Fd.dup('x' as never))).toBe('ERR_INVALID_ARG_TYPE');
        expect(codeOf(() => Fd.dup(-1))).toBe('ERR_OUT_OF_RANGE');
        // Duplicating a number that is not open is EBADF, as a Node-shaped error.
        const closed = fs.openSync(file, 'r');
        fs.closeSync(closed);
        const err = (() => {
          try {
            Fd.dup(closed);
          } catch (e) {
            return e as FdPassError;
          }
          throw new Error('expected EBADF');
        })();
        expect(err).toBeInstanceOf(FdPassError);
        expect(err.code).toBe('EBADF');
        expect(err.errno).toBe(-os.constants.errno.EBADF);
        expect(err.syscall).toBe('fcntl');
      } finally {
        fs.closeSync(raw);
        owned.close();
        await handle.close();
        await new Promise<void>((r) => udp.close(r));
        await new Promise<void>((r) => server.close(() => r()));
      }
    });
  });
});

describe('describe()', () => {
  function describeOpen(p: string, flags: string | number): FdDescription {
    using f = new Fd(fs.openSync(p, flags));
    const d = f.describe();
    expect(d.fd).toBe(f.fd);
    return d;
  }

  it('regular file: kind, path, size, access mode and O_APPEND', async () => {
    await expectNoFdLeak(() => {
      const r = describeOpen(file, 'r');
      expect(r).toMatchObject({ kind: 'file', path: file, size: 10, closeOnExec: true });
      expect(r.openFlags).toEqual(['O_RDONLY']);
      expect(r.target).toBe(file);
      expect(r.deleted).toBeUndefined();
      expect(r.socket).toBeUndefined();
      const w = describeOpen(path.join(dir, 'w.txt'), 'w');
      expect(w).toMatchObject({ kind: 'file', size: 0 });
      expect(w.openFlags).toEqual(['O_WRONLY']);
      const rw = describeOpen(file, 'r+');
      expect(rw.openFlags).toEqual(['O_RDWR']);
      const a = describeOpen(file, 'a');
      expect(a.openFlags).toEqual(['O_WRONLY', 'O_APPEND']);
      const ap = describeOpen(file, 'a+');
      expect(ap.openFlags).toEqual(['O_RDWR', 'O_APPEND']);
      const nb = describeOpen(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      expect(nb.openFlags).toEqual(['O_RDONLY', 'O_NONBLOCK']);
      // Through an Fd too, and the size follows the file.
      const f = new Fd(fs.openSync(file, 'r+'));
      fs.writeSync(f.fd, 'more', 10);
      expect(f.describe()).toMatchObject({ kind: 'file', size: 14, fd: f.fd });
      fs.ftruncateSync(f.fd, 10);
      f.close();
    });
  });

  it('deleted file: deleted true, path without " (deleted)"', async () => {
    await expectNoFdLeak(() => {
      const p = path.join(dir, 'doomed.txt');
      fs.writeFileSync(p, 'x');
      const f = new Fd(fs.openSync(p, 'r'));
      expect(f.describe().deleted).toBeUndefined();
      fs.unlinkSync(p);
      const d = f.describe();
      expect(d.kind).toBe('file');
      expect(d.deleted).toBe(true);
      expect(d.path).toBe(p);
      expect(d.target).toBe(`${p} (deleted)`);
      f.close();
    });
  });

  it('directory', async () => {
    await expectNoFdLeak(() => {
      const d = describeOpen(dir, 'r');
      expect(d).toMatchObject({ kind: 'directory', path: dir });
      expect(d.openFlags[0]).toBe('O_RDONLY');
      expect(d.size).toBeUndefined();
    });
  });

  it('pipe: both ends, O_RDONLY / O_WRONLY, no path', async () => {
    await expectNoFdLeak(() => {
      const [r, w] = makePipe();
      try {
        const dr = describeFd(r);
        const dw = describeFd(w);
        expect(dr).toMatchObject({ kind: 'pipe', openFlags: ['O_RDONLY'], closeOnExec: true });
        expect(dw).toMatchObject({ kind: 'pipe', openFlags: ['O_WRONLY'] });
        expect(dr.target).toMatch(/^pipe:\[\d+\]$/);
        expect(dw.target).toBe(dr.target);
        expect(dr.path).toBeUndefined();
      } finally {
        fs.closeSync(r);
        fs.closeSync(w);
      }
    });
  });

  it('fifo (mkfifo): kind fifo with its path', async () => {
    requirePeer('mkfifo');
    await expectNoFdLeak(() => {
      const p = path.join(dir, 'fifo');
      const made = spawnSync('mkfifo', [p]);
      expect(made.status, made.stderr.toString()).toBe(0);
      const r = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      const w = fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      try {
        expect(describeFd(r)).toMatchObject({ kind: 'fifo', path: p, openFlags: ['O_RDONLY', 'O_NONBLOCK'] });
        expect(describeFd(w)).toMatchObject({ kind: 'fifo', path: p, openFlags: ['O_WRONLY', 'O_NONBLOCK'] });
      } finally {
        fs.closeSync(r);
        fs.closeSync(w);
        fs.unlinkSync(p);
      }
    });
  });

  it('unix sockets: family, type, listening, bound path, @abstract', async () => {
    await expectNoFdLeak(() => {
      const p = path.join(dir, 'd.sock');
      const server = listen(p);
      const stream = listen({ path: path.join(dir, 'e.sock'), type: 'stream' });
      const name = `fdpass-describe-${process.pid}`;
      const abstract = listen({ abstract: name });
      const [a, b] = socketPair('dgram');
      try {
        const d = describeFd(server.fd);
        expect(d.kind).toBe('socket');
        expect(d.socket).toEqual({ family: 'unix', type: MESSAGE_KERNEL_TYPE, protocol: 0, listening: true, path: p });
        expect(d.path).toBe(p);
        expect(d.target).toMatch(/^socket:\[\d+\]$/);
        expect(describeFd(stream.fd).socket).toMatchObject({ type: 'stream', listening: true });
        const ab = describeFd(abstract.fd);
        expect(ab.socket!.path).toBe(`@${name}`);
        expect(ab.path).toBe(`@${name}`);
        const pair = describeFd(a.fd);
        expect(pair.socket).toEqual({ family: 'unix', type: 'dgram', protocol: 0, listening: false });
        expect(pair.path).toBeUndefined();
      } finally {
        server.close();
        stream.close();
        abstract.close();
        a.close();
        b.close();
      }
    });
  });

  it('TCP sockets: family inet, local address/port, listening; accepted and client sides', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const { server, port, client, accepted: conn } = await tcpConnection();
      const fdOfHandle = (o: object): number => (o as { _handle: { fd: number } })._handle.fd;
      try {
        expect(describeFd(fdOfHandle(server))).toMatchObject({
          kind: 'socket',
          socket: { family: 'inet', type: 'stream', listening: true, localAddress: '127.0.0.1', localPort: port },
        });
        expect(describeFd(fdOfHandle(client)).socket).toMatchObject({ family: 'inet', listening: false, localAddress: '127.0.0.1', localPort: client.localPort });
        expect(describeFd(fdOfHandle(conn)).socket).toMatchObject({ family: 'inet', listening: false, localPort: port });
        expect(describeFd(fdOfHandle(server)).path).toBeUndefined();
      } finally {
        client.destroy();
        conn.destroy();
        await new Promise<void>((r) => server.close(() => r()));
      }
    });
  });

  it('IPv6 TCP listener: family inet6 and ::1', async () => {
    if (await denoLimit('net-no-fd')) return;
    const server = net.createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '::1', resolve);
      });
    } catch (err) {
      // No IPv6 loopback in this environment is not fdpass's failure: say so loudly.
      throw new Error(`cannot listen on ::1 here: ${(err as Error).message}`);
    }
    await expectNoFdLeak(() => {
      const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
      expect(describeFd(fd).socket).toMatchObject({ family: 'inet6', localAddress: '::1', localPort: (server.address() as net.AddressInfo).port, listening: true });
    });
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('UDP socket: type dgram, family inet, local port', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const udp = dgram.createSocket('udp4');
      await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
      try {
        const owned = Fd.dup(udp);
        expect(owned.describe()).toMatchObject({
          kind: 'socket',
          socket: { family: 'inet', type: 'dgram', listening: false, localAddress: '127.0.0.1', localPort: udp.address().port },
        });
        owned.close();
      } finally {
        await new Promise<void>((r) => udp.close(r));
      }
    });
  });

  it('/dev/null is a char device with its path', async () => {
    await expectNoFdLeak(() => {
      const d = describeOpen('/dev/null', 'r+');
      expect(d).toMatchObject({ kind: 'char', path: '/dev/null', openFlags: ['O_RDWR'] });
    });
  });

  it('a pty master (/dev/ptmx) is a tty, as isatty says', async () => {
    await expectNoFdLeak(() => {
      const fd = fs.openSync('/dev/ptmx', fs.constants.O_RDWR | fs.constants.O_NOCTTY);
      try {
        expect(isatty(fd)).toBe(true);
        expect(describeFd(fd)).toMatchObject({ kind: 'tty', path: '/dev/ptmx' });
      } finally {
        fs.closeSync(fd);
      }
    });
  });

  /** memfd, eventfd (counter 5), pidfd and epoll made by python3 and sent to us over a socketpair. */
  function receiveFromPython(): Fd[] {
    requirePeer('python3');
    const [a, b] = socketPair(PEER_MESSAGE_TYPE);
    try {
      const py = [
        'import os, socket, select',
        's = socket.socket(fileno=3)',
        "m = os.memfd_create('fdpass-test')",
        "os.write(m, b'hello memfd')",
        'e = os.eventfd(5)',
        'p = os.pidfd_open(os.getpid())',
        'ep = select.epoll()',
        "socket.send_fds(s, [b'kinds'], [m, e, p, ep.fileno()])",
      ].join('\n');
      const r = spawnSync('python3', ['-c', py], { stdio: ['ignore', 'pipe', 'pipe', b.fd] });
      expect(r.stderr.toString()).toBe('');
      expect(r.status).toBe(0);
      const msg = a.recvSync({ timeoutMs: 5000 })!;
      expect(msg.data.toString()).toBe('kinds');
      expect(msg.fds).toHaveLength(4);
      return msg.fds;
    } finally {
      a.close();
      b.close();
    }
  }

  it('memfd, eventfd, pidfd and epoll fds created by a python3 peer and received over a socket', async () => {
    await expectNoFdLeak(() => {
      const fds = receiveFromPython();
      try {
        const [memfd, eventfd, pidfd, epoll] = fds.map((f) => f.describe());
        expect(memfd).toMatchObject({ kind: 'memfd', size: 11, deleted: true, openFlags: ['O_RDWR'], closeOnExec: true });
        expect(memfd.target).toBe('/memfd:fdpass-test (deleted)');
        expect(eventfd).toMatchObject({ kind: 'eventfd', target: 'anon_inode:[eventfd]', openFlags: ['O_RDWR'], closeOnExec: true });
        expect(pidfd.kind).toBe('pidfd');
        expect(epoll).toMatchObject({ kind: 'epoll', target: 'anon_inode:[eventpoll]' });
        for (const d of [eventfd, pidfd, epoll]) {
          expect(d.path).toBeUndefined();
          expect(d.size).toBeUndefined();
        }
        // They are the real objects: the memfd holds python's bytes, the eventfd its counter.
        const buf = Buffer.alloc(32);
        expect(buf.toString('utf8', 0, fs.readSync(fds[0].fd, buf, 0, 32, 0))).toBe('hello memfd');
        expect(fs.readSync(fds[1].fd, buf, 0, 8, null)).toBe(8);
        expect(buf.readBigUInt64LE(0)).toBe(5n);
      } finally {
        for (const f of fds) f.close();
      }
    });
  });

  it("a memfd's path is its memfd_create name (as FdDescription.path documents), not '/memfd:…'", async () => {
    await expectNoFdLeak(() => {
      const fds = receiveFromPython();
      try {
        expect(fds[0].describe().path).toBe('fdpass-test');
      } finally {
        for (const f of fds) f.close();
      }
    });
  });

  it('a closed number is EBADF', async () => {
    await expectNoFdLeak(() => {
      const n = fs.openSync(file, 'r');
      fs.closeSync(n);
      const count = fdCount();
      expect(codeOf(() => describeFd(n))).toBe('EBADF');
      expect(fdCount()).toBe(count);
    });
  });
});
