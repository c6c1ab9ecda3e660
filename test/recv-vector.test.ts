/**
 * Batches on message sockets read with recvmmsg (Linux, src/recv-vector.ts): one call returns many
 * messages, and every one must come out as one recvmsg each would have given it — in order, with
 * its fds, its errors in their turn, the batch limits kept (messages the call returned beyond them
 * wait, first in line), zero-length seqpacket messages and end of stream told apart, and no fd
 * leaked. The same tests run with FDPASS_CAPABILITIES=minimal, where batches use recvmsg.
 */
import * as fs from './fdfs.js';
import koffi from 'koffi';
import { describe, expect, it } from 'vitest';
import { pipe, platform, socketPair, type Message, type UnixSocket } from '../src/index.js';
import { catchError, expectNoFdLeak, fdCount, gc, sameFile, spawnFixture } from './helpers.js';
import { CREDENTIAL_MESSAGES, MESSAGE_TYPE, MINIMAL, seqpacketUnsupported } from './mode.js';

/** The message socket types recvmmsg is used for: 'seqpacket' (where fdpass has it) and 'dgram'. */
const TYPES: ('seqpacket' | 'dgram')[] = MESSAGE_TYPE === 'seqpacket' ? ['seqpacket', 'dgram'] : ['dgram'];
/** Whether batches here go through recvmmsg (what the platform table says). */
const VECTORS = platform.capabilities.messageVectors;

const texts = (batch: (Message | null)[] | null): (string | null)[] | null => batch?.map((m) => m?.data.toString() ?? null) ?? null;

function closeAll(messages: (Message | null)[] | null): void {
  for (const m of messages ?? []) for (const f of m?.fds ?? []) f.close();
}

// send(2) straight from libc: fdpass itself never sends an empty payload (it sends one NUL byte).
const libc = koffi.load(platform.libcName as string);
const rawSend = libc.func('intptr_t send(int fd, void *buf, uintptr_t len, int flags)') as (fd: number, buf: Buffer, len: number, flags: number) => number;
function sendRaw(socket: UnixSocket, text: string): void {
  // Never an empty Buffer: koffi may pass NULL for it, which qemu-user refuses (EFAULT) even with length 0.
  const b = Buffer.from(`${text}.`);
  const n = b.length - 1;
  if (rawSend(socket.fd, b, n, 0) !== n) throw new Error(`send failed (errno ${koffi.errno()})`);
}

/** A payload of `size` bytes that names message i. */
function payload(i: number, size: number): Buffer {
  const b = Buffer.alloc(size, 97 + (i % 26));
  b.write(`#${i}:`);
  return b;
}

