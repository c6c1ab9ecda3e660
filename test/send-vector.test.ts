/**
 * Queued sends on SEQPACKET and datagram sockets go out several per sendmmsg (where the platform
 * has it: CAPS.messageVectors). These tests hold the semantics to those of one sendmsg per send:
 * order, payloads of every size, 0 to many fds each, the file that was passed even if its number
 * is reused meanwhile, an error on one message failing only that send, credentials, hand-off,
 * and no descriptor left behind. They run in the fallback mode (one sendmsg per send) and under
 * emulation (ILP32 mmsghdr) too; test/vector-syscalls.test.ts proves sendmmsg is the call.
 */
import * as fs from './fdfs.js';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Fd, FdPassError, pipe, socketPair, type Message, type UnixSocket } from '../src/index.js';
import { CAPS, closeAllQuietly } from '../src/libc.js';
import { sendmmsgAt } from '../src/msghdr.js';
import { dupAll } from '../src/send-op.js';
import { SEND_VECTOR_SLOTS } from '../src/send-vector.js';
import { AGAIN, WaitQueue, newWaiter, type Waiter } from '../src/wait-queue.js';
import { expectNoFdLeak, fdCount, fillQueue, gc, isOpen, rejection, sameFile } from './helpers.js';
import { CREDENTIAL_MESSAGES, MINIMAL, PEER_MESSAGE_TYPE } from './mode.js';

const types = [...new Set([PEER_MESSAGE_TYPE, 'dgram'] as const)];

/** Receive `count` messages, blocking (the sender's queue drains on the event loop meanwhile). */
async function receive(b: UnixSocket, count: number): Promise<Message[]> {
  const out: Message[] = [];
  while (out.length < count) {
    const batch = await b.recvBatch({ maxBytes: 1 << 20 });
    if (batch === null) break;
    out.push(...batch);
  }
  return out;
}

/** Payload sizes that cross the vector's 256-byte copy slots, and fd counts from 0 to 5. */
const sizeOf = (i: number): number => [1, 16, 17, 255, 256, 257, 4000, 1][i % 8];
const fdsOf = (i: number): number => i % 6;
const payloadOf = (i: number): Buffer => Buffer.alloc(sizeOf(i), `${i}:`);

describe('the platform table', () => {
  it('sendmmsg is bound exactly where messageVectors is on (Linux; off in the fallback mode)', () => {
    expect(CAPS.messageVectors).toBe(process.platform === 'linux' && !MINIMAL);
    expect(sendmmsgAt !== null).toBe(CAPS.messageVectors);
  });

  it('close_range is used exactly where closeRange is on (Linux; off in the fallback mode)', () => {
    expect(CAPS.closeRange).toBe(process.platform === 'linux' && !MINIMAL);
  });
});

/** Whether descriptor `fd` is open and refers to `file`. */
const opensFile = (fd: number, file: number): boolean => isOpen(fd) && sameFile(fd, file);

describe('closeAllQuietly (the duplicates of sends that went out together)', () => {
  it('closes exactly the listed descriptors: runs of consecutive numbers, single ones and out-of-order ones, never the numbers between them', async () => {
    await expectNoFdLeak(() => {
      const file = fs.openSync(os.devNull, 'r');
      // Twelve consecutive numbers (the lowest free ones from 600 up).
      const fds = dupAll(Array.from({ length: 12 }, () => file), 600);
      const [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11] = fds;
      closeAllQuietly([f0, f1, f2, f3, f5, f4, f7, f9, f10]);
      expect(fds.map((fd) => opensFile(fd, file))).toEqual([false, false, false, false, false, false, true, false, true, false, false, true]);
      closeAllQuietly([f6, f8, f11]);
      expect(fds.some((fd) => isOpen(fd))).toBe(false);
      fs.closeSync(file);
    });
  });
});

