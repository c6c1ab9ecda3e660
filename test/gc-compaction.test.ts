import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { repoRoot, scaled, tsArgs } from './helpers.js';

describe('under --stress-compaction (V8 moves objects at every GC)', () => {
  it('payloads and fds survive thousands of collections, sync and async, on both sides of the scratch buffer', async () => {
    const iterations = 300;
    const fixture = fileURLToPath(new URL('./fixtures/gc-stress.ts', import.meta.url));
    const child = spawn(process.execPath, ['--expose-gc', '--stress-compaction', ...tsArgs(fixture), String(iterations)], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('close', (c, s) => r([c, s])));
    expect({ code, signal, stderr: stderr.slice(-2000) }).toEqual({ code: 0, signal: null, stderr: expect.any(String) });
    // Two socket types; per type `iterations` sync and `iterations / 4` async round trips.
    expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({ checked: 2 * (iterations + iterations / 4) });
  }, scaled(120_000));
});
