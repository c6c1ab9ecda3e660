/**
 * Node objects <-> fds: toNetSocket / toNetServer / toDgramSocket / toReadStream /
 * toWriteStream check what a descriptor is before Node sees it, and send(..., { close: true })
 * hands the sender's own object off.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as dgram from 'node:dgram';
import { ReadStream, WriteStream, closeSync, createReadStream, createWriteStream, existsSync, fstatSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, writeFileSync } from './fdfs.js';
import { open as openFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Fd, FdPassError, adopt, fdOf, listen, socketPair, toDgramSocket, toNetServer, toNetSocket, toReadStream, toWriteStream,
  type UnixSocket,
} from '../src/index.js';
import { getIntOption } from '../src/sockopt.js';
import { denoLimit, expectNoFdLeak, spawnFixture } from './helpers.js';
import { kinds, makeFd, pipe, type Kind } from './fixtures/node-kinds.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fdpass-node-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function tcpPair(options: net.ServerOpts = {}): Promise<{ server: net.Server; client: net.Socket; accepted: net.Socket; close(): Promise<void> }> {
  const server = net.createServer(options).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [[accepted]] = await Promise.all([once(server, 'connection') as Promise<[net.Socket]>, once(client, 'connect')]);
  return {
    server,
    client,
    accepted,
    async close() {
      client.destroy();
      accepted.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text;
}

/** Resolves with the next chunk `socket` reads, as a string. */
function nextData(socket: net.Socket): Promise<string> {
  return once(socket, 'data').then(([d]) => String(d));
}

