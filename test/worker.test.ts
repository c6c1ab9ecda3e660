/** fdpass in a worker thread: its own koffi calls, msghdr buffers and uv_poll on the worker's loop. */
import { closeSync, openSync, readFileSync, readSync } from './fdfs.js';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { socketPair } from '../src/index.js';
import { MESSAGE_TYPE } from './mode.js';
import { denoLimit, expectNoFdLeak, scaled } from './helpers.js';

describe('worker threads', () => {
  it('a worker echoes messages with fds while the main thread sends and receives at the same time', async () => {
    if (await denoLimit('worker-fds')) return;
    await expectNoFdLeak(async () => {
      const count = 2000;
      const [ours, theirs] = socketPair(MESSAGE_TYPE);
      const worker = new Worker(new URL('./fixtures/worker-boot.mjs', import.meta.url), {
        workerData: { fd: theirs.release(), count, module: new URL('./fixtures/worker-echo.ts', import.meta.url).href },
      });
      const done = once(worker, 'message');
      // Listen for 'exit' now: it may be emitted in the same turn as 'message', before code that
      // awaits `done` runs again (Node 26 delivers them so), and a later once() would miss it.
      const exited = once(worker, 'exit');
      const file = openSync('/etc/hostname', 'r');
      const expected = readFileSync('/etc/hostname', 'utf8');
      const sends: Promise<number>[] = [];
      for (let i = 0; i < count; i++) sends.push(ours.send(`m${i}`, [file]));
      const got: string[] = [];
      for (let i = 0; i < count; i++) {
        const msg = (await ours.recv())!;
        got.push(msg.data.toString());
        if (i % 200 === 0) {
          // Same open file as `file`: read at offset 0 (the offset is shared by every copy).
          const buf = Buffer.alloc(expected.length);
          readSync(msg.fds[0].fd, buf, 0, buf.length, 0);
          expect(buf.toString()).toBe(expected);
        }
        for (const fd of msg.fds) fd.close();
      }
      await Promise.all(sends);
      expect(got).toEqual(Array.from({ length: count }, (_, i) => `m${i}`));
      expect((await done)[0]).toEqual({ echoed: count });
      await exited;
      expect(await ours.recv()).toBeNull(); // the worker closed its end
      ours.close();
      closeSync(file);
    });
  }, scaled(60_000));
});
