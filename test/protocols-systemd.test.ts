/**
 * systemd protocols against real systemd code: socket activation by Debian's
 * systemd-socket-activate (it binds, waits for the first connection, then execs our tsx
 * service with LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES), notifications by systemd-notify (its
 * READY/STATUS datagram and sd_notify_barrier), and a receiving socket that checks exactly the
 * bytes, fds and credentials systemd's manager would get from notify().
 */
import { once } from 'node:events';
import { mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from './fdfs.js';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Fd, connect, pipe, socketPair } from '../src/index.js';
import { listenFds, notify, notifyBarrier, removeStoredFds, storeFds } from '../src/protocols/systemd.js';
import { expectNoFdLeak, requirePeer, tsCommand } from './helpers.js';
import { CREDENTIAL_MESSAGES, notifyReceiver, seqpacketUnsupported } from './mode.js';
import { Peers, fixture, readUntil, unlessPeerFails, type Peer } from './fixtures/interop-util.js';

const peers = new Peers();
afterEach(() => peers.killAll());

let dir: string;
beforeAll(() => {
  requirePeer('systemd-socket-activate');
  requirePeer('systemd-notify');
  requirePeer('python3');
  dir = mkdtempSync(join(tmpdir(), 'fdpass-systemd-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SERVICE = fixture('interop-systemd-activated.ts');
const NODE_SERVICE = tsCommand(SERVICE);
let serial = 0;
const unique = (): string => `${process.pid}-${++serial}`;

/** A TCP port nobody listens on right now (systemd-socket-activate needs a fixed one). */
async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as net.AddressInfo;
  s.close();
  await once(s, 'close');
  return port;
}

/** Start systemd-socket-activate with `listen` addresses; resolves once it listens on all of them. */
async function activate(listen: string[], flags: string[], service: string[]): Promise<Peer> {
  const args = [...listen.flatMap((l) => ['-l', l]), ...flags, ...NODE_SERVICE, ...service];
  const sa = peers.start('systemd-socket-activate', args);
  await sa.waitForStderr('Listening on', listen.length);
  return sa;
}

/** The sender's pid as the receiver can know it: from the kernel, or not at all. */
const fromPid = (pid: number | undefined): number | undefined => (CREDENTIAL_MESSAGES ? pid : undefined);

/** Everything a stream server says before it closes the connection. */
function greeting(options: net.NetConnectOpts): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(options);
    let text = '';
    c.setEncoding('utf8').on('data', (d: string) => (text += d));
    c.on('end', () => {
      c.destroy();
      resolve(text);
    });
    c.on('error', reject);
  });
}

/**
 * `env` is `expected` plus LISTEN_PIDFDID: systemd-socket-activate 252 (Debian 12) sets none (null);
 * newer versions set our pidfd's inode number. (Not expect.toSatisfy: bun test has no such matcher.)
 */
function expectListenEnv(env: Record<string, unknown>, expected: Record<string, string>): void {
  const { LISTEN_PIDFDID, ...rest } = env;
  expect(rest).toEqual(expected);
  expect(LISTEN_PIDFDID === null || (typeof LISTEN_PIDFDID === 'string' && /^\d+$/.test(LISTEN_PIDFDID)), `LISTEN_PIDFDID ${JSON.stringify(LISTEN_PIDFDID)}`).toBe(true);
}

async function exitCode(peer: Peer): Promise<number | null> {
  const { code, signal, stderr } = await peer.exited;
  if (code !== 0) throw new Error(`exited with ${code} (signal ${signal}): ${stderr}`);
  return code;
}

