/**
 * systemd socket activation and sd_notify, from a tsx script, end to end.
 *
 * Run with no arguments, this script plays the service manager: it starts itself under
 * Debian's `systemd-socket-activate` (package `systemd`), which binds a Unix socket and starts
 * the service on the first connection with LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES; without that
 * tool it passes the socket the same way itself. It also binds a NOTIFY_SOCKET to hear the
 * service's READY=1. Then it makes one HTTP request over the socket and waits for the service
 * to exit.
 *
 * Started by a service manager (LISTEN_FDS is set), the script is the service: one line turns
 * the passed socket into an http.Server, and notify() says it is ready.
 * In your own project, import from 'fdpass' instead of '../src/index.js'.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listen, listenServers, notify, systemd } from '../src/index.js';

if (process.env.LISTEN_FDS) {
  // ---- the service --------------------------------------------------------------------------
  const [{ name, server }] = await listenServers({
    createServer: () =>
      http.createServer((req, res) => {
        res.setHeader('Connection', 'close');
        res.end(`hello from pid ${process.pid}, serving on the socket named "${name}"\n`);
        server.close(); // one request is enough for a demo
      }),
  });
  console.log(`service: pid ${process.pid} took the socket "${name}" from the service manager`);
  await notify({ READY: 1, STATUS: `serving ${name}` });
} else {
  // ---- the service manager ------------------------------------------------------------------
  const dir = mkdtempSync(join(tmpdir(), 'fdpass-activation-'));
  const socketPath = join(dir, 'web.sock');
  const notifications = systemd.listenNotify(join(dir, 'notify.sock'));
  const self = [process.execPath, ...process.execArgv, fileURLToPath(import.meta.url)];
  let child;
  let listener: ReturnType<typeof listen> | undefined;
  if (spawnSync('sh', ['-c', 'command -v systemd-socket-activate'], { stdio: 'ignore' }).status === 0) {
    child = spawn('systemd-socket-activate', ['-l', socketPath, '--fdname=web', '-E', `NOTIFY_SOCKET=${notifications.address}`, ...self], {
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    let said = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      for (const line of d.split('\n').filter(Boolean)) console.log(`systemd-socket-activate: ${line}`);
      said += d;
    });
    while (!said.includes('Listening on')) await once(child.stderr!, 'data');
  } else {
    console.log('manager: systemd-socket-activate is not installed (Debian package "systemd"); passing the socket myself');
    listener = listen({ path: socketPath, type: 'stream' });
    // What a service manager does: the socket at fd 3, LISTEN_PID = the pid that will run the service.
    child = spawn('sh', ['-c', 'LISTEN_PID=$$ exec "$@"', 'sh', ...self], {
      stdio: ['ignore', 'inherit', 'inherit', listener.fd],
      env: { ...process.env, LISTEN_FDS: '1', LISTEN_FDNAMES: 'web', NOTIFY_SOCKET: notifications.address },
    });
    // (We keep our copy until the end: nothing here accepts on it; the service does.)
  }
  console.log(`manager: listening on ${socketPath}; the service starts on the first connection`);

  const body = await new Promise<string>((resolve, reject) => {
    http.get({ socketPath, path: '/' }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve(text));
    }).on('error', reject);
  });
  console.log(`client: ${body.trim()}`);
  const ready = await notifications.recv();
  console.log(`manager: notification from pid ${ready.pid}: ${JSON.stringify(ready.state)}`);
  const [code] = (await once(child, 'exit')) as [number | null];
  console.log(`manager: the service exited with code ${code}`);
  notifications.close();
  listener?.close();
  rmSync(dir, { recursive: true, force: true });
  process.exitCode = code === 0 && ready.fields.READY === '1' ? 0 : 1;
}
