/**
 * The 'framed' socket type (src/framing.ts): messages with descriptors over SOCK_STREAM, what
 * fdpass uses where AF_UNIX SOCK_SEQPACKET does not exist (darwin). It runs natively here, in
 * both capability modes: message boundaries, descriptors by the count in each header, maxBytes
 * and maxFds, end of stream, hostile streams, a Python peer speaking the documented format, a
 * Node child, MSG_CTRUNC, GC pressure — and no fd leaks.
 */
import * as fs from './fdfs.js';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FRAME_HEADER_BYTES, encodeFrameHeader } from '../src/framing.js';
import { adopt, Fd, pipe, socketPair, spawnWithSocket, type UnixSocket } from '../src/index.js';
import { catchError, evalModuleCommand, expectNoFdLeak, gc, rejection, repoRoot, requirePeer, sameFile, spawnFixture, tsArgs } from './helpers.js';

let dir: string;
let file: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-framed-'));
  file = path.join(dir, 'data.txt');
  fs.writeFileSync(file, 'contents');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function closeAll(...sockets: UnixSocket[]): void {
  for (const s of sockets) s.close();
}

/** A framed socket and a raw 'stream' view of its peer, to write anything at all onto the wire. */
function rawPeer(): { framed: UnixSocket; raw: UnixSocket } {
  const [framed, other] = socketPair('framed');
  return { framed, raw: adopt(other.release(), { type: 'stream' }) };
}