function expectWrongKind(fn: () => unknown, ...fragments: string[]): FdPassError {
  let error: unknown;
  try {
    fn();
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(FdPassError);
  expect((error as FdPassError).code).toBe('ERR_FDPASS_WRONG_KIND');
  for (const f of fragments) expect((error as Error).message).toContain(f);
  return error as FdPassError;
}

describe('toNetSocket', () => {
  it('turns a connected TCP socket into a working net.Socket and takes the Fd', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const tcp = await tcpPair();
      const f = Fd.dup(tcp.client);
      tcp.client.destroy();
      const socket = toNetSocket(f);
      expect(f.closed).toBe(true); // released: the socket owns the descriptor now
      expect(socket.remotePort).toBe((tcp.server.address() as net.AddressInfo).port);
      socket.write('ping');
      expect(await nextData(tcp.accepted)).toBe('ping');
      tcp.accepted.write('pong');
      expect(await nextData(socket)).toBe('pong');
      // Nagle as the runtime's own net.Socket has it: on (0) in Node, off (1) in Bun.
      expect(getIntOption(fdOf(socket), TCP_NODELAY, IPPROTO_TCP)).toBe(process.versions.bun ? 1 : 0);
      expect(getIntOption(fdOf(tcp.accepted), TCP_NODELAY, IPPROTO_TCP)).toBe(process.versions.bun ? 1 : 0);
      socket.destroy();
      await once(socket, 'close');
      // noDelay: true sets TCP_NODELAY, as http.Server does for connections it accepts.
      const fast = toNetSocket(Fd.dup(tcp.accepted), { noDelay: true });
      expect(getIntOption(fdOf(fast), TCP_NODELAY, IPPROTO_TCP)).toBe(1);
      fast.destroy();
      await once(fast, 'close');
      await tcp.close();
    });
  });

  it('turns a Unix stream socket (given as a number) into a net.Socket', async () => {
    await expectNoFdLeak(async () => {
      const [mine, theirs] = socketPair('stream');
      const socket = toNetSocket(theirs.release());
      socket.write('from net.Socket');
      expect(mine.recvSync({ timeoutMs: 5000 })!.data.toString()).toBe('from net.Socket');
      mine.sendSync('from UnixSocket');
      expect(await nextData(socket)).toBe('from UnixSocket');
      socket.end();
      expect(await mine.recv()).toBeNull();
      mine.close();
      await once(socket, 'close');
    });
  });

  it('names what the fd is and what to use instead, and leaves a refused Fd open', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const cases: [Kind, string[]][] = [
        ['file', ['regular file (/etc/hostname)', 'toReadStream()']],
        ['directory', ['a directory (/)']],
        ['pipe-read', ['a pipe', 'toReadStream()']],
        ['udp4', ['a UDP socket', 'toDgramSocket()']],
        ['tcp-listening', ['a listening TCP socket', 'toNetServer()']],
        ['tcp-unconnected', ['a TCP socket', 'not connected']],
        ['unix-seqpacket', ['a Unix seqpacket socket', 'adopt()']],
        ['unix-dgram', ['a Unix datagram socket', 'adopt()']],
        ['eventfd', ['an eventfd']],
      ];
      for (const [kind, fragments] of cases) {
        const made = await makeFd(kind);
        expectWrongKind(() => toNetSocket(made.fd), `toNetSocket: fd ${made.fd.fd} is `, ...fragments);
        expect(made.fd.closed).toBe(false);
        expect(made.fd.describe().fd).toBe(made.fd.fd); // still open
        made.fd.close();
        await made.cleanup();
      }
    });
  });

  it('rejects a closed descriptor number with EBADF and bad arguments with TypeError/RangeError', () => {
    const f = openSync('/etc/hostname', 'r');
    closeSync(f);
    expect(() => toNetSocket(f)).toThrow(expect.objectContaining({ code: 'EBADF', message: expect.stringContaining(`fd ${f} is not an open descriptor`) }));
    expect(() => toNetSocket(-1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => toNetSocket('3' as unknown as number)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});

describe('toNetServer', () => {
  it('makes a listening TCP socket serve connections, on the same port', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const original = net.createServer().listen(0, '127.0.0.1');
      await once(original, 'listening');
      const port = (original.address() as net.AddressInfo).port;
      const f = Fd.dup(original);
      original.close();
      const server = toNetServer(f);
      expect(f.closed).toBe(true);
      expect(server.listening).toBe(true);
      expect((server.address() as net.AddressInfo).port).toBe(port);
      server.on('connection', (c: net.Socket) => c.end('served'));
      expect(await readAll(net.connect(port, '127.0.0.1'))).toBe('served');
      server.close();
      await once(server, 'close');
    });
  });

  it('makes your own http.Server listen on the descriptor (Bun: refused, with the way that works there)', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const made = await makeFd('tcp-listening');
      const port = made.fd.describe().socket!.localPort!;
      if (process.versions.bun) {
        // Bun's http.Server is no net.Server and its listen() ignores fd: refused, the Fd left open.
        const own = http.createServer((_req, res) => res.end('hello over http'));
        expect(() => toNetServer(made.fd, own)).toThrow(expect.objectContaining({ code: 'ERR_FDPASS_UNSUPPORTED' }));
        expect(made.fd.closed).toBe(false);
        const front = toNetServer(made.fd);
        front.on('connection', (c) => own.emit('connection', c));
        const body = await new Promise<string>((resolve, reject) => {
          http.get({ port, host: '127.0.0.1', agent: false }, (res) => readAll(res).then(resolve, reject)).on('error', reject);
        });
        expect(body).toBe('hello over http');
        front.close();
        await once(front, 'close');
        return;
      }
      const server = toNetServer(made.fd, http.createServer((_req, res) => res.end('hello over http')));
      expect(server).toBeInstanceOf(http.Server);
      const body = await new Promise<string>((resolve, reject) => {
        http.get({ port, host: '127.0.0.1', agent: false }, (res) => readAll(res).then(resolve, reject)).on('error', reject);
      });
      expect(body).toBe('hello over http');
      server.close();
      await once(server, 'close');
    });
  });

  it('hands a Unix-path net.Server off with close: true and keeps its socket file', async () => {
    await expectNoFdLeak(async () => {
      const path = join(dir, 'stream.sock');
      const [a, b] = socketPair();
      const original = net.createServer((c) => c.end('old')).listen(path);
      await once(original, 'listening');
      // A plain close() would unlink the path (libuv does); close: true keeps it for the receiver.
      a.sendSync('listener', [original], { close: true });
      expect(original.listening).toBe(false);
      expect(existsSync(path)).toBe(true);
      expect(readdirSync(dir).filter((n) => n.startsWith('stream.sock'))).toEqual(['stream.sock']);
      const server = toNetServer(b.recvSync()!.fds[0]);
      server.on('connection', (c: net.Socket) => c.end('unix served by the receiver'));
      expect(await readAll(net.connect(path))).toBe('unix served by the receiver');
      server.close();
      await once(server, 'close');
      a.close();
      b.close();
    });
  });

  it('refuses connected, Unix seqpacket and UDP sockets with a clear message', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const cases: [Kind, string[]][] = [
        ['tcp-connected', ['a TCP socket', 'call listen(2) on it first']],
        ['unix-seqpacket-listening', ['a listening Unix seqpacket socket', 'adoptServer()']],
        ['udp6', ['a UDP socket (IPv6)', 'toDgramSocket()']],
        ['file', ['a regular file']],
      ];
      for (const [kind, fragments] of cases) {
        const made = await makeFd(kind);
        expectWrongKind(() => toNetServer(made.fd), 'not a listening TCP or Unix stream socket', ...fragments);
        expect(made.fd.closed).toBe(false);
        made.fd.close();
        await made.cleanup();
      }
    });
  });
});

