/**
 * Soak and load: a shortened run of bench/soak.ts (the same `soak()` function), and 1,000
 * connections on one UnixServer, each passing fds both ways at once, checked in order per socket.
 */
import { mkdtempSync, openSync, closeSync, fstatSync, rmSync, statSync, writeFileSync } from './fdfs.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { soak } from '../bench/soak.js';
import { listen, type UnixSocket } from '../src/index.js';
import { C, sys } from '../src/libc.js';
import { expectNoFdLeak, fdCount, scaled, tsArgs } from './helpers.js';
import { Peers, cleanExit, fixture, unlessPeerFails } from './fixtures/interop-util.js';

const peers = new Peers();
afterEach(() => peers.killAll());

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fdpass-soak-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('soak', () => {
  it('50,000 fds parent -> child through the async API: all arrive in order; fd counts flat; RSS growth under 10% in both processes', async () => {
    await expectNoFdLeak(async () => {
      const lines: string[] = [];
      const result = await soak({ n: 50_000, log: (l) => lines.push(l) });
      expect(result.failures, lines.join('\n')).toEqual([]);
      expect(result.ok).toBe(true);
      expect(result.received).toBe(50_000);
      expect(result.samples.map((s) => [s.label, s.at])).toEqual([['start', 12_500], ['middle', 25_000], ['end', 50_000]]);
      const [start, , end] = result.samples;
      expect(end.parent.fds).toBe(start.parent.fds);
      expect(end.child.fds).toBe(start.child.fds);
      expect(lines.at(-1)).toMatch(/^OK/);
    });
  }, scaled(60_000));
});

describe('load', () => {
  it('1,000 connections on one UnixServer from another process, 10 messages with an fd each way per connection at once: all arrive, in order per socket', async () => {
    await expectNoFdLeak(async () => {
      const N = 1000;
      const K = 10;
      const server = listen({ path: join(dir, 'load.sock'), backlog: N });
      const serverFile = join(dir, 'server.txt');
      const clientFile = join(dir, 'client.txt');
      writeFileSync(serverFile, 's');
      writeFileSync(clientFile, 'c');
      const serverFd = openSync(serverFile, 'r');
      const serverIno = fstatSync(serverFd).ino;
      const clientIno = statSync(clientFile).ino;
      const clients = peers.start(process.execPath, [...tsArgs(fixture('hostile-load-clients.ts')), server.path!, String(N), String(K), clientFile, String(serverIno)]);

      const conns: UnixSocket[] = [];
      // A small send buffer on our side, so each socket's sends really queue and wait for room.
      const sndbuf = Buffer.alloc(4);
      sndbuf.writeInt32LE(1, 0); // the kernel raises it to its minimum (~4.5 KiB): a few messages
      for (let i = 0; i < N; i++) {
        const conn = await unlessPeerFails(clients, server.accept());
        expect(sys.setsockopt(conn.fd, C.SOL_SOCKET, C.SO_SNDBUF, sndbuf, 4)).toBe(0);
        conns.push(conn);
      }
      const baseline = fdCount();
      const problems: string[] = [];
      const perConnection = await Promise.all(
        conns.map(async (conn) => {
          // Send all K at once while receiving the client's K: both directions in flight together.
          const sending = Promise.all(Array.from({ length: K }, (_, k) => conn.send(`s${k}`, [serverFd])));
          let client = -1;
          let inOrder = 0;
          for (let k = 0; k < K; k++) {
            const m = await conn.recv();
            if (m === null) break;
            const match = /^c(\d+):(\d+)$/.exec(m.data.toString());
            if (client < 0 && match) client = Number(match[1]);
            const ok = match !== null && Number(match[1]) === client && Number(match[2]) === k
              && m.fds.length === 1 && fstatSync(m.fds[0].fd).ino === clientIno;
            for (const f of m.fds) f.close();
            if (ok) inOrder++;
            else if (problems.length < 10) problems.push(`client ${client}, message ${k}: ${m.data.toString()} with ${m.fds.length} fds`);
          }
          expect(await sending).toEqual(new Array(K).fill(2));
          // The client shuts down writing when it is done: end of stream, then we close.
          expect(await conn.recv()).toBeNull();
          conn.close();
          return { client, inOrder };
        }),
      );
      expect(problems).toEqual([]);
      expect(perConnection.every((c) => c.inOrder === K)).toBe(true);
      expect(new Set(perConnection.map((c) => c.client)).size).toBe(N); // each client index exactly once
      expect(fdCount()).toBe(baseline - N); // every received fd closed, every connection closed
      const report = JSON.parse(await cleanExit(clients));
      expect(report).toEqual({ connections: N, allInOrder: N, received: N * K, fdsFlat: true, eofs: N, problems: [] });
      closeSync(serverFd);
      server.close();
    });
  }, scaled(60_000));
});