for (const type of TYPES) {
  describe(`${type}: batches read with recvmmsg`, () => {
    it('many queued messages, varied sizes and fds, come in one batch in order', async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        const [r, w] = pipe();
        const sizes = Array.from({ length: 60 }, (_, i) => 1 + ((i * 977) % 3000));
        const fdsOf = (i: number): number[] => [[], [r.fd], [r.fd, w.fd], [w.fd, r.fd, w.fd]][i % 4];
        for (let i = 0; i < sizes.length; i++) a.sendSync(payload(i, sizes[i]), fdsOf(i));
        const baseline = fdCount();
        const batch = b.recvBatchSync({ maxBytes: 4096, maxMessages: 1000 })!;
        expect(batch.map((m) => m.data.length)).toEqual(sizes);
        for (let i = 0; i < batch.length; i++) {
          expect(batch[i].data.equals(payload(i, sizes[i]))).toBe(true);
          const expected = fdsOf(i);
          expect(batch[i].fds.length).toBe(expected.length);
          expected.forEach((fd, j) => expect(sameFile(batch[i].fds[j].fd, fd)).toBe(true));
          expect(batch[i].droppedFds).toBe(0);
        }
        expect(fdCount()).toBe(baseline + 90); // 60 messages, 0+1+2+3 fds per four
        closeAll(batch);
        expect(fdCount()).toBe(baseline);
        expect(catchError(() => b.recvBatchSync({ timeoutMs: 0 })).code).toBe('ETIMEDOUT');
        for (const x of [a, b, r, w]) x.close();
      });
    });

    it('more messages than maxBatchBytes / maxBatchFds allow: the rest waits, first in line, and nothing is lost', async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        const [r, w] = pipe();
        for (let i = 0; i < 10; i++) a.sendSync(payload(i, 1000));
        // One vector call can read all ten; the batch stops once it holds 2500 bytes or more.
        expect(b.recvBatchSync({ maxBatchBytes: 2500 })!.map((m) => m.data.subarray(0, 3).toString())).toEqual(['#0:', '#1:', '#2:']);
        expect(b.recvBatchSync({ maxBatchBytes: 2500 })!.map((m) => m.data.subarray(0, 3).toString())).toEqual(['#3:', '#4:', '#5:']);
        expect(b.recvSync()!.data.subarray(0, 3).toString()).toBe('#6:');
        expect(b.recvBatchSync({ maxMessages: 2 })!.map((m) => m.data.subarray(0, 3).toString())).toEqual(['#7:', '#8:']);
        expect(b.recvBatchSync()!.map((m) => m.data.subarray(0, 3).toString())).toEqual(['#9:']);
        // Fds: the batch stops at 5 or more; the messages read beyond it keep theirs until handed out.
        const other = fs.openSync('/dev/null', 'r');
        const baseline = fdCount();
        for (let i = 0; i < 6; i++) a.sendSync(`f${i}`, [r.fd, other, r.fd]);
        const first = b.recvBatchSync({ maxBatchFds: 5 })!;
        expect(texts(first)).toEqual(['f0', 'f1']);
        const held = fdCount() - baseline; // 6 in the batch, and those read ahead
        expect(held).toBeGreaterThanOrEqual(6);
        expect(held % 3).toBe(0);
        const rest: Message[] = [];
        for (let batch; (batch = b.recvBatchSync({ maxBatchFds: 5, timeoutMs: 0 }));) {
          expect(batch.length).toBeLessThanOrEqual(2);
          rest.push(...batch);
          if (rest.length === 4) break;
        }
        expect(texts(rest)).toEqual(['f2', 'f3', 'f4', 'f5']);
        for (const m of [...first, ...rest]) {
          expect(m.fds.map((f) => sameFile(f.fd, r.fd))).toEqual([true, false, true]);
        }
        expect(fdCount()).toBe(baseline + 18);
        closeAll(first);
        closeAll(rest);
        // Per-message maxFds in a vector: extra fds closed at once and counted.
        sendMany3(a, r.fd, w.fd);
        const limited = b.recvBatchSync({ maxFds: 1 })!;
        expect(limited.map((m) => [m.data.toString(), m.fds.length, m.droppedFds])).toEqual([['x0', 1, 1], ['x1', 1, 1], ['x2', 1, 1]]);
        expect(fdCount()).toBe(baseline + 3);
        closeAll(limited);
        // What was read ahead and never handed out is closed with the socket.
        for (let i = 0; i < 4; i++) a.sendSync(`g${i}`, [r.fd]);
        const one = b.recvBatchSync({ maxBatchFds: 1 })!;
        expect(texts(one)).toEqual(['g0']);
        closeAll(one);
        b.close();
        expect(fdCount()).toBe(baseline - 1);
        fs.closeSync(other);
        for (const x of [a, r, w]) x.close();
      });
    });

    it('order holds across batches, recv, recvSync, batches() and the async iterator', async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        const [r, w] = pipe();
        for (let i = 0; i < 40; i++) a.sendSync(`m${i}`, i % 3 === 0 ? [r.fd] : []);
        const seen: string[] = [];
        const take = (messages: (Message | null)[] | null): void => {
          for (const m of messages ?? []) {
            seen.push(m!.data.toString());
            if (Number(m!.data.toString().slice(1)) % 3 === 0) expect(sameFile(m!.fds[0].fd, r.fd)).toBe(true);
          }
          closeAll(messages);
        };
        take(b.recvBatchSync({ maxMessages: 5 }));
        take([b.recvSync()]);
        take([await b.recv()]);
        take(await b.recvBatch({ maxBatchBytes: 6 })); // 'm7'.. are 2 or 3 bytes: three messages
        let n = 0;
        for await (const m of b) {
          take([m]);
          if (++n === 4) break;
        }
        take(b.recvBatchSync({ maxMessages: 3 }));
        for await (const batch of b.batches({ maxMessages: 7 })) {
          take(batch);
          break;
        }
        take([b.recvSync()]);
        for await (const m of b) {
          take([m]);
          if (seen.length === 40) break;
        }
        expect(seen).toEqual(Array.from({ length: 40 }, (_, i) => `m${i}`));
        for (const x of [a, b, r, w]) x.close();
      });
    });

    it('a message longer than maxBytes in the middle of a vector: the messages before it, then ERR_FDPASS_TRUNC, then the rest', async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        const [r, w] = pipe();
        const baseline = fdCount();
        a.sendSync('s1', [r.fd]);
        a.sendSync(Buffer.alloc(100, 120), [r.fd, w.fd]);
        a.sendSync(Buffer.alloc(100, 121), [w.fd]);
        a.sendSync('s2', [w.fd]);
        a.sendSync('s3');
        const first = b.recvBatchSync({ maxBytes: 50 })!;
        expect(texts(first)).toEqual(['s1']);
        expect(fdCount()).toBe(baseline + 1 + (VECTORS ? 1 : 0)); // s1's fd, and s2's read ahead
        expect(catchError(() => b.recvBatchSync({ maxBytes: 50 })).code).toBe('ERR_FDPASS_TRUNC');
        expect(catchError(() => b.recvSync({ maxBytes: 50 })).code).toBe('ERR_FDPASS_TRUNC');
        const rest = b.recvBatchSync({ maxBytes: 50 })!;
        expect(texts(rest)).toEqual(['s2', 's3']);
        expect(sameFile(rest[0].fds[0].fd, w.fd)).toBe(true);
        closeAll(first);
        closeAll(rest);
        expect(fdCount()).toBe(baseline);
        // The first slot too long: the call throws, and the messages after it wait.
        a.sendSync(Buffer.alloc(100), [r.fd]);
        a.sendSync('t1', [r.fd]);
        a.sendSync('t2');
        expect(catchError(() => b.recvBatchSync({ maxBytes: 50 })).code).toBe('ERR_FDPASS_TRUNC');
        const after = b.recvBatchSync({ maxBytes: 50 })!;
        expect(texts(after)).toEqual(['t1', 't2']);
        closeAll(after);
        expect(fdCount()).toBe(baseline);
        for (const x of [a, b, r, w]) x.close();
      });
    });

    it('credentials of every message of a vector, with passCredentials()', async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        if (!CREDENTIAL_MESSAGES) {
          expect(() => b.passCredentials()).toThrow(expect.objectContaining({ code: 'ERR_FDPASS_UNSUPPORTED' }));
          a.close();
          b.close();
          return;
        }
        b.passCredentials();
        const [r, w] = pipe();
        for (let i = 0; i < 8; i++) a.sendSync(`c${i}`, i % 2 ? [r.fd] : []);
        const batch = b.recvBatchSync()!;
        expect(texts(batch)).toEqual(Array.from({ length: 8 }, (_, i) => `c${i}`));
        const ids = { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() };
        for (let i = 0; i < 8; i++) {
          expect(batch[i].credentials).toEqual(ids);
          expect(batch[i].fds.length).toBe(i % 2);
        }
        closeAll(batch);
        for (const x of [a, b, r, w]) x.close();
      });
    });

    it('under GC pressure, batches of many sizes lose nothing', async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        const [r, w] = pipe();
        let next = 0;
        for (let round = 0; round < 20; round++) {
          const maxBytes = [16, 100, 4096, 65536, 300_000][round % 5];
          for (let i = 0; i < 30; i++) a.sendSync(payload(next + i, 1 + ((next + i) % 16)), [r.fd]);
          gc();
          const got: Message[] = [];
          while (got.length < 30) got.push(...b.recvBatchSync({ maxBytes, maxMessages: 1 + (round % 40) })!);
          got.forEach((m, i) => expect(m.data.equals(payload(next + i, 1 + ((next + i) % 16)))).toBe(true));
          closeAll(got);
          next += 30;
        }
        for (const x of [a, b, r, w]) x.close();
      });
    });
  });
}

