/**
 * OCI console socket (runc --console-socket), with a python3 stand-in that does exactly what
 * runc's code does (see the fixture's header) — a real pty from /dev/ptmx, its master sent over
 * a SOCK_STREAM connection with the name "/dev/ptmx" — so that malformed senders can be tested
 * too. The real runc is tested in protocols-runc.test.ts.
 */
import { mkdtempSync, rmSync, writeSync } from './fdfs.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listen, socketPair } from '../src/index.js';
import { receiveConsole } from '../src/protocols/console.js';
import { expectNoFdLeak, requirePeer } from './helpers.js';
import { Peers, cleanExit, fixture, readUntil, unlessPeerFails } from './fixtures/interop-util.js';

const peers = new Peers();
afterEach(() => peers.killAll());

let dir: string;
beforeAll(() => {
  requirePeer('python3');
  dir = mkdtempSync(join(tmpdir(), 'fdpass-console-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SENDER = fixture('interop-runc-console.py');

describe('receiveConsole(server)', () => {
  it("takes the pty master a runtime sends, and talks to the container's terminal through it", async () => {
    await expectNoFdLeak(async () => {
      const path = join(dir, 'console.sock');
      const server = listen({ path, type: 'stream' }); // runc dials with net.Dial("unix"): SOCK_STREAM
      const sender = peers.start('python3', [SENDER, path]);
      const { fd, name } = await unlessPeerFails(sender, receiveConsole(server));
      server.close();
      expect(name).toBe('/dev/ptmx');
      const desc = fd.describe();
      expect(desc.kind).toBe('tty');
      expect(desc.closeOnExec).toBe(true);
      expect(desc.openFlags[0]).toBe('O_RDWR');

      const report = await sender.waitFor((l) => l.slave !== undefined, 'the container side');
      expect(readUntil(fd.fd, '\n')).toBe(`container ${report.pid} says hello on ${report.slave}\n`);
      writeSync(fd.fd, 'typed into the console\n');
      expect(readUntil(fd.fd, 'console\n')).toBe('container got: typed into the console\n');
      const got = await sender.waitFor((l) => l.got !== undefined, 'what the container read');
      expect(got.got).toBe('typed into the console\n');
      await cleanExit(sender);
      fd.close();
    });
  });

  it('reads from an already accepted connection and leaves it open', async () => {
    await expectNoFdLeak(async () => {
      const path = join(dir, 'console2.sock');
      const server = listen({ path, type: 'stream' });
      const sender = peers.start('python3', [SENDER, path]);
      const conn = await unlessPeerFails(sender, server.accept());
      const { fd, name } = await receiveConsole(conn);
      expect(conn.closed).toBe(false);
      expect(name).toBe('/dev/ptmx');
      expect(fd.describe().kind).toBe('tty');
      const report = await sender.waitFor((l) => l.slave !== undefined, 'the container side');
      expect(readUntil(fd.fd, '\n')).toContain(`container ${report.pid} says hello`);
      writeSync(fd.fd, 'bye\n');
      await cleanExit(sender);
      expect(await conn.recv()).toBeNull(); // runc closes its end after sending
      conn.close();
      server.close();
      fd.close();
    });
  });

  const bad: { scenario: string; code: string; message: RegExp; options?: { requireTty: boolean } }[] = [
    { scenario: 'two-fds', code: 'ERR_FDPASS_PROTOCOL', message: /expected exactly one descriptor, got 2 \(closed all 2\)/ },
    { scenario: 'no-fd', code: 'ERR_FDPASS_PROTOCOL', message: /expected exactly one descriptor, got 0$/ },
    { scenario: 'not-a-tty', code: 'ERR_FDPASS_PROTOCOL', message: /not a terminal \(it is pipe\) \(closed it\)/ },
    { scenario: 'long-name', code: 'ERR_FDPASS_PROTOCOL', message: /4096 bytes or longer \(closed it\)/ },
    { scenario: 'close', code: 'ERR_FDPASS_EOF', message: /without sending a console/ },
  ];
  for (const c of bad) {
    it(`a sender that misbehaves (${c.scenario}): ${c.code}, nothing leaked`, async () => {
      await expectNoFdLeak(async () => {
        const path = join(dir, `bad-${c.scenario}.sock`);
        const server = listen({ path, type: 'stream' });
        const sender = peers.start('python3', [SENDER, path, c.scenario]);
        const err = await unlessPeerFails(sender, receiveConsole(server)).then(() => null, (e: unknown) => e as { code: string; message: string });
        server.close();
        await cleanExit(sender);
        expect(err).not.toBeNull();
        expect(err!.code).toBe(c.code);
        expect(err!.message).toMatch(c.message);
      });
    });
  }

  it('requireTty: false accepts any descriptor', async () => {
    await expectNoFdLeak(async () => {
      const path = join(dir, 'any.sock');
      const server = listen({ path, type: 'stream' });
      const sender = peers.start('python3', [SENDER, path, 'not-a-tty']);
      const { fd, name } = await unlessPeerFails(sender, receiveConsole(server, { requireTty: false }));
      server.close();
      await cleanExit(sender);
      expect(name).toBe('/dev/null');
      expect(fd.describe().kind).toBe('pipe');
      fd.close();
    });
  });

  it('an AbortSignal cancels the wait; the server stays usable', async () => {
    await expectNoFdLeak(async () => {
      const path = join(dir, 'abort.sock');
      const server = listen({ path, type: 'stream' });
      const ac = new AbortController();
      const pending = receiveConsole(server, { signal: ac.signal });
      ac.abort();
      await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
      const sender = peers.start('python3', [SENDER, path]);
      const { fd } = await unlessPeerFails(sender, receiveConsole(server));
      server.close();
      expect(fd.describe().kind).toBe('tty');
      await sender.waitFor((l) => l.slave !== undefined, 'the container side');
      writeSync(fd.fd, 'bye\n');
      await cleanExit(sender);
      fd.close();
    });
  });

  it('rejects a source that is not a UnixServer or UnixSocket', async () => {
    const [a, b] = socketPair();
    await expect(receiveConsole({} as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(receiveConsole(a, { requireTty: 'yes' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    a.close();
    b.close();
  });
});
