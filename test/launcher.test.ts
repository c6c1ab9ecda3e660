/**
 * The tsx launcher trap: the tsx CLI (`tsx`, `npx tsx`, `node_modules/.bin/tsx`) starts node
 * again without the parent's extra descriptors, and npx/npm pass only stdio. spawnWithSocket
 * runs `node --import <tsx's loader>` instead of the tsx CLI, refuses other package runners
 * before spawning anything, and a child started through such a launcher says so.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { socketPair, spawnWithSocket, type UnixSocket } from '../src/index.js';
import { catchError, denoLimit, expectNoFdLeak, repoRoot, requirePeer, tsCommand } from './helpers.js';
import { MESSAGE_TYPE } from './mode.js';

const running = new Set<ChildProcess>();
afterEach(() => {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  running.clear();
});

const fixture = fileURLToPath(new URL('./fixtures/node-child-adopt.ts', import.meta.url));
const tsxBin = join(repoRoot, 'node_modules/.bin/tsx');
const tsxCli = join(repoRoot, 'node_modules/tsx/dist/cli.mjs');
const stdio = ['ignore', 'pipe', 'inherit'] as const;

/**
 * What the child prints, once it closed. Call it before any other await: Bun may emit 'close'
 * while nothing reads the child's stdout, and a listener added after that would wait forever.
 */
async function output(child: ChildProcess): Promise<Record<string, unknown>> {
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const [code] = await once(child, 'close');
  expect(code, out).toBe(0);
  return JSON.parse(out) as Record<string, unknown>;
}

async function greeting(socket: UnixSocket): Promise<string | undefined> {
  const msg = await socket.recv();
  return msg?.data.toString();
}