describe.each(types)('%s: queued sends', (type) => {
  it('several hundred queued sends of mixed sizes and fd counts arrive whole, in order, with the files that were passed', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair(type);
      const [r, w] = pipe();
      const file = fs.openSync(os.devNull, 'r');
      const filled = fillQueue(a);
      const count = 3 * SEND_VECTOR_SLOTS + 7;
      const sends: Promise<number>[] = [];
      for (let i = 0; i < count; i++) {
        const fds = Array.from({ length: fdsOf(i) }, (_, k) => (k % 2 === 0 ? file : r));
        sends.push(a.send(payloadOf(i), fds));
      }
      gc();
      // The caller may close what it passed once send() returned: a waiting send kept its own.
      fs.closeSync(file);
      const [received, results] = await Promise.all([receive(b, filled + count), Promise.all(sends)]);
      expect(results).toEqual(Array.from({ length: count }, (_, i) => sizeOf(i)));
      const messages = received.slice(filled);
      expect(messages.length).toBe(count);
      const devNull = fs.openSync(os.devNull, 'r');
      messages.forEach((m, i) => {
        expect(m.data.equals(payloadOf(i)), `message ${i}`).toBe(true);
        expect(m.fds.length, `fds of message ${i}`).toBe(fdsOf(i));
        m.fds.forEach((f, k) => expect(sameFile(f.fd, k % 2 === 0 ? devNull : r.fd), `fd ${k} of message ${i}`).toBe(true));
        for (const f of m.fds) f.close();
      });
      fs.closeSync(devNull);
      r.close();
      w.close();
      a.close();
      b.close();
    });
  });

  it('a message the kernel refuses (EMSGSIZE) fails only its own send; the ones around it arrive in order', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair(type);
      const filled = fillQueue(a);
      const [r, w] = pipe();
      // More than the socket's send buffer (SO_SNDBUF) can ever hold.
      const tooBig = Buffer.alloc(8 << 20);
      const sends = [a.send('before-1', [r]), a.send('before-2'), a.send(tooBig, [r]), a.send('after-1', [w]), a.send('after-2')];
      r.close();
      w.close();
      const outcomes = Promise.allSettled(sends);
      const received = await receive(b, filled + 4);
      const settled = await outcomes;
      expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      expect(((settled[2] as PromiseRejectedResult).reason as FdPassError).code).toBe('EMSGSIZE');
      const tail = received.slice(filled);
      expect(tail.map((m) => m.data.toString())).toEqual(['before-1', 'before-2', 'after-1', 'after-2']);
      expect(tail.map((m) => m.fds.length)).toEqual([1, 0, 1, 0]);
      for (const m of tail) for (const f of m.fds) f.close();
      a.close();
      b.close();
    });
  });

  it('queued sends fail, and keep nothing open, when the peer goes away before they could go', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair(type);
      fillQueue(a);
      const [r, w] = pipe();
      const sends = Array.from({ length: 2 * SEND_VECTOR_SLOTS }, (_, i) => a.send(`q${i}`, [r, w]));
      r.close();
      w.close();
      b.close();
      const errors = await Promise.all(sends.map((s) => rejection(s)));
      for (const err of errors) expect(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTCONN']).toContain(err.code);
      a.close();
    });
  });

  it('a send with credentials, and one that hands its fds off, keep their place among plain queued sends', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair(type);
      const filled = fillQueue(a);
      const [r, w] = pipe();
      const handedOff = new Fd(fs.openSync(os.devNull, 'r'));
      const sends: Promise<number>[] = [];
      for (let i = 0; i < 10; i++) sends.push(a.send(`p${i}`, [w]));
      sends.push(a.send('handed-off', [handedOff], { close: true }));
      if (CREDENTIAL_MESSAGES) sends.push(a.send('with-credentials', [w], { credentials: { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() } }));
      for (let i = 10; i < 20; i++) sends.push(a.send(`p${i}`, [w]));
      const received = await receive(b, filled + sends.length);
      await Promise.all(sends);
      expect(handedOff.closed).toBe(true);
      const names = received.slice(filled).map((m) => m.data.toString());
      const expected = [...Array.from({ length: 10 }, (_, i) => `p${i}`), 'handed-off', ...(CREDENTIAL_MESSAGES ? ['with-credentials'] : []), ...Array.from({ length: 10 }, (_, i) => `p${i + 10}`)];
      expect(names).toEqual(expected);
      for (const m of received) for (const f of m.fds) f.close();
      r.close();
      w.close();
      a.close();
      b.close();
    });
  });

  it('a descriptor the caller opens between two queued sends (a number between their duplicates) stays open once they went out together', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair(type);
      const filled = fillQueue(a);
      const file = fs.openSync(os.devNull, 'r');
      const [r, w] = pipe();
      const sends: Promise<number>[] = [];
      const between: number[] = [];
      for (let i = 0; i < 2 * SEND_VECTOR_SLOTS; i++) {
        sends.push(a.send(`g${i}`, [file]));
        // The lowest free number: next to the duplicate this send just made, as a rule.
        if (i % 5 === 2) between.push(fs.openSync(os.devNull, 'r'));
      }
      fs.closeSync(file);
      const received = await receive(b, filled + sends.length);
      await Promise.all(sends);
      expect(received.length).toBe(filled + sends.length);
      for (const m of received) for (const f of m.fds) f.close();
      const devNull = fs.openSync(os.devNull, 'r');
      expect(between.map((fd) => opensFile(fd, devNull))).toEqual(between.map(() => true));
      expect(isOpen(r.fd) && isOpen(w.fd)).toBe(true);
      for (const fd of [devNull, ...between]) fs.closeSync(fd);
      r.close();
      w.close();
      a.close();
      b.close();
    });
  });

  it('queued sends of fdpass Fds hold them (no duplicate) and let go once sent', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair(type);
      const filled = fillQueue(a);
      const held = Array.from({ length: SEND_VECTOR_SLOTS + 3 }, () => new Fd(fs.openSync(os.devNull, 'r')));
      const count = fdCount();
      const sends = held.map((f, i) => a.send(`h${i}`, [f]));
      expect(fdCount()).toBe(count);
      for (const f of held) f.close(); // deferred until each send has gone
      const received = await receive(b, filled + held.length);
      await Promise.all(sends);
      expect(received.slice(filled).map((m) => m.fds.length)).toEqual(held.map(() => 1));
      for (const m of received) for (const f of m.fds) f.close();
      a.close();
      b.close();
    });
  });
});

