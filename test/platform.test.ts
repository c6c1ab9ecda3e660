/**
 * The host's platform table (src/platform/) against the truth: the C headers (a small C program
 * compiled with `cc` at test time) and the running kernel (experiments in that program). The
 * other platforms' tables are checked against the reference data (platform-reference.test.ts).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from './fdfs.js';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cmsgAlign, cmsgLayoutOf, cmsgLen, cmsgSpace, credentialCodecOf, encodeCredentials, encodeRights, parseControl } from '../src/cmsg.js';
import { errnoNumber } from '../src/errors.js';
import { platform as loadedPlatform, socketPair } from '../src/index.js';
import * as libc from '../src/libc.js';
import { MAX_FDS_CONTROL_BYTES } from '../src/msghdr.js';
import { lookupPlatform, platformKey, type Platform, type PlatformConstants } from '../src/platform/index.js';
import { expectNoFdLeak, requirePeer } from './helpers.js';

interface Probe {
  libc: 'glibc' | 'musl';
  constants: Record<keyof PlatformConstants, number | null>;
  layouts: Platform['layouts'];
  cmsg: Record<string, { len: number; space: number; align: number }>;
  errno: Record<string, number>;
  encoded: { rights: string; credentials: string; both: string };
  kernel: {
    scmMaxFd: {
      setupErrno?: number;
      send253: number;
      send253Errno: number;
      recv253: number;
      recv253Flags: number;
      send254: number;
      send254Errno: number;
    };
    received: {
      setupErrno?: number;
      sendErrno?: number;
      recvErrno?: number;
      passPidfd: 0 | 1;
      pid: number;
      uid: number;
      gid: number;
      flags: number;
      controllen: number;
      control: string;
      /** [level, type, cmsg_len, ...ints of the payload] per message, as CMSG_NXTHDR walks them. */
      messages: number[][];
    };
  };
}

const source = fileURLToPath(new URL('./fixtures/c/platform_probe.c', import.meta.url));
let dir = '';
let probe: Probe;
let table: Platform;