describe('socket activation by systemd-socket-activate', () => {
  it('listenServers(): a Unix path, a TCP port and an abstract name become named net.Servers; READY=1 reaches NOTIFY_SOCKET', async () => {
    await expectNoFdLeak(async () => {
      const path = join(dir, `web-${unique()}.sock`);
      const abstract = `fdpass-test-${unique()}`;
      using notifications = notifyReceiver(join(dir, `notify-${unique()}.sock`));
      let sa: Peer | undefined;
      let port = 0;
      for (let attempt = 0; attempt < 3 && !sa; attempt++) {
        port = await freePort();
        try {
          sa = await activate([path, `127.0.0.1:${port}`, `@${abstract}`], ['--fdname=web:api:admin', '-E', `NOTIFY_SOCKET=${notifications.address}`], ['servers', '3']);
        } catch (err) {
          if (!String(err).includes('Address already in use')) throw err; // the port was taken meanwhile: pick another
          rmSync(path, { force: true });
        }
      }
      if (!sa) throw new Error('systemd-socket-activate found no free TCP port in 3 attempts');
      // The service is not running yet: this first connection makes systemd-socket-activate exec it.
      const web = await unlessPeerFails(sa, greeting({ path }));
      const report = await sa.waitFor((l) => l.mode === 'servers', 'the service report');
      expect(report.pid).toBe(sa.child.pid); // exec: the same process, so LISTEN_PID matched
      expectListenEnv(report.env, { LISTEN_PID: String(sa.child.pid), LISTEN_FDS: '3', LISTEN_FDNAMES: 'web:api:admin' });
      expect(report.envAfter).toEqual({ LISTEN_PID: null, LISTEN_PIDFDID: null, LISTEN_FDS: null, LISTEN_FDNAMES: null });
      expect(report.servers.map((s: { name: string }) => s.name)).toEqual(['web', 'api', 'admin']);
      expect(report.servers[1].address).toEqual({ address: '127.0.0.1', family: 'IPv4', port });
      expect(web).toBe(`hello from web ${report.pid}\n`);
      expect(await greeting({ host: '127.0.0.1', port })).toBe(`hello from api ${report.pid}\n`);
      const admin = await connect({ abstract, type: 'stream' });
      const adminSays = await admin.recv();
      admin.close();
      expect(adminSays?.data.toString()).toBe(`hello from admin ${report.pid}\n`);

      const ready = await notifications.recv();
      expect(ready).toMatchObject({ state: 'READY=1\nSTATUS=serving 3 sockets', fds: [] });
      expect(ready.pid).toBe(fromPid(report.pid));
      expect(ready.fields).toEqual({ READY: '1', STATUS: 'serving 3 sockets' });
      expect(await exitCode(sa)).toBe(0);
    });
  });

  for (const kind of ['seqpacket', 'datagram'] as const) {
    it(`listenFds(): a ${kind} Unix socket, named, close-on-exec; an fd sent through it arrives in the service`, async () => {
      // Where fdpass has no SEQPACKET it cannot connect to a seqpacket service at all.
      if (kind === 'seqpacket' && seqpacketUnsupported()) return;
      await expectNoFdLeak(async () => {
        const path = join(dir, `${kind}-${unique()}.sock`);
        const sa = await activate([path], [`--${kind}`, '--fdname=jobs'], ['fds']);
        const [r, w] = pipe();
        const sock = await connect(path); // type auto-detected
        expect(sock.type).toBe(kind === 'datagram' ? 'dgram' : 'seqpacket');
        await sock.send(`work for ${kind}`, [w]); // the first message starts the service
        w.close();
        const report = await unlessPeerFails(sa, sa.waitFor((l) => l.mode === 'fds' && l.fds, 'the service report'));
        expect(report.pid).toBe(sa.child.pid);
        expect(report.fds).toEqual([
          {
            name: 'jobs', fd: 3, kind: 'socket', closeOnExec: true,
            socket: { family: 'unix', type: kind === 'datagram' ? 'dgram' : 'seqpacket', protocol: 0, listening: kind === 'seqpacket', path },
          },
        ]);
        expect(readUntil(r.fd, '\n')).toBe(`${report.pid} got "work for ${kind}" on jobs\n`);
        expect(await exitCode(sa)).toBe(0);
        sock.close();
        r.close();
      });
    });
  }

  it('--accept: each connection starts a service whose fd 3 is that connection', async () => {
    await expectNoFdLeak(async () => {
      const path = join(dir, `accept-${unique()}.sock`);
      const sa = await activate([path], ['--accept', '--fdname=conn'], ['accept']);
      let previous = 0;
      for (const n of [1, 2]) {
        const [r, w] = pipe();
        const sock = await connect({ path, type: 'stream' });
        await sock.send(`request ${n}`, [w]);
        w.close();
        const report = await unlessPeerFails(sa, sa.waitFor((l) => l.mode === 'accept' && l.pid !== previous, `service ${n}`));
        previous = report.pid;
        expect(report.pid).not.toBe(sa.child.pid); // a forked child per connection
        expectListenEnv(report.env, { LISTEN_PID: String(report.pid), LISTEN_FDS: '1', LISTEN_FDNAMES: 'conn' });
        expect(report.fds).toEqual([
          { name: 'conn', fd: 3, kind: 'socket', closeOnExec: true, socket: { family: 'unix', type: 'stream', protocol: 0, listening: false, path } },
        ]);
        expect(readUntil(r.fd, '\n')).toBe(`${report.pid} served "request ${n}"\n`);
        expect(await sock.recv()).toBeNull(); // that service exited
        sock.close();
        r.close();
      }
      sa.child.kill('SIGTERM');
      await sa.exited;
    });
  });
});

