/**
 * Raw interoperability with C: a peer compiled with cc here, using the write_fd / read_fd
 * functions of Unix Network Programming (one byte plus one descriptor per message), both
 * directions, over stream (as in the book), seqpacket and framed socket pairs inherited as fd
 * 3 — 'framed' with write_frame/read_frame, a C implementation of the format in docs/platforms.md.
 */
import { mkdtempSync, openSync, readSync, rmSync, writeFileSync } from './fdfs.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Fd, pipe, socketPair, type UnixSocket } from '../src/index.js';
import { compileC, expectNoFdLeak } from './helpers.js';
import { MESSAGE_TYPE } from './mode.js';
import { Peers, cleanExit, fixture, readUntil, unlessPeerFails } from './fixtures/interop-util.js';

const peers = new Peers();
afterEach(() => peers.killAll());

let dir: string;
let peerBinary: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fdpass-c-'));
  peerBinary = compileC(fixture('interop-c-peer.c'), dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Raw stream, the platform's message type (seqpacket, or framed where there is none), framed. */
for (const type of [...new Set(['stream', MESSAGE_TYPE, 'framed'] as const)]) {
  const mode = type === 'framed' ? ['framed'] : [];
  describe(`a C peer with UNP's write_fd/read_fd over ${type}`, () => {
    it('read_fd() receives what Node sends: the empty payload as the NUL byte, one fd each', async () => {
      await expectNoFdLeak(async () => {
        const [ours, theirs] = socketPair(type);
        const c = peers.start(peerBinary, [...mode, 'recv'], { extraFds: [theirs.fd] });
        theirs.close();
        const path = join(dir, `for-c-${type}.txt`);
        writeFileSync(path, `a file for C over ${type}`);
        const file = new Fd(openSync(path, 'r'));
        const [r, w] = pipe();
        const [sockMine, sockTheirs] = socketPair('stream');
        await ours.send('', [file]); // what most C peers send with an fd: one NUL byte
        await ours.send('p', [w]);
        await ours.send('q', [sockTheirs]);
        await ours.send('z'); // a byte without a descriptor
        for (const x of [file, w, sockTheirs]) x.close();
        ours.close();
        await unlessPeerFails(c, c.waitFor((l) => l.eof === true, 'end of file'));
        expect(c.lines).toEqual([
          { byte: 0, kind: 'file', content: `a file for C over ${type}` },
          { byte: 112, kind: 'fifo' },
          { byte: 113, kind: 'socket' },
          { byte: 122, fd: null },
          { eof: true, messages: 4 },
        ]);
        expect(readUntil(r.fd, '\n')).toBe(`C pid ${c.child.pid} got fd number 2\n`);
        expect((await sockMine.recv())?.data.toString()).toBe(`C pid ${c.child.pid} got fd number 3\n`);
        await cleanExit(c);
        r.close();
        sockMine.close();
      });
    });

    it('write_fd() reaches Node: one byte and one fd per message, then a byte alone, then EOF', async () => {
      await expectNoFdLeak(async () => {
        const [ours, theirs] = socketPair(type);
        const path = join(dir, `from-c-${type}.txt`);
        writeFileSync(path, `opened by C over ${type}`);
        const c = peers.start(peerBinary, [...mode, 'send', path], { extraFds: [theirs.fd] });
        theirs.close();
        const recvOne = (): ReturnType<UnixSocket['recv']> => unlessPeerFails(c, ours.recv({ maxBytes: 1 })); // read_fd's own buffer: 1 byte
        const first = await recvOne();
        expect([...first!.data]).toEqual([0]);
        expect(first!.fds).toHaveLength(1);
        const d = first!.fds[0].describe();
        expect([d.kind, d.path, d.closeOnExec]).toEqual(['file', path, true]);
        const buf = Buffer.alloc(100);
        expect(buf.subarray(0, readSync(first!.fds[0].fd, buf, 0, 100, 0)).toString()).toBe(`opened by C over ${type}`);
        const second = await recvOne();
        expect(second!.data.toString()).toBe('p');
        expect(second!.fds.map((f) => f.describe().kind)).toEqual(['pipe']);
        const third = await recvOne();
        expect(third).toMatchObject({ fds: [], droppedFds: 0 });
        expect(third!.data.toString()).toBe('x');
        const report = await c.waitFor((l) => l.sent === 3, 'the C report');
        expect(readUntil(second!.fds[0].fd, '\n')).toBe(`through a pipe from C pid ${report.pid}\n`);
        await cleanExit(c);
        expect(await ours.recv()).toBeNull();
        for (const f of [...first!.fds, ...second!.fds]) f.close();
        ours.close();
      });
    });
  });
}
