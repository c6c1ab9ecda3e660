/**
 * Raw interoperability with Python 3's standard library (socket.send_fds / socket.recv_fds):
 * both directions over SOCK_STREAM, SOCK_SEQPACKET, 'framed' (the fixture implements the format
 * of docs/platforms.md in a dozen lines) and SOCK_DGRAM socket pairs inherited as the child's
 * fd 3, several fds and several KB per message; a Python server and a Python client on a socket
 * path; and a Python peer that sends what a careful receiver must survive.
 */
import { mkdtempSync, openSync, readSync, rmSync, writeFileSync } from './fdfs.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Fd, connect, listen, pipe, socketPair, type Message, type SocketType, type UnixSocket } from '../src/index.js';
import { expectNoFdLeak, requirePeer } from './helpers.js';
import { CREDENTIAL_MESSAGES, MESSAGE_TYPE, MINIMAL, PEER_MESSAGE_TYPE } from './mode.js';
import { Peers, cleanExit, fixture, readUntil, unlessPeerFails, type Peer } from './fixtures/interop-util.js';

const peers = new Peers();
afterEach(() => peers.killAll());

let dir: string;
beforeAll(() => {
  requirePeer('python3');
  dir = mkdtempSync(join(tmpdir(), 'fdpass-py-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PEER = fixture('interop-python-peer.py');
/** Where fdpass has no SEQPACKET (FDPASS_CAPABILITIES=minimal), 'framed' stands in for it. */
const TYPES: SocketType[] = [...new Set<SocketType>(['stream', MESSAGE_TYPE, 'framed', 'dgram'])];
const CONNECTION_TYPES = TYPES.filter((t) => t !== 'dgram') as ('stream' | 'seqpacket' | 'framed')[];
const SIZES = [5000, 1, 8192];

/** The payload of message k (the fixture computes the same). */
function pattern(k: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + k * 7) & 255;
  return b;
}

function startPeer(args: string[], type: SocketType): { ours: UnixSocket; py: Peer } {
  const [ours, theirs] = socketPair(type);
  const py = peers.start('python3', [PEER, ...args], { extraFds: [theirs.fd] });
  theirs.close();
  return { ours, py };
}

function pread(fd: Fd, length = 4096): string {
  const buf = Buffer.alloc(length);
  return buf.subarray(0, readSync(fd.fd, buf, 0, length, 0)).toString('utf8');
}

/** One logical message: on a stream socket, read until `size` bytes (fds ride on the first read). */
async function recvMessage(sock: UnixSocket, size: number): Promise<{ data: Buffer; fds: Fd[]; reads: number }> {
  if (sock.type !== 'stream') {
    const m = (await sock.recv()) as Message;
    return { data: m.data, fds: m.fds, reads: 1 };
  }
  const parts: Buffer[] = [];
  const fds: Fd[] = [];
  let got = 0;
  let reads = 0;
  while (got < size) {
    const m = await sock.recv({ maxBytes: size - got });
    if (m === null) break;
    parts.push(m.data);
    fds.push(...m.fds);
    got += m.data.length;
    reads++;
  }
  return { data: Buffer.concat(parts), fds, reads };
}

for (const type of TYPES) {
  describe(`Python over a ${type} socket pair (inherited as fd 3)`, () => {
    it('Node -> Python: several KB and three fds (file, pipe, socket) per message', async () => {
      await expectNoFdLeak(async () => {
        const { ours, py } = startPeer(['recv', type, SIZES.join(',')], type);
        const [r, w] = pipe();
        const others: UnixSocket[] = [];
        for (let k = 0; k < SIZES.length; k++) {
          const path = join(dir, `to-python-${type}-${k}.txt`);
          writeFileSync(path, `file ${k} for python over ${type}`);
          const file = new Fd(openSync(path, 'r'));
          const [mine, theirs] = socketPair('stream');
          others.push(mine);
          await ours.send(pattern(k, SIZES[k]), [file, w, theirs]);
          file.close();
          theirs.close();
        }
        w.close();
        for (let k = 0; k < SIZES.length; k++) {
          const report = await unlessPeerFails(py, py.waitFor((l) => l.k === k, `message ${k}`));
          expect(report).toMatchObject({ k, size: SIZES[k], ok: true, flags: 0 });
          expect(report.fds).toEqual([{ kind: 'file', content: `file ${k} for python over ${type}` }, { kind: 'fifo' }, { kind: 'socket' }]);
          const viaSocket = await others[k].recv();
          expect(viaSocket?.data.toString()).toBe(`python ${py.child.pid} message ${k} fd 2`);
        }
        expect(readUntil(r.fd, 'message 2 fd 1\n')).toBe(SIZES.map((_, k) => `python ${py.child.pid} message ${k} fd 1\n`).join(''));
        if (type !== 'dgram') ours.close(); // Python then sees end of stream
        if (type !== 'dgram') expect(await py.waitFor((l) => 'eof' in l, 'end of stream')).toEqual({ eof: true });
        await cleanExit(py);
        ours.close();
        r.close();
        for (const o of others) o.close();
      });
    });

    it('Python -> Node: several KB with a memfd, a pipe and an eventfd per message', async () => {
      await expectNoFdLeak(async () => {
        const { ours, py } = startPeer(['send', type, SIZES.join(',')], type);
        for (let k = 0; k < SIZES.length; k++) {
          const { data, fds } = await unlessPeerFails(py, recvMessage(ours, SIZES[k]));
          expect(data.equals(pattern(k, SIZES[k]))).toBe(true);
          expect(fds.map((f) => [f.describe().kind, f.describe().closeOnExec])).toEqual([['memfd', true], ['pipe', true], ['eventfd', true]]);
          const [memfd, pipeRead, eventfd] = fds;
          expect(pread(memfd)).toBe(`memfd ${k} from python ${py.child.pid}`);
          expect(readUntil(pipeRead.fd, '\n')).toBe(`pipe ${k} from python ${py.child.pid}\n`);
          const counter = Buffer.alloc(8);
          expect(readSync(eventfd.fd, counter, 0, 8, null)).toBe(8);
          expect(counter.readBigUInt64LE(0)).toBe(BigInt(k + 1));
          for (const f of fds) f.close();
        }
        await cleanExit(py);
        if (type !== 'dgram') expect(await ours.recv()).toBeNull();
        ours.close();
      });
    });

    it('an empty payload from Node arrives in Python as one NUL byte, with its fd', async () => {
      await expectNoFdLeak(async () => {
        const { ours, py } = startPeer(['recv', type, '1'], type);
        const path = join(dir, `empty-${type}.txt`);
        writeFileSync(path, 'behind a NUL byte');
        const file = new Fd(openSync(path, 'r'));
        await ours.send('', [file]);
        file.close();
        // The fixture compares with pattern(0, 1) = b'\x00': exactly one NUL byte.
        const report = await unlessPeerFails(py, py.waitFor((l) => l.k === 0, 'the message'));
        expect(report).toMatchObject({ size: 1, ok: true, fds: [{ kind: 'file', content: 'behind a NUL byte' }] });
        ours.close();
        await cleanExit(py);
      });
    });
  });
}

describe('zero-byte messages from Python', () => {
  // On SOCK_STREAM a zero-byte sendmsg carries nothing at all (Linux sends no fds without a
  // byte); on seqpacket and dgram the fds arrive with an empty payload, which is not EOF.
  for (const type of TYPES.filter((t) => t !== 'stream')) {
    it(`${type}: an empty message with an fd is a message, not end of stream`, async () => {
      await expectNoFdLeak(async () => {
        const { ours, py } = startPeer(['empty', type], type);
        await cleanExit(py);
        const m = await ours.recv();
        expect(m).not.toBeNull();
        expect(m!.data.length).toBe(0);
        expect(m!.fds).toHaveLength(1);
        expect(readUntil(m!.fds[0].fd, '\n')).toBe('behind an empty message\n');
        m!.fds[0].close();
        if (type === 'dgram') {
          const empty = await ours.recv(); // a zero-byte datagram without fds
          expect(empty).toMatchObject({ fds: [], droppedFds: 0 });
          expect(empty!.data.length).toBe(0);
        } else {
          expect(await ours.recv()).toBeNull(); // now the peer is gone
        }
        ours.close();
      });
    });
  }
});

describe('Python on a socket path', () => {
  for (const type of CONNECTION_TYPES) {
    it(`a Python ${type} server: connect() finds its type; fds go both ways`, async () => {
      await expectNoFdLeak(async () => {
        const path = join(dir, `py-server-${type}.sock`);
        const py = peers.start('python3', [PEER, 'server', type, path]);
        await py.waitFor((l) => l.ready === true, 'the server');
        // No type given: seqpacket, then a stream server as 'stream' — or as 'framed' where there
        // is no SEQPACKET. A stream server of the other kind needs its type named.
        const detected = type === 'seqpacket' ? 'seqpacket' : MINIMAL ? 'framed' : 'stream';
        const sock = await connect(detected === type ? path : { path, type });
        expect(sock.type).toBe(type);
        const [r, w] = pipe();
        await sock.send('a pipe for the server', [w]);
        w.close();
        const back = await unlessPeerFails(py, sock.recv());
        expect(back?.data.toString()).toBe('hello from python server');
        expect(back?.fds).toHaveLength(1);
        expect(pread(back!.fds[0])).toBe(`memfd from python server ${py.child.pid}`);
        back!.fds[0].close();
        const report = await py.waitFor((l) => l.role === 'server', 'the server report');
        expect(report).toMatchObject({ got: 'a pipe for the server', fds: [{ kind: 'fifo' }] });
        expect(readUntil(r.fd, '\n')).toBe(`python ${py.child.pid} message 0 fd 0\n`);
        await cleanExit(py);
        sock.close();
        r.close();
      });
    });

    it(`a Python ${type} client of a Node server`, async () => {
      await expectNoFdLeak(async () => {
        const path = join(dir, `node-server-${type}.sock`);
        const server = listen({ path, type });
        const py = peers.start('python3', [PEER, 'client', type, path]);
        const conn = await unlessPeerFails(py, server.accept());
        const hello = await conn.recv();
        expect(hello?.data.toString()).toBe('hello from python client');
        expect(pread(hello!.fds[0])).toBe(`memfd from python client ${py.child.pid}`);
        hello!.fds[0].close();
        const [r, w] = pipe();
        await conn.send('a pipe for the client', [w]);
        w.close();
        expect(readUntil(r.fd, '\n')).toBe(`python ${py.child.pid} message 0 fd 0\n`);
        expect(await py.waitFor((l) => l.role === 'client', 'the client report')).toMatchObject({ got: 'a pipe for the client', fds: [{ kind: 'fifo' }] });
        await cleanExit(py);
        conn.close();
        server.close();
        r.close();
      });
    });
  }
});

describe('untrusted input from a Python peer', () => {
  it('253 fds in one message: maxFds are handed out, the rest closed and counted', async () => {
    await expectNoFdLeak(async () => {
      const { ours, py } = startPeer(['many-fds', MESSAGE_TYPE], MESSAGE_TYPE);
      await cleanExit(py);
      const m = await ours.recv({ maxFds: 4 });
      expect(m?.data.toString()).toBe('253 fds');
      expect(m?.fds).toHaveLength(4);
      expect(m?.droppedFds).toBe(249);
      for (const f of m!.fds) f.close();
      ours.close();
    });
  });

  it('a datagram longer than maxBytes: ERR_FDPASS_TRUNC, its fds closed, the socket still usable', async () => {
    await expectNoFdLeak(async () => {
      const { ours, py } = startPeer(['big-dgram'], 'dgram');
      await cleanExit(py);
      await expect(ours.recv()).rejects.toMatchObject({ code: 'ERR_FDPASS_TRUNC', message: expect.stringContaining('its 2 fds closed') });
      ours.close();
    });
  });

  it('several KB on a stream read in small pieces: the fds come once, with the first piece', async () => {
    await expectNoFdLeak(async () => {
      const { ours, py } = startPeer(['send', 'stream', '8192'], 'stream');
      await cleanExit(py);
      const first = await ours.recv({ maxBytes: 1000 });
      expect(first?.data.length).toBe(1000);
      expect(first?.fds).toHaveLength(3);
      let rest = 0;
      for (let i = 0; i < 20 && rest < 7192; i++) {
        const m = await ours.recv({ maxBytes: 1000 });
        expect(m?.fds).toEqual([]);
        rest += m!.data.length;
      }
      expect(rest).toBe(7192);
      for (const f of first!.fds) f.close();
      ours.close();
    });
  });

  it('SCM_CREDENTIALS next to SCM_RIGHTS: both understood with passCredentials(), fds intact', async () => {
    await expectNoFdLeak(async () => {
      const [ours, theirs] = socketPair(PEER_MESSAGE_TYPE);
      if (!CREDENTIAL_MESSAGES) {
        // Without credential messages (darwin, OpenBSD, minimal mode) there is nothing to turn on.
        expect(() => ours.passCredentials()).toThrow(expect.objectContaining({ code: 'ERR_FDPASS_UNSUPPORTED' }));
        ours.close();
        theirs.close();
        return;
      }
      ours.passCredentials();
      const py = peers.start('python3', [PEER, 'creds'], { extraFds: [theirs.fd] });
      theirs.close();
      await cleanExit(py);
      const m = await ours.recv();
      expect(m?.data.toString()).toBe('with credentials');
      expect(m?.credentials).toEqual({ pid: py.child.pid, uid: process.getuid!(), gid: process.getgid!() });
      expect(m?.fds.map((f) => f.describe().kind)).toEqual(['pipe']);
      expect(m?.droppedFds).toBe(0);
      for (const f of m!.fds) f.close();
      ours.close();
    });
  });
});
