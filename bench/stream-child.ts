/**
 * Reader for bench/stream.ts: wraps fd 3 (a Unix stream socket) with IMPL (fdpass | net |
 * usocket), prints "ready", reads to end of stream counting bytes and the fds that actually
 * arrived (closing each), then prints { bytes, fds, cpuMicros } (CPU time used since "ready").
 *
 *   node --import tsx bench/stream-child.ts IMPL bytes|fds
 */
import { closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { USocket } from '../src/index.js';

const [impl, mode] = process.argv.slice(2);

function wrap(fd: number): Duplex {
  if (impl === 'fdpass') return new USocket({ fd });
  if (impl === 'net') return new net.Socket({ fd, readable: true, writable: true });
  const usocket = createRequire(process.env.BENCH_USOCKET_MODULE!)('usocket') as { USocket: new (o: object) => Duplex };
  return new usocket.USocket({ fd });
}

const s = wrap(3);
let bytes = 0;
let fds = 0;
if (mode === 'bytes') {
  s.on('data', (d: Buffer) => (bytes += d.length));
} else {
  const reader = s as Duplex & { read(size: null, count: null): { data: Buffer | null; fds: number[] } | null };
  s.on('readable', () => {
    for (;;) {
      const m = reader.read(null, null);
      if (m === null || (m.data === null && m.fds.length === 0)) return;
      if (m.data) bytes += m.data.length;
      for (const fd of m.fds) closeSync(fd);
      fds += m.fds.length;
    }
  });
}
s.on('end', () => {
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(JSON.stringify({ bytes, fds, cpuMicros: cpu.user + cpu.system }) + '\n');
  process.exit(0);
});
s.on('error', (err) => {
  process.stderr.write(`stream-child ${impl}: ${err.message}\n`);
  process.exit(1);
});
const cpu0 = process.cpuUsage();
process.stdout.write('ready\n');