function sendMany3(a: UnixSocket, r: number, w: number): void {
  for (let i = 0; i < 3; i++) a.sendSync(`x${i}`, [r, w]);
}

describe('seqpacket: zero-length messages and end of stream in a vector', () => {
  it('a zero-length message between messages: null in its turn, and the messages after it follow', async () => {
    if (seqpacketUnsupported()) return;
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair('seqpacket');
      // One recvmsg at a time (recvSync), the reference.
      for (const t of ['a', '', 'b', '', '', 'c']) sendRaw(a, t);
      expect([0, 1, 2, 3, 4, 5].map(() => b.recvSync()?.data.toString() ?? null)).toEqual(['a', null, 'b', null, null, 'c']);
      // A batch ends at a zero-length message (which it takes); a batch that starts at one is null.
      for (const t of ['a', '', 'b', '', '', 'c']) sendRaw(a, t);
      expect(texts(b.recvBatchSync())).toEqual(['a']);
      expect(texts(b.recvBatchSync())).toEqual(['b']);
      expect(b.recvBatchSync()).toBeNull();
      expect(texts(b.recvBatchSync())).toEqual(['c']);
      expect(catchError(() => b.recvBatchSync({ timeoutMs: 0 })).code).toBe('ETIMEDOUT');
      // Read ahead by a batch that stops at maxBatchBytes: the zero-length ones wait in order too.
      for (const t of ['a', '', 'b', '', '', 'c']) sendRaw(a, t);
      expect(texts(b.recvBatchSync({ maxBatchBytes: 1 }))).toEqual(['a']);
      expect(b.recvSync()).toBeNull();
      expect((await b.recv())!.data.toString()).toBe('b');
      expect(await b.recv()).toBeNull();
      expect(b.recvBatchSync()).toBeNull();
      expect(texts(await b.recvBatch())).toEqual(['c']);
      // The async iterator ends at one it reads first (as at end of stream); the next loop goes
      // on after it. One after messages ends the batch it reads ahead, and is taken with it.
      for (const t of ['', 'd', 'e', '', 'f']) sendRaw(a, t);
      const seen: string[] = [];
      for await (const m of b) seen.push(m.data.toString());
      expect(seen).toEqual([]);
      for await (const m of b) {
        seen.push(m.data.toString());
        if (seen.length === 3) break;
      }
      expect(seen).toEqual(['d', 'e', 'f']);
      a.close();
      b.close();
    });
  });

  it('zero-length messages that fill the end of a vector while the peer is open are messages (a null each), not the end of stream', async () => {
    if (seqpacketUnsupported()) return;
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair('seqpacket');
      const [r, w] = pipe();
      // (Every receive has a timeout: a lost message must fail the test, not block it.)
      // maxMessages 4: one vector of 4 slots, the last two zero-length reads. Read one recvmsg at
      // a time, a batch ending at a zero-length message takes it, and the next one is null.
      for (const t of ['a', 'b', '', '']) sendRaw(a, t);
      const first = b.recvBatchSync({ maxMessages: 4, timeoutMs: 1000 });
      expect(texts(first)).toEqual(['a', 'b']);
      expect(b.recvBatchSync({ timeoutMs: 1000 })).toBeNull();
      expect(catchError(() => b.recvBatchSync({ timeoutMs: 0 })).code).toBe('ETIMEDOUT');
      // Every slot zero-length: four nulls, one per receive, then nothing.
      for (let i = 0; i < 4; i++) sendRaw(a, '');
      expect([0, 1, 2, 3].map(() => b.recvBatchSync({ maxMessages: 4, timeoutMs: 1000 }))).toEqual([null, null, null, null]);
      expect(catchError(() => b.recvBatchSync({ timeoutMs: 0 })).code).toBe('ETIMEDOUT');
      // A message with fds waiting behind them: the peek that tells installs none of its fds.
      for (const t of ['c', '', '']) sendRaw(a, t);
      a.sendSync('d', [w]);
      const before = fdCount();
      expect(texts(b.recvBatchSync({ maxMessages: 3, timeoutMs: 1000 }))).toEqual(['c']);
      expect(fdCount()).toBe(before);
      expect(b.recvBatchSync({ maxMessages: 3, timeoutMs: 1000 })).toBeNull();
      const d = b.recvBatchSync({ timeoutMs: 1000 })!;
      expect(texts(d)).toEqual(['d']);
      expect(sameFile(d[0].fds[0].fd, w.fd)).toBe(true);
      closeAll(d);
      // The peer gone after the same sequence: the same messages, then the end.
      for (const t of ['e', 'f', '', '']) sendRaw(a, t);
      a.close();
      expect(texts(b.recvBatchSync({ maxMessages: 4, timeoutMs: 1000 }))).toEqual(['e', 'f']);
      expect(b.recvBatchSync({ timeoutMs: 1000 })).toBeNull();
      expect(b.recvBatchSync({ timeoutMs: 1000 })).toBeNull();
      b.close();
      r.close();
      w.close();
    });
  });

  it('end of stream after messages: the messages, then null, and null again', async () => {
    if (seqpacketUnsupported()) return;
    await expectNoFdLeak(async () => {
      const [r, w] = pipe();
      for (const reader of ['batch', 'iterator', 'batches'] as const) {
        const [a, b] = socketPair('seqpacket');
        for (let i = 0; i < 5; i++) a.sendSync(`e${i}`, [w.fd]);
        sendRaw(a, ''); // a zero-length message just before the end: null either way
        a.close();
        const got: Message[] = [];
        if (reader === 'batch') {
          got.push(...b.recvBatchSync({ maxMessages: 3 })!, ...b.recvBatchSync()!);
          expect(b.recvBatchSync()).toBeNull();
          expect(b.recvBatchSync()).toBeNull();
        } else if (reader === 'iterator') {
          for await (const m of b) got.push(m);
        } else {
          for await (const batch of b.batches()) got.push(...batch);
        }
        expect(texts(got)).toEqual(['e0', 'e1', 'e2', 'e3', 'e4']);
        for (const m of got) expect(sameFile(m.fds[0].fd, w.fd)).toBe(true);
        closeAll(got);
        expect(await b.recvBatch()).toBeNull();
        expect(b.recvSync()).toBeNull();
        expect(await b.recv()).toBeNull();
        fs.closeSync(b.release()); // nothing was held back
      }
      r.close();
      w.close();
    });
  });
});

