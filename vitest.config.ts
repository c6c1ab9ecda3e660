import { defineConfig } from 'vitest/config';
import { scaled } from './test/emulation.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Child processes, so /proc/self/fd is this test file's own, and gc() is available.
    pool: 'forks',
    execArgv: ['--expose-gc'],
    // Longer under qemu (scripts/cross/run.sh); unchanged natively.
    testTimeout: scaled(30_000),
    hookTimeout: scaled(30_000),
  },
});