describe('toDgramSocket', () => {
  for (const type of ['udp4', 'udp6'] as const) {
    it(`adopts a ${type} socket with Node's bind({ fd }) and receives on its port`, async () => {
      if (await denoLimit('net-no-fd')) return;
      await expectNoFdLeak(async () => {
        const made = await makeFd(type);
        const port = made.fd.describe().socket!.localPort!;
        const socket = toDgramSocket(made.fd);
        expect(made.fd.closed).toBe(true);
        // Bun binds asynchronously: bound once 'listening' has been emitted (Node: at once).
        if (process.versions.bun) await once(socket, 'listening');
        expect(socket.address().port).toBe(port);
        const sender = dgram.createSocket(type);
        const received = once(socket, 'message') as Promise<[Buffer, dgram.RemoteInfo]>;
        sender.send('datagram', port, type === 'udp4' ? '127.0.0.1' : '::1');
        const [msg] = await received;
        expect(msg.toString()).toBe('datagram');
        await new Promise<void>((r) => sender.close(() => r()));
        await new Promise<void>((r) => socket.close(() => r()));
      });
    });
  }

  it('explains that Node cannot hold a Unix datagram socket, and refuses TCP', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const unix = await makeFd('unix-dgram');
      expectWrongKind(() => toDgramSocket(unix.fd), 'a Unix datagram socket', 'supports only UDP', 'adopt()');
      unix.fd.close();
      await unix.cleanup();
      const tcp = await makeFd('tcp-connected');
      expectWrongKind(() => toDgramSocket(tcp.fd), 'a TCP socket, not a UDP socket');
      tcp.fd.close();
      await tcp.cleanup();
    });
  });
});

describe('toReadStream / toWriteStream', () => {
  it('reads a file through an fs.ReadStream from the current offset', async () => {
    if (await denoLimit('fs-foreign-fd')) return;
    await expectNoFdLeak(async () => {
      const path = join(dir, 'read.txt');
      writeFileSync(path, 'skip:the rest of the file');
      const f = new Fd(openSync(path, 'r'));
      const first = Buffer.alloc(5);
      expect(readSync(f.fd, first)).toBe(5);
      const stream = toReadStream(f, { encoding: 'utf8' });
      expect(stream.constructor.name).toBe('ReadStream');
      const closed = once(stream, 'close');
      expect(await readAll(stream)).toBe('the rest of the file');
      await closed;
    });
  });

  it('reads a pipe through a non-blocking net.Socket (Bun: its fs.ReadStream)', async () => {
    await expectNoFdLeak(async () => {
      const [r, w] = pipe();
      const stream = toReadStream(r);
      expect(stream).toBeInstanceOf(process.versions.bun ? ReadStream : net.Socket);
      const writer = toWriteStream(w);
      expect(writer).toBeInstanceOf(process.versions.bun ? WriteStream : net.Socket);
      const closed = once(stream, 'close');
      writer.end('through the pipe');
      expect(await readAll(stream)).toBe('through the pipe');
      await closed;
    });
  });

  // Bun's own net.Socket({ fd }) wrote pipes and sockets synchronously: a slow reader stopped
  // this thread in write(2) (and a reader in this same process never got to read).
  it.each(['pipe', 'socket'] as const)('writes to a %s that is not read yet without blocking the event loop', async (kind) => {
    await expectNoFdLeak(async () => {
      const [r, w] = kind === 'pipe' ? pipe() : socketPair('stream').map((s) => new Fd(s.release()));
      // The reader waits for "go" on its stdin (at most 10 s), then reads everything.
      const reader = spawn('sh', ['-c', 'if timeout 10 head -n 1 >/dev/null; then echo go; else echo late; fi; wc -c <&3'], { stdio: ['pipe', 'pipe', 'inherit', r.fd] });
      r.close();
      let out = '';
      reader.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      const readerDone = once(reader, 'close');
      const writer = toWriteStream(w);
      const total = 4 << 20; // far more than a pipe or socket buffer holds
      const chunk = Buffer.alloc(64 << 10, 0x61);
      for (let i = 0; i < total / chunk.length; i++) writer.write(chunk);
      writer.end();
      // Reached only once the writes above returned: the reader is told to start now.
      await new Promise((resolve) => setImmediate(resolve));
      reader.stdin!.end('go\n');
      await once(writer, 'close');
      await readerDone;
      expect(out.trim().split(/\s+/)).toEqual(['go', String(total)]);
    });
  });

  it('writes a file through an fs.WriteStream', async () => {
    if (await denoLimit('fs-foreign-fd')) return;
    await expectNoFdLeak(async () => {
      const path = join(dir, 'write.txt');
      const stream = toWriteStream(openSync(path, 'w'));
      expect(stream.constructor.name).toBe('WriteStream');
      stream.end('written through the adopted fd');
      await once(stream, 'close');
      expect(readFileSync(path, 'utf8')).toBe('written through the adopted fd');
    });
  });

  it('refuses the wrong direction, directories and datagram sockets', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const ro = new Fd(openSync('/etc/hostname', 'r'));
      expectWrongKind(() => toWriteStream(ro), 'opened O_RDONLY', 'use toReadStream()');
      ro.close();
      const wo = new Fd(openSync('/dev/null', 'w'));
      expectWrongKind(() => toReadStream(wo), 'opened O_WRONLY', 'use toWriteStream()');
      wo.close();
      for (const kind of ['directory', 'unix-dgram', 'tcp-listening', 'eventfd'] as const) {
        const made = await makeFd(kind);
        expectWrongKind(() => toReadStream(made.fd), 'not a readable file, pipe, FIFO, terminal or connected stream socket');
        made.fd.close();
        await made.cleanup();
      }
    });
  });
});

