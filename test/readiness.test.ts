/**
 * Readiness delivery: a promise fdpass resolves must continue as soon as the descriptor is ready,
 * on every Node version and runtime, even when nothing else in the process is scheduled (the Node
 * 26.4+ regression: continuations stuck until an unrelated callback ran). Each case runs in its
 * own child process, so the test runner's own handles cannot help it along.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
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
