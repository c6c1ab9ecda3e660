/**
 * fdpass as a drop-in for the `usocket` npm package, the way a user installs it: this package is
 * built and packed, the tarball installed under the name `usocket` into a scratch project (with an
 * `overrides` entry, so libraries that depend on usocket get it too), and programs written for
 * usocket run unchanged from CommonJS: usocket's README quick start (passing a file fd both ways)
 * and dbus-next (which loads usocket for UNIX_FD) against a real dbus-daemon and python3-dbus.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireDBusPeers, runPythonPeer, startPrivateBus, type PrivateBus, type PythonPeer } from './dbus-helpers.js';
import { denoLimit, repoRoot, scaled } from './helpers.js';

let dir: string;
let project: string;

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stdout}\n${r.stderr}${r.error?.message ?? ''}`);
  return r.stdout;
}

/** `node file args` in the scratch project; resolves with its exit code and output. */
function node(file: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [file, ...args], { cwd: project, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), scaled(20_000));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fdpass-dropin-'));
  // Build into a copy of the package layout (the shared dist/ is left alone), then pack it.
  const stage = join(dir, 'package');
  mkdirSync(stage);
  for (const f of ['package.json', 'README.md', 'LICENSE']) copyFileSync(join(repoRoot, f), join(stage, f));
  cpSync(join(repoRoot, 'bin'), join(stage, 'bin'), { recursive: true });
  cpSync(join(repoRoot, 'src'), join(stage, 'src'), { recursive: true });
  run(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', join(repoRoot, 'tsconfig.build.json'), '--outDir', join(stage, 'dist')], repoRoot);
  run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], stage);
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  if (!tarball) throw new Error('npm pack made no tarball');

  // What a usocket user does: `npm install usocket@npm:fdpass` — here the packed tarball under
  // that name, and an override so dbus-next's own optional usocket dependency is fdpass too.
  project = join(dir, 'app');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({
    name: 'usocket-user', private: true,
    dependencies: { usocket: `file:${join(dir, tarball)}`, 'dbus-next': '0.10.2' },
    overrides: { usocket: '$usocket' },
  }, null, 2));
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], project);
  for (const f of ['usocket-quickstart.cjs', 'dbus-next-client.cjs']) copyFileSync(join(repoRoot, 'test/fixtures', f), join(project, f));
}, 300_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('fdpass installed as usocket', () => {
  it("require('usocket') from CommonJS is fdpass, for the app and for dbus-next alike", () => {
    const out = run(process.execPath, ['-e', `
      const u = require('usocket');
      console.log(JSON.stringify({ name: require('usocket/package.json').name, USocket: typeof u.USocket, UServer: typeof u.UServer }));
    `], project);
    expect(JSON.parse(out)).toEqual({ name: 'fdpass', USocket: 'function', UServer: 'function' });
    // No second (native) usocket under dbus-next: the override put fdpass in its place.
    expect(existsSync(join(project, 'node_modules/dbus-next/node_modules/usocket'))).toBe(false);
  });

  it("runs usocket's README quick start unchanged, passing a file fd each way with read(n, count)", async () => {
    if (await denoLimit('fs-foreign-fd')) return;
    const work = mkdtempSync(join(dir, 'qs-'));
    const { code, stdout, stderr } = await node('usocket-quickstart.cjs', [work]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      serverGot: { data: 'hello', file: 'from the client' },
      clientGot: { data: 'message', file: 'from the server' },
    });
  });

  describe('dbus-next with UNIX_FD through dbus-daemon to a python3-dbus service', () => {
    let bus: PrivateBus;
    let service: PythonPeer;
    beforeAll(async () => {
      requireDBusPeers();
      bus = await startPrivateBus(mkdtempSync(join(dir, 'bus-')));
      service = await runPythonPeer(['service', bus.pathAddress], 'ready');
    });
    afterAll(async () => {
      service?.child.kill('SIGTERM');
      await service?.exited;
      await bus?.stop();
    });

    for (const via of ['abstract', 'path'] as const) {
      it(`passes fds both ways (bus address unix:${via}=…)`, async () => {
        if (await denoLimit('fs-foreign-fd')) return;
        const file = join(dir, `dbus-next-${via}.txt`);
        writeFileSync(file, `passed by dbus-next over ${via}`);
        const { code, stdout, stderr } = await node('dbus-next-client.cjs', [via === 'path' ? bus.pathAddress : bus.abstractAddress, file]);
        expect(stderr).toBe('');
        expect(code).toBe(0);
        expect(JSON.parse(stdout)).toEqual({
          readByService: `passed by dbus-next over ${via}`,
          opened: [`passed by dbus-next over ${via}`, `passed by dbus-next over ${via}`],
          usocket: 'fdpass',
        });
      });
    }
  });
});
