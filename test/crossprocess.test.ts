/**
 * Cross-process tests: a real child process (a tsx fixture under test/fixtures/) holds the
 * other end of a socket at fd 3, and descriptors of every kind travel between the two.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from './fdfs.js';
import { once } from 'node:events';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Fd, listen, socketPair, adopt, type FdLike, type UnixSocket } from '../src/index.js';
import { denoLimit, expectNoFdLeak, requirePeer, spawnFixture, type Fixture, scaled } from './helpers.js';
import { MESSAGE_KERNEL_TYPE, MESSAGE_TYPE, MINIMAL, PEER_MESSAGE_TYPE, SOCKET_TYPE_ENV, kernelStream } from './mode.js';

// ---------------------------------------------------------------------------------------------
// Children: every one is tracked and killed if a test leaves it running.

const running = new Set<ChildProcess>();

function start(name: string, args: string[] = [], extraFds: number[] = [], env: NodeJS.ProcessEnv = {}): Fixture {
  const fx = spawnFixture(name, args, extraFds, env);
  running.add(fx.child);
  fx.child.on('exit', () => running.delete(fx.child));
  return fx;
}

afterEach(() => {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
});

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fdpass-xproc-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

type Line = Record<string, any>;

/** The child's stdout as JSON lines, with a way to wait for a particular one. */
function jsonLines(fx: Fixture): { all: Line[]; waitFor(pred: (l: Line) => boolean, what: string): Promise<Line> } {
  const all: Line[] = [];
  const waiters: { pred: (l: Line) => boolean; resolve: (l: Line) => void }[] = [];
  let buf = '';
  fx.child.stdout!.on('data', (chunk: string) => {
    buf += chunk;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const text = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let line: Line;
      try {
        line = JSON.parse(text) as Line;
      } catch {
        line = { unparsed: text };
      }
      all.push(line);
      for (let w = waiters.length - 1; w >= 0; w--) {
        if (waiters[w].pred(line)) waiters.splice(w, 1)[0].resolve(line);
      }
    }
  });
  return {
    all,
    waitFor(pred, what) {
      const found = all.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise<Line>((resolve, reject) => {
        waiters.push({ pred, resolve });
        void fx.exited.then(({ code, signal, stderr }) => {
          reject(new Error(`child exited (code ${code}, signal ${signal}) before reporting ${what}; stdout: ${JSON.stringify(all)}; stderr: ${stderr}`));
        });
      });
    },
  };
}

/** Wait for the child to exit and require a clean exit. */
async function exitedCleanly(fx: Fixture): Promise<string> {
  const { code, signal, stdout, stderr } = await fx.exited;
  expect({ code, signal, stderr }).toEqual({ code: 0, signal: null, stderr: '' });
  return stdout;
}

function pread(fd: number, length = 4096): string {
  const buf = Buffer.alloc(length);
  const n = readSync(fd, buf, 0, length, 0);
  return buf.subarray(0, n).toString('utf8');
}

// ---------------------------------------------------------------------------------------------
// A python3 helper makes what Node cannot: a memfd, an eventfd and a pipe. It sends them to us
// with socket.send_fds over a socketPair end inherited as its fd 3.

const PYTHON_FDS = `
import os, socket
s = socket.socket(fileno=3)
m = os.memfd_create('fdpass-test-memfd')
os.write(m, b'memfd content written by python %d' % os.getpid())
e = os.eventfd(42)
r, w = os.pipe()
socket.send_fds(s, [b'from python %d' % os.getpid()], [m, e, r, w])
`;

interface PythonFds {
  pid: number;
  memfd: Fd;
  eventfd: Fd;
  pipeRead: Fd;
  pipeWrite: Fd;
}

async function fdsFromPython(): Promise<PythonFds> {
  requirePeer('python3');
  const [mine, theirs] = socketPair(PEER_MESSAGE_TYPE);
  const py = spawn('python3', ['-c', PYTHON_FDS], { stdio: ['ignore', 'ignore', 'pipe', theirs.fd] });
  running.add(py);
  theirs.close();
  let stderr = '';
  py.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const [code] = (await once(py, 'close')) as [number | null];
  running.delete(py);
  expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  const msg = mine.recvSync({ timeoutMs: 10_000 });
  mine.close();
  expect(msg).not.toBeNull();
  const text = msg!.data.toString('utf8');
  expect(text).toMatch(/^from python \d+$/);
  expect(msg!.fds).toHaveLength(4);
  const [memfd, eventfd, pipeRead, pipeWrite] = msg!.fds;
  return { pid: Number(text.split(' ')[2]), memfd, eventfd, pipeRead, pipeWrite };
}

