/**
 * The platform loader as a pure function: every supported key resolves to its table and libc
 * (without touching this machine), Windows and unknown platforms get a clear error, the
 * test-only FDPASS_CAPABILITIES switch swaps in the fallbacks, and every capability names only
 * constants its table has.
 */
import { describe, expect, it } from 'vitest';
import { cmsgLayoutOf, credentialCodecOf } from '../src/cmsg.js';
import { CAPABILITIES_ENV, lookupPlatform, resolvePlatform, supportedPlatforms, type Platform } from '../src/platform/index.js';

function query(key: string, extra: { endianness?: 'little' | 'big'; capabilities?: string } = {}) {
  const [os, arch, libc] = key.split('-');
  return { os, arch, libc: libc as 'glibc' | 'musl' | undefined, ...extra };
}

const expectedLibc: Record<string, string | null> = {
  linux: 'libc.so.6',
  darwin: '/usr/lib/libSystem.B.dylib',
  freebsd: 'libc.so.7',
  openbsd: null,
  netbsd: 'libc.so.12',
};

describe('resolvePlatform', () => {
  it('knows linux x64/arm64/ia32/arm/riscv64/ppc64/loong64/s390x with glibc and musl, darwin, FreeBSD, OpenBSD, NetBSD', () => {
    const linux = ['x64', 'arm64', 'ia32', 'arm', 'riscv64', 'ppc64', 'loong64', 's390x'].flatMap((a) => [`linux-${a}-glibc`, `linux-${a}-musl`]);
    const others = ['darwin-x64', 'darwin-arm64', 'freebsd-x64', 'freebsd-arm64', 'freebsd-ia32', 'freebsd-arm', 'openbsd-x64', 'openbsd-arm64', 'netbsd-x64'];
    expect([...supportedPlatforms].sort()).toEqual([...linux, ...others].sort());
  });

  it.each(supportedPlatforms)('%s: its table, its libc, its byte order', (key) => {
    const result = resolvePlatform(query(key));
    expect(result.error).toBeUndefined();
    const p = result.platform!;
    expect(p.name).toBe(key);
    expect(`${p.os}-${p.arch}${p.os === 'linux' ? `-${p.libc}` : ''}`).toBe(key);
    expect(p.libcName).toBe(p.libc === 'musl' ? null : expectedLibc[p.os]);
    expect(p.symbols).toEqual(p.os === 'netbsd' ? { socket: '__socket30' } : {});
    expect(p.capabilityMode).toBe('native');
    expect(p).toEqual({ ...lookupPlatform(key)!, capabilityMode: 'native' });
    // The same key with the right byte order resolves; the wrong one is refused.
    expect(resolvePlatform(query(key, { endianness: p.endianness })).platform?.name).toBe(key);
    const other = p.endianness === 'big' ? 'little' : 'big';
    expect(resolvePlatform(query(key, { endianness: other })).error).toEqual({
      code: 'ERR_FDPASS_UNSUPPORTED_PLATFORM',
      message: `fdpass's table for ${key} is ${p.endianness}-endian, but this machine is ${other}-endian`,
    });
  });

  it('s390x is the one big-endian table; every 32-bit table is ia32 or arm', () => {
    expect(supportedPlatforms.filter((k) => lookupPlatform(k)!.endianness === 'big')).toEqual(['linux-s390x-glibc', 'linux-s390x-musl']);
    expect(supportedPlatforms.filter((k) => lookupPlatform(k)!.layouts.pointerSize === 4).map((k) => lookupPlatform(k)!.arch).sort())
      .toEqual(['arm', 'arm', 'arm', 'ia32', 'ia32', 'ia32']);
  });

  it('Windows: a clear error that says why (no SCM_RIGHTS) and what to do', () => {
    for (const arch of ['x64', 'arm64', 'ia32']) {
      const { error, platform } = resolvePlatform({ os: 'win32', arch });
      expect(platform).toBeUndefined();
      expect(error?.code).toBe('ERR_FDPASS_UNSUPPORTED_PLATFORM');
      expect(error?.message).toMatch(/Windows has no SCM_RIGHTS/);
      expect(error?.message).toMatch(/WSL/);
    }
  });

  it('a platform without a table (Android, AIX, mips, a BSD arch without reference data) is named in the error', () => {
    for (const [os, arch, libc] of [['android', 'arm64'], ['aix', 'ppc64'], ['linux', 'mips64el', 'glibc'], ['openbsd', 'ia32'], ['sunos', 'x64']] as const) {
      const { error } = resolvePlatform({ os, arch, libc: libc as 'glibc' | undefined });
      expect(error?.code).toBe('ERR_FDPASS_UNSUPPORTED_PLATFORM');
      expect(error?.message).toContain(`no platform table for ${os}-${arch}`);
      expect(error?.message).toContain('linux-x64-glibc');
    }
  });
});