describe("'framed': one send, one message, over a stream socket", () => {
  it('is a SOCK_STREAM socket pair whose messages keep their boundaries and their descriptors', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair('framed');
      const fd = fs.openSync(file, 'r');
      try {
        expect([a.type, b.type]).toEqual(['framed', 'framed']);
        expect(new Fd(a.fd).describe().socket?.type).toBe('stream');
        // Sent back to back, read by one recvmsg on the other side: still four messages.
        expect(a.sendSync('one', [fd])).toBe(3);
        expect(a.sendSync('two')).toBe(3);
        expect(await a.send(Buffer.alloc(10_000, 7), [fd, fd])).toBe(10_000);
        expect(a.sendSync('')).toBe(1);
        const m1 = b.recvSync()!;
        expect([m1.data.toString(), m1.fds.length, m1.droppedFds]).toEqual(['one', 1, 0]);
        expect(sameFile(m1.fds[0].fd, fd)).toBe(true);
        expect(m1.fds[0].describe().closeOnExec).toBe(true);
        const m2 = (await b.recv())!;
        expect([m2.data.toString(), m2.fds.length]).toEqual(['two', 0]);
        const m3 = b.recvSync()!;
        expect([m3.data.length, m3.data.every((x) => x === 7), m3.fds.length]).toEqual([10_000, true, 2]);
        const m4 = b.recvSync()!;
        expect(m4.data).toEqual(Buffer.alloc(1)); // an empty payload travels as one NUL byte, as on seqpacket
        for (const m of [m1, m3]) for (const f of m.fds) f.close();
        a.close();
        expect(b.recvSync()).toBeNull();
        expect(await b.recv()).toBeNull();
      } finally {
        fs.closeSync(fd);
        closeAll(a, b);
      }
    });
  });

  it('a later message\'s descriptors that arrive in a read begun in an earlier one go to the later message', async () => {
    // The kernel lets one recvmsg read A's bytes and then B's bytes with B's fds (it stops after
    // the first chunk with fds): the reader must count, not look at where the fds arrived.
    await expectNoFdLeak(() => {
      const [a, b] = socketPair('framed');
      const [r, w] = pipe();
      try {
        for (let i = 0; i < 50; i++) {
          a.sendSync(`plain ${i}`);
          a.sendSync(`with ${i}`, i % 2 ? [r, w] : [w]);
        }
        for (let i = 0; i < 50; i++) {
          const plain = b.recvSync()!;
          expect([plain.data.toString(), plain.fds.length]).toEqual([`plain ${i}`, 0]);
          const withFds = b.recvSync()!;
          expect([withFds.data.toString(), withFds.fds.map((f) => f.describe().kind)]).toEqual([`with ${i}`, i % 2 ? ['pipe', 'pipe'] : ['pipe']]);
          for (const f of withFds.fds) f.close();
        }
      } finally {
        r.close();
        w.close();
        closeAll(a, b);
      }
    });
  });

  it('253 descriptors in one message; maxFds hands out the first ones and closes the rest', async () => {
    await expectNoFdLeak(() => {
      const [a, b] = socketPair('framed');
      const devnull = fs.openSync('/dev/null', 'r');
      try {
        a.sendSync('max', new Array(253).fill(devnull));
        a.sendSync('some', new Array(5).fill(devnull));
        const all = b.recvSync()!;
        expect([all.fds.length, all.droppedFds]).toEqual([253, 0]);
        for (const f of all.fds) f.close();
        const some = b.recvSync({ maxFds: 2 })!;
        expect([some.data.toString(), some.fds.length, some.droppedFds]).toEqual(['some', 2, 3]);
        for (const f of some.fds) f.close();
      } finally {
        fs.closeSync(devnull);
        closeAll(a, b);
      }
    });
  });

  it('a message longer than maxBytes is skipped (its descriptors closed) with ERR_FDPASS_TRUNC; the next one arrives', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair('framed');
      const [r, w] = pipe();
      try {
        const big = a.send(Buffer.alloc(3 << 20, 1), [r, w]); // larger than the socket buffer: sent in pieces
        const caught = catchError(() => b.recvSync({ maxBytes: 1000 }));
        expect(caught.code).toBe('ERR_FDPASS_TRUNC');
        expect(caught.message).toMatch(/3145728 > 1000.*its 2 fds closed/);
        const following = b.recv(); // drains the rest of the skipped message as it comes
        await big;
        await a.send('after', [w]);
        const next = (await following)!;
        expect([next.data.toString(), next.fds.length]).toEqual(['after', 1]);
        next.fds[0].close();
        // The same with recv(). Unlike seqpacket, where the kernel drops the whole message at
        // once, the rest of a skipped message is drained (never buffered) by the next receive.
        const again = a.send(Buffer.alloc(1 << 20, 2));
        expect((await rejection(b.recv({ maxBytes: 10 }))).code).toBe('ERR_FDPASS_TRUNC');
        const last = b.recv({ maxBytes: 10 });
        await again;
        a.sendSync('last');
        expect((await last)!.data.toString()).toBe('last');
      } finally {
        r.close();
        w.close();
        closeAll(a, b);
      }
    });
  });

  it('close() closes descriptors that were read but not yet returned; release() refuses to drop them', async () => {
    await expectNoFdLeak(() => {
      const [a, b] = socketPair('framed');
      const [r, w] = pipe();
      try {
        a.sendSync('1');
        a.sendSync('2');
        a.sendSync('3', [r, w]);
        // One recvmsg reads all three (Linux stops after the chunk with fds): 2 and 3 wait here.
        expect(b.recvSync()!.data.toString()).toBe('1');
        expect(catchError(() => b.release()).code).toBe('ERR_FDPASS_BUSY');
        b.close(); // the queued copies of r and w go with it
      } finally {
        r.close();
        w.close();
        closeAll(a, b);
      }
    });
  });

  it('abort and timeout keep their seqpacket meaning while nothing has been written', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair('framed');
      try {
        const ac = new AbortController();
        const pending = b.recv({ signal: ac.signal });
        ac.abort();
        expect((await rejection(pending)).name).toBe('AbortError');
        expect(catchError(() => b.recvSync({ timeoutMs: 20 })).code).toBe('ETIMEDOUT');
        a.sendSync('still fine');
        expect(b.recvSync()!.data.toString()).toBe('still fine');
      } finally {
        closeAll(a, b);
      }
    });
  });

  it('GC pressure: 2,000 messages of varied sizes with fds, gc() in between, sync and async', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair('framed');
      const devnull = fs.openSync('/dev/null', 'r');
      try {
        for (let i = 0; i < 2000; i++) {
          const size = [1, 100, 5000, 70_000][i % 4];
          const payload = Buffer.alloc(size, i & 0xff);
          const received = i % 2 ? b.recv({ maxBytes: 1 << 17 }) : null;
          if (i % 3) a.sendSync(payload, [devnull]);
          else await a.send(payload, [devnull]);
          const m = received ? (await received)! : b.recvSync({ maxBytes: 1 << 17 })!;
          expect(m.data.length).toBe(size);
          expect(m.data[size - 1]).toBe(i & 0xff);
          expect(m.fds.length).toBe(1);
          m.fds[0].close();
          if (i % 100 === 0) gc();
        }
      } finally {
        fs.closeSync(devnull);
        closeAll(a, b);
      }
    });
  });
});