// A python3 exec wrapper plays the service manager for cases systemd-socket-activate cannot
// produce: it sets LISTEN_PID to its own pid (kept across exec) and optionally LISTEN_PIDFDID.
const WRAPPER = `
import os, sys
pidfd_mode, argv = sys.argv[1], sys.argv[2:]
os.environ['LISTEN_PID'] = str(os.getpid())
if pidfd_mode != 'none':
    fd = os.pidfd_open(os.getpid())
    ino = os.fstat(fd).st_ino
    os.close(fd)
    os.environ['LISTEN_PIDFDID'] = str(ino + (1 if pidfd_mode == 'other' else 0))
os.execv(argv[0], argv)
`;

async function probe(env: Record<string, string>, fds: number[], args: string[] = [], pidfd: 'none' | 'same' | 'other' = 'none'): Promise<Record<string, any>> {
  const p = peers.start('python3', ['-c', WRAPPER, pidfd, ...NODE_SERVICE, 'probe', ...args], { extraFds: fds, env });
  const report = await unlessPeerFails(p, p.waitFor((l) => l.mode === 'probe', 'the probe report'));
  expect(await exitCode(p)).toBe(0);
  return report;
}

describe('listenFds() edge cases (a python3 exec wrapper as the manager)', () => {
  let file: string;
  beforeAll(() => {
    file = join(dir, 'passed.txt');
    writeFileSync(file, 'passed file');
  });

  it('sets close-on-exec, names each fd, and takes any kind of descriptor', async () => {
    await expectNoFdLeak(async () => {
      const [r, w] = pipe();
      const f = new Fd(openSync(file, 'r'));
      const report = await probe({ LISTEN_FDS: '3', LISTEN_FDNAMES: 'log:data:' }, [w.fd, f.fd, r.fd]);
      expect(report.ok).toBe(true);
      expect(report.cleared).toEqual([3, 4, 5]); // the probe cleared FD_CLOEXEC first
      expect(report.fds.map((x: any) => [x.fd, x.name, x.kind, x.closeOnExec])).toEqual([
        [3, 'log', 'pipe', true],
        [4, 'data', 'file', true],
        [5, '', 'pipe', true],
      ]);
      expect(report.envAfter).toEqual({ LISTEN_PID: null, LISTEN_PIDFDID: null, LISTEN_FDS: null, LISTEN_FDNAMES: null });
      for (const x of [r, w, f]) x.close();
    });
  });

  it('names are "unknown" without LISTEN_FDNAMES; unsetEnv: false keeps the environment', async () => {
    await expectNoFdLeak(async () => {
      const [r, w] = pipe();
      const report = await probe({ LISTEN_FDS: '1' }, [w.fd], ['keep-env']);
      expect(report.fds.map((x: any) => x.name)).toEqual(['unknown']);
      expect(report.envAfter.LISTEN_FDS).toBe('1');
      expect(Number(report.envAfter.LISTEN_PID)).toBeGreaterThan(0);
      r.close();
      w.close();
    });
  });

  it('LISTEN_PIDFDID: honoured when it names this process, ignored ([]) when it names another', async () => {
    await expectNoFdLeak(async () => {
      const [r, w] = pipe();
      const same = await probe({ LISTEN_FDS: '1' }, [w.fd], [], 'same');
      expect(same.fds).toHaveLength(1);
      expect(same.env.LISTEN_PIDFDID).toMatch(/^\d+$/);
      const other = await probe({ LISTEN_FDS: '1' }, [w.fd], [], 'other');
      expect(other).toMatchObject({ ok: true, fds: [] });
      expect(other.envAfter).toEqual({ LISTEN_PID: null, LISTEN_PIDFDID: null, LISTEN_FDS: null, LISTEN_FDNAMES: null });
      r.close();
      w.close();
    });
  });

  it('a malformed environment is a clear error (and the environment is still removed)', async () => {
    await expectNoFdLeak(async () => {
      const [r, w] = pipe();
      const cases: [Record<string, string>, string, RegExp][] = [
        [{ LISTEN_FDS: '2', LISTEN_FDNAMES: 'one' }, 'ERR_FDPASS_LISTEN_FDS', /LISTEN_FDNAMES has 1 names for 2 descriptors/],
        [{ LISTEN_FDS: 'x' }, 'ERR_FDPASS_LISTEN_FDS', /LISTEN_FDS is not a positive count: "x"/],
        [{ LISTEN_FDS: '0' }, 'ERR_FDPASS_LISTEN_FDS', /LISTEN_FDS is not a positive count: "0"/],
        // In a Node process the numbers after the passed fds are Node's own (epoll, eventfd…):
        // only a count far beyond them reaches a closed number.
        [{ LISTEN_FDS: '1000' }, 'EBADF', /LISTEN_FDS=1000 but fd \d+ is not open/],
      ];
      for (const [env, code, message] of cases) {
        const report = await probe(env, [w.fd]);
        expect(report).toMatchObject({ ok: false, code });
        expect(report.message).toMatch(message);
        expect(report.envAfter.LISTEN_FDS).toBeNull();
      }
      r.close();
      w.close();
    });
  });

  it('listenServers() refuses what is not a listening stream socket, names it, and closes every passed fd', async () => {
    await expectNoFdLeak(async () => {
      const tcp = net.createServer().listen(0, '127.0.0.1');
      await once(tcp, 'listening');
      const [r, w] = pipe();
      const [a, b] = socketPair('stream');
      const report = await probe({ LISTEN_FDS: '3', LISTEN_FDNAMES: 'http:log:peer' }, [(tcp as any)._handle.fd, w.fd, b.fd], ['servers']);
      expect(report).toMatchObject({ ok: false, code: 'ERR_FDPASS_NOT_LISTENING' });
      expect(report.message).toMatch(/fd 4 "log" is a pipe \(pipe:\[\d+\]\); fd 5 "peer" is a Unix stream socket \(not a listening TCP or Unix stream socket\)/);
      expect(report.openFds.filter((fd: number) => fd >= 3 && fd <= 5)).toEqual([]); // 3, 4, 5 all closed
      tcp.close();
      for (const x of [r, w, a, b]) x.close();
    });
  });
});