describe('spawnWithSocket with a tsx or npx launcher', () => {
  const launchers: [string, string, string[], NodeJS.ProcessEnv?][] = [
    ['npx tsx file.ts', 'npx', ['tsx', fixture]],
    ['npx --yes tsx file.ts', 'npx', ['--yes', 'tsx', fixture]],
    ['npm exec -- tsx file.ts', 'npm', ['exec', '--', 'tsx', fixture]],
    ['node_modules/.bin/tsx file.ts', tsxBin, [fixture]],
    ['tsx file.ts (found on PATH)', 'tsx', [fixture], { ...process.env, PATH: `${join(repoRoot, 'node_modules/.bin')}:${process.env.PATH}` }],
    ['node node_modules/tsx/dist/cli.mjs file.ts', process.execPath, [tsxCli, fixture]],
    ['node --no-warnings node_modules/.bin/tsx file.ts', 'node', ['--no-warnings', tsxBin, fixture]],
  ];
  for (const [label, command, args, env] of launchers) {
    it(`${label}: runs node with tsx's loader instead, so the child gets the socket`, async () => {
      if (await denoLimit('command-line')) return;
      requirePeer('npx');
      await expectNoFdLeak(async () => {
        const { child, socket } = spawnWithSocket(command, args, { cwd: repoRoot, stdio: [...stdio], env });
        running.add(child);
        expect(child.spawnfile).toBe(process.execPath);
        const i = child.spawnargs.indexOf('--import');
        expect(child.spawnargs[i + 1]).toMatch(/^file:\/\/.*\/tsx\/dist\/loader\.mjs$/);
        expect(child.spawnargs.slice(i + 2)).toEqual([fixture]);
        const printed = output(child);
        expect(await greeting(socket)).toBe('hello from the child');
        expect(await printed).toEqual({ ok: true, type: MESSAGE_TYPE });
        socket.close();
      });
    });
  }

  const refused: [string, string, string[], RegExp][] = [
    ['npx some-tool', 'npx', ['some-tool'], /^The argument 'command' is npx some-tool: npx passes only stdin, stdout and stderr to the program it runs, so the socket would not arrive; spawn the program itself$/],
    ['npm run start', 'npm', ['run', 'start'], /^The argument 'command' is npm run: npm passes only stdin, stdout and stderr/],
    ['tsx watch file.ts', tsxBin, ['watch', fixture], /the tsx CLI starts node again with only stdin, stdout and stderr, so the socket would not reach the program; run node with tsx's loader instead \(`node --import tsx file.ts`\)/],
    ['tsx --tsconfig x file.ts', tsxBin, ['--tsconfig', 'x', fixture], /node --import tsx file\.ts/],
    ['npx tsx@4 file.ts', 'npx', ['tsx@4', fixture], /npx passes only stdin, stdout and stderr.*node --import tsx file\.ts/],
    ['npx tsx in a directory without tsx', 'npx', ['tsx', fixture], /tsx is not installed in \/ or above/],
  ];
  for (const [label, command, args, message] of refused) {
    it(`${label}: refused with the explanation before anything is spawned`, async () => {
      await expectNoFdLeak(() => {
        const err = catchError(() => spawnWithSocket(command, args, { cwd: label.includes('without tsx') ? '/' : repoRoot }));
        expect(err).toBeInstanceOf(TypeError);
        expect(err.code).toBe('ERR_INVALID_ARG_VALUE');
        expect(err.message).toMatch(message);
      });
    });
  }

  it('leaves `node --import tsx file.ts` as it is', async () => {
    if (await denoLimit('command-line')) return;
    await expectNoFdLeak(async () => {
      const { child, socket } = spawnWithSocket(process.execPath, ['--import', 'tsx', fixture], { cwd: repoRoot, stdio: [...stdio] });
      running.add(child);
      expect(child.spawnargs.slice(1)).toEqual(['--import', 'tsx', fixture]);
      const printed = output(child);
      expect(await greeting(socket)).toBe('hello from the child');
      await printed;
      socket.close();
    });
  });
});

describe('a child started through a launcher that lost the socket says so', () => {
  /** The parent does it by hand, as a user would: socket at fd 3, FDPASS_FD=3, and a launcher in between. */
  async function viaLauncher(command: string, args: string[]): Promise<Record<string, unknown>> {
    const [ours, theirs] = socketPair();
    const child = spawn(command, args, { cwd: repoRoot, stdio: [...stdio, theirs.fd], env: { ...process.env, FDPASS_FD: '3' } });
    running.add(child);
    theirs.close();
    const result = await output(child);
    ours.close();
    return result;
  }

  it('adopt(3) under `npx tsx` names the tsx CLI and the fix', async () => {
    requirePeer('npx');
    await expectNoFdLeak(async () => {
      const r = await viaLauncher('npx', ['tsx', fixture]);
      expect(r).toMatchObject({ ok: false, name: 'FdPassError', code: 'ERR_FDPASS_NOT_UNIX_SOCKET' });
      expect(r.message).toMatch(/^fd 3 is not a socket\. This process was started by the tsx CLI, which passes only stdin, stdout and stderr to the program it starts, so fd 3 is not what the parent passed: start it with node itself \(`node --import tsx file\.ts`\), e\.g\. forkWithSocket\('file\.ts'\) in the parent$/);
    });
  });

  it('inheritedSocket() under node_modules/.bin/tsx names the tsx CLI instead of "start this process with spawnWithSocket()"', async () => {
    await expectNoFdLeak(async () => {
      const r = await viaLauncher(tsxBin, [fixture, 'inherited']);
      expect(r).toMatchObject({ ok: false, code: 'ERR_FDPASS_NO_INHERITED_SOCKET' });
      expect(r.message).toMatch(/^inheritedSocket: fd 3 \(FDPASS_FD=3\) is .*, not a connected Unix socket\. This process was started by the tsx CLI, .*`node --import tsx file\.ts`/);
      expect(r.message).not.toContain('start this process with spawnWithSocket()');
    });
  });

  it('inheritedSocket() where FDPASS_FD is set but fd 3 is not the socket, with no known launcher: says the socket got lost on the way', async () => {
    await expectNoFdLeak(async () => {
      // `3<&-` does what a careless wrapper does: the child finds no fd 3.
      const command = tsCommand(fixture).map((arg) => `"${arg}"`).join(' ');
      const r = await viaLauncher('sh', ['-c', `exec 3<&-; exec ${command} inherited`]);
      expect(r).toMatchObject({ ok: false, code: 'ERR_FDPASS_NO_INHERITED_SOCKET' });
      expect(r.message).toMatch(/^inheritedSocket: fd 3 \(FDPASS_FD=3\) is (not open|an? .+, not a connected Unix socket); the parent passed a socket \(it set FDPASS_FD\), so something between it and this process did not pass the descriptor on: a launcher such as the tsx CLI or npx/);
    });
  });
});