describe('a stream that is not fdpass framing', () => {
  it('a wrong first byte is ERR_FDPASS_PROTOCOL (it names the alternative), and stays so; queued fds are closed', async () => {
    await expectNoFdLeak(() => {
      const { framed, raw } = rawPeer();
      const [r, w] = pipe();
      try {
        raw.sendSync('hello', [r, w]);
        const err = catchError(() => framed.recvSync());
        expect(err.code).toBe('ERR_FDPASS_PROTOCOL');
        expect(err.message).toMatch(/0x68 0x65.*use type 'stream' for raw bytes/);
        expect(catchError(() => framed.recvSync()).code).toBe('ERR_FDPASS_PROTOCOL');
      } finally {
        r.close();
        w.close();
        closeAll(framed, raw);
      }
    });
  });

  it('a wrong version byte is refused too', async () => {
    await expectNoFdLeak(() => {
      const { framed, raw } = rawPeer();
      try {
        raw.sendSync(Buffer.from([0xfd, 2, 0, 0, 0, 0, 0, 1, 0x41]));
        expect(catchError(() => framed.recvSync()).code).toBe('ERR_FDPASS_PROTOCOL');
      } finally {
        closeAll(framed, raw);
      }
    });
  });

  it('end of stream in the middle of a header or a payload is ERR_FDPASS_PROTOCOL; at a boundary it is null', async () => {
    await expectNoFdLeak(() => {
      for (const bytes of [encodeFrameHeader(10, 0).subarray(0, 5), Buffer.concat([encodeFrameHeader(10, 0), Buffer.from('abc')])]) {
        const { framed, raw } = rawPeer();
        try {
          raw.sendSync(bytes);
          raw.close();
          const err = catchError(() => framed.recvSync());
          expect(err.code).toBe('ERR_FDPASS_PROTOCOL');
          expect(err.message).toMatch(/closed the stream in the middle of a message/);
        } finally {
          closeAll(framed, raw);
        }
      }
      const { framed, raw } = rawPeer();
      raw.sendSync(Buffer.concat([encodeFrameHeader(2, 0), Buffer.from('ok')]));
      raw.close();
      expect(framed.recvSync()!.data.toString()).toBe('ok');
      expect(framed.recvSync()).toBeNull();
      framed.close();
    });
  });

  it('a header announcing descriptors that never came, or descriptors no header announced: ERR_FDPASS_PROTOCOL, all closed', async () => {
    await expectNoFdLeak(() => {
      const [r, w] = pipe();
      try {
        const missing = rawPeer();
        missing.raw.sendSync(Buffer.concat([encodeFrameHeader(1, 2), Buffer.from('x')]), [r]);
        expect(catchError(() => missing.framed.recvSync()).message).toMatch(/announced 2 descriptors but 1 arrived/);
        closeAll(missing.framed, missing.raw);

        const extra = rawPeer();
        extra.raw.sendSync(Buffer.concat([encodeFrameHeader(1, 1), Buffer.from('x')]), [r, w]);
        expect(catchError(() => extra.framed.recvSync()).message).toMatch(/descriptors arrived that no message header announced/);
        closeAll(extra.framed, extra.raw);
      } finally {
        r.close();
        w.close();
      }
    });
  });

  it('a header split across writes, and fds sent with a later part of their message, are read as one message', async () => {
    await expectNoFdLeak(async () => {
      const { framed, raw } = rawPeer();
      const [r, w] = pipe();
      try {
        const header = encodeFrameHeader(6, 1);
        const got = framed.recv();
        raw.sendSync(header.subarray(0, 3));
        await new Promise((resolve) => setTimeout(resolve, 20));
        raw.sendSync(Buffer.concat([header.subarray(3), Buffer.from('abc')]));
        await new Promise((resolve) => setTimeout(resolve, 20));
        raw.sendSync('def', [w]);
        const m = (await got)!;
        expect([m.data.toString(), m.fds.length]).toEqual(['abcdef', 1]);
        m.fds[0].close();
      } finally {
        r.close();
        w.close();
        closeAll(framed, raw);
      }
    });
  });

  it('the header on the wire: 0xfd, version 1, fd count and length big-endian', () => {
    const [a, b] = socketPair('framed');
    const raw = adopt(b.release(), { type: 'stream' });
    const devnull = fs.openSync('/dev/null', 'r');
    try {
      a.sendSync('hi', [devnull, devnull, devnull]);
      const m = raw.recvSync()!;
      expect(m.data.toString('hex')).toBe('fd01' + '0003' + '00000002' + Buffer.from('hi').toString('hex'));
      expect(m.data.length).toBe(FRAME_HEADER_BYTES + 2);
      expect(m.fds.length).toBe(3);
      for (const f of m.fds) f.close();
    } finally {
      fs.closeSync(devnull);
      closeAll(a, raw);
    }
  });
});

