/**
 * A small bounded HTTP load generator for 127.0.0.1 only (raw net, no http client overhead).
 *   node-loadgen.ts <port> conn|keepalive <total requests> <concurrency> <max seconds>
 * conn:      every request on a new connection (Connection: close) — measures connections/s
 * keepalive: <concurrency> connections, requests back to back on each — measures requests/s
 * Prints {"ok": n, "errors": n, "seconds": s} on stdout.
 */
import net from 'node:net';

const [portArg, mode, totalArg, concArg, maxArg] = process.argv.slice(2);
const port = Number(portArg);
const total = Number(totalArg);
const concurrency = Number(concArg);
const deadline = performance.now() + Number(maxArg) * 1000;
const HOST = '127.0.0.1';
const closeReq = Buffer.from(`GET / HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
const keepReq = Buffer.from(`GET / HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);

let started = 0;
let ok = 0;
let errors = 0;
const more = (): boolean => started < total && performance.now() < deadline;

function oneConnection(): Promise<void> {
  return new Promise((resolve) => {
    started++;
    let head = '';
    const s = net.connect(port, HOST, () => s.end(closeReq));
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      if (head.length < 16) head += d;
    });
    s.on('error', () => {});
    s.on('close', (hadError) => {
      if (!hadError && head.startsWith('HTTP/1.1 200')) ok++;
      else errors++;
      resolve();
    });
  });
}

function keepAliveLoop(): Promise<void> {
  return new Promise((resolve) => {
    let buf = '';
    const s = net.connect(port, HOST);
    s.setEncoding('latin1');
    s.setNoDelay(true);
    const send = (): void => {
      if (!more()) {
        s.end();
        return;
      }
      started++;
      s.write(keepReq);
    };
    s.on('connect', send);
    s.on('data', (d: string) => {
      buf += d;
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const m = /content-length: *(\d+)/i.exec(buf.slice(0, end));
        const length = m ? Number(m[1]) : 0;
        if (buf.length < end + 4 + length) return;
        if (buf.startsWith('HTTP/1.1 200')) ok++;
        else errors++;
        buf = buf.slice(end + 4 + length);
        send();
      }
    });
    s.on('error', () => errors++);
    s.on('close', () => resolve());
  });
}

const t0 = performance.now();
if (mode === 'conn') {
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (more()) await oneConnection();
  }));
} else {
  await Promise.all(Array.from({ length: concurrency }, () => keepAliveLoop()));
}
const seconds = (performance.now() - t0) / 1000;
process.stdout.write(JSON.stringify({ ok, errors, seconds }) + '\n');
