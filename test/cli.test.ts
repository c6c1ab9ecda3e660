/** The `fdpass` command: `ls` and `grab`, run from source (tsx) and, once built, with plain node via bin/. */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProcessFdInfo } from '../src/pidfd.js';
import { expectNoFdLeak, repoRoot, requirePeer, scaled, tsArgs } from './helpers.js';

const children = new Set<ChildProcess>();
afterEach(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
});

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}.ts`, import.meta.url));

interface Run {
  child: ChildProcess;
  /** Next stdout line. */
  line(): Promise<string>;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

function run(argv: string[]): Run {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: repoRoot });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const pending: string[] = [];
  const waiting: ((l: string) => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => {
    stdout += `${l}\n`;
    const w = waiting.shift();
    if (w) w(l);
    else pending.push(l);
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  const line = (): Promise<string> => {
    const l = pending.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      waiting.push(resolve);
      void done.then((d) => reject(new Error(`${argv.join(' ')} ended (${d.code ?? d.signal}) before printing a line: ${d.stderr}`)));
    });
  };
  return { child, line, done };
}

/** `fdpass …` from source. */
const cli = (...args: string[]): Run => run([process.execPath, '--import', 'tsx', join(repoRoot, 'src/cli.ts'), ...args]);

interface Victim {
  run: Run;
  pid: number;
  port: number;
  listenFd: number;
  fileFd: number;
}

async function startVictim(file: string, readFirst: number): Promise<Victim> {
  const r = run([process.execPath, ...tsArgs(fixture('pidfd-victim')), file, String(readFirst)]);
  const info = JSON.parse(await r.line()) as Omit<Victim, 'run'>;
  return { run: r, ...info };
}

async function stop(r: Run): Promise<void> {
  if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  await r.done;
}

async function withVictim(fn: (victim: Victim, file: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fdpass-cli-'));
  const file = join(dir, 'data.txt');
  writeFileSync(file, 'hello, grabbed file\n');
  try {
    await expectNoFdLeak(async () => {
      const victim = await startVictim(file, 7); // it has read "hello, "
      try {
        await fn(victim, file);
      } finally {
        await stop(victim.run);
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What /proc shows for fd `fd` of `pid`: "socket:[1234]", a path, … (the same inode means the same open object). */
function fdTarget(pid: number, fd: number): string {
  return readlinkSync(`/proc/${pid}/fd/${fd}`);
}

describe('fdpass ls', () => {
  it('--json lists the fds of another process: the listening socket (inspected) and the file with its offset', async () => {
    await withVictim(async (victim, file) => {
      const out = await cli('ls', String(victim.pid), '--json').done;
      expect(out.code, out.stderr).toBe(0);
      const fds = JSON.parse(out.stdout) as ProcessFdInfo[];
      expect(fds.map((f) => f.fd)).toEqual([...fds.map((f) => f.fd)].sort((a, b) => a - b));
      expect(fds.find((f) => f.fd === victim.listenFd)).toMatchObject({
        kind: 'socket', target: fdTarget(victim.pid, victim.listenFd), closeOnExec: true,
        socket: { family: 'inet', type: 'stream', listening: true, localAddress: '127.0.0.1', localPort: victim.port },
      });
      expect(fds.find((f) => f.fd === victim.fileFd)).toMatchObject({ kind: 'file', path: file, position: 7, size: 20, openFlags: ['O_RDONLY'], closeOnExec: true });
      expect(fds.find((f) => f.fd === 0)).toMatchObject({ kind: 'char', path: '/dev/null' });
      // Its stdout pipe to us: a socketpair from Node and Bun, a pipe from Deno; as /proc names it.
      expect(fds.find((f) => f.fd === 1)).toMatchObject({ kind: fdTarget(victim.pid, 1).startsWith('socket:') ? 'socket' : 'pipe', target: fdTarget(victim.pid, 1) });
    });
  });

  it('prints a table, one row per fd', async () => {
    await withVictim(async (victim, file) => {
      const out = await cli('ls', String(victim.pid)).done;
      expect(out.code, out.stderr).toBe(0);
      const rows = out.stdout.trimEnd().split('\n');
      expect(rows[0]).toMatch(/^FD\s+KIND\s+FLAGS\s+POS\s+DETAILS$/);
      const row = (fd: number): string[] => rows.find((r) => r.split(/\s+/)[0] === String(fd))!.split(/\s+/);
      expect(row(victim.listenFd).slice(0, 4)).toEqual([String(victim.listenFd), 'socket', 'RDWR,CLOEXEC', '-']);
      expect(row(victim.listenFd).slice(4)).toEqual(['inet', 'stream', 'LISTEN', `127.0.0.1:${victim.port}`, fdTarget(victim.pid, victim.listenFd)]);
      expect(row(victim.fileFd)).toEqual([String(victim.fileFd), 'file', 'RDONLY,CLOEXEC', '7', file]);
    });
  });

  it('fails with a clear message for a process that does not exist, and with usage for bad arguments', async () => {
    const gone = cli('ls', '999999999');
    const r = await gone.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^fdpass: open ESRCH \/proc\/999999999\/fd: process 999999999 does not exist/);
    const usage = await cli('ls').done;
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^fdpass: ls takes one process id\nusage:/);
    const bad = await cli('ls', 'abc').done;
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('expected a process id, got "abc"');
    const unknown = await cli('frobnicate').done;
    expect(unknown.code).toBe(2);
    const help = await cli('--help').done;
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('fdpass grab <pid> <fd>');
  });
});

describe('fdpass ls without ptrace access to the entries', () => {
  it('reports each unreadable entry and exits 1 when none could be read (root without CAP_SYS_PTRACE, target running as nobody)', async () => {
    expect(process.getuid!(), 'this test drops a capability from root').toBe(0);
    requirePeer('setpriv');
    // The fd directory of a process owned by nobody can be listed with CAP_DAC_OVERRIDE, but its
    // entries need ptrace read access, which another uid has only with CAP_SYS_PTRACE.
    const target = spawn('sleep', ['60'], { stdio: 'ignore', uid: 65534, gid: 65534 });
    children.add(target);
    await new Promise((r) => target.once('spawn', r));
    const pid = String(target.pid);
    const noPtrace = (...args: string[]): Run => run(['setpriv', '--bounding-set', '-sys_ptrace', process.execPath, '--import', 'tsx', join(repoRoot, 'src/cli.ts'), ...args]);
    const table = await noPtrace('ls', pid).done;
    expect(table.code, table.stderr).toBe(1);
    const rows = table.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^FD\s+KIND/);
    expect(rows.length).toBeGreaterThanOrEqual(4); // 0, 1, 2 at least
    for (const row of rows.slice(1)) expect(row).toMatch(/^\d+\s+\?\s+-\s+-\s+\(cannot read this entry: EACCES\)$/);
    expect(table.stderr).toBe(`fdpass: none of the ${rows.length - 1} fds of process ${pid} could be read (EACCES): reading /proc/${pid}/fd/<n> and fdinfo needs ptrace read access to process ${pid} (the same user, or CAP_SYS_PTRACE)\n`);
    const json = await noPtrace('ls', pid, '--json').done;
    expect(json.code).toBe(1);
    const fds = JSON.parse(json.stdout) as ProcessFdInfo[];
    expect(fds.slice(0, 3)).toEqual([0, 1, 2].map((fd) => ({ fd, kind: 'unknown', target: '', openFlags: [], closeOnExec: false, error: 'EACCES' })));
    // With the capability, the same listing works.
    const full = await cli('ls', pid).done;
    expect(full.code, full.stderr).toBe(0);
    expect(full.stdout).not.toContain('cannot read');
  });
});

describe('fdpass grab', () => {
  it('runs a systemd-style server on the grabbed listening socket (fd 3, LISTEN_FDS=1, its own LISTEN_PID)', async () => {
    await withVictim(async (victim) => {
      const grab = cli('grab', String(victim.pid), String(victim.listenFd), '--', process.execPath, ...tsArgs(fixture('pidfd-systemd')));
      const started = JSON.parse(await grab.line()) as { listenPid: number; listenFds: number; pid: number; fdNames: string | null };
      expect(started.listenFds).toBe(1);
      expect(started.listenPid).toBe(started.pid); // the fixture also checked this itself
      expect(started.pid).not.toBe(grab.child.pid);
      // The victim never accepts: this connection can only be served by the grabbed copy.
      const reply = await new Promise<string>((resolve, reject) => {
        let data = '';
        netConnect(victim.port, '127.0.0.1').setEncoding('utf8').on('data', (d: string) => (data += d)).on('close', () => resolve(data)).on('error', reject);
      });
      expect(reply).toBe(`hello from pid ${started.pid} on fd 3\n`);
      const end = await grab.done;
      expect(end.code, end.stderr).toBe(0);
      expect(victim.run.child.exitCode).toBe(null); // the victim still lives, and still has its socket
      expect(readlinkSync(`/proc/${victim.pid}/fd/${victim.listenFd}`)).toMatch(/^socket:/);
    });
  });

  it('passes several fds at 3, 4 (the same open files) and returns the command\'s exit status', async () => {
    await withVictim(async (victim) => {
      const script = 'cat <&4; echo "$LISTEN_FDS $LISTEN_PID $$"; readlink /proc/$$/fd/3 /proc/$$/fd/4; exit 7';
      const out = await cli('grab', String(victim.pid), String(victim.listenFd), String(victim.fileFd), '--', 'sh', '-c', script).done;
      expect(out.code, out.stderr).toBe(7);
      const lines = out.stdout.trimEnd().split('\n');
      expect(lines[0]).toBe('grabbed file'); // from the victim's offset (7): the shared open file description
      const [count, listenPid, shPid] = lines[1]!.split(' ');
      expect(count).toBe('2');
      expect(listenPid).toBe(shPid);
      expect(lines.slice(2)).toEqual([fdTarget(victim.pid, victim.listenFd), fdTarget(victim.pid, victim.fileFd)]);
    });
  });

  it('reports errors: no such fd in the target, missing command', async () => {
    await withVictim(async (victim) => {
      const noFd = await cli('grab', String(victim.pid), '987654', '--', 'true').done;
      expect(noFd.code).toBe(1);
      expect(noFd.stderr).toBe(`fdpass: pidfd_getfd EBADF: process ${victim.pid} has no open fd 987654\n`);
      const noCmd = await cli('grab', String(victim.pid), String(victim.listenFd)).done;
      expect(noCmd.code).toBe(2);
      expect(noCmd.stderr).toContain('grab needs -- and a command');
    });
  });
});

describe('bin/fdpass.js', () => {
  it('runs the built CLI (dist/) with plain node', async () => {
    // Build into a scratch copy of the package layout, so the shared dist/ is not touched.
    const root = mkdtempSync(join(tmpdir(), 'fdpass-bin-'));
    try {
      const tsc = await run([process.execPath, join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', join(repoRoot, 'tsconfig.build.json'), '--outDir', join(root, 'dist'), '--declaration', 'false', '--sourceMap', 'false']).done;
      expect(existsSync(join(root, 'dist/cli.js')), tsc.stdout + tsc.stderr).toBe(true);
      mkdirSync(join(root, 'bin'));
      copyFileSync(join(repoRoot, 'bin/fdpass.js'), join(root, 'bin/fdpass.js'));
      copyFileSync(join(repoRoot, 'package.json'), join(root, 'package.json'));
      symlinkSync(join(repoRoot, 'node_modules'), join(root, 'node_modules'));
      await withVictim(async (victim) => {
        const out = await run([process.execPath, join(root, 'bin/fdpass.js'), 'ls', String(victim.pid), '--json']).done;
        expect(out.code, out.stderr).toBe(0);
        const fds = JSON.parse(out.stdout) as ProcessFdInfo[];
        expect(fds.find((f) => f.fd === victim.listenFd)?.socket).toMatchObject({ listening: true, localPort: victim.port });
      });
      // Without a build, the launcher says what to do.
      rmSync(join(root, 'dist'), { recursive: true });
      const missing = await run([process.execPath, join(root, 'bin/fdpass.js'), 'ls', '1']).done;
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('run `npm run build` first');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, scaled(120_000));
});