describe('MSG_CTRUNC inside one recvmmsg call', () => {
  for (const type of TYPES) {
    it(`${type}: the fd table fuller than fdpass can tell — every message that lost fds fails in its turn, none leaks`, async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        const [r, w] = pipe();
        try {
          a.sendSync('one', [w]);
          a.sendSync('many', new Array(20).fill(w));
          a.sendSync('two', [w]);
          const fixture = spawnFixture('vector-ctrunc-receiver', [type], [b.fd]);
          b.close();
          w.close();
          const result = await fixture.exited;
          expect(result.stderr).toBe('');
          expect(result.code).toBe(0);
          const { steps, highest } = JSON.parse(result.stdout.trim()) as { steps: unknown[]; highest: number };
          expect(highest).toBe(1199); // the table really was full below the limit
          expect(steps[0]).toEqual([{ data: 'one', fds: 1 }]);
          expect(steps[1]).toEqual({ code: 'ERR_FDPASS_CTRUNC', fdsUnchanged: true });
          if (VECTORS) {
            // 'many' still held the fds it got when 'two' arrived in the same call: 'two' lost its fd as well.
            expect(steps[2]).toEqual({ code: 'ERR_FDPASS_CTRUNC', fdsUnchanged: true });
            expect(fs.readFileSync(r.fd, 'utf8')).toBe('one;');
          } else {
            // One recvmsg at a time: 'many's fds were closed before 'two' was read.
            expect(steps[2]).toEqual([{ data: 'two', fds: 1 }]);
            expect(fs.readFileSync(r.fd, 'utf8')).toBe('one;two;');
          }
        } finally {
          for (const x of [a, b, r, w]) x.close();
        }
      });
    });
  }
});

describe('which receive path', () => {
  it('vectors where the platform table says so (Linux native), recvmsg in minimal mode', () => {
    expect(VECTORS).toBe(platform.os === 'linux' && !MINIMAL);
  });
});

describe('errors', () => {
  it.skipIf(MESSAGE_TYPE !== 'seqpacket')('an error from the receive call itself names it: recvmmsg where batches use it, recvmsg otherwise', async () => {
    await expectNoFdLeak(() => {
      const [a, b] = socketPair('seqpacket');
      // A seqpacket socket closed with messages unread resets its peer (ECONNRESET on the next receive).
      b.sendSync('never read');
      a.close();
      const err = catchError(() => b.recvBatchSync({ timeoutMs: 1000 }));
      expect({ code: err.code, syscall: err.syscall }).toEqual({ code: 'ECONNRESET', syscall: VECTORS ? 'recvmmsg' : 'recvmsg' });
      b.close();
    });
  });
});
