/**
 * Access control: file modes against a real unprivileged peer (uid 65534), `authorize` in
 * accept, SCM_CREDENTIALS sent and checked by the kernel (a child that dropped to nobody is
 * identified, its spoofing refused), and UnixServer.release().
 */
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  PidFd, adoptServer, connect, connectSync, listen, socketPair,
  type Authorize, type PeerInfo, type UnixSocket,
} from '../src/index.js';
import { compileC, denoLimit, expectFdCountAfterChild, expectNoFdLeak, fdCount, gc, rejection, tsArgs } from './helpers.js';
import { CREDENTIAL_MESSAGES, MESSAGE_TYPE } from './mode.js';
import { Peers, cleanExit, fixture, type Peer } from './fixtures/interop-util.js';

const NOBODY = 65534;
const peers = new Peers();
afterEach(() => peers.killAll());

let dir: string;
let peerBinary: string;
let seq = 0;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fdpass-security-'));
  chmodSync(dir, 0o755); // others may reach the sockets in it: only the sockets' own modes decide
  peerBinary = compileC(fixture('hostile-peer.c'), dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sockPath = (): string => join(dir, `s${++seq}.sock`);
const abstractName = (): string => `fdpass-security-${process.pid}-${++seq}`;

/** The C peer connects to `target` (a path, or '@name'), as root or as nobody, sends "hello" + an fd, prints the reply. */
function connectingPeer(target: string, asNobody: boolean): Peer {
  return peers.start(peerBinary, [...(asNobody ? ['nobody'] : []), ...FRAMED_PEER, 'connect', target]);
}

/** The C peer speaks what listen() makes by default: seqpacket, or framed where there is none. */
const FRAMED_PEER = MESSAGE_TYPE === 'framed' ? ['framed'] : [];

/**
 * Where the platform has no credential messages, what these tests use fails at the call: that
 * is the check there. True: it was made, the test ends.
 */
function credentialsUnsupported(): boolean {
  if (CREDENTIAL_MESSAGES) return false;
  const [a, b] = socketPair();
  try {
    expect(() => b.passCredentials()).toThrow(expect.objectContaining({ code: 'ERR_FDPASS_UNSUPPORTED' }));
    expect(() => a.sendSync('x', [], { credentials: { pid: process.pid, uid: 0, gid: 0 } })).toThrow(expect.objectContaining({ code: 'ERR_FDPASS_UNSUPPORTED' }));
  } finally {
    a.close();
    b.close();
  }
  return true;
}

/** What a peer whose connection we closed reports last: its send or its read failed. */
function wasRefused(line: Record<string, unknown>): boolean {
  if ('send' in line) return line.send === 'EPIPE' || line.send === 'ECONNRESET';
  return line.reply === null && (line.eof === true || line.error === 'ECONNRESET');
}

async function finalLine(peer: Peer): Promise<Record<string, unknown>> {
  await cleanExit(peer);
  return peer.lines.at(-1)!;
}

/** Serve one admitted connection: read "hello" (+ fd), answer "welcome". */
async function serveOne(conn: UnixSocket): Promise<{ text: string; fds: number; uid: number }> {
  const m = (await conn.recv())!;
  for (const f of m.fds) f.close();
  await conn.send('welcome');
  const uid = conn.peerCredentials().uid;
  conn.close();
  return { text: m.data.toString(), fds: m.fds.length, uid };
}

/** The "only this process" recipe from docs/security.md. */
function onlyProcess(expected: PidFd): Authorize {
  return (peer) => {
    if (peer.pid !== expected.pid) return false;
    // The process that connected, as it is now: its pid, or -1 if it has gone (and the number
    // may since name someone else). SO_PEERPIDFD, Linux 6.5+.
    if (peer.pidfd().pid !== expected.pid) return false;
    try {
      expected.sendSignal(0); // ours still exists, so nobody else can hold its pid
    } catch {
      return false;
    }
    return true;
  };
}

describe('socket file permissions against a real unprivileged peer', () => {
  it('nobody cannot connect to a default (0600) socket — EACCES — but can to one made with mode 0o666', async () => {
    await expectNoFdLeak(async () => {
      const closed = listen(sockPath());
      const denied = await finalLine(connectingPeer(closed.path!, true));
      expect(denied).toEqual({ connect: 'EACCES', uid: NOBODY });
      closed.close();

      const open = listen({ path: sockPath(), mode: 0o666 });
      const peer = connectingPeer(open.path!, true);
      const served = await serveOne(await open.accept());
      expect(served).toEqual({ text: 'hello', fds: 1, uid: NOBODY });
      expect(await finalLine(peer)).toEqual({ reply: 'welcome' });
      open.close();
    });
  });
});

describe('listen({ authorize })', () => {
  it('"only my uid" on an abstract name (which has no file permissions at all): nobody is closed inside accept, root is served', async () => {
    await expectNoFdLeak(async () => {
      const name = abstractName();
      const seen: Record<string, number | undefined>[] = [];
      const server = listen({ abstract: name, authorize: (peer) => (seen.push({ pid: peer.pid, uid: peer.uid, gid: peer.gid }), peer.uid === process.getuid!()) });
      const baseline = fdCount();
      const accepted = server.accept();
      const intruder = connectingPeer(`@${name}`, true);
      // Refused before we ever see it: the intruder's "hello" (and its fd) never reach us.
      const refused = await finalLine(intruder);
      expect(wasRefused(refused), JSON.stringify(refused)).toBe(true);
      expect(intruder.lines[0]).toMatchObject({ connect: 'ok', uid: NOBODY });
      await expectFdCountAfterChild(baseline);
      const friend = connectingPeer(`@${name}`, false);
      expect(await serveOne(await accepted)).toEqual({ text: 'hello', fds: 1, uid: 0 });
      expect(await finalLine(friend)).toEqual({ reply: 'welcome' });
      expect(seen).toEqual([
        { pid: intruder.child.pid!, uid: NOBODY, gid: NOBODY },
        { pid: friend.child.pid!, uid: 0, gid: 0 },
      ]);
      server.close();
    });
  });

  it('"only this process": of two root processes, only the expected child gets through (pid checked with SO_PEERPIDFD)', async () => {
    await expectNoFdLeak(async () => {
      const path = sockPath();
      // The expected process first: spawned, identified by a pidfd, then it connects later.
      const server = listen(path);
      const expectedPeer = peers.start('sh', ['-c', `read line; exec "${peerBinary}" ${FRAMED_PEER.join(' ')} connect "${path}"`], { stdin: 'pipe' });
      using expected = PidFd.fromChild(expectedPeer.child);
      const server2 = adoptServer(server.release(), { authorize: onlyProcess(expected) });
      expect(server.closed).toBe(true);
      expect(existsSync(path)).toBe(true); // release() does not unlink
      const accepted = server2.accept();
      const other = connectingPeer(path, false);
      const refused = await finalLine(other);
      expect(wasRefused(refused), JSON.stringify(refused)).toBe(true);
      expectedPeer.child.stdin!.end('go\n');
      expect(await serveOne(await accepted)).toEqual({ text: 'hello', fds: 1, uid: 0 });
      expect(await finalLine(expectedPeer)).toEqual({ reply: 'welcome' });
      server2.close();
      rmSync(path); // adopted servers never unlink: the file is ours to remove
    });
  });

  it('a throwing authorize: the connection is closed, accept() rejects with ERR_FDPASS_AUTHORIZE (cause kept), and the server keeps serving', async () => {
    await expectNoFdLeak(async () => {
      let calls = 0;
      const bug = new Error('lookup failed');
      const server = listen({
        path: sockPath(),
        authorize: () => {
          if (++calls === 1) throw bug;
          return true;
        },
      });
      const first = await connect(server.path!);
      const err = await rejection(server.accept());
      expect(err.code).toBe('ERR_FDPASS_AUTHORIZE');
      expect(err.cause).toBe(bug);
      expect(err.message).toContain('lookup failed');
      expect(await first.recv()).toBeNull(); // closed on our side
      const second = await connect(server.path!);
      const conn = await server.accept();
      second.sendSync('ok');
      expect(conn.recvSync()!.data.toString()).toBe('ok');
      for (const s of [first, second, conn]) s.close();
      server.close();
    });
  });

  it('the async iterator and acceptSync surface the error too (never a silent stop)', async () => {
    await expectNoFdLeak(async () => {
      const server = listen({ path: sockPath(), authorize: () => { throw new TypeError('oops'); } });
      const c1 = await connect(server.path!);
      const iterate = async (): Promise<unknown> => {
        for await (const conn of server) conn.close();
        return 'ended';
      };
      expect((await rejection(iterate())).code).toBe('ERR_FDPASS_AUTHORIZE');
      const c2 = await connect(server.path!);
      expect(() => server.acceptSync({ timeoutMs: 5000 })).toThrow(expect.objectContaining({ code: 'ERR_FDPASS_AUTHORIZE' }));
      expect(await c1.recv()).toBeNull();
      expect(await c2.recv()).toBeNull();
      for (const s of [c1, c2, server]) s.close();
    });
  });

  it('an async authorize (a Promise) or a non-boolean is refused with ERR_FDPASS_AUTHORIZE, without an unhandled rejection', async () => {
    await expectNoFdLeak(async () => {
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      try {
        const verdicts: unknown[] = [Promise.reject(new Error('async no')), undefined, 1];
        const server = listen({ path: sockPath(), authorize: (() => verdicts.shift()) as unknown as Authorize });
        const messages: string[] = [];
        for (let i = 0; i < 3; i++) {
          const c = await connect(server.path!);
          const err = await rejection(server.accept());
          expect(err.code).toBe('ERR_FDPASS_AUTHORIZE');
          messages.push(err.message);
          expect(await c.recv()).toBeNull();
          c.close();
        }
        expect(messages[0]).toContain('returned a Promise');
        expect(messages[1]).toContain('returned undefined');
        expect(messages[2]).toContain('returned number 1');
        await new Promise((r) => setTimeout(r, 20));
        expect(unhandled).toEqual([]);
        server.close();
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
    });
  });

  it('a flood of 300 refused connections: accept() resolves with the first admitted one; every refused one is closed', async () => {
    await expectNoFdLeak(async () => {
      let calls = 0;
      const server = listen({ path: sockPath(), authorize: () => ++calls > 300 });
      const refused: UnixSocket[] = [];
      for (let i = 0; i < 300; i++) refused.push(await connect(server.path!));
      const welcome = await connect(server.path!);
      const baseline = fdCount();
      const conn = await server.accept();
      expect(fdCount()).toBe(baseline + 1);
      expect(calls).toBe(301);
      welcome.sendSync('me');
      expect(conn.recvSync()!.data.toString()).toBe('me');
      for (const c of refused) expect(c.recvSync({ timeoutMs: 5000 })).toBeNull();
      for (const c of [...refused, welcome, conn]) c.close();
      server.close();
    });
  });

  it('peer.pidfd() is open only while authorize runs; fdpass closes it', async () => {
    await expectNoFdLeak(async () => {
      let saved: PeerInfo | undefined;
      let pidfd: PidFd | undefined;
      const server = listen({
        path: sockPath(),
        authorize: (peer) => {
          saved = peer;
          pidfd = peer.pidfd();
          return pidfd.pid === process.pid && peer.pidfd() === pidfd;
        },
      });
      const client = await connect(server.path!);
      const conn = server.acceptSync({ timeoutMs: 5000 });
      expect(pidfd!.closed).toBe(true);
      expect(() => saved!.pidfd()).toThrow(expect.objectContaining({ code: 'ERR_FDPASS_CLOSED' }));
      for (const s of [client, conn, server]) s.close();
    });
  });

  it('a non-function authorize is a TypeError before the socket file exists', () => {
    const path = sockPath();
    expect(() => listen({ path, authorize: 'uid 0' as unknown as Authorize })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(existsSync(path)).toBe(false);
  });
});

describe('authorize() that changes the server under accept', () => {
  it('aborting the waiting accept from inside authorize: that accept rejects, the connection is closed, the next accept still works', async () => {
    await expectNoFdLeak(async () => {
      const ac = new AbortController();
      let calls = 0;
      const server = listen({ abstract: abstractName(), authorize: () => (++calls === 1 && ac.abort(), true) });
      const first = server.accept({ signal: ac.signal });
      const second = server.accept();
      const c1 = connectSync({ abstract: server.abstract! });
      expect((await rejection(first)).name).toBe('AbortError');
      expect(await c1.recv()).toBeNull(); // admitted for an accept that was gone: closed
      const c2 = connectSync({ abstract: server.abstract! });
      const conn = await second;
      conn.sendSync('hi');
      expect(c2.recvSync()!.data.toString()).toBe('hi');
      for (const s of [c1, c2, conn, server]) s.close();
    });
  });

  it('closing the server from inside authorize: the admitted connection is closed, pending accepts reject', async () => {
    await expectNoFdLeak(async () => {
      let server: ReturnType<typeof listen> | undefined = undefined;
      server = listen({ abstract: abstractName(), authorize: () => (server!.close(), true) });
      const pending = server.accept();
      const c = connectSync({ abstract: server.abstract! });
      expect((await rejection(pending)).code).toBe('ERR_FDPASS_CLOSED');
      expect(await c.recv()).toBeNull();
      c.close();
    });
  });
});

describe('UnixServer.release()', () => {
  it('returns the listening fd without unlinking, leaves the server closed, and refuses while accept() is pending', async () => {
    await expectNoFdLeak(async () => {
      const server = listen(sockPath());
      const ac = new AbortController();
      const pending = server.accept({ signal: ac.signal });
      expect(() => server.release()).toThrow(expect.objectContaining({ code: 'ERR_FDPASS_BUSY' }));
      ac.abort();
      await rejection(pending);
      const fd = server.release();
      expect(server.closed).toBe(true);
      expect(existsSync(server.path!)).toBe(true);
      const again = adoptServer(fd);
      const c = await connect(server.path!);
      const conn = await again.accept();
      for (const s of [c, conn, again]) s.close();
      rmSync(server.path!);
    });
  });
});

describe('SCM_CREDENTIALS', () => {
  it('a child that dropped to nobody is identified by the kernel; its claims to be root or another pid fail with a clear EPERM', async () => {
    if (await denoLimit('no-setgroups')) return;
    if (credentialsUnsupported()) return;
    await expectNoFdLeak(async () => {
      const [ours, theirs] = socketPair(MESSAGE_TYPE);
      ours.passCredentials(); // before the child can send
      const child = peers.start(process.execPath, [...tsArgs(fixture('hostile-limits.ts')), 'creds'], { extraFds: [theirs.fd] });
      theirs.close();
      const report = JSON.parse(await cleanExit(child));
      const pid = child.child.pid!;
      expect(report).toMatchObject({ pid, uid: NOBODY, gid: NOBODY, fdsUnchanged: true });
      for (const claim of ['claimRootSync', 'claimRootAsync', 'claimPid1', 'claimGroup0']) {
        expect(report[claim], claim).toMatchObject({ name: 'FdPassError', code: 'EPERM', errno: -1, syscall: 'sendmsg' });
        expect(report[claim].message).toContain('refused the SCM_CREDENTIALS claim');
      }
      const got: unknown[] = [];
      for (let m = await ours.recv(); m !== null; m = await ours.recv()) {
        got.push({ text: m.data.toString(), fds: m.fds.length, credentials: m.credentials });
        for (const f of m.fds) f.close();
      }
      const nobody = { pid, uid: NOBODY, gid: NOBODY };
      // Nothing that claimed other ids reached us.
      expect(got).toEqual([
        { text: 'plain', fds: 1, credentials: nobody },
        { text: 'own ids', fds: 1, credentials: nobody },
        { text: 'own ids, async', fds: 1, credentials: nobody },
        { text: 'still usable', fds: 1, credentials: nobody },
      ]);
      ours.close();
    });
  });

  it('root may claim other ids and pids (CAP_SETUID/CAP_SETGID/CAP_SYS_ADMIN): sync and async, with fds', async () => {
    if (credentialsUnsupported()) return;
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair('seqpacket');
      b.passCredentials();
      a.sendSync('sync', [a], { credentials: { pid: process.pid, uid: 1234, gid: 5678 } });
      await a.send('async', [], { credentials: { pid: 1, uid: 0, gid: 42 } });
      a.sendSync('plain');
      const got = [b.recvSync()!, b.recvSync()!, b.recvSync()!];
      expect(got.map((m) => [m.data.toString(), m.fds.length, m.credentials])).toEqual([
        ['sync', 1, { pid: process.pid, uid: 1234, gid: 5678 }],
        ['async', 0, { pid: 1, uid: 0, gid: 42 }],
        ['plain', 0, { pid: process.pid, uid: 0, gid: 0 }],
      ]);
      expect(got[0].fds[0].describe().socket?.type).toBe('seqpacket');
      for (const m of got) for (const f of m.fds) f.close();
      a.close();
      b.close();
    });
  });

  it('stream: a 2 MiB message with credentials, read in pieces — every piece carries them (the rest is not sent under other ids)', async () => {
    if (credentialsUnsupported()) return;
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair('stream');
      b.passCredentials();
      const claim = { pid: process.pid, uid: 4321, gid: 8765 };
      const size = 2 * 2 ** 20;
      const sent = a.send(Buffer.alloc(size, 7), [a], { credentials: claim });
      let got = 0;
      const creds = new Set<string>();
      let fds = 0;
      while (got < size) {
        const m = (await b.recv({ maxBytes: 100_000 }))!;
        got += m.data.length;
        creds.add(JSON.stringify(m.credentials));
        fds += m.fds.length;
        for (const f of m.fds) f.close();
      }
      expect(await sent).toBe(size);
      expect(got).toBe(size);
      expect(fds).toBe(1);
      expect([...creds]).toEqual([JSON.stringify(claim)]);
      a.close();
      b.close();
    });
  });

  it('GC pressure: 600 sends with credentials and fds, payloads small and large, gc() in between — every message intact', async () => {
    if (credentialsUnsupported()) return;
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair(MESSAGE_TYPE);
      b.passCredentials();
      for (let i = 0; i < 600; i++) {
        const size = i % 3 === 0 ? 5000 + i : 1 + (i % 40); // > 4 KiB: the payload's own address goes in the iovec
        const payload = Buffer.alloc(size, i & 255);
        const claim = { pid: process.pid, uid: 1000 + i, gid: 2000 + i };
        if (i % 2) a.sendSync(payload, [b], { credentials: claim });
        else await a.send(payload, [b], { credentials: claim });
        gc();
        const m = b.recvSync({ timeoutMs: 5000 })!;
        expect(m.credentials).toEqual(claim);
        expect(m.data.length).toBe(size);
        expect(m.data.every((x) => x === (i & 255))).toBe(true);
        expect(m.fds).toHaveLength(1);
        m.fds[0].close();
      }
      a.close();
      b.close();
    });
  });

  it('malformed credentials are refused before any syscall', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair(MESSAGE_TYPE);
      const own = { pid: process.pid, uid: 0, gid: 0 };
      const cases: [unknown, string][] = [
        ['root', 'ERR_INVALID_ARG_TYPE'],
        [{ pid: process.pid, gid: 0 }, 'ERR_INVALID_ARG_TYPE'],
        [{ ...own, uid: -1 }, 'ERR_OUT_OF_RANGE'],
        [{ ...own, pid: 1.5 }, 'ERR_OUT_OF_RANGE'],
        [{ ...own, gid: 2 ** 32 }, 'ERR_OUT_OF_RANGE'],
      ];
      for (const [credentials, code] of cases) {
        const options = { credentials } as never;
        expect(() => a.sendSync('x', [], options)).toThrow(expect.objectContaining({ code }));
        expect((await rejection(a.send('x', [], options))).code).toBe(code);
      }
      expect(() => b.recvSync({ timeoutMs: 0 })).toThrow(expect.objectContaining({ code: 'ETIMEDOUT' }));
      a.close();
      b.close();
    });
  });
});
