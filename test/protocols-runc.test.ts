/**
 * The OCI console socket against the real runtime: Debian's `runc` runs a one-file busybox
 * container with `terminal: true` and `--console-socket`, and hands its pty master to us.
 * (.ci/run installs runc and busybox-static; tests run as root, as runc needs.)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, writeSync } from './fdfs.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen } from '../src/index.js';
import { receiveConsole } from '../src/protocols/console.js';
import { expectNoFdLeak, requirePeer, scaled } from './helpers.js';
import { readUntil } from './fixtures/interop-util.js';

let dir: string;
let bundle: string;
const containerId = `fdpass-test-${process.pid}`;

beforeAll(() => {
  requirePeer('runc');
  requirePeer('busybox');
  dir = mkdtempSync(join(tmpdir(), 'fdpass-runc-'));
  bundle = join(dir, 'bundle');
  mkdirSync(join(bundle, 'rootfs', 'bin'), { recursive: true });
  const busybox = execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim();
  copyFileSync(busybox, join(bundle, 'rootfs', 'bin', 'busybox'));
  symlinkSync('busybox', join(bundle, 'rootfs', 'bin', 'sh'));
  execFileSync('runc', ['spec'], { cwd: bundle });
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  config.process.terminal = true;
  config.process.args = ['/bin/sh', '-c', 'echo "container says hello"; read line; echo "container got: $line"'];
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
});

afterAll(() => {
  spawnSync('runc', ['delete', '--force', containerId], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
});

describe('receiveConsole with the real runc', () => {
  it("takes the console runc sends and talks to the container's shell through it", async () => {
    await expectNoFdLeak(async () => {
      const socketPath = join(dir, 'console.sock');
      const server = listen({ path: socketPath, type: 'stream' });
      // -d: runc returns once the container runs; it has sent the console by then.
      const run = spawnSync('runc', ['run', '-d', '--console-socket', socketPath, '--bundle', bundle, containerId], { encoding: 'utf8', timeout: 30_000 });
      expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
      const { fd, name } = await receiveConsole(server, { signal: AbortSignal.timeout(10_000) });
      server.close();
      try {
        expect(name).toMatch(/^\/dev\/(pts\/)?ptmx$/);
        expect(fd.describe()).toMatchObject({ kind: 'tty', closeOnExec: true });
        expect(readUntil(fd.fd, 'hello')).toContain('container says hello');
        writeSync(fd.fd, 'typed into the console\n');
        expect(readUntil(fd.fd, 'got: typed into the console')).toContain('container got: typed into the console');
      } finally {
        fd.close();
        spawnSync('runc', ['delete', '--force', containerId], { stdio: 'ignore' });
      }
    });
  }, scaled(60_000));
});
