/**
 * GC pressure: the msghdr/iovec/control Buffers hold raw addresses, which do not keep their
 * targets alive. Run many operations with gc() in between and check every byte and every fd.
 * Payloads <= 4096 bytes go through fdpass's scratch buffer; larger ones are sent from the
 * caller's own Buffer address (pinned only during the call), so both paths are covered.
 */
import { spawn } from 'node:child_process';
import * as fs from './fdfs.js';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { socketPair, type Fd, type Payload, type UnixSocket } from '../src/index.js';
import { MESSAGE_TYPE } from './mode.js';
import { evalModuleCommand, expectNoFdLeak, gc, repoRoot, scaled } from './helpers.js';

const SIZES = [1, 13, 200, 4095, 4096, 4097, 5000, 20_000, 65_536];
const FILES = 3;
const PATTERN_SHIFT = 4099;
const PATTERN = Buffer.alloc(4 * 1024 * 1024 + PATTERN_SHIFT + 64);
for (let j = 0; j < PATTERN.length; j++) PATTERN[j] = (j * 31 + (j >>> 8) + (j >>> 16)) & 0xff;
/** Printable ASCII with the same period, for string payloads. */
const PATTERN_TEXT = Buffer.from(PATTERN.map((b) => 0x20 + (b % 95))).toString('latin1');

/**
 * A young-generation GC (scavenge): it moves young objects and frees the backing stores of
 * dead young Buffers — the short-lived ones whose raw addresses fdpass writes into a msghdr.
 * Cheap enough to run around every operation; a full gc() runs every few dozen.
 */
function minorGc(): void {
  // Bun (JavaScriptCore): Bun.gc(false) asks for a collection without forcing a full one.
  const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  if (bun) return bun.gc(false);
  (globalThis as unknown as { gc: (options: { type: 'minor' }) => void }).gc({ type: 'minor' });
}