describe('WaitQueue.attemptMany', () => {
  type Op = Waiter<number> & { id: number };
  const op = (id: number): Op => Object.assign(newWaiter<number>(undefined), { id });

  it('resolves the prefix it served, in order; AGAIN stops the drain; null sends the head alone', async () => {
    const log: string[] = [];
    let blocked = true;
    const script: (number[] | typeof AGAIN | null)[] = [[10, 11], null, AGAIN, null];
    const queue = new WaitQueue<Op, number>(
      (o) => {
        if (blocked) return AGAIN;
        log.push(`one ${o.id}`);
        return o.id * 10;
      },
      () => {},
      {
        attemptMany: (ops) => {
          const step = script.shift()!;
          log.push(`many ${ops.map((o) => o.id).join(',')} -> ${step === AGAIN ? 'AGAIN' : step === null ? 'alone' : step.join(',')}`);
          return step;
        },
      },
    );
    const results = [1, 2, 3, 4, 5].map((id) => queue.submit(op(id)));
    const settled: number[] = [];
    results.forEach((p) => p.then((v) => settled.push(v)));
    blocked = false;
    queue.drain();
    expect(log).toEqual(['many 1,2,3,4,5 -> 10,11', 'many 3,4,5 -> alone', 'one 3', 'many 4,5 -> AGAIN']);
    await new Promise((r) => setImmediate(r));
    expect(settled).toEqual([10, 11, 30]);
    queue.drain();
    // One op left after the next one goes alone: attemptMany is for two or more.
    expect(log.slice(4)).toEqual(['many 4,5 -> alone', 'one 4', 'one 5']);
    expect(await Promise.all(results)).toEqual([10, 11, 30, 40, 50]);
  });
});