// ---------------------------------------------------------------------------------------------

describe('passing every kind of descriptor to a child process', () => {
  for (const grouping of ['separate messages', 'one message'] as const) {
    it(`file, pipe, TCP connection, TCP listener, Unix socket, memfd and eventfd — ${grouping}`, async () => {
      if (await denoLimit('net-no-fd')) return;
      await expectNoFdLeak(async () => {
        const py = await fdsFromPython();

        // A regular file with known content.
        const fileContent = `regular file content ${process.pid} ${grouping}`;
        const filePath = join(dir, `regular-${grouping.replace(' ', '-')}.txt`);
        writeFileSync(filePath, fileContent);
        const file = new Fd(openSync(filePath, 'r'));

        // A connected TCP socket: our client end goes to the child; we answer on the server side.
        const pongServer = net.createServer((conn) => {
          conn.setEncoding('utf8');
          let got = '';
          conn.on('data', (d: string) => {
            got += d;
            if (got.includes('\n')) conn.end(`pong to <${got.trim()}>\n`);
          });
        });
        pongServer.listen(0, '127.0.0.1');
        await once(pongServer, 'listening');
        const pongPort = (pongServer.address() as net.AddressInfo).port;
        const client = net.connect(pongPort, '127.0.0.1');
        await once(client, 'connect');

        // A listening TCP socket: the child will accept on it.
        const listener = net.createServer(() => {
          throw new Error('the parent must not accept on the listener it gave away');
        });
        listener.listen(0, '127.0.0.1');
        await once(listener, 'listening');
        const listenPort = (listener.address() as net.AddressInfo).port;

        // A second Unix channel.
        const [unixMine, unixTheirs] = socketPair();

        const [control, childEnd] = socketPair();
        const fx = start('child-receiver', [], [childEnd.fd]);
        childEnd.close();
        const lines = jsonLines(fx);

        const pipeLine = `a line through the pipe ${process.pid}`;
        const items: { item: object; fd: FdLike }[] = [
          { item: { what: 'file', length: Buffer.byteLength(fileContent) }, fd: file },
          { item: { what: 'pipe-write', line: pipeLine + '\n' }, fd: py.pipeWrite },
          { item: { what: 'tcp-conn' }, fd: client },
          { item: { what: 'tcp-listen' }, fd: listener },
          { item: { what: 'unix' }, fd: unixTheirs },
          { item: { what: 'memfd', length: 200 }, fd: py.memfd },
          { item: { what: 'eventfd' }, fd: py.eventfd },
        ];
        if (grouping === 'one message') {
          control.sendSync(JSON.stringify({ items: items.map((x) => x.item) }), items.map((x) => x.fd));
        } else {
          for (const x of items) await control.send(JSON.stringify({ items: [x.item] }), [x.fd]);
        }
        // The kernel holds references to everything in flight: drop our copies now.
        file.close();
        py.pipeWrite.close();
        client.destroy(); // close(2) only, no shutdown: the connection lives on in the child
        listener.close();
        unixTheirs.close();
        py.memfd.close();
        py.eventfd.close();
        control.close(); // the child sees end of stream after the queued messages

        // Our side of the interactive ones, while the child works through the items in order.
        const pipeRead = (async () => {
          const report = await lines.waitFor((l) => l.what === 'pipe-write', 'the pipe write');
          expect(report.wrote).toBe(Buffer.byteLength(pipeLine) + 1);
          const text = readOnce(py.pipeRead.fd);
          py.pipeRead.close();
          return text;
        })();
        const tcpServed = (async () => {
          const ready = await lines.waitFor((l) => l.what === 'tcp-listen-ready', 'listener ready');
          expect(ready.port).toBe(listenPort);
          const conn = net.connect(listenPort, '127.0.0.1');
          conn.setEncoding('utf8');
          let text = '';
          for await (const chunk of conn) text += chunk as string;
          return text;
        })();
        const unixTalk = (async () => {
          const msg = await unixMine.recv();
          await unixMine.send('reply from parent', [0]);
          const end = await unixMine.recv();
          unixMine.close();
          return { text: msg?.data.toString('utf8'), fds: msg?.fds.length, end };
        })();

        const [pipeText, served, unix] = await Promise.all([pipeRead, tcpServed, unixTalk]);
        await lines.waitFor((l) => l.done === true, 'done');
        await exitedCleanly(fx);
        pongServer.close();
        await once(pongServer, 'close');

        const childPid = fx.child.pid;
        const report = (what: string): Line => {
          const found = lines.all.filter((l) => l.what === what);
          expect(found, what).toHaveLength(1);
          expect(found[0].error, what).toBeUndefined();
          expect(found[0].closeOnExec, `${what} closeOnExec`).toBe(true);
          return found[0];
        };
        expect(lines.all.filter((l) => l.error !== undefined)).toEqual([]);
        expect(lines.all.at(-1)).toEqual({ done: true, messages: grouping === 'one message' ? 1 : items.length });

        const fileReport = report('file');
        expect(fileReport).toMatchObject({ kind: 'file', content: fileContent, path: filePath });

        expect(report('pipe-write')).toMatchObject({ kind: 'pipe', openFlags: ['O_WRONLY'] });
        expect(pipeText).toBe(pipeLine + '\n');

        const conn = report('tcp-conn');
        expect(conn).toMatchObject({ kind: 'socket', socket: { family: 'inet', type: 'stream', listening: false } });
        expect(conn.reply).toBe(`pong to <ping from ${childPid}>`);

        const listening = report('tcp-listen');
        expect(listening).toMatchObject({
          kind: 'socket',
          served: 1,
          socket: { family: 'inet', type: 'stream', listening: true, localAddress: '127.0.0.1', localPort: listenPort },
        });
        expect(served).toBe(`served by ${childPid}\n`);

        expect(report('unix')).toMatchObject({ kind: 'socket', socket: { family: 'unix', type: MESSAGE_KERNEL_TYPE, listening: false }, reply: 'reply from parent', replyFds: 1 });
        expect(unix).toEqual({ text: `hello over unix from ${childPid}`, fds: 0, end: null });

        expect(report('memfd')).toMatchObject({ kind: 'memfd', content: `memfd content written by python ${py.pid}`, deleted: true });
        expect(report('eventfd')).toMatchObject({ kind: 'eventfd', bytes: 8, counter: '42' });
      });
    }, scaled(60_000));
  }
});