describe(`${CAPABILITIES_ENV} (test only)`, () => {
  it("'minimal' replaces the capabilities the Linux build can emulate by their fallbacks, nothing else", () => {
    for (const key of supportedPlatforms) {
      const native = resolvePlatform(query(key)).platform!;
      const minimal = resolvePlatform(query(key, { capabilities: 'minimal' })).platform!;
      expect(minimal.capabilityMode).toBe('minimal');
      expect(minimal.capabilities).toEqual({
        ...native.capabilities,
        atomicCloexec: false,
        sigpipe: 'process_ignores',
        seqpacket: false,
        singleRightsMessage: true,
        messageVectors: false,
        closeRange: false,
        fchmodSocket: false,
        credentialMessages: null,
      });
      const { capabilities: _a, capabilityMode: _b, ...restMinimal } = minimal;
      const { capabilities: _c, capabilityMode: _d, ...restNative } = native;
      expect(restMinimal).toEqual(restNative);
    }
  });

  it("'' and 'native' are the platform's own; anything else is an error, not silently ignored", () => {
    for (const value of ['', 'native', undefined]) {
      expect(resolvePlatform(query('linux-x64-glibc', { capabilities: value })).platform?.capabilityMode).toBe('native');
    }
    expect(resolvePlatform(query('linux-x64-glibc', { capabilities: 'minimum' })).error).toEqual({
      code: 'ERR_FDPASS_INVALID_ENV',
      message: "FDPASS_CAPABILITIES=minimum: expected 'minimal' or 'native' (a test-only switch)",
    });
  });
});

describe.each(supportedPlatforms.map((k) => [k, lookupPlatform(k)!] as const))('%s: capabilities and constants agree', (_key, p: Platform) => {
  it('every constant a capability needs is in the table', () => {
    const c = p.constants;
    const caps = p.capabilities;
    if (caps.atomicCloexec) expect([c.SOCK_CLOEXEC, c.SOCK_NONBLOCK, c.MSG_CMSG_CLOEXEC]).not.toContain(null);
    if (caps.sigpipe === 'so_nosigpipe') expect(c.SO_NOSIGPIPE).not.toBeNull();
    const peer = caps.peerCredentials;
    for (const name of [peer.level, peer.option, ...(peer.pidOption ? [peer.pidOption] : [])]) expect(c[name], name).not.toBeNull();
    const cm = caps.credentialMessages;
    if (cm !== null) {
      for (const name of [cm.type, cm.enableLevel, cm.enableOption]) expect(c[name], name).not.toBeNull();
      expect(credentialCodecOf(p)).toMatchObject({ type: c[cm.type], ...p.layouts.credentialMessage });
    } else expect(credentialCodecOf(p)).toBeNull();
    // A struct without a pid needs a pid option (darwin's LOCAL_PEERPID).
    if (p.layouts.peerCred.pid === null) expect(peer.pidOption).not.toBeNull();
    if (caps.pidfd) expect(p.linux).not.toBeNull();
    expect(cmsgLayoutOf(p)).toEqual({ ...p.layouts.cmsghdr, endianness: p.endianness });
  });

  it('struct fields lie inside their structs, 4-aligned where fdpass reads them as ints', () => {
    const L = p.layouts;
    const inside = (offset: number, size: number, total: number): boolean => offset >= 0 && offset + size <= total;
    expect(inside(L.msghdr.iovlen, L.msghdr.iovlenSize, L.msghdr.size)).toBe(true);
    expect(inside(L.msghdr.controllen, L.msghdr.controllenSize, L.msghdr.size)).toBe(true);
    expect(inside(L.msghdr.flags, 4, L.msghdr.size)).toBe(true);
    expect(inside(L.cmsghdr.len, L.cmsghdr.lenSize, L.cmsghdr.size)).toBe(true);
    expect(inside(L.cmsghdr.type, 4, L.cmsghdr.size)).toBe(true);
    expect(inside(L.sockaddr_un.path, L.sockaddr_un.pathSize, L.sockaddr_un.size)).toBe(true);
    for (const off of [L.msghdr.iovlen, L.msghdr.controllen, L.msghdr.flags, L.cmsghdr.len, L.cmsghdr.level, L.cmsghdr.type, L.iovec.len]) expect(off % 4).toBe(0);
    for (const off of [L.peerCred.uid, L.peerCred.gid, ...(L.peerCred.pid === null ? [] : [L.peerCred.pid])]) expect(inside(off, 4, L.peerCred.size)).toBe(true);
  });
});
