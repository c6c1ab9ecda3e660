/**
 * Hostile and broken peers: a C program (test/fixtures/hostile-peer.c, compiled here with cc)
 * that floods, sends odd-but-legal control data, dies mid-message, stalls or never reads, and
 * a tsx child that runs into the kernel's limits (ETOOMANYREFS, EMFILE). The receiver must keep
 * its descriptor table flat, keep serving, and fail clearly — never hang.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from './fdfs.js';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Fd, pipe, socketPair, type Message, type SocketType, type UnixSocket } from '../src/index.js';
import { C, lastErrno, sys } from '../src/libc.js';
import { POLLIN, waitSync } from '../src/poll.js';
import { compileC, denoLimit, emulationLimit, expectNoFdLeak, fdCount, gc, rejection, tsArgs } from './helpers.js';
import { CREDENTIAL_MESSAGES, MESSAGE_TYPE, seqpacketUnsupported } from './mode.js';

/** The message types to run: the platform's ('seqpacket', or 'framed' without it) and 'framed' always. */
const MESSAGE_TYPES = [...new Set([MESSAGE_TYPE, 'framed'] as const)];
import { Peers, cleanExit, fixture, unlessPeerFails, type Peer } from './fixtures/interop-util.js';

const peers = new Peers();
afterEach(() => peers.killAll());