describe('adopt() and the kernel type', () => {
  it("adopt(fd, { type: 'framed' }) reads a stream socket as framed; a type the kernel cannot be is refused", async () => {
    await expectNoFdLeak(() => {
      const [a, b] = socketPair('framed');
      const s = adopt(b.release(), { type: 'framed' });
      a.sendSync('x');
      expect(s.recvSync()!.data.toString()).toBe('x');
      const [c, d] = socketPair('dgram');
      const n = d.release();
      const err = catchError(() => adopt(n, { type: 'framed' }));
      expect(err.code).toBe('ERR_FDPASS_WRONG_KIND');
      fs.closeSync(n);
      closeAll(a, s, c);
    });
  });
});

describe('other processes speaking the format', () => {
  it('python3 reads and writes framed messages with fds (socket.send_fds / recv_fds and struct.pack(">BBHI"))', async () => {
    requirePeer('python3');
    await expectNoFdLeak(async () => {
      const script = `
import os, socket, struct, sys
s = socket.socket(fileno=int(os.environ['FDPASS_FD']))
def read_exact(n):
    data, fds = b'', []
    while len(data) < n:
        chunk, got, _, _ = socket.recv_fds(s, n - len(data), 10)
        if not chunk: raise SystemExit('eof')
        data += chunk; fds += got
    return data, fds
header, fds = read_exact(8)
magic, version, count, length = struct.unpack('>BBHI', header)
payload, more = read_exact(length)
fds += more
assert (magic, version, count, len(fds)) == (0xFD, 1, count, count), (magic, version, count, fds)
text = os.read(fds[0], 100)
reply = b'python read ' + text + b' from ' + payload
r, w = os.pipe()
os.write(w, b'through a pipe')
os.close(w)
socket.send_fds(s, [struct.pack('>BBHI', 0xFD, 1, 1, len(reply)) + reply], [r])
`;
      const { child, socket } = spawnWithSocket('python3', ['-c', script], { type: 'framed', stdio: ['ignore', 'inherit', 'inherit'] });
      // Listening from the start: the child may exit while this test still awaits its reply.
      const exited = new Promise((resolve) => child.on('exit', resolve));
      const fd = fs.openSync(file, 'r');
      try {
        await socket.send('the request', [fd]);
        const m = (await socket.recv())!;
        expect(m.data.toString()).toBe('python read contents from the request');
        expect(fs.readFileSync(m.fds[0].fd, 'utf8')).toBe('through a pipe');
        m.fds[0].close();
        const code = await exited;
        expect(code).toBe(0);
      } finally {
        fs.closeSync(fd);
        socket.close();
      }
    });
  });

  it('a Node child adopts fd 3 as framed and echoes 500 messages with descriptors', async () => {
    await expectNoFdLeak(async () => {
      const code = `
        import { adopt } from ${JSON.stringify(path.join(repoRoot, 'src/index.ts'))};
        const s = adopt(3, { type: 'framed' });
        for await (const m of s) {
          await s.send(m.data, m.fds);
          for (const f of m.fds) f.close();
        }
        s.close();
      `;
      const { child, socket } = spawnWithSocket(...evalModuleCommand(code), { type: 'framed', cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
      const [r, w] = pipe();
      try {
        const sends: Promise<number>[] = [];
        for (let i = 0; i < 500; i++) sends.push(socket.send(`m${i}:${'x'.repeat(i * 37)}`, i % 3 ? [r] : [r, w]));
        for (let i = 0; i < 500; i++) {
          const m = (await socket.recv({ maxBytes: 1 << 20 }))!;
          expect(m.data.toString()).toBe(`m${i}:${'x'.repeat(i * 37)}`);
          expect(m.fds.length).toBe(i % 3 ? 1 : 2);
          for (const f of m.fds) f.close();
        }
        await Promise.all(sends);
        socket.shutdown('write');
        expect(await socket.recv()).toBeNull();
        // The child may have exited (and 'exit' been emitted) while the recv above waited.
        expect(child.exitCode ?? (await new Promise((resolve) => child.on('exit', resolve)))).toBe(0);
      } finally {
        r.close();
        w.close();
        socket.close();
      }
    });
  });

  it("spawnWithSocket({ type: 'framed' }): the child's inheritedSocket() is framed too (FDPASS_TYPE), whatever the platform default", async () => {
    await expectNoFdLeak(async () => {
      const { child, socket } = spawnWithSocket(process.execPath, [...tsArgs(path.join(repoRoot, 'test/fixtures/node-child-echo.ts'))], { type: 'framed', cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
      try {
        const hello = JSON.parse((await socket.recv())!.data.toString());
        expect(hello).toMatchObject({ hello: true, type: 'framed', fd: 3 });
        using f = new Fd(fs.openSync(file, 'r'));
        await socket.send('a file', [f]);
        expect(JSON.parse((await socket.recv())!.data.toString())).toEqual({ got: 'a file', contents: ['contents'] });
        socket.shutdown('write');
        expect(await new Promise((resolve) => child.on('exit', resolve))).toBe(0);
      } finally {
        socket.close();
      }
    });
  });

  it('MSG_CTRUNC (the receiver is out of descriptors): that message fails, the next one arrives whole', async () => {
    // The fixture lowers its RLIMIT_NOFILE so only 3 slots are free, then receives 20 fds.
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair('framed');
      const [r, w] = pipe();
      try {
        a.sendSync('many', new Array(20).fill(w.fd));
        a.sendSync('one', [w]);
        const fixture = spawnFixture('ctrunc-receiver', ['framed'], [b.fd]);
        b.close();
        w.close();
        const result = await fixture.exited;
        expect(result.stderr).toBe('');
        const report = JSON.parse(result.stdout.trim());
        expect(report.first.code).toBe('ERR_FDPASS_CTRUNC');
        expect(report.first.message).toContain('the 3 that arrived were closed');
        expect(report.fdsUnchanged).toBe(true);
        expect(report.second).toEqual({ data: 'one', fds: 1, kind: 'pipe' });
        expect(fs.readFileSync(r.fd, 'utf8')).toBe('ok');
      } finally {
        r.close();
        w.close();
        closeAll(a, b);
      }
    });
  });
});
