/**
 * toNetSocket builds its net.Socket with Node's numeric form, `new net.Socket(fd)` (no options
 * object to copy: the copy site in net.js goes megamorphic in real programs and then misses its
 * inline caches on every construction). These tests prove the result is the same socket as the
 * documented `new net.Socket({ fd, readable: true, writable: true, allowHalfOpen })`: the same
 * state, the same events in the same order through reading, pause/resume, writing, half-close
 * and destroy — for TCP and Unix stream sockets, with and without allowHalfOpen. CI runs them on
 * every Node version it tests (20, 22, 24, 26), so a change in net.js shows up here.
 */
import { once } from 'node:events';
import * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import { Fd, socketPair, toNetSocket } from '../src/index.js';
import { denoLimit, expectNoFdLeak } from './helpers.js';

type Make = (fd: number, allowHalfOpen: boolean) => net.Socket;

const makers: Record<string, Make> = {
  'new net.Socket({ fd, ... })': (fd, allowHalfOpen) => new net.Socket({ fd, readable: true, writable: true, allowHalfOpen }),
  'toNetSocket(fd)': (fd, allowHalfOpen) => toNetSocket(fd, allowHalfOpen ? { allowHalfOpen } : {}),
};

const EVENTS = ['connect', 'ready', 'data', 'readable', 'pause', 'resume', 'end', 'finish', 'drain', 'timeout', 'error', 'close'];

interface Connection {
  fd: number;
  /** The other end, as a plain net.Socket. */
  peer: net.Socket;
  cleanup(): Promise<void>;
}