let dir: string;
let peerBinary: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fdpass-hostile-'));
  peerBinary = compileC(fixture('hostile-peer.c'), dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A socket pair whose far end is the C peer's fd 3 (speaking the framed format on a framed pair). */
function startPeer(type: SocketType, args: string[], stdin: 'ignore' | 'pipe' = 'ignore'): { ours: UnixSocket; peer: Peer } {
  const [ours, theirs] = socketPair(type);
  const peer = peers.start(peerBinary, type === 'framed' ? ['framed', ...args] : args, { extraFds: [theirs.fd], stdin });
  theirs.close();
  return { ours, peer };
}

/** Queue one-byte messages carrying `fd` until the kernel says the peer's queue is full. */
function fillQueue(sock: UnixSocket, fd: Fd): number {
  for (let n = 0; n < 100_000; n++) {
    try {
      sock.sendSync('f', [fd], { timeoutMs: 0 });
    } catch (err) {
      if ((err as { code?: string }).code === 'ETIMEDOUT') return n;
      throw err;
    }
  }
  throw new Error('the queue never filled');
}

/** A promise that fails the test if `p` has not settled after `ms` (a hang guard, not a timing check). */
function orHang<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hung: ${what}`)), ms);
  });
  return Promise.race([p, hang]).finally(() => clearTimeout(timer));
}

/** True once every copy of the pipe's write end is closed: the read end reports EOF. */
function pipeAtEof(r: Fd): boolean {
  if (!waitSync(r.fd, POLLIN, 5000)) return false;
  return readSync(r.fd, Buffer.alloc(16)) === 0;
}

function closeAll(m: Message | null): void {
  for (const f of m?.fds ?? []) f.close();
}

describe('floods', () => {
  for (const type of [...MESSAGE_TYPES, 'stream'] as const) {
    it(`${type}: 253 fds per message as fast as a C peer can send, to maxFds: 1 — fd count flat, extras closed, good messages served`, async () => {
      await expectNoFdLeak(async () => {
        const ROUNDS = 600;
        const { ours, peer } = startPeer(type, ['flood', String(ROUNDS)]);
        const baseline = fdCount();
        let good = 0;
        let floods = 0;
        let dropped = 0;
        let maxFds = 0;
        for (;;) {
          const m = await unlessPeerFails(peer, ours.recv({ maxFds: 1 }));
          if (m === null) break;
          maxFds = Math.max(maxFds, fdCount());
          const text = m.data.toString();
          expect(m.fds).toHaveLength(1);
          if (text === 'flood') {
            floods++;
            expect(m.droppedFds).toBe(252);
            dropped += m.droppedFds;
          } else {
            expect(text).toBe(`good ${good}`);
            expect(m.droppedFds).toBe(0);
            expect(m.fds[0].describe()).toMatchObject({ kind: 'pipe', closeOnExec: true });
            good++;
          }
          closeAll(m);
          // Exactly the table we started with once the kept fd is closed: every extra went.
          expect(fdCount()).toBe(baseline);
        }
        expect({ floods, good, dropped }).toEqual({ floods: ROUNDS, good: ROUNDS, dropped: ROUNDS * 252 });
        expect(maxFds).toBe(baseline + 1);
        expect(JSON.parse(await cleanExit(peer))).toEqual({ sent: ROUNDS });
        ours.close();
      });
    });
  }
});

describe('unusual but legal control data from a C peer', () => {
  const SO_PASSPIDFD = 76; // Linux 6.5+, every architecture

  it('SCM_CREDENTIALS before or after SCM_RIGHTS, two SCM_RIGHTS, bare credentials, empty SCM_RIGHTS, a privileged claim', async () => {
    if (seqpacketUnsupported()) return expect(CREDENTIAL_MESSAGES).toBe(false);
    await expectNoFdLeak(async () => {
      const [ours, theirs] = socketPair('seqpacket');
      // Before the peer can send: messages queued earlier carry no credentials (pid 0, overflow ids).
      ours.passCredentials();
      const peer = peers.start(peerBinary, ['cmsgs'], { extraFds: [theirs.fd] });
      theirs.close();
      const report = JSON.parse(await cleanExit(peer));
      const pid = report.pid as number;
      const got: Record<string, unknown>[] = [];
      for (let i = 0; i < report.sent; i++) {
        const m = (await ours.recv({ maxFds: 2 }))!;
        got.push({ text: m.data.toString(), kinds: m.fds.map((f) => f.describe().kind), dropped: m.droppedFds, credentials: m.credentials });
        closeAll(m);
      }
      const own = { pid, uid: 0, gid: 0 };
      expect(got).toEqual([
        { text: 'creds then rights', kinds: ['pipe', 'pipe'], dropped: 0, credentials: own },
        { text: 'rights then creds', kinds: ['pipe', 'pipe'], dropped: 0, credentials: own },
        // The kernel merges the two SCM_RIGHTS into one list of 3; maxFds 2 keeps the first two.
        { text: 'two rights', kinds: ['pipe', 'pipe'], dropped: 1, credentials: own },
        { text: 'creds only', kinds: [], dropped: 0, credentials: own },
        { text: 'empty rights', kinds: [], dropped: 0, credentials: own },
        // Root may claim any pid and ids: credentials are only as trustworthy as the sender's privileges.
        { text: 'claims pid 1', kinds: ['pipe'], dropped: 0, credentials: { pid: 1, uid: 1234, gid: 5678 } },
      ]);
      expect(await ours.recv()).toBeNull();
      ours.close();
    });
  });

  it('without passCredentials() the kernel strips the credentials; the fds are intact', async () => {
    await expectNoFdLeak(async () => {
      const { ours, peer } = startPeer(MESSAGE_TYPE, ['cmsgs']);
      const report = JSON.parse(await cleanExit(peer));
      const texts: string[] = [];
      for (let i = 0; i < report.sent; i++) {
        const m = (await ours.recv())!;
        expect('credentials' in m).toBe(false);
        texts.push(`${m.data.toString()}:${m.fds.length}`);
        closeAll(m);
      }
      expect(texts).toEqual(['creds then rights:2', 'rights then creds:2', 'two rights:3', 'creds only:0', 'empty rights:0', 'claims pid 1:1']);
      ours.close();
    });
  });

  it('SO_PASSPIDFD set by someone else: each SCM_PIDFD descriptor is closed and counted as dropped', async () => {
    if (seqpacketUnsupported()) return;
    const qemuRefuses = emulationLimit('qemu-user refuses setsockopt(SO_PASSPIDFD) with ENOPROTOOPT, so no SCM_PIDFD can arrive', () => {
      const [x, y] = socketPair('seqpacket');
      const on = Buffer.alloc(4);
      on.writeInt32LE(1, 0);
      const result = sys.setsockopt(x.fd, C.SOL_SOCKET, SO_PASSPIDFD, on, 4) as number;
      const errno = lastErrno();
      x.close();
      y.close();
      expect({ result, errno }).toEqual({ result: -1, errno: osConstants.errno.ENOPROTOOPT });
    });
    if (qemuRefuses) return;
    await expectNoFdLeak(async () => {
      const [ours, theirs] = socketPair('seqpacket');
      const one = Buffer.alloc(4);
      one.writeInt32LE(1, 0);
      // Before the peer starts: the kernel records the sender's pid only for messages sent while
      // the receiver asks for it. Linux 6.5+ (this suite's kernels); failure means an older kernel.
      expect(sys.setsockopt(ours.fd, C.SOL_SOCKET, SO_PASSPIDFD, one, 4)).toBe(0);
      // The peer lingers until we close: the kernel makes each SCM_PIDFD at receive time, and
      // only for a sender that is still alive.
      const peer = peers.start(peerBinary, ['cmsgs-linger'], { extraFds: [theirs.fd] });
      theirs.close();
      const baseline = fdCount();
      const dropped: number[] = [];
      for (let i = 0; i < 6; i++) {
        const m = (await ours.recv())!;
        dropped.push(m.droppedFds);
        closeAll(m);
        expect(fdCount()).toBe(baseline);
      }
      expect(dropped).toEqual([1, 1, 1, 1, 1, 1]);
      ours.close();
      expect(JSON.parse(await cleanExit(peer))).toMatchObject({ sent: 6 });
    });
  });
});

describe('peers that die mid-message', () => {
  for (const mode of ['half', 'halfkill'] as const) {
    it(`stream, ${mode === 'half' ? 'exit' : 'SIGKILL'}: a 4-byte header promising 1000 bytes, 300 sent with 2 fds — the part arrives with its fds, then end of stream`, async () => {
      await expectNoFdLeak(async () => {
        const [ours, theirs] = socketPair('stream');
        const pending = ours.recv({ maxBytes: 1004 }); // waiting before the peer even starts
        const peer = peers.start(peerBinary, [mode, '1000', '300'], { extraFds: [theirs.fd] });
        theirs.close();
        const first = (await pending)!;
        // A framing reader would now wait for 700 more bytes: it gets end of stream instead, not a hang.
        let bytes = first.data.length;
        const fds = [...first.fds];
        for (let m = await ours.recv(); m !== null; m = await ours.recv()) {
          bytes += m.data.length;
          fds.push(...m.fds);
        }
        expect(first.data.readUInt32LE(0)).toBe(1000);
        expect(bytes).toBe(304);
        expect(fds.map((f) => f.describe().kind)).toEqual(['pipe', 'pipe']);
        for (const f of fds) f.close();
        const { signal } = await peer.exited;
        expect(signal).toBe(mode === 'halfkill' ? 'SIGKILL' : null);
        expect(await ours.recv()).toBeNull();
        ours.close();
      });
    });
  }
});

describe('peers that stop reading', () => {
  for (const type of [...MESSAGE_TYPES, 'stream'] as const) {
    it(`${type}: the peer exits while our send() waits for room — it rejects (EPIPE/ECONNRESET), and every copy of the fds in flight is freed`, async () => {
      await expectNoFdLeak(async () => {
        const { ours, peer } = startPeer(type, ['sink'], 'pipe');
        await peer.waitFor((l) => l.ready === true, 'ready');
        const [r, w] = pipe();
        const filled = fillQueue(ours, w);
        expect(filled).toBeGreaterThan(0);
        const blocked = ours.send('blocked', [w]);
        const behind = ours.send('behind', [w]);
        peer.child.stdin!.end(); // the peer exits without reading a byte
        const err = await orHang(rejection(blocked), 'send() after the peer exited');
        expect(['EPIPE', 'ECONNRESET']).toContain(err.code);
        expect(err.syscall).toBe('sendmsg');
        expect(['EPIPE', 'ECONNRESET']).toContain((await rejection(behind)).code);
        await cleanExit(peer);
        // Our copy is the last one: the kernel dropped the `filled` copies queued to the dead peer.
        w.close();
        expect(pipeAtEof(r)).toBe(true);
        r.close();
        ours.close();
      });
    });
  }

  it(`${MESSAGE_TYPE}: sends aborted while the peer never reads are dropped — memory stays bounded, later sends go out in order`, async () => {
    await expectNoFdLeak(async () => {
      const { ours, peer } = startPeer(MESSAGE_TYPE, ['sink', 'drain'], 'pipe');
      await peer.waitFor((l) => l.ready === true, 'ready');
      const [r, w] = pipe();
      const filled = fillQueue(ours, w);
      const payload = Buffer.alloc(64 * 1024, 0x61);
      const ROUNDS = 40;
      const PER_ROUND = 25; // 40 × 25 × 64 KiB = 62.5 MiB if aborted sends were kept
      gc();
      const base = process.memoryUsage();
      const fdsBefore = fdCount();
      let peak = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const ac = new AbortController();
        const sends = Array.from({ length: PER_ROUND }, () => ours.send(Buffer.from(payload), [w], { signal: ac.signal }));
        ac.abort();
        for (const s of sends) expect((await rejection(s)).name).toBe('AbortError');
        gc();
        const m = process.memoryUsage();
        peak = Math.max(peak, m.arrayBuffers - base.arrayBuffers, m.heapUsed - base.heapUsed);
      }
      expect(peak).toBeLessThan(16 * 2 ** 20);
      expect(fdCount()).toBe(fdsBefore);
      const final = ours.send('final', [w]);
      peer.child.stdin!.end(); // now the peer reads everything
      expect(await orHang(final, 'the send queued behind the aborted ones')).toBe(5);
      ours.close();
      await cleanExit(peer);
      const report = peer.lines.find((l) => 'count' in l)!;
      expect(report.count).toBe(filled + 1);
      expect(report.drained.at(-1)).toBe('final');
      expect(report.drained.filter((t: string) => t !== 'f')).toEqual(['final']);
      expect(report.fds).toBe(filled + 1);
      w.close();
      expect(pipeAtEof(r)).toBe(true);
      r.close();
    });
  });

  it('stream: aborting a send that is part-way out rejects at once (bytesWritten), and the socket refuses further sends instead of corrupting the stream', async () => {
    await expectNoFdLeak(async () => {
      const { ours, peer } = startPeer('stream', ['sink'], 'pipe');
      await peer.waitFor((l) => l.ready === true, 'ready');
      const [r, w] = pipe();
      const big = Buffer.alloc(8 * 2 ** 20, 0x62);
      const ac = new AbortController();
      const partial = ours.send(big, [w], { signal: ac.signal });
      const queued = ours.send('queued behind it');
      await new Promise((res) => setImmediate(res));
      ac.abort();
      const err = await orHang(rejection(partial), 'abort of a part-written stream send');
      expect(err.name).toBe('AbortError');
      expect(err.bytesWritten).toBeGreaterThan(0);
      expect(err.bytesWritten).toBeLessThan(big.length);
      expect(err.message).toContain('can no longer send');
      expect((await rejection(queued)).code).toBe('ERR_FDPASS_PARTIAL_SEND');
      expect((await rejection(ours.send('later'))).code).toBe('ERR_FDPASS_PARTIAL_SEND');
      expect(() => ours.sendSync('later', [], { timeoutMs: 1000 })).toThrow(expect.objectContaining({ code: 'ERR_FDPASS_PARTIAL_SEND' }));
      ours.close();
      peer.child.stdin!.end();
      await cleanExit(peer);
      w.close();
      expect(pipeAtEof(r)).toBe(true);
      r.close();
    });
  });

  it('stream: sendSync({ timeoutMs }) that times out part-way also stops the socket sending', async () => {
    await expectNoFdLeak(async () => {
      const { ours, peer } = startPeer('stream', ['sink'], 'pipe');
      await peer.waitFor((l) => l.ready === true, 'ready');
      const err = (() => {
        try {
          ours.sendSync(Buffer.alloc(8 * 2 ** 20), [], { timeoutMs: 50 });
        } catch (e) {
          return e as { code?: string };
        }
        throw new Error('expected ETIMEDOUT');
      })();
      expect(err.code).toBe('ETIMEDOUT');
      expect(() => ours.sendSync('x', [], { timeoutMs: 1000 })).toThrow(expect.objectContaining({ code: 'ERR_FDPASS_PARTIAL_SEND' }));
      ours.close();
      peer.child.stdin!.end();
      await cleanExit(peer);
    });
  });
});

describe('send-buffer pressure', () => {
  for (const type of ['dgram', ...MESSAGE_TYPES, 'stream'] as const) {
    it(`${type}: 3,000 async sends with an fd each to a slow C reader all arrive in order; nothing hangs`, async () => {
      await expectNoFdLeak(async () => {
        const N = 3000;
        const { ours, peer } = startPeer(type, ['slow', String(N)]);
        const [r, w] = pipe();
        const sends: Promise<number>[] = [];
        for (let i = 0; i < N; i++) sends.push(ours.send(`d${i}`, [w]));
        await orHang(unlessPeerFails(peer, Promise.all(sends)), `${N} sends to a slow reader`, 20_000);
        expect(JSON.parse(await cleanExit(peer))).toEqual({ received: N, fds: N });
        w.close();
        expect(pipeAtEof(r)).toBe(true);
        r.close();
        ours.close();
      });
    });
  }

  for (const type of ['seqpacket', 'dgram'] as const) {
    it(`${type}: a message larger than the send buffer fails at once with EMSGSIZE, explained — not a wait that never ends`, async () => {
      if (type === 'seqpacket' && seqpacketUnsupported()) return;
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        const [r, w] = pipe();
        const huge = Buffer.alloc(4 * 2 ** 20);
        const err = await orHang(rejection(a.send(huge, [w])), 'an oversized send');
        expect(err.code).toBe('EMSGSIZE');
        expect(err.message).toContain('send buffer');
        expect(() => a.sendSync(huge, [w])).toThrow(expect.objectContaining({ code: 'EMSGSIZE' }));
        // The socket still works.
        a.sendSync('small', [w]);
        const m = b.recvSync({ timeoutMs: 5000 })!;
        expect(m.data.toString()).toBe('small');
        closeAll(m);
        for (const x of [a, b, r, w]) x.close();
      });
    });
  }
});

describe('kernel limits', () => {
  it('ETOOMANYREFS: an unprivileged sender over its in-flight fd limit gets a clear error (sync and async), no hang; sending works again once the peer reads', async () => {
    if (await denoLimit('no-setgroups')) return;
    await expectNoFdLeak(async () => {
      const child = peers.start(process.execPath, [...tsArgs(fixture('hostile-limits.ts')), 'toomanyrefs']);
      const report = JSON.parse(await cleanExit(child));
      expect(report.uid).toBe(65534);
      const limit = report.limit as number;
      const per = report.perMessage as number;
      // The kernel refuses once the in-flight count exceeds RLIMIT_NOFILE.
      expect(report.sentBeforeError).toBeGreaterThanOrEqual(limit / per);
      expect(report.sentBeforeError).toBeLessThanOrEqual(limit / per + 1);
      for (const e of [report.syncError, report.asyncError]) {
        expect(e).toMatchObject({ code: 'ETOOMANYREFS', syscall: 'sendmsg', errno: -109 });
        expect(e.message).toContain('in flight');
      }
      expect(report.received).toEqual(Array.from({ length: report.sentBeforeError }, (_, i) => `m${i}:${per}`));
      expect(report.after).toBe(`after:${per}`);
      expect(report.fdsUnchanged).toBe(true);
    });
  });

  it('EMFILE with the async API: ERR_FDPASS_CTRUNC while the table is full, the next message arrives whole once descriptors are free', async () => {
    await expectNoFdLeak(async () => {
      const [ours, theirs] = socketPair(MESSAGE_TYPE);
      const child = peers.start(process.execPath, [...tsArgs(fixture('hostile-limits.ts')), 'emfile'], { extraFds: [theirs.fd] });
      theirs.close();
      const path = join(dir, 'emfile.txt');
      writeFileSync(path, 'x');
      const file = openSync(path, 'r');
      const [r, w] = pipe();
      ours.sendSync('first', [r, w, file]);
      ours.sendSync('second', [w, file]);
      const report = JSON.parse(await cleanExit(child));
      expect(report.fill).toBe('EMFILE');
      expect(report.first).toMatchObject({ code: 'ERR_FDPASS_CTRUNC', syscall: 'recvmsg' });
      expect(report.fdsRestored).toBe(true);
      expect(report.second).toEqual({ data: 'second', fds: ['pipe', 'file'] });
      closeSync(file);
      for (const x of [ours, r, w]) x.close();
    });
  });
});
