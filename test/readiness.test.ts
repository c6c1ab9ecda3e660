/**
 * Readiness delivery: a promise fdpass resolves must continue as soon as the descriptor is ready,
 * on every Node version and runtime, even when nothing else in the process is scheduled (the Node
 * 26.4+ regression: continuations stuck until an unrelated callback ran). Each case runs in its
 * own child process, so the test runner's own handles cannot help it along.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { socketPair } from '../src/index.js';
import { requirePeer, spawnFixture } from './helpers.js';

async function idle(mode: string): Promise<Record<string, unknown>> {
  const fx = spawnFixture('readiness-idle', [mode]);
  onTestFinished(() => void fx.child.kill('SIGKILL')); // a stuck child would otherwise outlive the test
  const { code, stdout, stderr } = await fx.exited;
  expect(stderr).toBe('');
  expect(code).toBe(0);
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe('readiness with nothing else pending', () => {
  it('an awaited recv() continues when the peer sends', async () => {
    expect(await idle('recv')).toEqual({ data: 'hello', peerAlive: true });
  });

  it('an awaited send() that had to wait continues when the peer reads', async () => {
    expect(await idle('send')).toEqual({ sent: 8 << 20, peerAlive: true });
  });

  it('an awaited accept() continues when a client connects', async () => {
    requirePeer('python3');
    expect(await idle('accept')).toEqual({ accepted: true, peerAlive: true });
  });

  it('2,000 pipelined sends and receives through a slow echo peer all continue', async () => {
    requirePeer('python3');
    expect(await idle('pipeline')).toEqual({ inOrder: 2000, peerAlive: true });
  });

  it('the same in a worker thread, on its own event loop', async () => {
    requirePeer('python3');
    expect(await idle('worker')).toEqual({ inOrder: 2000, peerAlive: true });
  });
});

describe('waiting from inside a delivery', () => {
  // Bun's expect(promise).resolves/.rejects waits in a nested event loop that runs no other
  // immediate of the batch the test resumed from: the thread backend's poll must be running
  // again before the awaiting code resumes, or a wait that needs it never ends (it hung here).
  it('a receive awaited through expect().resolves / .rejects, right after one that waited', async () => {
    const [a, b] = socketPair();
    try {
      const first = a.recv();
      setTimeout(() => b.sendSync('one'), 20);
      expect((await first)!.data.toString()).toBe('one'); // resumes from the delivery
      const second = a.recv();
      setTimeout(() => b.sendSync('two'), 20);
      await expect(second).resolves.toMatchObject({ fds: [] });
      const third = a.recv({ maxBytes: 2 });
      setTimeout(() => b.sendSync('three'), 20);
      await expect(third).rejects.toMatchObject({ code: 'ERR_FDPASS_TRUNC' });
      const fourth = a.recv();
      setTimeout(() => b.close(), 20);
      await expect(fourth).resolves.toBeNull();
    } finally {
      a.close();
      b.close();
    }
  });
});
