/**
 * D-Bus with UNIX_FD through Debian's real dbus-daemon (a private bus), fdpass's USocket on one
 * side (examples/fixtures/dbus-wire.ts: SASL EXTERNAL + NEGOTIATE_UNIX_FD, Hello, method calls
 * with 'h') and python3-dbus (libdbus) on the other: fds go JS → daemon → Python and back.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from './fdfs.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Connection, DBusError } from '../examples/fixtures/dbus-wire.js';
import { requireDBusPeers, runPythonPeer, startPrivateBus, type PrivateBus, type PythonPeer } from './dbus-helpers.js';
import { expectNoFdLeak } from './helpers.js';

let dir: string;
let bus: PrivateBus;
let service: PythonPeer;

beforeAll(async () => {
  requireDBusPeers();
  dir = mkdtempSync(join(tmpdir(), 'fdpass-dbus-'));
  bus = await startPrivateBus(dir);
  service = await runPythonPeer(['service', bus.pathAddress], 'ready');
});

afterAll(async () => {
  service?.child.kill('SIGTERM');
  await service?.exited;
  await bus?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const TEST = { destination: 'org.fdpass.Test', path: '/org/fdpass/Test', interface: 'org.fdpass.Test' };

function fileWith(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function closeConnection(conn: Connection): Promise<void> {
  const closed = new Promise<void>((r) => conn.stream.once('close', () => r()));
  conn.close();
  await closed;
}

const fdFlags = (fd: number): number => parseInt(/flags:\s*(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1], 8);

describe('D-Bus UNIX_FD through dbus-daemon, USocket <-> python3-dbus', () => {
  for (const via of ['path', 'abstract'] as const) {
    it(`passes a file fd in a method call to a Python service, which reads it (connected by ${via})`, async () => {
      await expectNoFdLeak(async () => {
        const conn = await Connection.open(via === 'path' ? bus.pathAddress : bus.abstractAddress);
        expect(conn.uniqueName).toMatch(/^:1\.\d+$/);
        const file = fileWith(`call-${via}.txt`, `read by Python through the bus (${via})`);
        const fd = openSync(file, 'r');
        try {
          const reply = await conn.call({ ...TEST, member: 'ReadFd', signature: 'h', body: [0], fds: [fd] });
          expect(reply.signature).toBe('s');
          expect(reply.body).toEqual([`read by Python through the bus (${via})`]);
        } finally {
          closeSync(fd);
        }
        await closeConnection(conn);
      });
    });
  }

  it('keeps 40 pipelined calls, each with its own fd, in order through the daemon', async () => {
    await expectNoFdLeak(async () => {
      const conn = await Connection.open(bus.pathAddress);
      const fds = Array.from({ length: 40 }, (_, i) => openSync(fileWith(`many-${i}.txt`, `file number ${i}`), 'r'));
      try {
        const replies = await Promise.all(fds.map((fd) => conn.call({ ...TEST, member: 'ReadFd', signature: 'h', body: [0], fds: [fd] })));
        expect(replies.map((r) => r.body[0])).toEqual(fds.map((_, i) => `file number ${i}`));
      } finally {
        fds.forEach((fd) => closeSync(fd));
      }
      await closeConnection(conn);
    });
  });

  it('receives fds in replies from Python (40 pipelined OpenFile calls), close-on-exec, each the right file', async () => {
    await expectNoFdLeak(async () => {
      const conn = await Connection.open(bus.abstractAddress);
      const paths = Array.from({ length: 40 }, (_, i) => fileWith(`open-${i}.txt`, `opened by Python ${i}`));
      const replies = await Promise.all(paths.map((p) => conn.call({ ...TEST, member: 'OpenFile', signature: 's', body: [p] })));
      replies.forEach((reply, i) => {
        expect(reply.signature).toBe('h');
        expect(reply.fds).toHaveLength(1);
        const fd = reply.fds[reply.body[0] as number];
        expect(fdFlags(fd) & 0o2000000).toBe(0o2000000);
        const buf = Buffer.alloc(64);
        expect(buf.toString('utf8', 0, readSync(fd, buf, 0, 64, 0))).toBe(`opened by Python ${i}`);
        closeSync(fd);
      });
      await expect(conn.call({ ...TEST, member: 'OpenFile', signature: 's', body: [join(dir, 'missing')] })).rejects.toBeInstanceOf(DBusError);
      await closeConnection(conn);
    });
  });

  it('serves a method taking an fd: a Python client passes a file through the bus, the USocket side reads it', async () => {
    await expectNoFdLeak(async () => {
      const conn = await Connection.open(bus.pathAddress);
      const seen: number[] = [];
      conn.handle('org.fdpass.Js', 'Take', (call) => {
        const fd = call.fds[call.body[0] as number];
        seen.push(call.fds.length);
        try {
          const buf = Buffer.alloc(256);
          return { signature: 's', body: [`JS read: ${buf.toString('utf8', 0, readSync(fd, buf, 0, 256, 0))}`] };
        } finally {
          call.fds.forEach((f) => closeSync(f));
        }
      });
      const file = fileWith('from-python.txt', 'opened by a libdbus client');
      const client = await runPythonPeer(['call', bus.pathAddress, conn.uniqueName, '/org/fdpass/Js', 'org.fdpass.Js', 'Take', file]);
      const { code, stdout, stderr } = await client.exited;
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(stdout.trim()).toBe('JS read: opened by a libdbus client');
      expect(seen).toEqual([1]);
      await closeConnection(conn);
    });
  });
});
