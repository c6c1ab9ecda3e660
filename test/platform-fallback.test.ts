/**
 * The fallback code paths, run on this Linux machine: a child started with the test-only
 * FDPASS_CAPABILITIES=minimal behaves as a platform without atomic close-on-exec, MSG_NOSIGNAL,
 * SEQPACKET, credential messages and fchmod on sockets (darwin's situation), and reports what
 * the kernel says about every descriptor it made. Runs the same in either mode of the suite.
 *
 * Not runnable here: SO_NOSIGPIPE (Linux has no such option), darwin's LOCAL_PEERPID and the
 * BSD peer-credential structs. Those paths are checked against the reference data only
 * (platform-reference.test.ts), never run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, socketPair } from '../src/index.js';
import { C } from '../src/libc.js';
import { domainFromName, getIntOption } from '../src/sockopt.js';
import { denoLimit, expectNoFdLeak, spawnFixture } from './helpers.js';

let dir: string;
let report: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fdpass-fallback-'));
  const fx = spawnFixture('fallback-probe', [dir], [], { FDPASS_CAPABILITIES: 'minimal' });
  const { code, signal, stdout, stderr } = await fx.exited;
  expect({ code, signal, stderr }).toEqual({ code: 0, signal: null, stderr: '' });
  report = JSON.parse(stdout.trim());
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('FDPASS_CAPABILITIES=minimal: the fallback paths, run for real', () => {
  it('selects the fallbacks, and the atomic calls are not even bound', () => {
    expect(report.mode).toBe('minimal');
    expect(report.capabilities).toMatchObject({ atomicCloexec: false, sigpipe: 'process_ignores', seqpacket: false, singleRightsMessage: true, fchmodSocket: false, credentialMessages: null });
    expect(report.bound).toEqual({ accept4: false, pipe2: false });
    expect(report.flags).toEqual({ sendNoSignal: false, recvCmsgCloexec: false });
  });

  it('socketPair() defaults to framed (a SOCK_STREAM pair); both ends close-on-exec and blocking', () => {
    expect(report.pair).toEqual({ type: 'framed', kernelType: 'stream', cloexec: [true, true], nonblocking: [false, false] });
  });

  it('pipe() ends and received descriptors (sync and async) are close-on-exec, set by fcntl', () => {
    expect(report.pipe).toEqual([true, true]);
    expect(report.received).toEqual({ sync: [true, true], async: [true] });
  });

  it('listen/connect/accept: framed by default, close-on-exec, only the listener non-blocking, the requested file mode', () => {
    expect(report.server).toEqual({
      type: 'framed', clientType: 'framed', connType: 'framed', mode: '640',
      cloexec: [true, true, true], nonblocking: [true, false, false],
      message: 'over a path', fdCloexec: true,
    });
  });

  it('a send to a closed stream peer is EPIPE, sync and async, and the process lives on (Node ignores SIGPIPE)', () => {
    expect(report.sigpipe).toEqual({ sync: 'EPIPE', async: 'EPIPE' });
  });

  it('what the platform lacks fails at the call with ERR_FDPASS_UNSUPPORTED, naming the alternative', () => {
    const u = report.unsupported as Record<string, string>;
    for (const key of ['seqpacketPair', 'seqpacketListen']) {
      expect(u[key]).toMatch(/^ERR_FDPASS_UNSUPPORTED: AF_UNIX SOCK_SEQPACKET \('seqpacket'\) is not available on linux-\w+-\w+ \(FDPASS_CAPABILITIES=minimal\); use 'framed'.* or 'dgram'$/);
    }
    expect(u.seqpacketConnect).toBe('ERR_FDPASS_UNSUPPORTED');
    expect(u.passCredentials).toMatch(/^ERR_FDPASS_UNSUPPORTED: passCredentials\(\).*use peerCredentials\(\)/);
    expect(u.sendCredentials).toMatch(/^ERR_FDPASS_UNSUPPORTED: sending credentials.*peerCredentials\(\)/);
    expect(u.listenNotify).toMatch(/^ERR_FDPASS_UNSUPPORTED: listenNotify\(\)/);
  });
});

describe('the address-family fallback (darwin and NetBSD have no SO_DOMAIN)', () => {
  it('getsockname\'s family equals SO_DOMAIN for unix, inet and inet6 sockets', async () => {
    if (await denoLimit('net-no-fd')) return;
    await expectNoFdLeak(async () => {
      const [a, b] = socketPair('dgram');
      const server = listen({ path: join(dir, 'domain.sock') });
      const tcp4 = net.createServer().listen(0, '127.0.0.1');
      const tcp6 = net.createServer().listen(0, '::1');
      await Promise.all([tcp4, tcp6].map((s) => new Promise((resolve) => s.once('listening', resolve))));
      try {
        const fd4 = (tcp4 as unknown as { _handle: { fd: number } })._handle.fd;
        const fd6 = (tcp6 as unknown as { _handle: { fd: number } })._handle.fd;
        for (const [fd, family] of [[a.fd, C.AF_UNIX], [server.fd, C.AF_UNIX], [fd4, C.AF_INET], [fd6, C.AF_INET6]]) {
          expect(domainFromName(fd)).toBe(family);
          expect(getIntOption(fd, C.SO_DOMAIN!)).toBe(family);
        }
      } finally {
        a.close();
        b.close();
        server.close();
        await Promise.all([tcp4, tcp6].map((s) => new Promise((resolve) => s.close(resolve))));
      }
    });
  });
});
