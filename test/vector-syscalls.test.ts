/**
 * Which syscalls carry queued sends and batch receives, seen from outside by strace: on Linux
 * (messageVectors), sendmmsg and recvmmsg with many messages per call. On the host, and as ia32
 * on the host kernel; not under qemu-user, where strace would see qemu's own calls (it turns one
 * guest sendmmsg into a sendmsg per message).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SEND_VECTOR_SLOTS } from '../src/send-vector.js';
import { repoRoot, requirePeer, tsArgs } from './helpers.js';
import { MINIMAL } from './mode.js';

/**
 * strace -f splits a call that another thread interrupts: "12 recvmmsg(22, [...] <unfinished ...>"
 * then "12 <... recvmmsg resumed>...) = 32". Each pair becomes the one line it would have been.
 */
function joinResumed(lines: string[]): string[] {
  const unfinished = new Map<string, string>();
  const out: string[] = [];
  for (const line of lines) {
    const start = /^(\d+)\s+(.*) <unfinished \.\.\.>$/.exec(line);
    if (start) {
      unfinished.set(start[1], line.slice(0, line.length - ' <unfinished ...>'.length));
      continue;
    }
    const resumed = /^(\d+)\s+<\.\.\. \w+ resumed>(.*)$/.exec(line);
    const head = resumed && unfinished.get(resumed[1]);
    if (resumed && head !== undefined) {
      unfinished.delete(resumed[1]);
      out.push(head + resumed[2]);
    } else out.push(line);
  }
  return out;
}

describe('messages on the wire', () => {
  it(MINIMAL ? 'the fallback mode sends each queued message with its own sendmsg, closes each duplicate with close, and receives batches with recvmsg' : 'on a SEQPACKET socket queued sends go out through sendmmsg (their duplicates closed by close_range) and batches come in through recvmmsg, many per call', () => {
    requirePeer('strace');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fdpass-strace-'));
    try {
      const trace = path.join(dir, 'trace');
      const fixture = fileURLToPath(new URL('./fixtures/queued-sends.ts', import.meta.url));
      const queued = 4 * SEND_VECTOR_SLOTS;
      const run = spawnSync('strace', ['-f', '-qq', '-e', 'trace=sendmsg,sendmmsg,recvmsg,recvmmsg,recvmmsg_time64,fcntl,fcntl64,close,close_range', '-e', 'signal=none', '-o', trace, process.execPath, ...tsArgs(fixture), String(queued), MINIMAL ? 'dgram' : 'seqpacket'], {
        cwd: repoRoot,
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(run.status, run.stderr).toBe(0);
      const report = JSON.parse(run.stdout.trim().split('\n').pop()!) as { filled: number; queued: number; received: number; socketFd: number; receiverFd: number; fileFd: number; batches: number };
      expect(report.received).toBe(report.filled + queued);
      // "1234  sendmmsg(21, [...], 64, MSG_DONTWAIT|MSG_NOSIGNAL) = 64": the calls on the sending socket.
      const lines = joinResumed(readFileSync(trace, 'utf8').split('\n'));
      const calls = lines.filter((l) => new RegExp(`\\b(sendmsg|sendmmsg)\\(${report.socketFd},`).test(l));
      // "1234  recvmmsg(22, [...], 64, MSG_DONTWAIT|MSG_CMSG_CLOEXEC, NULL) = 64": the receiving socket's calls that got
      // messages. 32-bit glibc (ia32) makes recvmmsg the recvmmsg_time64 call (64-bit time_t).
      const receives = lines.filter((l) => new RegExp(`\\b(recvmsg|recvmmsg|recvmmsg_time64)\\(${report.receiverFd},`).test(l)).map((l) => ({ vector: /recvmmsg(_time64)?\(/.test(l), n: Number(/ = (-?\d+)(?: E[A-Z]+ \(.*\))?\s*$/.exec(l)?.[1] ?? NaN) }));
      const receivedByVector = receives.filter((r) => r.vector && r.n > 0).reduce((sum, r) => sum + r.n, 0);
      const receivedAlone = receives.filter((r) => !r.vector && r.n > 0).length;
      const vectors = calls.filter((l) => l.includes('sendmmsg(')).map((l) => Number(/ = (-?\d+)(?: E[A-Z]+ \(.*\))?\s*$/.exec(l)?.[1] ?? NaN));
      const single = calls.filter((l) => l.includes('sendmsg(') && /= 1$/.test(l.trim())).length;
      // The duplicates queued sends kept: each one closed after its message went, in native mode
      // mostly by close_range over consecutive numbers (CAPS.closeRange), in the fallback mode by close.
      // Only duplicates of the file sent count: the runtime makes its own (Bun dups stdout at start).
      const dups = new Set<number>();
      let closedAlone = 0;
      let closedInRanges = 0;
      let ranges = 0;
      for (const l of lines) {
        // fcntl64 on 32-bit (ia32): glibc's fcntl is that call there.
        const dup = new RegExp(`\\bfcntl(?:64)?\\(${report.fileFd}, F_DUPFD_CLOEXEC, \\d+\\)\\s+= (\\d+)`).exec(l);
        if (dup) dups.add(Number(dup[1]));
        const closed = /\bclose\((\d+)\)\s+= 0/.exec(l);
        if (closed && dups.delete(Number(closed[1]))) closedAlone++;
        const range = /\bclose_range\((\d+), (\d+), 0\)\s+= 0/.exec(l);
        if (range) {
          ranges++;
          for (let fd = Number(range[1]); fd <= Number(range[2]); fd++) if (dups.delete(fd)) closedInRanges++;
        }
      }
      expect([...dups], 'duplicates never closed').toEqual([]);
      expect(closedAlone + closedInRanges).toBeGreaterThanOrEqual(queued / 2);
      if (MINIMAL) {
        expect(ranges).toBe(0);
        expect(vectors).toEqual([]);
        expect(single).toBe(report.filled + queued);
        expect(receivedByVector).toBe(0);
        expect(receivedAlone).toBe(report.received);
      } else {
        // Each message came in through exactly one call; most of them several to a call.
        expect(receivedByVector + receivedAlone).toBe(report.received);
        expect(receivedByVector).toBeGreaterThanOrEqual(report.received / 2);
        expect(Math.max(...receives.filter((r) => r.vector).map((r) => r.n))).toBeGreaterThan(1);
        // Every message either went alone (the fill, and a send finding room at once) or in a vector.
        const inVectors = vectors.filter((n) => n > 0).reduce((s, n) => s + n, 0);
        expect(single + inVectors).toBe(report.filled + queued);
        expect(inVectors).toBeGreaterThanOrEqual(queued / 2);
        expect(Math.max(...vectors)).toBeGreaterThan(1);
        expect(closedInRanges).toBeGreaterThan(closedAlone);
        expect(closedInRanges).toBeGreaterThan(ranges);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