/** read(2) once from a blocking pipe that already holds data. */
function readOnce(fd: number): string {
  const buf = Buffer.alloc(4096);
  const n = readSync(fd, buf, 0, buf.length, null);
  return buf.subarray(0, n).toString('utf8');
}

// ---------------------------------------------------------------------------------------------

describe('253 descriptors in one message (SCM_MAX_FD)', () => {
  function makeFiles(sub: string): { dir: string; contents: string[] } {
    const d = mkdtempSync(join(dir, sub));
    const contents: string[] = [];
    for (let i = 0; i < 253; i++) {
      contents.push(`file #${i} in ${sub}`);
      writeFileSync(join(d, String(i)), contents[i]);
    }
    return { dir: d, contents };
  }

  it('parent -> child: 253 files arrive in order, valid, and are closed by the child', async () => {
    await expectNoFdLeak(async () => {
      const { dir: d, contents } = makeFiles('p2c-');
      const fds = contents.map((_, i) => new Fd(openSync(join(d, String(i)), 'r')));
      const [control, childEnd] = socketPair();
      const fx = start('child-many', ['recv'], [childEnd.fd]);
      childEnd.close();
      const lines = jsonLines(fx);
      await control.send(JSON.stringify({ contents }), fds);
      for (const f of fds) f.close();
      const report = await lines.waitFor((l) => l.count !== undefined, 'the count');
      control.close();
      await exitedCleanly(fx);
      expect(report).toEqual({
        count: 253,
        valid: 253,
        distinct: 253,
        droppedFds: 0,
        held: 253,
        leaked: [],
        problems: [],
      });
      expect(lines.all.at(-1)).toEqual({ end: 'eof' });
    });
  });

  it('child -> parent: 253 files opened by the child arrive in order and valid', async () => {
    await expectNoFdLeak(async () => {
      const { dir: d, contents } = makeFiles('c2p-');
      const [control, childEnd] = socketPair();
      const fx = start('child-many', ['send', d], [childEnd.fd]);
      childEnd.close();
      const lines = jsonLines(fx);
      const msg = await control.recv();
      expect(msg).not.toBeNull();
      try {
        expect(msg!.data.toString()).toBe(`253 from ${fx.child.pid}`);
        expect(msg!.fds).toHaveLength(253);
        expect(msg!.droppedFds).toBe(0);
        const read = msg!.fds.map((f) => pread(f.fd));
        expect(read).toEqual(contents);
        const described = msg!.fds.map((f) => f.describe());
        expect(described.every((x) => x.kind === 'file' && x.closeOnExec)).toBe(true);
        expect(described.map((x) => x.path)).toEqual(contents.map((_, i) => join(d, String(i))));
      } finally {
        for (const f of msg?.fds ?? []) f.close();
      }
      control.close();
      await exitedCleanly(fx);
      expect(lines.all).toEqual([{ sent: 253, bytes: Buffer.byteLength(`253 from ${fx.child.pid}`) }, { end: 'eof' }]);
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe.each([MESSAGE_TYPE, 'stream'] as const)('end of stream when the peer process goes away (%s)', (type) => {
  const env = { [SOCKET_TYPE_ENV]: type };
  it('child exits: queued message still arrives, then recv() resolves null, recvSync() returns null, sends fail with EPIPE', async () => {
    await expectNoFdLeak(async () => {
      const filePath = join(dir, 'bye.txt');
      writeFileSync(filePath, 'the file the child sent before exiting');
      const [control, childEnd] = socketPair(type);
      const fx = start('child-eof', ['exit', filePath], [childEnd.fd], env);
      childEnd.close();
      await exitedCleanly(fx);
      const bye = await control.recv();
      expect(bye?.data.toString()).toBe(`bye from ${fx.child.pid}`);
      expect(bye?.fds).toHaveLength(1);
      expect(pread(bye!.fds[0].fd)).toBe('the file the child sent before exiting');
      bye!.fds[0].close();
      expect(await control.recv()).toBeNull();
      expect(control.recvSync({ timeoutMs: 10_000 })).toBeNull();
      expect(() => control.sendSync('anyone?', [0])).toThrow(expect.objectContaining({ code: 'EPIPE', syscall: 'sendmsg' }));
      await expect(control.send('anyone?', [0])).rejects.toMatchObject({ code: 'EPIPE', syscall: 'sendmsg' });
      control.close();
    });
  });

  it('child killed with SIGKILL: a pending recv() resolves null; recvSync() returns null; send fails with EPIPE', async () => {
    await expectNoFdLeak(async () => {
      const [control, childEnd] = socketPair(type);
      const fx = start('child-eof', ['hang'], [childEnd.fd], env);
      childEnd.close();
      const lines = jsonLines(fx);
      await lines.waitFor((l) => l.ready === true, 'ready');
      const pending = control.recv();
      fx.child.kill('SIGKILL');
      expect(await pending).toBeNull();
      const { signal } = await fx.exited;
      expect(signal).toBe('SIGKILL');
      expect(control.recvSync({ timeoutMs: 10_000 })).toBeNull();
      await expect(control.send('anyone?')).rejects.toMatchObject({ code: 'EPIPE' });
      expect(() => control.sendSync('anyone?')).toThrow(expect.objectContaining({ code: 'EPIPE' }));
      control.close();
    });
  });

  it('parent closes: the child (SIGPIPE at its default) sees EOF, and its sends fail with EPIPE instead of killing it', async () => {
    await expectNoFdLeak(async () => {
      const [control, childEnd] = socketPair(type);
      const fx = start('child-eof', ['peer-closes'], [childEnd.fd], env);
      childEnd.close();
      const lines = jsonLines(fx);
      await lines.waitFor((l) => l.ready === true, 'ready');
      control.close();
      const { code, signal, stderr } = await fx.exited;
      if (MINIMAL && kernelStream(type)) {
        // Minimal mode: no MSG_NOSIGNAL and (on Linux) no SO_NOSIGPIPE; with Node's SIG_IGN undone,
        // the stream send raises SIGPIPE. (Where fdpass has either, the child survives, as below.)
        expect({ code, signal, stderr }).toEqual({ code: null, signal: 'SIGPIPE', stderr: '' });
        expect(lines.all).toEqual([{ ready: true, previous: '1' }, { recv: null }]);
        return;
      }
      expect({ code, signal, stderr }).toEqual({ code: 0, signal: null, stderr: '' });
      expect(lines.all).toEqual([{ ready: true, previous: '1' }, { recv: null }, { syncCode: 'EPIPE', asyncCode: 'EPIPE', survived: true }]);
    });
  });
});

// Linux raises SIGPIPE for stream sockets only (a seqpacket send just fails with EPIPE), so the
// control that proves the child's SIGPIPE is really armed runs on a stream pair. Without it, the
// 'parent closes' tests above could pass even if fdpass forgot MSG_NOSIGNAL.
describe('SIGPIPE control', () => {
  it('with SIGPIPE at its default, a plain write(2) to the dead socket kills the child', async () => {
    await expectNoFdLeak(async () => {
      const [control, childEnd] = socketPair('stream');
      const fx = start('child-eof', ['control-sigpipe'], [childEnd.fd]);
      childEnd.close();
      const lines = jsonLines(fx);
      // Node ignores SIGPIPE: the child reports the disposition it replaced (SIG_IGN is 1).
      expect(await lines.waitFor((l) => l.ready === true, 'ready')).toEqual({ ready: true, previous: '1' });
      control.close();
      const { signal } = await fx.exited;
      expect(signal).toBe('SIGPIPE');
      expect(lines.all).toEqual([{ ready: true, previous: '1' }, { recv: null }]);
    });
  });

});

// ---------------------------------------------------------------------------------------------

describe('async pipelining across processes', () => {
  it('20,000 messages with one fd each, 1,000 in flight, arrive complete and in order', async () => {
    const total = 20_000;
    const window = 1_000;
    await expectNoFdLeak(async () => {
      const filePath = join(dir, 'pipelined.txt');
      writeFileSync(filePath, 'pipelined');
      const file = new Fd(openSync(filePath, 'r'));
      const [control, childEnd] = socketPair();
      const fx = start('child-pipeline', [filePath], [childEnd.fd]);
      childEnd.close();
      const lines = jsonLines(fx);

      const inFlight: Promise<number>[] = [];
      let maxInFlight = 0;
      let bytes = 0;
      for (let i = 0; i < total; i++) {
        inFlight.push(control.send(String(i), [file]));
        maxInFlight = Math.max(maxInFlight, inFlight.length);
        if (inFlight.length >= window) bytes += await inFlight.shift()!;
      }
      for (const n of await Promise.all(inFlight)) bytes += n;
      let expectedBytes = 0;
      for (let i = 0; i < total; i++) expectedBytes += String(i).length;
      expect(bytes).toBe(expectedBytes);
      expect(maxInFlight).toBe(window);

      file.close();
      control.close();
      await exitedCleanly(fx);
      const [report] = lines.all;
      expect(report).toEqual({
        count: total,
        outOfOrder: 0,
        badFds: 0,
        checked: total / 1000,
        first: 0,
        last: total - 1,
        leaked: [], // every received fd was closed
      });
    });
  }, scaled(120_000));
});

// ---------------------------------------------------------------------------------------------

describe('many sockets at once', () => {
  it('1,000 socketPairs handed to one child, each does a concurrent round trip carrying an fd both ways', async () => {
    const count = 1_000;
    await expectNoFdLeak(async () => {
      const fileA = join(dir, 'many-a.txt');
      const fileB = join(dir, 'many-b.txt');
      const contentA = 'content of file A, from the parent';
      const contentB = 'content of file B, from the child';
      writeFileSync(fileA, contentA);
      writeFileSync(fileB, contentB);
      const a = new Fd(openSync(fileA, 'r'));

      const pairs: [UnixSocket, UnixSocket][] = [];
      for (let i = 0; i < count; i++) pairs.push(socketPair());
      const [control, childEnd] = socketPair();
      const fx = start('child-many-sockets', [], [childEnd.fd]);
      childEnd.close();
      const lines = jsonLines(fx);

      await control.send(JSON.stringify({ count, contentA, fileB }));
      let messages = 0;
      for (let i = 0; i < count; i += 253) {
        const batch = pairs.slice(i, i + 253).map(([, theirs]) => theirs);
        await control.send(`sockets ${i}`, batch);
        messages++;
        for (const s of batch) s.close();
      }
      expect(messages).toBe(4);

      const results = await Promise.all(
        pairs.map(async ([mine], i) => {
          const [sent, msg] = await Promise.all([mine.send(`p:${i}`, [a]), mine.recv()]);
          try {
            expect(sent).toBe(`p:${i}`.length);
            expect(msg?.data.toString()).toBe(`c:${i}`);
            expect(msg?.fds).toHaveLength(1);
            expect(pread(msg!.fds[0].fd)).toBe(contentB);
          } finally {
            for (const f of msg?.fds ?? []) f.close();
          }
          const end = await mine.recv(); // the child closed its end after answering
          mine.close();
          return end;
        }),
      );
      expect(results.every((r) => r === null)).toBe(true);
      a.close();
      control.close();
      await exitedCleanly(fx);
      expect(lines.all[0]).toEqual({ adopted: count, messages, kinds: [MESSAGE_TYPE] });
      // The child's own accounting: 1,000 sockets + file B open at once, all closed at the end.
      expect(lines.all[1]).toEqual({ ok: count, errors: [], owned: count + 1, stillOpen: [], leaked: [] });
    });
  }, scaled(120_000));
});

// ---------------------------------------------------------------------------------------------

describe('child -> parent', () => {
  it('the child sends a file fd, a FileHandle and a socketPair end; the parent uses all three', async () => {
    await expectNoFdLeak(async () => {
      const d = mkdtempSync(join(dir, 'sender-'));
      const [control, childEnd] = socketPair();
      const fx = start('child-sender', [d], [childEnd.fd]);
      childEnd.close();
      const lines = jsonLines(fx);
      const msg = await control.recv();
      const pid = fx.child.pid;
      expect(msg?.data.toString()).toBe(`from child ${pid}`);
      expect(msg?.fds).toHaveLength(3);
      const [one, two, sock] = msg!.fds;
      expect(one.describe()).toMatchObject({ kind: 'file', path: join(d, 'from-child-1.txt'), closeOnExec: true, openFlags: ['O_RDONLY'] });
      expect(two.describe()).toMatchObject({ kind: 'file', path: join(d, 'from-child-2.txt'), closeOnExec: true });
      expect(sock.describe()).toMatchObject({ kind: 'socket', closeOnExec: true, socket: { family: 'unix', type: MESSAGE_KERNEL_TYPE } });
      expect(pread(one.fd)).toBe(`file one written by ${pid}`);
      expect(pread(two.fd)).toBe(`file two written by ${pid}`);
      one.close();
      two.close();

      const channel = adopt(sock);
      expect(sock.closed).toBe(true); // adopt took ownership
      // socketpair(2) records the creator: the child made this pair.
      expect(channel.peerCredentials().pid).toBe(pid);
      await channel.send('hello from the parent', [0]);
      const reply = await channel.recv();
      expect(reply?.data.toString()).toBe('child got: hello from the parent');
      channel.close();
      control.close();
      await exitedCleanly(fx);
      expect(lines.all).toEqual([{ hello: 'hello from the parent', helloFds: 1, end: 'eof' }]);
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('through a listening path', () => {
  it('child connect()s to the parent\'s listen() path; accept, send an fd, and both sides see the other\'s pid', async () => {
    await expectNoFdLeak(async () => {
      const path = join(dir, 'server.sock');
      const filePath = join(dir, 'served.txt');
      writeFileSync(filePath, 'sent through an accepted connection');
      const server = listen(path);
      const fx = start('child-connect', [path]);
      const lines = jsonLines(fx);
      const conn = await server.accept();
      expect(conn.peerCredentials()).toEqual({ pid: fx.child.pid, uid: process.getuid!(), gid: process.getgid!() });
      const file = new Fd(openSync(filePath, 'r'));
      conn.sendSync('here is a file', [file]);
      file.close();

      const report = await lines.waitFor((l) => l.pid !== undefined, 'the report');
      expect(report).toEqual({
        pid: fx.child.pid,
        uid: process.getuid!(),
        type: MESSAGE_TYPE,
        credentials: { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() },
        text: 'here is a file',
        fds: 1,
        kind: 'file',
        closeOnExec: true,
        content: 'sent through an accepted connection',
      });
      const thanks = await conn.recv();
      expect(thanks?.data.toString()).toBe('thanks');
      expect(thanks?.fds).toHaveLength(1);
      expect(thanks!.fds[0].describe()).toMatchObject({ kind: 'char', path: '/dev/null' });
      thanks!.fds[0].close();
      conn.close();
      await exitedCleanly(fx);
      expect(lines.all.at(-1)).toEqual({ end: 'eof' });
      server.close();
      expect(existsSync(path)).toBe(false);
    });
  });
});
