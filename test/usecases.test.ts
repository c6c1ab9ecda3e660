/**
 * The three headline use cases, end to end, with the examples' own child programs
 * (examples/fixtures/): a hand-off proxy, a zero-downtime restart, a privilege-separating broker.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from './fdfs.js';
import * as http from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { forkWithSocket, listen, type ChildWithSocket, type UnixSocket } from '../src/index.js';
import { denoLimit, expectNoFdLeak, openFds, readableCopy, repoRoot } from './helpers.js';

const example = (name: string): URL => new URL(`../examples/fixtures/${name}.ts`, import.meta.url);
const quiet = { cwd: repoRoot, execArgv: [] as string[], stdio: ['ignore', 'ignore', 'inherit'] as ('ignore' | 'inherit')[] };

// Every process a test starts, children and grandchildren (by pid), is killed afterwards.
const children = new Set<ChildProcess>();
const pids = new Set<number>();
afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  pids.clear();
});
function track(x: ChildWithSocket): ChildWithSocket {
  children.add(x.child);
  x.child.on('exit', () => children.delete(x.child));
  return x;
}

/** Gone, or a zombie nobody reaped yet (a grandchild whose parent exited). */
function isGone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').startsWith('Z');
  } catch {
    return true;
  }
}
async function waitGone(pid: number): Promise<void> {
  for (let i = 0; i < 500 && !isGone(pid); i++) await new Promise((r) => setTimeout(r, 10));
  expect(isGone(pid), `process ${pid} still running`).toBe(true);
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
}

/** One GET on a new connection (no keep-alive); resolves once the client socket is closed. */
function getOnce(port: number, path = '/'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close' } }, (res) => {
      res.resume();
      res.on('error', reject);
      res.on('end', () => {
        const answer = { status: res.statusCode ?? 0, headers: res.headers };
        if (req.socket?.destroyed) resolve(answer);
        else req.socket?.once('close', () => resolve(answer));
      });
    });
    req.on('error', reject);
  });
}

/** `total` requests, `concurrency` at a time; bounded in count and (by the test timeout) time. */
async function load(port: number, total: number, concurrency: number): Promise<{ answers: Answer[]; errors: string[] }> {
  const answers: Answer[] = [];
  const errors: string[] = [];
  let started = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (started < total) {
      started++;
      try {
        answers.push(await getOnce(port, `/${started}`));
      } catch (err) {
        errors.push((err as NodeJS.ErrnoException).code ?? (err as Error).message);
      }
    }
  }));
  return { answers, errors };
}

describe('hand-off proxy', () => {
  it('a front passes every accepted connection to one of 3 workers; all requests answered, no fd leak', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const workers: ChildWithSocket[] = [];
      for (let i = 0; i < 3; i++) {
        const w = track(forkWithSocket(example('handoff-worker'), [`worker-${i}`], quiet));
        const hello = JSON.parse((await w.socket.recv())!.data.toString()) as { ready: string; pid: number };
        expect(hello).toEqual({ ready: `worker-${i}`, pid: w.child.pid });
        workers.push(w);
      }
      let next = 0;
      const handOffErrors: string[] = [];
      const front = net.createServer({ pauseOnConnect: true }, (conn) => {
        workers[next++ % workers.length].socket.send('', [conn], { close: true }).catch((err: Error) => {
          handOffErrors.push(err.message);
          conn.destroy();
        });
      });
      front.listen(0, '127.0.0.1');
      await once(front, 'listening');
      const { port } = front.address() as net.AddressInfo;

      // The front holds no descriptor for any connection once the load is over.
      const fdsBefore = openFds().length;
      const { answers, errors } = await load(port, 600, 50);
      await new Promise((r) => setImmediate(r));
      expect(openFds().length).toBe(fdsBefore);

      expect(errors).toEqual([]);
      expect(handOffErrors).toEqual([]);
      expect(answers).toHaveLength(600);
      expect(answers.every((a) => a.status === 200)).toBe(true);
      const perWorker = new Map<string, number>();
      for (const a of answers) perWorker.set(String(a.headers['x-worker']), (perWorker.get(String(a.headers['x-worker'])) ?? 0) + 1);
      // Round robin over 3 workers: exactly a third each.
      expect(Object.fromEntries(perWorker)).toEqual({ 'worker-0': 200, 'worker-1': 200, 'worker-2': 200 });

      front.close();
      await once(front, 'close');
      for (const w of workers) w.socket.close(); // end of stream: each worker exits
      for (const w of workers) {
        const [code, signal] = w.child.exitCode !== null ? [w.child.exitCode, null] : await once(w.child, 'exit');
        expect({ code, signal }).toEqual({ code: 0, signal: null });
      }
    });
  });
});

