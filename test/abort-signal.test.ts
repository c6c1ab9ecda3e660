/**
 * One AbortSignal shared by many pending operations: each queue (a socket's receives, its sends,
 * a server's accepts, a PidFd's waits) adds one 'abort' listener for it, not one per operation,
 * so Node never prints MaxListenersExceededWarning; the listener goes once nothing waits on it.
 */
import { spawn } from 'node:child_process';
import { getEventListeners } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectSync, listen, PidFd, socketPair } from '../src/index.js';
import { expectNoFdLeak } from './helpers.js';

const N = 25; // well past Node's default of 10 listeners

let warnings: Error[];
const onWarning = (w: Error): void => void warnings.push(w);
beforeEach(() => {
  warnings = [];
  process.on('warning', onWarning);
});
afterEach(() => void process.off('warning', onWarning));

const settled = <T>(p: Promise<T>): Promise<T | Error> => p.then((v) => v, (e: Error) => e);
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe(`one AbortSignal for ${N} pending operations`, () => {
  it('recv, send, accept and waitExit: one listener per queue, no MaxListenersExceededWarning, all aborted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fdpass-abort-'));
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await expectNoFdLeak(async () => {
        const ac = new AbortController();
        const { signal } = ac;
        const [a, b] = socketPair();
        const [c, d] = socketPair();
        while (true) {
          try {
            c.sendSync('fill', [], { timeoutMs: 0 });
          } catch {
            break; // c's peer queue is full: sends wait
          }
        }
        const server = listen(join(dir, 's.sock'));
        using pidfd = PidFd.fromChild(child);
        const pending = [
          ...Array.from({ length: N }, () => settled(b.recv({ signal }))),
          ...Array.from({ length: N }, () => settled(c.send('x', [], { signal }))),
          ...Array.from({ length: N }, () => settled(server.accept({ signal }))),
          ...Array.from({ length: N }, () => settled(pidfd.waitExit({ signal }))),
        ];
        await turn();
        expect(getEventListeners(signal, 'abort')).toHaveLength(4); // b's receives, c's sends, the accepts, the waits
        ac.abort(new Error('enough'));
        const results = await Promise.all(pending);
        expect(results.map((r) => (r as Error).name)).toEqual(Array(4 * N).fill('AbortError'));
        expect(getEventListeners(signal, 'abort')).toHaveLength(0);
        await turn();
        expect(warnings.map((w) => `${w.name}: ${w.message}`)).toEqual([]);
        for (const s of [a, b, c, d, server]) s.close();
      });
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('operations that complete normally remove the listener with the last of them', async () => {
    await expectNoFdLeak(async () => {
      const dir = mkdtempSync(join(tmpdir(), 'fdpass-abort-'));
      try {
        const { signal } = new AbortController();
        const [a, b] = socketPair();
        const receives = Array.from({ length: N }, () => b.recv({ signal }));
        const server = listen(join(dir, 's.sock'));
        const accepts = Array.from({ length: N }, () => server.accept({ signal }));
        await turn();
        expect(getEventListeners(signal, 'abort')).toHaveLength(2);
        for (let i = 0; i < N; i++) a.sendSync(`m${i}`);
        expect((await Promise.all(receives)).map((m) => m!.data.toString())).toEqual(Array.from({ length: N }, (_, i) => `m${i}`));
        expect(getEventListeners(signal, 'abort')).toHaveLength(1);
        const clients = Array.from({ length: N }, () => connectSync(server.path!));
        const conns = await Promise.all(accepts);
        expect(getEventListeners(signal, 'abort')).toHaveLength(0);
        await turn();
        expect(warnings).toEqual([]);
        for (const s of [a, b, server, ...clients, ...conns]) s.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
