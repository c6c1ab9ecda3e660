/**
 * Privilege separation: a broker (this process) opens files its clients may not open, and
 * passes the open descriptors to the clients it trusts. Trust is decided by the kernel's word
 * on who connected — peerCredentials() (SO_PEERCRED) — never by anything the client says, and
 * the client names a file from the broker's own list, never a path.
 *
 * Run as root (as CI does), the broker owns a file with mode 0600 and allows uid `nobody`:
 *   - a client running as nobody cannot open() the file (EACCES) but reads it through the fd;
 *   - a client running as `daemon` (uid 1) is refused: its uid is not on the list.
 * Run as another user, there is no privilege to separate: the broker allows your own uid and
 * the example shows only the protocol.
 * Runs with no arguments. In your own project, import from 'fdpass' instead of '../src/index.js'.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listen, type UnixSocket } from '../src/index.js';

const say = (text: string): void => console.log(`broker: ${text}`);
const watchdog = setTimeout(() => {
  console.error('broker: the example took more than 20 s, giving up');
  process.exit(1);
}, 20_000);
watchdog.unref();

/** uid and gid of a user from /etc/passwd (Node has no getpwnam). */
function userOf(name: string, fallback: number): { uid: number; gid: number } {
  const fields = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`))?.split(':');
  return fields ? { uid: Number(fields[2]), gid: Number(fields[3]) } : { uid: fallback, gid: fallback };
}

const isRoot = process.getuid!() === 0;
const me = { uid: process.getuid!(), gid: process.getgid!() };
const nobody = isRoot ? userOf('nobody', 65534) : me;
const daemon = userOf('daemon', 1);

// The secret: readable by its owner only. The directory lets anyone reach the socket.
const dir = mkdtempSync(join(tmpdir(), 'fdpass-broker-'));
chmodSync(dir, 0o755);
const secretPath = join(dir, 'secret.txt');
writeFileSync(secretPath, 'the broker opened this for you\n', { mode: 0o600 });
const files = new Map([['secret.txt', secretPath]]); // names clients may ask for
const allowed = new Set([nobody.uid]);
say(`secret file ${secretPath}, mode 0600, owner uid ${process.getuid!()}; allowed uids: ${[...allowed].join(', ')}`);

// Anyone may connect (mode 0666); what they get depends on who the kernel says they are.
const socketPath = join(dir, 'broker.sock');
const server = listen({ path: socketPath, mode: 0o666 });
say(`listening on ${socketPath}`);

async function serve(conn: UnixSocket): Promise<void> {
  try {
    const { uid, pid } = conn.peerCredentials();
    const request = await conn.recv();
    if (!request) return;
    const { open: name } = JSON.parse(request.data.toString()) as { open?: string };
    const path = name === undefined ? undefined : files.get(name);
    if (!allowed.has(uid)) {
      say(`pid ${pid} uid ${uid} asked for ${name}: refused (uid not allowed)`);
      await conn.send(JSON.stringify({ ok: false, reason: `uid ${uid} is not allowed` }));
    } else if (path === undefined) {
      await conn.send(JSON.stringify({ ok: false, reason: `no file named ${name}` }));
    } else {
      const fd = openSync(path, 'r');
      say(`pid ${pid} uid ${uid} asked for ${name}: sending an open descriptor`);
      await conn.send(JSON.stringify({ ok: true }), [fd], { close: true }); // our copy closes once sent
    }
  } finally {
    conn.close();
  }
}
void (async () => {
  for await (const conn of server) void serve(conn);
})();

/** Run the client as `user` (root can; otherwise it runs as ourselves), collect its JSON lines. */
function runClient(user: { uid: number; gid: number }): Promise<Record<string, any>[]> {
  const client = fileURLToPath(new URL('./fixtures/broker-client.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', client, socketPath, secretPath, 'secret.txt'], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    stdio: ['ignore', 'pipe', 'inherit'],
    ...(isRoot ? { uid: user.uid, gid: user.gid } : {}),
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out.trim().split('\n').map((l) => JSON.parse(l))) : reject(new Error(`client exited with ${code}`))));
  });
}

let failed = false;
for (const user of isRoot ? [nobody, daemon] : [nobody]) {
  const [who, open, got] = await runClient(user);
  console.log(`client uid ${who.uid}: open(${secretPath}) → ${open.ok ? 'opened (no privilege boundary here)' : open.code}`);
  if (got.ok) console.log(`client uid ${who.uid}: the broker sent ${got.fds} fd (${got.kind}); it reads: ${JSON.stringify(got.content)}`);
  else console.log(`client uid ${who.uid}: refused by the broker: ${got.reason}`);
  const expectGranted = allowed.has(who.uid);
  if (got.ok !== expectGranted || (isRoot && open.ok)) failed = true;
}

server.close();
rmSync(dir, { recursive: true, force: true });
say(failed ? 'something did not go as expected' : 'done');
process.exit(failed ? 1 : 0);