let dir: string;
const fileFds: number[] = [];
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdpass-gc-'));
  for (let k = 0; k < FILES; k++) {
    const p = path.join(dir, `f${k}`);
    fs.writeFileSync(p, `file-${k}`);
    fileFds.push(fs.openSync(p, 'r'));
  }
});
afterAll(() => {
  for (const fd of fileFds.splice(0)) fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh payload for iteration i (nothing else references it), in one of three shapes. */
function payloadFor(i: number, size: number): { payload: Payload; bytes: Buffer } {
  const start = (i * 7919) % PATTERN_SHIFT;
  const bytes = Buffer.from(PATTERN.subarray(start, start + size)); // a fresh copy, content varies with i
  switch (i % 3) {
    case 0:
      return { payload: bytes, bytes };
    case 1: {
      // A Uint8Array view into a larger ArrayBuffer: fdpass wraps it in a Buffer of its own.
      const backing = new ArrayBuffer(size + 24);
      const view = new Uint8Array(backing, 16, size);
      view.set(bytes);
      return { payload: view, bytes };
    }
    default: {
      // A string: fdpass encodes it into a new Buffer that only it references.
      const text = PATTERN_TEXT.slice(start, start + size);
      return { payload: text, bytes: Buffer.from(text, 'utf8') };
    }
  }
}

function fdsFor(i: number): number[] {
  const n = (i % 3) + 1;
  return Array.from({ length: n }, (_, k) => fileFds[(i + k) % FILES]);
}

const scratch = Buffer.alloc(16);
/** Each received fd is a working descriptor for the expected file. */
function checkFds(i: number, fds: Fd[]): void {
  const expected = fdsFor(i);
  expect(fds).toHaveLength(expected.length);
  for (let k = 0; k < fds.length; k++) {
    const n = fs.readSync(fds[k].fd, scratch, 0, 16, 0);
    const want = `file-${(i + k) % FILES}`;
    if (scratch.toString('utf8', 0, n) !== want) expect(scratch.toString('utf8', 0, n), `iteration ${i} fd ${k}`).toBe(want);
    fds[k].close();
  }
}

function checkData(i: number, got: Buffer, want: Buffer): void {
  // One expect per mismatch only: 10k expect() calls on Buffers would dominate the runtime.
  if (!got.equals(want)) expect(got.length === want.length && got.equals(want), `iteration ${i}: ${got.length} bytes vs ${want.length}`).toBe(true);
}

describe('GC pressure', () => {
  it('10,000 sendSync/recvSync round trips with fds and varying payloads, gc() in between', async () => {
    await expectNoFdLeak(() => {
      const pairs: Array<[UnixSocket, UnixSocket]> = [socketPair(MESSAGE_TYPE), socketPair('dgram')];
      try {
        for (let i = 0; i < 10_000; i++) {
          const [a, b] = pairs[i % 2];
          const size = SIZES[i % SIZES.length];
          const { payload, bytes } = payloadFor(i, size);
          const sent = a.sendSync(payload, fdsFor(i));
          if (sent !== bytes.length) expect(sent).toBe(bytes.length);
          // Between send and receive: the kernel has the data, JS has let go of the payload.
          if (i % 50 === 0) gc();
          else minorGc();
          // Vary maxBytes so the receive buffer is sometimes reallocated (and its address rewritten).
          const maxBytes = i % 2 === 0 ? 65_536 + (i % 11) * 4096 : Math.max(bytes.length, 1);
          const msg = b.recvSync({ maxBytes, timeoutMs: 5000 })!;
          checkData(i, msg.data, bytes);
          checkFds(i, msg.fds);
          minorGc();
        }
      } finally {
        for (const [a, b] of pairs) {
          a.close();
          b.close();
        }
      }
    });
  });

  it('stream: 2,000 sync round trips, reassembled across reads, gc() in between', async () => {
    await expectNoFdLeak(() => {
      const [a, b] = socketPair('stream');
      try {
        for (let i = 0; i < 2000; i++) {
          const { payload, bytes } = payloadFor(i, SIZES[i % SIZES.length]);
          a.sendSync(payload, fdsFor(i));
          if (i % 50 === 0) gc();
          else minorGc();
          const chunks: Buffer[] = [];
          const fds: Fd[] = [];
          let total = 0;
          while (total < bytes.length) {
            const m = b.recvSync({ maxBytes: 3000 + (i % 5) * 7000, timeoutMs: 5000 })!;
            minorGc();
            chunks.push(m.data);
            fds.push(...m.fds);
            total += m.data.length;
          }
          checkData(i, Buffer.concat(chunks), bytes);
          checkFds(i, fds);
        }
      } finally {
        a.close();
        b.close();
      }
    });
  });

  it('async: 3,000 send()/recv() round trips with the recv waiting first, gc() in between', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      try {
        for (let i = 0; i < 3000; i++) {
          const size = SIZES[i % SIZES.length];
          const { payload, bytes } = payloadFor(i, size);
          const receiving = b.recv({ maxBytes: 65_536 });
          if (i % 50 === 0) gc();
          else minorGc();
          const sent = await a.send(payload, fdsFor(i));
          minorGc();
          const msg = (await receiving)!;
          expect(sent).toBe(bytes.length);
          checkData(i, msg.data, bytes);
          checkFds(i, msg.fds);
        }
      } finally {
        a.close();
        b.close();
      }
    });
  });

  it('async: sends queued on a full socket keep their payloads alive across gc() until they go out', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair();
      try {
        for (let round = 0; round < 5; round++) {
          const expected: Buffer[] = [];
          const sends: Promise<number>[] = [];
          // Only the promises are kept: the payloads are referenced by fdpass's queue alone.
          for (let i = 0; i < 400; i++) {
            const { payload, bytes } = payloadFor(round * 1000 + i, i % 2 ? 5000 : 300);
            expected.push(bytes);
            sends.push(a.send(payload, fdsFor(i)));
          }
          for (let g = 0; g < 3; g++) {
            minorGc();
            gc();
            await new Promise((r) => setImmediate(r));
          }
          for (let i = 0; i < 400; i++) {
            const msg = (await b.recv())!;
            checkData(round * 1000 + i, msg.data, expected[i]);
            checkFds(i, msg.fds);
            if (i % 50 === 0) gc();
            else minorGc();
          }
          const lengths = await Promise.all(sends);
          expect(lengths).toEqual(expected.map((e) => e.length));
        }
      } finally {
        a.close();
        b.close();
      }
    });
  });

  it('stream: a 4 MB async send written in parts survives gc() between every chunk the reader takes', async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair('stream');
      try {
        const size = 4 * 1024 * 1024 + 17;
        let { bytes } = payloadFor(0, size);
        const want = Buffer.from(bytes); // our own copy to compare with
        const sending = a.send(bytes, [fileFds[0]]);
        bytes = Buffer.alloc(0); // drop our reference to what fdpass is sending
        const chunks: Buffer[] = [];
        const fds: Fd[] = [];
        let total = 0;
        let reads = 0;
        while (total < size) {
          if (reads++ % 8 === 0) gc();
          else minorGc();
          const m = (await b.recv({ maxBytes: 256 * 1024 }))!;
          chunks.push(m.data);
          fds.push(...m.fds);
          total += m.data.length;
        }
        expect(await sending).toBe(size);
        checkData(0, Buffer.concat(chunks), want);
        checkFds(0, fds);
      } finally {
        a.close();
        b.close();
      }
    });
  });

  it('under --stress-compaction (every GC moves objects): sync and async loops stay correct', async () => {
    const indexUrl = pathToFileURL(path.join(repoRoot, 'src/index.ts')).href;
    // test/fdfs.ts: node:fs itself on Node and Bun, libc under Deno (whose node:fs refuses the
    // received descriptors).
    const fdfsUrl = pathToFileURL(path.join(repoRoot, 'test/fdfs.ts')).href;
    const code = `
      import { join } from 'node:path';
      import { tmpdir } from 'node:os';
      import { setFlagsFromString } from 'node:v8';
      const { openSync, readSync, writeFileSync, mkdtempSync, rmSync } = await import(${JSON.stringify(fdfsUrl)});
      const { socketPair } = await import(${JSON.stringify(indexUrl)});
      // From here on every GC compacts (set at run time so module loading stays fast).
      setFlagsFromString('--stress-compaction');
      const dir = mkdtempSync(join(tmpdir(), 'fdpass-compact-'));
      writeFileSync(join(dir, 'f'), 'file-x');
      const fd = openSync(join(dir, 'f'), 'r');
      const sizes = [1, 100, 4096, 4097, 30000];
      const fill = (i, n) => { const b = Buffer.allocUnsafe(n); for (let j = 0; j < n; j++) b[j] = (i + j * 13) & 255; return b; };
      const check = (i, msg, want) => {
        if (!msg.data.equals(want)) throw new Error('payload mismatch at ' + i);
        if (msg.fds.length !== 1) throw new Error('fd count mismatch at ' + i);
        const s = Buffer.alloc(8);
        if (s.toString('utf8', 0, readSync(msg.fds[0].fd, s, 0, 8, 0)) !== 'file-x') throw new Error('bad fd at ' + i);
        msg.fds[0].close();
      };
      const [a, b] = socketPair();
      // Under --stress-compaction even a minor gc() request runs a full compacting GC.
      const collect = (i) => (i % 2 === 0 ? gc({ type: 'minor' }) : undefined);
      for (let i = 0; i < 800; i++) {
        const want = fill(i, sizes[i % sizes.length]);
        a.sendSync(i % 2 ? Buffer.from(want) : new Uint8Array(want), [fd]);
        collect(i);
        check(i, b.recvSync({ maxBytes: 30000 + (i % 4) * 5000 }), want);
      }
      for (let i = 0; i < 200; i++) {
        const want = fill(i, sizes[i % sizes.length]);
        const r = b.recv();
        collect(i);
        await a.send(Buffer.from(want), [fd]);
        collect(i + 5);
        check(i, await r, want);
      }
      a.close(); b.close();
      rmSync(dir, { recursive: true });
      process.stdout.write('ok');
    `;
    const child = spawn(...evalModuleCommand(code, ['--expose-gc']), {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const guard = setTimeout(() => child.kill('SIGKILL'), scaled(25_000));
    const [code_, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('close', (c, s) => r([c, s])));
    clearTimeout(guard);
    expect(stderr).toBe('');
    expect(signal).toBeNull();
    expect(code_).toBe(0);
    expect(stdout).toBe('ok');
  });
});
