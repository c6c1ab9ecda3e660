/**
 * Batch receive: recvBatchSync(), recvBatch(), batches(), and the async iterator that reads
 * ahead in batches. Same guarantees as one message at a time: kernel order whatever mix of calls,
 * abort, close, TRUNC/CTRUNC (an error after the first message of a batch waits for the next
 * call), bounded batches, no fd leaks — and messages read ahead but not handed out stay with the
 * socket (the next receive gets them) until close() closes their fds.
 */
import * as fs from './fdfs.js';
import { describe, expect, it } from 'vitest';
import { FdPassError, pipe, socketPair, type Message, type SocketType, type UnixSocket } from '../src/index.js';
import { catchError, expectNoFdLeak, fdCount, gc, rejection, spawnFixture } from './helpers.js';
import { MESSAGE_TYPE } from './mode.js';

/** Message types of this platform: its own ('seqpacket', or 'framed' without SEQPACKET) and 'framed' always. */
const MESSAGE_TYPES = [...new Set<SocketType>([MESSAGE_TYPE, 'framed'])];
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const texts = (batch: Message[] | null): string[] | null => batch?.map((m) => m.data.toString()) ?? null;

function closeAll(messages: (Message | null)[] | null): void {
  for (const m of messages ?? []) for (const f of m?.fds ?? []) f.close();
}

/** Send `n` messages 'm0'.. with `fds` each. */
function sendMany(a: UnixSocket, n: number, fds: number[] = [], prefix = 'm'): void {
  for (let i = 0; i < n; i++) a.sendSync(`${prefix}${i}`, fds);
}

function sameFile(x: number, y: number): boolean {
  const s = fs.fstatSync(x);
  const t = fs.fstatSync(y);
  return s.dev === t.dev && s.ino === t.ino;
}

