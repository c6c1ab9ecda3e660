import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import { scaled } from './test/emulation.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Child processes, so /proc/self/fd is this test file's own, and gc() is available.
    pool: 'forks',
    // Most of a test's time is spent waiting for its child processes: two files at a time even
    // on 2 cores (vitest's default there is one), 155 s instead of 240 s for the suite on CI's kind.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    execArgv: ['--expose-gc'],
    // Longer under qemu (scripts/cross/run.sh); unchanged natively.
    testTimeout: scaled(30_000),
    hookTimeout: scaled(30_000),
  },
});