beforeAll(() => {
  requirePeer('cc');
  dir = mkdtempSync(join(tmpdir(), 'fdpass-platform-'));
  const exe = join(dir, 'platform_probe');
  execFileSync('cc', ['-std=c11', '-Wall', '-Wextra', '-O0', '-o', exe, source], { stdio: ['ignore', 'pipe', 'pipe'] });
  probe = JSON.parse(execFileSync(exe, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })) as Probe;
  const found = lookupPlatform(platformKey(process.platform, process.arch, probe.libc));
  if (!found) throw new Error(`no platform table for ${platformKey(process.platform, process.arch, probe.libc)}`);
  table = found;
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('platform selection', () => {
  it('picks the table for this machine (os, arch, and the libc the C compiler links)', () => {
    expect(table.name).toBe(`linux-${process.arch}-${probe.libc}`);
    // The table libc.ts loaded at import is the same one (its capabilities may be the test-only minimal set).
    const { capabilities: _c, capabilityMode: _m, ...loaded } = loadedPlatform;
    const { capabilities: _tc, capabilityMode: _tm, ...expected } = table;
    expect(loaded).toEqual(expected);
    expect(table.libcName).toBe(probe.libc === 'glibc' ? 'libc.so.6' : null);
  });
});

describe('constants match the C headers', () => {
  it('every constant the headers define has the table value; the ones they lack are absent from the table', () => {
    const names = Object.keys(table.constants) as (keyof PlatformConstants)[];
    // The probe prints every field of PlatformConstants, no more, no less.
    expect(Object.keys(probe.constants).sort()).toEqual([...names].sort());
    const mismatches = names
      .filter((name) => probe.constants[name] !== null && probe.constants[name] !== table.constants[name])
      .map((name) => `${name}: table ${table.constants[name]}, C ${probe.constants[name]}`);
    expect(mismatches).toEqual([]);
    // The headers lack SCM_PIDFD when older than the kernel (checked against the kernel below)
    // and SCM_MAX_FD (kernel-internal); every other constant they lack, the table lacks too.
    const extra = names.filter((name) => probe.constants[name] === null && table.constants[name] !== null);
    expect(extra.filter((n) => n !== 'SCM_PIDFD' && n !== 'SCM_MAX_FD')).toEqual([]);
  });

  it('SCM_PIDFD is the type the kernel gives the pidfd message', () => {
    const { received } = probe.kernel;
    expect(received.setupErrno ?? received.sendErrno ?? received.recvErrno).toBeUndefined();
    const types = received.messages.filter(([level]) => level === table.constants.SOL_SOCKET).map(([, type]) => type);
    const pidfdTypes = types.filter((t) => t !== table.constants.SCM_RIGHTS && t !== table.constants.SCM_CREDENTIALS);
    if (received.passPidfd) {
      // Linux 6.5+: with SO_PASSPIDFD on, exactly one extra SOL_SOCKET message arrives: the pidfd.
      expect(pidfdTypes).toEqual([table.constants.SCM_PIDFD]);
    } else {
      // Older kernel: nothing to observe; the value is the kernel's
      // include/uapi/asm-generic/socket.h `#define SCM_PIDFD 0x04`.
      expect(pidfdTypes).toEqual([]);
      expect(table.constants.SCM_PIDFD).toBe(4);
    }
    if (probe.constants.SCM_PIDFD !== null) expect(table.constants.SCM_PIDFD).toBe(probe.constants.SCM_PIDFD);
  });

  it('SCM_MAX_FD is the kernel limit: 253 fds in one sendmsg work, 254 fail with EINVAL', () => {
    // include/net/scm.h (not userspace): #define SCM_MAX_FD 253. Proved by the raw syscall in C.
    const r = probe.kernel.scmMaxFd;
    expect(r.setupErrno).toBeUndefined();
    expect(table.constants.SCM_MAX_FD).toBe(253);
    expect({ ret: r.send253, errno: r.send253Errno }).toEqual({ ret: 1, errno: 0 });
    expect(r.recv253).toBe(253);
    expect(r.recv253Flags & table.constants.MSG_CTRUNC).toBe(0);
    expect({ ret: r.send254, errno: r.send254Errno }).toEqual({ ret: -1, errno: osConstants.errno.EINVAL });
  });

  it('errno values the library uses are the same in C and in Node', () => {
    const names = ['EAGAIN', 'EINTR', 'EPROTOTYPE', 'ECONNABORTED', 'ECONNREFUSED', 'ENOENT', 'EADDRINUSE', 'ETIMEDOUT', 'EBADF', 'EMFILE', 'EINVAL', 'EPIPE'] as const;
    expect(Object.keys(probe.errno).sort()).toEqual([...names, 'ETOOMANYREFS'].sort());
    for (const name of names) expect(osConstants.errno[name], name).toBe(probe.errno[name]);
    // The one Node lacks comes from the table.
    expect(table.errno.ETOOMANYREFS).toBe(probe.errno.ETOOMANYREFS);
    expect(errnoNumber('ETOOMANYREFS')).toBe(probe.errno.ETOOMANYREFS);
    // The ones libc.ts re-exports for the socket code.
    const exported = { EAGAIN: libc.EAGAIN, EINTR: libc.EINTR, EPROTOTYPE: libc.EPROTOTYPE, ECONNABORTED: libc.ECONNABORTED, ECONNREFUSED: libc.ECONNREFUSED, ENOENT: libc.ENOENT, EADDRINUSE: libc.EADDRINUSE, ETIMEDOUT: libc.ETIMEDOUT };
    for (const [name, value] of Object.entries(exported)) expect(value, name).toBe(probe.errno[name]);
  });
});

describe('layouts match the C headers', () => {
  it('sizeof/offsetof of msghdr, iovec, cmsghdr, sockaddr_un, pollfd, ucred, mmsghdr and sizeof(void *)', () => {
    expect(table.layouts).toEqual(probe.layouts);
  });

  it('cmsgLen/cmsgSpace/cmsgAlign equal CMSG_LEN/CMSG_SPACE/CMSG_ALIGN', () => {
    const sizes = Object.keys(probe.cmsg).map(Number);
    expect(sizes.sort((a, b) => a - b)).toEqual([0, 1, 4, 8, 12, 16, 253 * 4]);
    for (const n of sizes) {
      const c = probe.cmsg[String(n)];
      const L = cmsgLayoutOf(table);
      expect({ n, len: cmsgLen(n, L), space: cmsgSpace(n, L), align: cmsgAlign(n, L) }).toEqual({ n, ...c });
    }
    // The send/recv control buffers are sized for a full SCM_MAX_FD message.
    expect(MAX_FDS_CONTROL_BYTES).toBe(probe.cmsg[String(253 * 4)].space);
  });

  it('encodeRights/encodeCredentials produce the bytes CMSG_FIRSTHDR/CMSG_NXTHDR/CMSG_DATA build', () => {
    const L = cmsgLayoutOf(table);
    const U = credentialCodecOf(table)!;
    const C = table.constants;
    const fds = [3, 7, 1000];
    const cred = { pid: 1234, uid: 1000, gid: 100 };

    const rights = Buffer.alloc(cmsgSpace(fds.length * 4, L), 0xee);
    expect(encodeRights(rights, 0, fds, L, C)).toBe(rights.length);
    expect(rights.toString('hex')).toBe(probe.encoded.rights);

    const creds = Buffer.alloc(cmsgSpace(U.size, L), 0xee);
    expect(encodeCredentials(creds, 0, cred, L, U, C)).toBe(creds.length);
    expect(creds.toString('hex')).toBe(probe.encoded.credentials);

    const both = Buffer.alloc(rights.length + creds.length, 0xee);
    const first = encodeRights(both, 0, fds, L, C);
    encodeCredentials(both, first, cred, L, U, C);
    expect(both.toString('hex')).toBe(probe.encoded.both);
  });

  it('parseControl reads a control buffer exactly as the kernel filled it', () => {
    const { received } = probe.kernel;
    expect(received.setupErrno ?? received.sendErrno ?? received.recvErrno).toBeUndefined();
    const C = table.constants;
    const control = Buffer.from(received.control, 'hex');
    expect(control.length).toBe(received.controllen);
    expect(received.flags & C.MSG_CTRUNC).toBe(0);

    const parsed = parseControl(control, received.controllen, cmsgLayoutOf(table), credentialCodecOf(table), C);
    const rights = received.messages.filter(([level, type]) => level === C.SOL_SOCKET && type === C.SCM_RIGHTS);
    expect(rights).toHaveLength(1);
    expect(parsed.fds).toEqual(rights[0].slice(3));
    expect(parsed.fds).toHaveLength(3);
    expect(parsed.rightsMessages).toBe(1);
    expect(parsed.credentials).toEqual({ pid: received.pid, uid: received.uid, gid: received.gid });
    expect(parsed.extraFds).toEqual(received.passPidfd ? [received.messages.find(([, type]) => type === C.SCM_PIDFD)![3]] : []);
    expect(parsed.unknownMessages).toBe(0);
    expect(parsed.malformed).toBe(false);
  });
});

describe('SCM_MAX_FD through the library', () => {
  it('sendSync carries 253 fds in one message and recvSync hands them all out', async () => {
    await expectNoFdLeak(() => {
      const devnull = openSync('/dev/null', 'r');
      const [a, b] = socketPair();
      try {
        expect(a.sendSync('max', new Array(253).fill(devnull))).toBe(3);
        const msg = b.recvSync();
        expect(msg).not.toBeNull();
        try {
          expect(msg!.data.toString()).toBe('max');
          expect(msg!.fds).toHaveLength(253);
          expect(msg!.droppedFds).toBe(0);
          expect(new Set(msg!.fds.map((f) => f.fd)).size).toBe(253);
        } finally {
          for (const f of msg!.fds) f.close();
        }
      } finally {
        a.close();
        b.close();
        closeSync(devnull);
      }
    });
  });

  it('254 fds is a RangeError (ERR_OUT_OF_RANGE) before any syscall; nothing is sent', async () => {
    await expectNoFdLeak(async () => {
      const devnull = openSync('/dev/null', 'r');
      const [a, b] = socketPair();
      try {
        const tooMany = new Array(254).fill(devnull);
        let caught: unknown;
        try {
          a.sendSync('too many', tooMany);
        } catch (err) {
          caught = err;
        }
        expect(caught).toBeInstanceOf(RangeError);
        expect((caught as { code?: string }).code).toBe('ERR_OUT_OF_RANGE');
        expect((caught as Error).message).toMatch(/253/);
        // The async path checks too, and rejects rather than throwing.
        const rejected = await a.send('too many', tooMany).then(() => undefined, (err: unknown) => err);
        expect(rejected).toBeInstanceOf(RangeError);
        expect((rejected as { code?: string }).code).toBe('ERR_OUT_OF_RANGE');
        // Nothing reached the socket: the next message received is the one sent now.
        a.sendSync('after');
        const msg = b.recvSync();
        expect(msg!.data.toString()).toBe('after');
        expect(msg!.fds).toEqual([]);
      } finally {
        a.close();
        b.close();
        closeSync(devnull);
      }
    });
  });
});