for (const type of MESSAGE_TYPES) {
  describe(`${type}: recvBatchSync / recvBatch`, () => {
    it('return every queued message in order with its fds, then null at end of stream', async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        const [r, w] = pipe();
        sendMany(a, 5, [r.fd]);
        a.sendSync('no fds');
        const batch = b.recvBatchSync()!;
        expect(texts(batch)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'no fds']);
        for (const m of batch.slice(0, 5)) {
          expect(m.fds.length).toBe(1);
          expect(sameFile(m.fds[0].fd, r.fd)).toBe(true);
          expect(m.droppedFds).toBe(0);
        }
        expect(batch[5].fds).toEqual([]);
        closeAll(batch);
        // Nothing queued: the sync form times out, the async one waits for the next message.
        expect(catchError(() => b.recvBatchSync({ timeoutMs: 0 })).code).toBe('ETIMEDOUT');
        const pending = b.recvBatch();
        await tick();
        sendMany(a, 3, [], 'late');
        expect(texts(await pending)).toEqual(['late0', 'late1', 'late2']);
        a.close();
        expect(b.recvBatchSync()).toBeNull();
        expect(await b.recvBatch()).toBeNull();
        for (const x of [b, r, w]) x.close();
      });
    });

    it('a batch ends at maxMessages, maxBatchBytes or maxBatchFds; the rest waits for the next call', async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        const [r, w] = pipe();
        sendMany(a, 10);
        expect(texts(b.recvBatchSync({ maxMessages: 4 }))).toEqual(['m0', 'm1', 'm2', 'm3']);
        expect(texts(await b.recvBatch({ maxMessages: 4 }))).toEqual(['m4', 'm5', 'm6', 'm7']);
        expect(texts(b.recvBatchSync())).toEqual(['m8', 'm9']);
        // Bytes: the batch ends once it holds maxBatchBytes or more (1000 + 1000 + 1000 >= 2500).
        for (let i = 0; i < 5; i++) a.sendSync(Buffer.alloc(1000, 48 + i));
        expect(b.recvBatchSync({ maxBatchBytes: 2500 })!.map((m) => m.data.length)).toEqual([1000, 1000, 1000]);
        expect(b.recvBatchSync({ maxBatchBytes: 2500 })!.map((m) => m.data[0])).toEqual([51, 52]);
        // Descriptors: 3 + 3 >= 5 ends it.
        sendMany(a, 4, [r.fd, r.fd, r.fd], 'f');
        const first = b.recvBatchSync({ maxBatchFds: 5 })!;
        expect(texts(first)).toEqual(['f0', 'f1']);
        const second = (await b.recvBatch({ maxBatchFds: 5 }))!;
        expect(texts(second)).toEqual(['f2', 'f3']);
        closeAll(first);
        closeAll(second);
        // Per-message limits apply to every message of the batch: fds beyond maxFds are closed and counted.
        sendMany(a, 2, [r.fd, w.fd], 'x');
        const limited = b.recvBatchSync({ maxFds: 1 })!;
        expect(limited.map((m) => [m.fds.length, m.droppedFds])).toEqual([[1, 1], [1, 1]]);
        closeAll(limited);
        for (const x of [a, b, r, w]) x.close();
      });
    });

    it('waits in order with recv(): each call gets the messages after those of the calls before it', async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        const one = b.recv();
        const batch = b.recvBatch();
        const after = b.recv();
        await tick();
        sendMany(a, 4);
        expect((await one)!.data.toString()).toBe('m0');
        expect(texts(await batch)).toEqual(['m1', 'm2', 'm3']);
        a.sendSync('m4');
        expect((await after)!.data.toString()).toBe('m4');
        a.close();
        b.close();
      });
    });

    it('a message longer than maxBytes ends the batch; the next call throws ERR_FDPASS_TRUNC, then the rest follows', async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        const [r, w] = pipe();
        a.sendSync('short1');
        a.sendSync('short2');
        a.sendSync(Buffer.alloc(100, 120), [r.fd]);
        a.sendSync('short3');
        const before = fdCount();
        expect(texts(b.recvBatchSync({ maxBytes: 50 }))).toEqual(['short1', 'short2']);
        const err = catchError(() => b.recvBatchSync({ maxBytes: 50 }));
        expect(err).toBeInstanceOf(FdPassError);
        expect(err.code).toBe('ERR_FDPASS_TRUNC');
        expect(fdCount()).toBe(before); // the long message's fd was closed
        expect(texts(await b.recvBatch({ maxBytes: 50 }))).toEqual(['short3']);
        for (const x of [a, b, r, w]) x.close();
      });
    });

    it('abort: a waiting recvBatch rejects with AbortError and the socket stays usable', async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        const ac = new AbortController();
        const pending = b.recvBatch({ signal: ac.signal });
        await tick();
        ac.abort();
        const err = await rejection(pending);
        expect(err.name).toBe('AbortError');
        expect(err.code).toBe('ABORT_ERR');
        sendMany(a, 2);
        // An aborted signal refuses at once, without taking a message.
        expect((await rejection(b.recvBatch({ signal: ac.signal }))).name).toBe('AbortError');
        expect(texts(await b.recvBatch())).toEqual(['m0', 'm1']);
        a.close();
        b.close();
      });
    });

    it('close: a waiting recvBatch resolves null; on a closed socket it rejects with ERR_FDPASS_CLOSED', async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        const pending = b.recvBatch();
        await tick();
        b.close();
        expect(await pending).toBeNull();
        expect((await rejection(b.recvBatch())).code).toBe('ERR_FDPASS_CLOSED');
        expect(catchError(() => b.recvBatchSync()).code).toBe('ERR_FDPASS_CLOSED');
        a.close();
      });
    });

    it('recvBatchSync refuses to run while async receives wait (it would reorder them)', async () => {
      const [a, b] = socketPair(type);
      const pending = b.recv();
      expect(catchError(() => b.recvBatchSync()).code).toBe('ERR_FDPASS_BUSY');
      a.sendSync('x');
      expect((await pending)!.data.toString()).toBe('x');
      a.close();
      b.close();
    });
  });

  describe(`${type}: batches()`, () => {
    it('yields every queued message as batches until end of stream', async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        const [r, w] = pipe();
        const got: string[] = [];
        const sizes: number[] = [];
        const done = (async () => {
          for await (const batch of b.batches({ maxMessages: 64 })) {
            sizes.push(batch.length);
            for (const m of batch) got.push(m.data.toString());
            closeAll(batch);
          }
        })();
        for (let round = 0; round < 5; round++) {
          sendMany(a, 100, [r.fd], `r${round}-`);
          // A blocking send into a full queue would stall the loop that reads it.
          while (got.length < (round + 1) * 100) await tick();
        }
        a.close();
        await done;
        expect(got).toEqual(Array.from({ length: 500 }, (_, i) => `r${Math.floor(i / 100)}-${i % 100}`));
        expect(Math.max(...sizes)).toBeLessThanOrEqual(64);
        expect(sizes.length).toBeLessThan(500); // batched, not one message per step
        for (const x of [b, r, w]) x.close();
      });
    });

    it('ends when the socket is closed, and checks its options before iterating', async () => {
      const [a, b] = socketPair(type);
      expect(() => b.batches({ maxMessages: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
      let n = 0;
      const loop = (async () => {
        for await (const batch of b.batches()) n += batch.length;
        return n;
      })();
      sendMany(a, 3);
      while (n < 3) await tick();
      b.close(); // while the next step waits
      expect(await loop).toBe(3);
      a.close();
    });
  });

  describe(`${type}: for await (const msg of socket) reads ahead`, () => {
    it('every message in order; breaking out leaves the messages read ahead to the next receive', async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        const [r, w] = pipe();
        sendMany(a, 10, [r.fd]);
        const seen: string[] = [];
        for await (const msg of b) {
          seen.push(msg.data.toString());
          closeAll([msg]);
          if (seen.length === 3) break;
        }
        expect(seen).toEqual(['m0', 'm1', 'm2']);
        // The iterator read m3..m9 ahead: they come next, whatever the call, with their fds.
        const m3 = b.recvSync()!;
        expect(m3.data.toString()).toBe('m3');
        expect(sameFile(m3.fds[0].fd, r.fd)).toBe(true);
        const m4 = (await b.recv())!;
        expect(m4.data.toString()).toBe('m4');
        const m56 = b.recvBatchSync({ maxMessages: 2 });
        expect(texts(m56)).toEqual(['m5', 'm6']);
        closeAll([m4, ...m56!]);
        a.sendSync('m10', [r.fd]);
        const rest: string[] = [];
        for await (const msg of b) {
          rest.push(msg.data.toString());
          closeAll([msg]);
          if (msg.data.toString() === 'm10') break;
        }
        expect(rest).toEqual(['m7', 'm8', 'm9', 'm10']);
        closeAll([m3]);
        for (const x of [a, b, r, w]) x.close();
      });
    });

    it('close() closes the fds of messages read ahead and never handed out; release() refuses while it holds any', async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        const [r, w] = pipe();
        const baseline = fdCount();
        sendMany(a, 5, [r.fd, w.fd]);
        for await (const msg of b) {
          closeAll([msg]);
          break;
        }
        expect(fdCount()).toBe(baseline + 8); // four messages read ahead, two fds each
        expect(catchError(() => b.release()).code).toBe('ERR_FDPASS_BUSY');
        b.close();
        expect(fdCount()).toBe(baseline - 1); // and b's own descriptor
        for (const x of [a, r, w]) x.close();
      });
    });

    it('a concurrent recv() keeps the order: it takes the next message read ahead', async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        sendMany(a, 6);
        const order: string[] = [];
        const it = b[Symbol.asyncIterator]();
        order.push((await it.next()).value!.data.toString());
        order.push((await b.recv())!.data.toString());
        order.push((await it.next()).value!.data.toString());
        order.push(b.recvSync()!.data.toString());
        order.push(...texts(await b.recvBatch())!);
        expect(order).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
        await it.return!();
        a.close();
        b.close();
      });
    });

    it('an error after messages read ahead is thrown in its turn, and the loop after it goes on', async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        a.sendSync('before');
        a.sendSync(Buffer.alloc(70_000)); // longer than the iterator's maxBytes (65536)
        a.sendSync('after');
        const seen: string[] = [];
        let error: FdPassError | undefined;
        try {
          for await (const msg of b) seen.push(msg.data.toString());
        } catch (err) {
          error = err as FdPassError;
        }
        expect(seen).toEqual(['before']);
        expect(error?.code).toBe('ERR_FDPASS_TRUNC');
        a.close();
        for await (const msg of b) seen.push(msg.data.toString());
        expect(seen).toEqual(['before', 'after']);
        b.close();
      });
    });

    it('ends when the socket is closed while it waits, and under GC pressure loses nothing', async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = socketPair(type);
        const [r, w] = pipe();
        let count = 0;
        const loop = (async () => {
          for await (const msg of b) {
            if (count % 50 === 0) gc();
            expect(msg.data.toString()).toBe(`m${count}`);
            count++;
            closeAll([msg]);
          }
        })();
        for (let i = 0; i < 300; i++) {
          a.sendSync(`m${i}`, [r.fd]);
          if (i % 37 === 0) while (count < i - 100) await tick();
        }
        while (count < 300) await tick();
        b.close();
        await loop;
        expect(count).toBe(300);
        for (const x of [a, r, w]) x.close();
      });
    });
  });
}