describe('listenFds() in this process', () => {
  const saved: Record<string, string | undefined> = {};
  const VARS = ['LISTEN_PID', 'LISTEN_PIDFDID', 'LISTEN_FDS', 'LISTEN_FDNAMES', 'NOTIFY_SOCKET'];
  beforeAll(() => {
    for (const v of VARS) saved[v] = process.env[v];
  });
  afterEach(() => {
    for (const v of VARS) {
      if (saved[v] === undefined) delete process.env[v];
      else process.env[v] = saved[v];
    }
  });

  it('returns [] when LISTEN_PID is absent or names another process, touching no fd', async () => {
    await expectNoFdLeak(() => {
      delete process.env.LISTEN_PID;
      process.env.LISTEN_FDS = '2';
      expect(listenFds()).toEqual([]);
      expect(process.env.LISTEN_FDS).toBeUndefined();

      process.env.LISTEN_PID = String(process.pid + 1);
      process.env.LISTEN_FDS = '2';
      expect(listenFds({ unsetEnv: false })).toEqual([]);
      expect(process.env.LISTEN_FDS).toBe('2'); // kept, as asked
      expect(listenFds()).toEqual([]);
      expect(process.env.LISTEN_PID).toBeUndefined();
      expect(process.env.LISTEN_FDS).toBeUndefined();
    });
  });

  it('LISTEN_PID that is not a pid: an error, environment removed', () => {
    process.env.LISTEN_PID = '12abc';
    process.env.LISTEN_FDS = '1';
    expect(() => listenFds()).toThrow(expect.objectContaining({ code: 'ERR_FDPASS_LISTEN_FDS', message: expect.stringContaining('LISTEN_PID is not a process id') }));
    expect(process.env.LISTEN_PID).toBeUndefined();
    expect(() => listenFds({ unsetEnv: 'yes' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

});

// ---------------------------------------------------------------------------------------------
// sd_notify

describe('notify() and friends, checked by a receiving socket (what systemd reads)', () => {
  const saved = process.env.NOTIFY_SOCKET;
  afterEach(() => {
    if (saved === undefined) delete process.env.NOTIFY_SOCKET;
    else process.env.NOTIFY_SOCKET = saved;
  });

  it("the receiver reads real systemd-notify exactly: READY/STATUS, then sd_notify_barrier's BARRIER=1 with a pipe", async () => {
    await expectNoFdLeak(async () => {
      using rx = notifyReceiver(join(dir, `sn-${unique()}.sock`));
      const sn = peers.start('systemd-notify', ['--ready', '--status=warming up'], { env: { NOTIFY_SOCKET: rx.address } });
      const first = await unlessPeerFails(sn, rx.recv());
      expect(first).toMatchObject({ state: 'READY=1\nSTATUS=warming up', fds: [] });
      expect([first.uid, first.gid]).toEqual(CREDENTIAL_MESSAGES ? [process.getuid!(), process.getgid!()] : [undefined, undefined]);
      // systemd-notify speaks for the process that ran it (SCM_CREDENTIALS with its parent's pid,
      // which the kernel allows for root); unprivileged, it falls back to its own pid.
      expect(CREDENTIAL_MESSAGES ? [process.pid, sn.child.pid] : [undefined]).toContain(first.pid);
      const barrier = await unlessPeerFails(sn, rx.recv());
      expect(barrier.state).toBe('BARRIER=1');
      expect(barrier.fds).toHaveLength(1);
      const d = barrier.fds[0].describe();
      expect([d.kind, d.openFlags[0]]).toEqual(['pipe', 'O_WRONLY']);
      barrier.fds[0].close(); // what the manager does: systemd-notify's barrier wait then ends
      const { code, stderr } = await sn.exited;
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    });
  });

  it('notify() sends the same datagram as systemd-notify, from this pid', async () => {
    await expectNoFdLeak(async () => {
      using rx = notifyReceiver(join(dir, `n-${unique()}.sock`));
      process.env.NOTIFY_SOCKET = rx.address;
      expect(await notify('READY=1\nSTATUS=warming up')).toBe(true);
      const ours = await rx.recv();
      const sn = peers.start('systemd-notify', ['--ready', '--status=warming up', '--no-block'], { env: { NOTIFY_SOCKET: rx.address } });
      const theirs = await unlessPeerFails(sn, rx.recv());
      expect(ours.state).toBe(theirs.state);
      expect(ours).toMatchObject({ fds: [] });
      expect(ours.pid).toBe(fromPid(process.pid));
      expect(await notify({ READY: 1, STATUS: 'up', RELOADING: false })).toBe(true);
      expect((await rx.recv()).state).toBe('READY=1\nSTATUS=up\nRELOADING=0');
      expect(await notify('STOPPING=1')).toBe(true);
      expect((await rx.recv()).fields).toEqual({ STOPPING: '1' });
      await sn.exited;
    });
  });

  it('storeFds() sends FDSTORE=1 + FDNAME with the fds; removeStoredFds() sends FDSTOREREMOVE=1', async () => {
    await expectNoFdLeak(async () => {
      using rx = notifyReceiver(join(dir, `fs-${unique()}.sock`));
      const path = join(dir, 'stored.txt');
      writeFileSync(path, 'kept across restarts');
      const file = new Fd(openSync(path, 'r'));
      const [r, w] = pipe();
      expect(await storeFds([file, w], 'db-conn', { socket: rx.address })).toBe(true);
      file.close();
      w.close();
      const msg = await rx.recv();
      expect(msg.state).toBe('FDSTORE=1\nFDNAME=db-conn');
      expect(msg.fds).toHaveLength(2);
      const buf = Buffer.alloc(64);
      expect(buf.subarray(0, readSync(msg.fds[0].fd, buf, 0, 64, 0)).toString()).toBe('kept across restarts');
      writeSync(msg.fds[1].fd, 'through the stored pipe\n'); // the pipe write end that arrived is ours

      expect(readUntil(r.fd, '\n')).toBe('through the stored pipe\n');
      for (const f of msg.fds) f.close();
      r.close();
      expect(await removeStoredFds('db-conn', { socket: rx.address })).toBe(true);
      expect((await rx.recv()).state).toBe('FDSTOREREMOVE=1\nFDNAME=db-conn');
      await expect(storeFds([0], 'bad:name', { socket: rx.address })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
      await expect(storeFds([], 'x', { socket: rx.address })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    });
  });

  it("an '@abstract' NOTIFY_SOCKET; unsetEnv removes NOTIFY_SOCKET; no NOTIFY_SOCKET resolves false", async () => {
    await expectNoFdLeak(async () => {
      using rx = notifyReceiver(`@fdpass-notify-${unique()}`);
      expect(rx.address).toMatch(/^@fdpass-notify-/);
      process.env.NOTIFY_SOCKET = rx.address;
      expect(await notify('WATCHDOG=1', null, { unsetEnv: true })).toBe(true);
      expect(process.env.NOTIFY_SOCKET).toBeUndefined();
      const watchdog = await rx.recv();
      expect(watchdog).toMatchObject({ state: 'WATCHDOG=1' });
      expect(watchdog.pid).toBe(fromPid(process.pid));
      expect(await notify('READY=1')).toBe(false);
      expect(await notifyBarrier()).toBe(false);
    });
  });

  it('notifyBarrier() resolves only after the manager closes the pipe; times out or aborts otherwise', async () => {
    await expectNoFdLeak(async () => {
      using rx = notifyReceiver(join(dir, `b-${unique()}.sock`));
      process.env.NOTIFY_SOCKET = rx.address;
      let settled = false;
      const barrier = notifyBarrier().then((v) => ((settled = true), v));
      const msg = await rx.recv();
      expect(msg.state).toBe('BARRIER=1');
      expect(msg.fds).toHaveLength(1);
      await new Promise((r) => setImmediate(r));
      expect(settled).toBe(false); // we still hold the write end
      msg.fds[0].close();
      expect(await barrier).toBe(true);

      const timedOut = notifyBarrier({ timeoutMs: 50 });
      const held = await rx.recv();
      await expect(timedOut).rejects.toMatchObject({ code: 'ETIMEDOUT' });
      held.fds[0].close();

      const ac = new AbortController();
      const aborted = notifyBarrier({ timeoutMs: Infinity, signal: ac.signal });
      const held2 = await rx.recv();
      ac.abort();
      await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
      held2.fds[0].close();

      // Aborted while notify() is still sending: the abort event is over by the time the wait
      // starts, and must still count (it used to wait for the timeout instead).
      const ac2 = new AbortController();
      const early = notifyBarrier({ timeoutMs: Infinity, signal: ac2.signal });
      ac2.abort();
      await expect(early).rejects.toMatchObject({ name: 'AbortError' });
      (await rx.recv()).fds.forEach((f) => f.close());

      // setTimeout cannot wait longer than 2^31-1 ms: refused, not a timeout after 1 ms.
      await expect(notifyBarrier({ timeoutMs: 2 ** 31 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    });
  });

  it('bad states and addresses are clear errors before anything is sent', async () => {
    await expectNoFdLeak(async () => {
      const socket = join(dir, 'nobody-here.sock');
      await expect(notify('', null, { socket })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
      await expect(notify('A=1\0', null, { socket })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
      await expect(notify('X'.repeat(4097), null, { socket })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
      await expect(notify({ 'BAD KEY': 1 }, null, { socket })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
      await expect(notify({ STATUS: 'two\nlines' }, null, { socket })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
      await expect(notify('READY=1', null, { socket: 'relative.sock' })).rejects.toMatchObject({ code: 'ERR_FDPASS_NOTIFY_SOCKET' });
      await expect(notify('READY=1', null, { socket: 'vsock:2:1234' })).rejects.toMatchObject({ code: 'ERR_FDPASS_UNSUPPORTED' });
      await expect(notify('READY=1', null, { socket })).rejects.toMatchObject({ code: 'ENOENT', syscall: 'connect' });
    });
  });

  it('a datagram longer than systemd reads is refused by the receiver, its fds closed', async () => {
    await expectNoFdLeak(async () => {
      using rx = notifyReceiver(join(dir, `big-${unique()}.sock`));
      const sender = await connect({ path: rx.address, type: 'dgram' });
      const [r, w] = pipe();
      await sender.send('X'.repeat(5000), [w, r]);
      await expect(rx.recv()).rejects.toMatchObject({ code: 'ERR_FDPASS_TRUNC' });
      await sender.send('READY=1');
      expect((await rx.recv()).state).toBe('READY=1'); // still usable
      sender.close();
      r.close();
      w.close();
    });
  });
});

