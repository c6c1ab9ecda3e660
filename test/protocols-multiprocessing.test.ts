/**
 * multiprocessing.reduction wire compatibility, against real CPython: a multiprocessing.Process
 * worker (spawn and fork start methods) runs reduction.send_handle / recv_handle / sendfds /
 * recvfds on a Connection whose fd is one end of a socket pair whose other end Node holds.
 */
import { mkdtempSync, openSync, readSync, rmSync, writeFileSync } from './fdfs.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Fd, connect, pipe, socketPair, type UnixSocket } from '../src/index.js';
import { recvFds, recvHandle, sendFds, sendHandle } from '../src/protocols/multiprocessing.js';
import { expectNoFdLeak, requirePeer } from './helpers.js';
import { MINIMAL, seqpacketUnsupported } from './mode.js';
import { Peers, cleanExit, fixture, readUntil, unlessPeerFails, type Peer } from './fixtures/interop-util.js';

const peers = new Peers();
afterEach(() => peers.killAll());

let dir: string;
beforeAll(() => {
  requirePeer('python3');
  dir = mkdtempSync(join(tmpdir(), 'fdpass-mp-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SCRIPT = fixture('interop-multiprocessing.py');

/** Start the Python fixture with one end of a stream socket pair as its fd 3. */
function startPython(args: string[], type: 'stream' | 'seqpacket' = 'stream'): { ours: UnixSocket; py: Peer } {
  const [ours, theirs] = socketPair(type);
  const py = peers.start('python3', [SCRIPT, ...args], { extraFds: [theirs.fd] });
  theirs.close();
  return { ours, py };
}

/** Python's memfds are read from offset 0. */
function pread(fd: Fd, length = 4096): string {
  const buf = Buffer.alloc(length);
  const n = readSync(fd.fd, buf, 0, length, 0);
  return buf.subarray(0, n).toString('utf8');
}

for (const method of ['spawn', 'fork'] as const) {
  describe(`a multiprocessing.Process worker (start method '${method}')`, () => {
    it('recv_handle() receives the descriptor Node sent with sendHandle()', async () => {
      await expectNoFdLeak(async () => {
        const { ours, py } = startPython(['worker-recv', method, '1', '0']);
        const [r, w] = pipe();
        await sendHandle(ours, w, py.child.pid);
        w.close();
        const text = readUntil(r.fd, '\n');
        const report = await py.waitFor((l) => l.role === 'worker', 'the worker report');
        expect(text).toBe(`worker ${report.pid} wrote to handle 0\n`);
        expect(report.name).toBe('fdpass-worker');
        expect(report.parent).toBe(py.child.pid); // a multiprocessing child, not the main process
        expect(report.received).toEqual([{ kind: 'fifo' }]);
        await cleanExit(py);
        expect(await ours.recv()).toBeNull(); // the worker's copy of the connection is gone too
        ours.close();
        r.close();
      });
    });

    it('recvfds(sock, 3) receives three descriptors Node sent with sendFds()', async () => {
      await expectNoFdLeak(async () => {
        const { ours, py } = startPython(['worker-recv', method, '3', '0']);
        const path = join(dir, `three-${method}.txt`);
        writeFileSync(path, `file for the ${method} worker`);
        const file = new Fd(openSync(path, 'r'));
        const [r, w] = pipe();
        const [sockOurs, sockTheirs] = socketPair('stream');
        await sendFds(ours, [file, w, sockTheirs]);
        file.close();
        w.close();
        sockTheirs.close();
        const report = await py.waitFor((l) => l.role === 'worker', 'the worker report');
        expect(report.received).toEqual([
          { kind: 'file', content: `file for the ${method} worker` },
          { kind: 'fifo' },
          { kind: 'socket' },
        ]);
        expect(readUntil(r.fd, '\n')).toBe(`worker ${report.pid} wrote to handle 1\n`);
        const viaSocket = await sockOurs.recv();
        expect(viaSocket?.data.toString()).toBe(`worker ${report.pid} on socket 2`);
        await cleanExit(py);
        for (const x of [ours, r, sockOurs]) x.close();
      });
    });

    it('send_handle() reaches recvHandle(), and sendfds() reaches recvFds()', async () => {
      await expectNoFdLeak(async () => {
        {
          const { ours, py } = startPython(['worker-send', method, '1', '0']);
          using fd = await unlessPeerFails(py, recvHandle(ours));
          const report = await py.waitFor((l) => l.role === 'worker', 'the worker report');
          expect(fd.describe()).toMatchObject({ kind: 'memfd', closeOnExec: true });
          expect(pread(fd)).toBe(`memfd 0 from worker ${report.pid}`);
          await cleanExit(py);
          ours.close();
        }
        {
          const { ours, py } = startPython(['worker-send', method, '4', '0']);
          const fds = await unlessPeerFails(py, recvFds(ours, 8));
          const report = await py.waitFor((l) => l.role === 'worker', 'the worker report');
          expect(fds.map((f) => pread(f))).toEqual([0, 1, 2, 3].map((i) => `memfd ${i} from worker ${report.pid}`));
          for (const f of fds) f.close();
          await cleanExit(py);
          ours.close();
        }
      });
    });
  });
}

describe("CPython's acknowledgement byte (ACKNOWLEDGE, used on macOS)", () => {
  it('works both ways when both ends enable it', async () => {
    await expectNoFdLeak(async () => {
      // Python's recvfds sends b'A' after receiving; our sendFds waits for it.
      const a = startPython(['worker-recv', 'fork', '1', '1']);
      const [r, w] = pipe();
      await unlessPeerFails(a.py, sendHandle(a.ours, w, undefined, { acknowledge: true }));
      w.close();
      const report = await a.py.waitFor((l) => l.role === 'worker', 'the worker report');
      expect(readUntil(r.fd, '\n')).toBe(`worker ${report.pid} wrote to handle 0\n`);
      await cleanExit(a.py);
      a.ours.close();
      r.close();

      // Python's sendfds waits for our b'A': without it the worker would hang, not exit.
      const b = startPython(['worker-send', 'fork', '2', '1']);
      const fds = await unlessPeerFails(b.py, recvFds(b.ours, 2, { acknowledge: true }));
      expect(fds).toHaveLength(2);
      for (const f of fds) f.close();
      await cleanExit(b.py);
      b.ours.close();
    });
  });
});

describe('multiprocessing.connection.Listener on a socket path', () => {
  it('Node connects, sends a handle with sendHandle() and gets one back with recvHandle()', async () => {
    await expectNoFdLeak(async () => {
      const path = join(dir, 'listener.sock');
      const py = peers.start('python3', [SCRIPT, 'listener', path]);
      await py.waitFor((l) => l.ready === true, 'the listener');
      // multiprocessing's AF_UNIX family is raw SOCK_STREAM. Where fdpass has no SEQPACKET, a
      // stream server is auto-detected as 'framed' (fdpass's message type there): name the type.
      const conn = await connect(MINIMAL ? { path, type: 'stream' } : path);
      expect(conn.type).toBe('stream');
      const [r, w] = pipe();
      await sendHandle(conn, w);
      w.close();
      using back = await unlessPeerFails(py, recvHandle(conn));
      const report = await py.waitFor((l) => l.role === 'listener' && l.received, 'the listener report');
      expect(report.received).toEqual([{ kind: 'fifo' }]);
      expect(readUntil(r.fd, '\n')).toMatch(/^worker \d+ wrote to handle 0\n$/);
      expect(pread(back)).toBe(`memfd from listener ${py.child.pid}`);
      await cleanExit(py);
      conn.close();
      r.close();
    });
  });
});

describe('a misbehaving peer: clear errors, every received fd closed', () => {
  const cases: { scenario: string; call: (s: UnixSocket) => Promise<unknown>; code: string; message: RegExp; type?: 'seqpacket' }[] = [
    { scenario: 'too-many', call: (s) => recvHandle(s), code: 'ERR_FDPASS_PROTOCOL', message: /expected at most 1 descriptor, got 253 \(all 253 closed\)/ },
    { scenario: 'none', call: (s) => recvHandle(s), code: 'ERR_FDPASS_PROTOCOL', message: /got a message with none/ },
    { scenario: 'wrong-count', call: (s) => recvFds(s, 4), code: 'ERR_FDPASS_PROTOCOL', message: /payload byte says 5 descriptors but 2 arrived \(all 2 closed\)/ },
    { scenario: 'three', call: (s) => recvFds(s, 2), code: 'ERR_FDPASS_PROTOCOL', message: /expected at most 2 descriptors, got 3 \(all 3 closed\)/ },
    { scenario: 'long-payload', call: (s) => recvHandle(s), code: 'ERR_FDPASS_PROTOCOL', message: /one-byte message/, type: 'seqpacket' },
    { scenario: 'eof', call: (s) => recvHandle(s), code: 'ERR_FDPASS_EOF', message: /closed the connection/ },
  ];
  for (const c of cases) {
    it(`${c.scenario}: ${c.code}`, async () => {
      if (c.type === 'seqpacket' && seqpacketUnsupported()) return;
      await expectNoFdLeak(async () => {
        const { ours, py } = startPython(['raw', c.scenario], c.type);
        await cleanExit(py);
        const err = await c.call(ours).then(() => null, (e: unknown) => e as { code: string; message: string });
        expect(err).not.toBeNull();
        expect(err!.code).toBe(c.code);
        expect(err!.message).toMatch(c.message);
        ours.close();
      });
    });
  }

  it('rejects bad arguments before any syscall', async () => {
    const [a, b] = socketPair('stream');
    await expect(sendFds(a, [])).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(sendFds(a, new Array(254).fill(0))).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(recvFds(a, 0)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(sendHandle({} as UnixSocket, 0)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(sendHandle(a, 0, 1.5)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' }); // Node's convention: a number that is not an integer
    a.close();
    b.close();
  });

  it("refuses a 'framed' socket (Python reads the raw stream; macOS's default for a stream), naming { type: 'stream' }", async () => {
    const [a, b] = socketPair('framed');
    for (const call of [() => sendFds(a, [0]), () => sendHandle(a, 0), () => recvFds(a, 1), () => recvHandle(a)]) {
      const err = await call().then(() => undefined, (e: Error & { code?: string }) => e);
      expect(err).toMatchObject({ code: 'ERR_FDPASS_WRONG_KIND' });
      expect(err?.message).toContain("{ type: 'stream' }");
    }
    expect(() => b.recvSync({ timeoutMs: 0 })).toThrow(expect.objectContaining({ code: 'ETIMEDOUT' })); // nothing was sent
    a.close();
    b.close();
  });
});