describe('a wrong kind never reaches Node', () => {
  it('every kind of fd through every to* function, in a child process that must survive', async () => {
    if (await denoLimit('net-no-fd')) return;
    const fx = spawnFixture('node-wrong-kinds');
    const { code, signal, stdout, stderr } = await fx.exited;
    expect({ code, signal, stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    const results = JSON.parse(stdout.split('\n')[0]) as Record<string, Record<string, string>>;
    const W = 'ERR_FDPASS_WRONG_KIND';
    // [toNetSocket, toNetServer, toDgramSocket, toReadStream, toWriteStream]
    const expected: Record<string, string[]> = {
      file: [W, W, W, 'ok ReadStream', W],
      'file-wronly': [W, W, W, W, 'ok WriteStream'],
      directory: [W, W, W, W, W],
      devnull: [W, W, W, 'ok ReadStream', 'ok WriteStream'],
      // Bun reads and writes a pipe through its fs streams (its net.Socket cannot adopt a pipe
      // for reading, and writes one synchronously).
      'pipe-read': [W, W, W, process.versions.bun ? 'ok ReadStream' : 'ok Socket', W],
      'pipe-write': [W, W, W, W, process.versions.bun ? 'ok WriteStream' : 'ok Socket'],
      eventfd: [W, W, W, W, W],
      memfd: [W, W, W, 'ok ReadStream', 'ok WriteStream'],
      udp4: [W, W, 'ok Socket', W, W],
      udp6: [W, W, 'ok Socket', W, W],
      'tcp-unconnected': [W, W, W, W, W],
      'tcp-listening': [W, 'ok Server', W, W, W],
      'tcp-connected': ['ok Socket', W, W, 'ok Socket', 'ok Socket'],
      'unix-stream': ['ok Socket', W, W, 'ok Socket', 'ok Socket'],
      'unix-dgram': [W, W, W, W, W],
      'unix-seqpacket': [W, W, W, W, W],
      'unix-seqpacket-listening': [W, W, W, W, W],
      'unix-stream-listening': [W, 'ok Server', W, W, W],
      netlink: [W, W, W, W, W],
      'closed-number': ['EBADF', 'EBADF', 'EBADF', 'EBADF', 'EBADF'],
    };
    expect(Object.keys(results).sort()).toEqual([...kinds, 'closed-number'].sort());
    const fns = ['toNetSocket', 'toNetServer', 'toDgramSocket', 'toReadStream', 'toWriteStream'];
    for (const [kind, row] of Object.entries(expected)) {
      expect(fns.map((fn) => results[kind][fn]), kind).toEqual(row);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// send(..., { close: true })

/** Fill `a`'s send queue (peer not reading) so the next send must wait for writability. */
function fillQueue(a: UnixSocket): number {
  let queued = 0;
  for (; queued < 100_000; queued++) {
    try {
      a.sendSync('filler', [], { timeoutMs: 0 });
    } catch (err) {
      if ((err as FdPassError).code === 'ETIMEDOUT') return queued;
      throw err;
    }
  }
  throw new Error('the send queue never filled');
}

describe('send(..., { close: true }) hands a net.Socket off', () => {
  it('stops the sender reading before the message goes, destroys it only once sent', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const tcp = await tcpPair();
      const [a, b] = socketPair();
      let senderGot = '';
      tcp.accepted.on('data', (d) => (senderGot += d));
      tcp.client.write('before;');
      await new Promise<void>((r) => {
        const poll = (): void => (senderGot === 'before;' ? r() : void setTimeout(poll, 5));
        poll();
      });

      const queued = fillQueue(a);
      const sent = a.send('the connection', [tcp.accepted], { close: true });
      let settled = false;
      void sent.then(() => (settled = true));
      // The message is waiting for room: the client talks; the sender must not take the bytes.
      tcp.client.write('after-handoff-started;');
      await sleep(150);
      expect(settled).toBe(false);
      expect(tcp.accepted.destroyed).toBe(false);
      expect(senderGot).toBe('before;');

      // Drain the queue: the fd arrives after the fillers.
      for (let i = 0; i < queued; i++) expect(b.recvSync({ timeoutMs: 5000 })!.data.toString()).toBe('filler');
      const msg = await b.recv();
      expect(msg!.data.toString()).toBe('the connection');
      expect(await sent).toBe('the connection'.length);
      expect(tcp.accepted.destroyed).toBe(true);

      const taken = toNetSocket(msg!.fds[0]);
      expect(await nextData(taken)).toBe('after-handoff-started;');
      taken.write('answered by the receiver');
      expect(await nextData(tcp.client)).toBe('answered by the receiver');
      expect(senderGot).toBe('before;');
      taken.destroy();
      a.close();
      b.close();
      await tcp.close();
    });
  });

  it('leaves the socket as it was, reading again, when the send is aborted', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const tcp = await tcpPair();
      const [a, b] = socketPair();
      let senderGot = '';
      tcp.accepted.on('data', (d) => (senderGot += d));
      fillQueue(a);
      const ac = new AbortController();
      const sent = a.send('never', [tcp.accepted], { close: true, signal: ac.signal });
      tcp.client.write('during;');
      await sleep(100);
      expect(senderGot).toBe('');
      ac.abort();
      await expect(sent).rejects.toMatchObject({ name: 'AbortError' });
      expect(tcp.accepted.destroyed).toBe(false);
      // Reading resumed: the bytes held back while the hand-off was pending now arrive here.
      await new Promise<void>((r) => {
        const poll = (): void => (senderGot === 'during;' ? r() : void setTimeout(poll, 5));
        poll();
      });
      tcp.accepted.write('still mine');
      expect(await nextData(tcp.client)).toBe('still mine');
      a.close();
      b.close();
      await tcp.close();
    });
  });

  it('leaves the socket usable when sendmsg fails (EPIPE), sync and async', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const tcp = await tcpPair();
      const [a, b] = socketPair();
      b.close();
      await expect(a.send('x', [tcp.accepted], { close: true })).rejects.toMatchObject({ code: 'EPIPE' });
      expect(() => a.sendSync('x', [tcp.accepted], { close: true })).toThrow(expect.objectContaining({ code: 'EPIPE' }));
      expect(tcp.accepted.destroyed).toBe(false);
      const got = nextData(tcp.accepted);
      tcp.client.write('still read here');
      expect(await got).toBe('still read here');
      a.close();
      await tcp.close();
    });
  });

  it('refuses, before sending anything, a socket holding bytes it already read', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const tcp = await tcpPair();
      const [a, b] = socketPair();
      tcp.client.write('unread');
      await once(tcp.accepted, 'readable');
      expect(tcp.accepted.readableLength).toBe(6);
      expect(() => a.sendSync('x', [tcp.accepted], { close: true })).toThrow(expect.objectContaining({ code: 'ERR_FDPASS_BUSY', message: expect.stringContaining('6 bytes this process already read') }));
      expect(() => b.recvSync({ timeoutMs: 0 })).toThrow(expect.objectContaining({ code: 'ETIMEDOUT' }));
      // Forward what was read with the message, as the error says: then it goes.
      const early = tcp.accepted.read() as Buffer;
      a.sendSync(early, [tcp.accepted], { close: true });
      expect(tcp.accepted.destroyed).toBe(true);
      const msg = b.recvSync()!;
      expect(msg.data.toString()).toBe('unread');
      msg.fds[0].close();
      a.close();
      b.close();
      await tcp.close();
    });
  });
});