describe('stream sockets', () => {
  it('a chunk read ahead is split by the next call\'s maxBytes, as the kernel would keep the rest', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair('stream');
      const [r, w] = pipe();
      a.sendSync('0123456789', [r.fd]);
      a.sendSync('abcdef');
      const it = b[Symbol.asyncIterator]();
      const first = (await it.next()).value!;
      // Stream reads return what is there: one chunk here (the fds end it after the first part).
      expect(first.data.toString()).toBe('0123456789');
      closeAll([first]);
      await it.return!();
      const head = b.recvSync({ maxBytes: 2 })!;
      expect(head.data.toString()).toBe('ab');
      expect(b.recvSync({ maxBytes: 100 })!.data.toString()).toBe('cdef');
      for (const x of [a, b, r, w]) x.close();
    });
  });
});

describe('MSG_CTRUNC inside a batch', () => {
  for (const type of MESSAGE_TYPES) {
    for (const mode of ['sync', 'async'] as const) {
      it(`${type}, ${mode}: the messages before it arrive, the next call throws ERR_FDPASS_CTRUNC, the one after arrives whole`, async () => {
        await expectNoFdLeak(async () => {
          const [a, b] = socketPair(type);
          const [r, w] = pipe();
          try {
            a.sendSync('one', [w]);
            a.sendSync('many', new Array(20).fill(w));
            a.sendSync('two', [w]);
            const fixture = spawnFixture('ctrunc-batch-receiver', [type, mode], [b.fd]);
            b.close();
            w.close();
            const result = await fixture.exited;
            expect(result.stderr).toBe('');
            expect(result.code).toBe(0);
            const { steps } = JSON.parse(result.stdout.trim()) as { steps: unknown[] };
            const first = mode === 'sync' ? [{ data: 'one', fds: 1 }] : { data: 'one', fds: 1 };
            const last = mode === 'sync' ? [{ data: 'two', fds: 1 }] : { data: 'two', fds: 1 };
            expect(steps[0]).toEqual(first);
            expect(steps[1]).toMatchObject({ code: 'ERR_FDPASS_CTRUNC', fdsUnchanged: true });
            expect(steps[2]).toEqual(last);
            // Both whole messages' fds worked in the child; the child held no other copy of w.
            expect(fs.readFileSync(r.fd, 'utf8')).toBe('one;two;');
          } finally {
            for (const x of [a, b, r, w]) x.close();
          }
        });
      });
    }
  }
});