describe('zero-downtime restart', () => {
  it('hands the listening socket over twice while a client sends requests non-stop; none fails', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const launcher = track(forkWithSocket(example('zdt-server'), ['1'], { ...quiet, env: { ...process.env, ZDT_QUIET: '1' } }));
      const control = launcher.socket;
      const nextEvent = async (): Promise<{ listening: number; generation: number; pid: number }> => {
        const msg = await control.recv();
        if (!msg) throw new Error('the server closed its control channel');
        const event = JSON.parse(msg.data.toString()) as { listening: number; generation: number; pid: number };
        pids.add(event.pid);
        return event;
      };
      const first = await nextEvent();
      expect(first).toMatchObject({ generation: 1, pid: launcher.child.pid });
      const port = first.listening;

      // 4 loops of back-to-back requests, each on a new connection, until told to stop.
      let running = true;
      const byGeneration = new Map<string, number>();
      const failures: string[] = [];
      const requestsSoFar = (): number => [...byGeneration.values()].reduce((a, b) => a + b, 0);
      const client = Promise.all(Array.from({ length: 4 }, async () => {
        while (running && requestsSoFar() + failures.length < 50_000) {
          try {
            const a = await getOnce(port);
            if (a.status !== 200) failures.push(`status ${a.status}`);
            const g = String(a.headers['x-generation']);
            byGeneration.set(g, (byGeneration.get(g) ?? 0) + 1);
          } catch (err) {
            failures.push((err as NodeJS.ErrnoException).code ?? (err as Error).message);
          }
        }
      }));
      const waitForRequests = async (n: number): Promise<void> => {
        const target = requestsSoFar() + n;
        for (let i = 0; i < 2000 && requestsSoFar() < target && failures.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
      };

      const generations = [first];
      for (const target of [2, 3]) {
        await waitForRequests(200);
        control.sendSync('restart');
        const event = await nextEvent();
        expect(event).toMatchObject({ generation: target, listening: port });
        generations.push(event);
        // The previous generation drains and exits on its own.
        await waitGone(generations[target - 2].pid);
      }
      await waitForRequests(200);
      running = false;
      await client;

      expect(failures).toEqual([]);
      expect([...byGeneration.keys()].sort()).toEqual(['1', '2', '3']);
      for (const n of byGeneration.values()) expect(n).toBeGreaterThan(0);

      control.sendSync('stop');
      expect(await control.recv()).toBeNull();
      control.close();
      await waitGone(generations[2].pid);
    });
  });
});

describe('privilege-separating broker', () => {
  it('passes a root-only file to a client running as nobody, after checking its uid; refuses daemon', async () => {
    if (await denoLimit('fs-foreign-fd')) return;
    expect(process.getuid!(), 'this test runs clients as other users: it must run as root').toBe(0);
    const passwd = readFileSync('/etc/passwd', 'utf8').split('\n');
    const user = (name: string): { uid: number; gid: number } => {
      const f = passwd.find((l) => l.startsWith(`${name}:`))!.split(':');
      return { uid: Number(f[2]), gid: Number(f[3]) };
    };
    const nobody = user('nobody');
    const daemon = user('daemon');
    const dir = mkdtempSync(join(tmpdir(), 'fdpass-broker-test-'));
    try {
      chmodSync(dir, 0o755);
      const secretPath = join(dir, 'secret.txt');
      writeFileSync(secretPath, 'root only, mode 0600', { mode: 0o600 });
      const socketPath = join(dir, 'broker.sock');

      await expectNoFdLeak(async () => {
        const seen: number[] = [];
        const server = listen({ path: socketPath, mode: 0o666 });
        const serve = async (conn: UnixSocket): Promise<void> => {
          const { uid } = conn.peerCredentials();
          seen.push(uid);
          const request = await conn.recv();
          const { open } = JSON.parse(request!.data.toString()) as { open: string };
          if (uid !== nobody.uid || open !== 'secret.txt') await conn.send(JSON.stringify({ ok: false, reason: `uid ${uid} is not allowed` }));
          else await conn.send(JSON.stringify({ ok: true }), [openSync(secretPath, 'r')], { close: true });
          conn.close();
        };
        const accepting = (async () => {
          for await (const conn of server) await serve(conn);
        })();

        const runClient = async (as: { uid: number; gid: number }): Promise<Record<string, any>[]> => {
          // The client, running as another user, loads its code from a copy that user can read.
          const readable = readableCopy();
          const child = spawn(process.execPath, ['--import', 'tsx', join(readable, 'examples/fixtures/broker-client.ts'), socketPath, secretPath, 'secret.txt'], {
            cwd: readable, uid: as.uid, gid: as.gid, stdio: ['ignore', 'pipe', 'pipe'],
          });
          children.add(child);
          let out = '';
          let err = '';
          child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
          child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
          const [code] = await once(child, 'close');
          expect({ code, err }).toEqual({ code: 0, err: '' });
          return out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
        };

        const granted = await runClient(nobody);
        expect(granted).toEqual([
          { step: 'whoami', uid: nobody.uid, gid: nobody.gid },
          { step: 'open', ok: false, code: 'EACCES' }, // the client cannot open it itself
          { step: 'broker', ok: true, fds: 1, kind: 'file', content: 'root only, mode 0600' },
        ]);
        const refused = await runClient(daemon);
        expect(refused).toEqual([
          { step: 'whoami', uid: daemon.uid, gid: daemon.gid },
          { step: 'open', ok: false, code: 'EACCES' },
          { step: 'broker', ok: false, reason: `uid ${daemon.uid} is not allowed`, fds: 0 },
        ]);
        expect(seen).toEqual([nobody.uid, daemon.uid]); // the kernel's word, not the client's
        server.close();
        await accepting;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