describe('send(..., { close: true }) with other objects', () => {
  it('closes a net.Server in the sender; the receiver serves on the same port', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      const server = net.createServer((c) => c.end('old')).listen(0, '127.0.0.1');
      await once(server, 'listening');
      const port = (server.address() as net.AddressInfo).port;
      const closed = once(server, 'close');
      a.sendSync('listener', [server], { close: true });
      await closed;
      expect(server.listening).toBe(false);
      const adopted = toNetServer(b.recvSync()!.fds[0]);
      adopted.on('connection', (c: net.Socket) => c.end('new'));
      expect(await readAll(net.connect(port, '127.0.0.1'))).toBe('new');
      adopted.close();
      await once(adopted, 'close');
      a.close();
      b.close();
    });
  });

  it('closes an Fd, a number, a FileHandle, an fs.ReadStream, a dgram.Socket and a UnixSocket', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const path = join(dir, 'handoff.txt');
      writeFileSync(path, 'file content');
      const [a, b] = socketPair();
      const fd = new Fd(openSync(path, 'r'));
      const num = openSync(path, 'r');
      const handle = await openFile(path, 'r');
      const stream = createReadStream(path);
      await once(stream, 'open');
      stream.pause();
      const udp = dgram.createSocket('udp4');
      udp.bind(0, '127.0.0.1');
      await once(udp, 'listening');
      const udpPort = udp.address().port;
      const [u1, u2] = socketPair();
      const udpClosed = once(udp, 'close');
      const streamClosed = once(stream, 'close');
      await a.send('six', [fd, num, handle, stream, udp, u1], { close: true });
      expect(fd.closed).toBe(true);
      expect(() => fstatSync(num)).toThrow(expect.objectContaining({ code: 'EBADF' }));
      await udpClosed;
      await streamClosed;
      expect(u1.closed).toBe(true);
      await new Promise((r) => setTimeout(r, 20));
      expect(handle.fd).toBe(-1);

      const msg = (await b.recv())!;
      expect(msg.fds.map((f) => f.describe().kind)).toEqual(['file', 'file', 'file', 'file', 'socket', 'socket']);
      expect(readFileSync(`/proc/self/fd/${msg.fds[0].fd}`, 'utf8')).toBe('file content');
      const receiver = toDgramSocket(msg.fds[4]);
      if (process.versions.bun) await once(receiver, 'listening');
      expect(receiver.address().port).toBe(udpPort);
      receiver.close();
      u2.sendSync('via the handed-off socket');
      const peer = adopt(msg.fds[5]);
      expect(peer.recvSync({ timeoutMs: 5000 })!.data.toString()).toBe('via the handed-off socket');
      peer.close();
      for (const f of msg.fds) f.close();
      u2.close();
      a.close();
      b.close();
    });
  });

  it('refuses objects it cannot close, a UnixServer and a stream with unwritten bytes, before touching anything', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const tcp = await tcpPair();
      const [a, b] = socketPair();
      const plain = { fd: fdOf(tcp.accepted) };
      expect(() => a.sendSync('x', [tcp.accepted, plain], { close: true })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('fds[1]') }));
      await expect(a.send('x', [plain], { close: true })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
      const server = listen(join(dir, 'refused.sock'));
      expect(() => a.sendSync('x', [server], { close: true })).toThrow(expect.objectContaining({ code: 'ERR_FDPASS_UNSUPPORTED' }));
      server.close();
      const ws = createWriteStream(join(dir, 'busy.txt'));
      await once(ws, 'open');
      ws.cork();
      ws.write('not yet written');
      expect(() => a.sendSync('x', [ws], { close: true })).toThrow(expect.objectContaining({ code: 'ERR_FDPASS_BUSY', message: expect.stringContaining('15 bytes queued') }));
      ws.uncork();
      ws.end();
      await once(ws, 'close');
      expect(readFileSync(join(dir, 'busy.txt'), 'utf8')).toBe('not yet written');
      expect(() => b.recvSync({ timeoutMs: 0 })).toThrow(expect.objectContaining({ code: 'ETIMEDOUT' }));
      // The net.Socket listed first was never paused.
      const got = nextData(tcp.accepted);
      tcp.client.write('untouched');
      expect(await got).toBe('untouched');
      a.close();
      b.close();
      await tcp.close();
    });
  });
});