/** A connected pair; `fd` is a descriptor the test hands to the maker (the other end is `peer`). */
async function connection(kind: 'tcp' | 'tcp6' | 'unix'): Promise<Connection> {
  if (kind === 'unix') {
    const [mine, theirs] = socketPair('stream');
    const peer = new net.Socket({ fd: theirs.release(), readable: true, writable: true });
    return { fd: mine.release(), peer, cleanup: async () => void peer.destroy() };
  }
  const host = kind === 'tcp' ? '127.0.0.1' : '::1';
  const server = net.createServer().listen(0, host);
  await once(server, 'listening');
  const client = net.connect((server.address() as net.AddressInfo).port, host);
  const [[peer]] = await Promise.all([once(server, 'connection') as Promise<[net.Socket]>, once(client, 'connect')]);
  // The descriptor is taken off a plain client socket, as a receiver gets it from SCM_RIGHTS.
  const fd = Fd.dup(client).release();
  client.destroy();
  return {
    fd,
    peer,
    async cleanup() {
      peer.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/** What a caller can observe of a socket (ports replaced by whether they match the peer's). */
function state(socket: net.Socket, peer: net.Socket): Record<string, unknown> {
  const s = socket as net.Socket & { _handle?: { constructor: { name: string }; reading?: boolean } | null; readyState: string; pending: boolean };
  return {
    readable: s.readable,
    writable: s.writable,
    readableFlowing: s.readableFlowing,
    readableEnded: s.readableEnded,
    writableEnded: s.writableEnded,
    writableFinished: s.writableFinished,
    destroyed: s.destroyed,
    pending: s.pending,
    connecting: s.connecting,
    readyState: s.readyState,
    allowHalfOpen: s.allowHalfOpen,
    remoteAddress: s.remoteAddress,
    remoteFamily: s.remoteFamily,
    remotePortIsPeers: s.remotePort === peer.localPort,
    localAddress: s.localAddress,
    localPortIsPeersRemote: s.localPort === peer.remotePort,
    bytesRead: s.bytesRead,
    bytesWritten: s.bytesWritten,
    readableHighWaterMark: s.readableHighWaterMark,
    writableHighWaterMark: s.writableHighWaterMark,
    readableObjectMode: s.readableObjectMode,
    timeout: s.timeout,
    handle: s._handle ? s._handle.constructor.name : null,
    handleReading: s._handle ? s._handle.reading : null,
  };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An event, or a clear failure after 5 s instead of a hung test. */
function event(emitter: net.Socket, name: string): Promise<unknown[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no '${name}' event within 5 s`)), 5000);
  });
  return Promise.race([once(emitter, name), timeout]).finally(() => clearTimeout(timer));
}

/** Everything `socket` emits, as strings, in order. */
function record(socket: net.Socket): string[] {
  const trace: string[] = [];
  for (const ev of EVENTS) {
    if (ev === 'readable') continue; // a 'readable' listener changes how the stream flows: not part of the trace
    socket.on(ev, (arg?: unknown) => trace.push(ev === 'data' ? `data ${String(arg)}` : ev === 'close' ? `close hadError=${String(arg)}` : ev === 'error' ? `error ${(arg as Error).message}` : ev));
  }
  return trace;
}

async function peerReads(peer: net.Socket): Promise<string> {
  return String((await event(peer, 'data'))[0]);
}

/** Read, pause/resume, write, then the peer half-closes; the socket finishes as allowHalfOpen says. */
async function halfCloseScenario(make: Make, kind: 'tcp' | 'tcp6' | 'unix', allowHalfOpen: boolean): Promise<unknown[]> {
  const c = await connection(kind);
  const socket = make(c.fd, allowHalfOpen);
  const out: unknown[] = [['created', state(socket, c.peer)]];
  const trace = record(socket);
  await turn();
  out.push(['after a turn', state(socket, c.peer)]);

  c.peer.write('a');
  await event(socket, 'data');
  socket.pause();
  out.push(['paused', state(socket, c.peer), [...trace]]);
  c.peer.write('b');
  await sleep(30);
  out.push(['nothing while paused', [...trace]]);
  socket.resume();
  await event(socket, 'data');

  socket.write('c');
  out.push(['peer got', await peerReads(c.peer)]);
  const peerEnded = event(c.peer, 'end');
  c.peer.end();
  await event(socket, 'end');
  out.push(['after end', state(socket, c.peer)]);
  if (allowHalfOpen) {
    // Half-open: this side can still write, then ends itself.
    socket.write('after-end');
    out.push(['peer got after end', await peerReads(c.peer)]);
    socket.end();
  }
  await event(socket, 'close');
  await peerEnded;
  out.push(['closed', state(socket, c.peer), trace]);
  await c.cleanup();
  return out;
}

/** destroy(): 'close' without error, the peer sees end of stream, the descriptor is closed. */
async function destroyScenario(make: Make, kind: 'tcp' | 'tcp6' | 'unix'): Promise<unknown[]> {
  const c = await connection(kind);
  const socket = make(c.fd, false);
  const trace = record(socket);
  c.peer.write('x');
  await event(socket, 'data');
  const peerEnded = event(c.peer, 'end');
  socket.destroy();
  const out: unknown[] = [['destroyed', state(socket, c.peer)]];
  await event(socket, 'close');
  await peerEnded;
  out.push(['closed', state(socket, c.peer), trace]);
  await c.cleanup();
  return out;
}

describe('toNetSocket builds the same net.Socket as new net.Socket({ fd })', () => {
  for (const kind of ['tcp', 'tcp6', 'unix'] as const) {
    for (const allowHalfOpen of [false, true]) {
      it(`${kind}, allowHalfOpen ${allowHalfOpen}: state and events through read, pause/resume, write and half-close`, async () => {
        // TCP connections come from net.Server / net.connect here; the Unix ones from fdpass.
        if (kind !== 'unix' && (await denoLimit('net-no-fd'))) return;
        await expectNoFdLeak(async () => {
          const [reference, fast] = [await halfCloseScenario(makers['new net.Socket({ fd, ... })'], kind, allowHalfOpen), await halfCloseScenario(makers['toNetSocket(fd)'], kind, allowHalfOpen)];
          expect(fast).toEqual(reference);
          // The scenario did what it says (so equal traces are not two empty ones).
          const closed = reference.at(-1) as [string, Record<string, unknown>, string[]];
          expect(closed[2]).toEqual(expect.arrayContaining(['data a', 'pause', 'resume', 'data b', 'end', 'finish', 'close hadError=false']));
          expect(closed[1]).toMatchObject({ destroyed: true, allowHalfOpen });
        });
      });
    }
    it(`${kind}: destroy()`, async () => {
      if (kind !== 'unix' && (await denoLimit('net-no-fd'))) return;
      await expectNoFdLeak(async () => {
        const reference = await destroyScenario(makers['new net.Socket({ fd, ... })'], kind);
        const fast = await destroyScenario(makers['toNetSocket(fd)'], kind);
        expect(fast).toEqual(reference);
        expect((reference.at(-1) as [string, unknown, string[]])[2]).toEqual(expect.arrayContaining(['data x', 'close hadError=false']));
      });
    });
  }

  it('readable: false or writable: false still build a one-way socket (the options form)', async () => {
    await expectNoFdLeak(async () => {
      const c = await connection('unix');
      const socket = toNetSocket(c.fd, { writable: false });
      expect({ readable: socket.readable, writable: socket.writable }).toEqual({ readable: true, writable: false });
      c.peer.write('one way');
      expect(String((await event(socket, 'data'))[0])).toBe('one way');
      socket.destroy();
      await event(socket, 'close');
      await c.cleanup();
    });
  });
});
