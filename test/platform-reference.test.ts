/**
 * Every number in every platform table (src/platform/) against the cited reference data in
 * test/data/platform-reference/platforms.json (golang/sys' generated tables, cross-checked with
 * rust-lang/libc; see its README.md and NOTES.md). Most of these platforms cannot run here:
 * this comparison is how their tables are verified. A value fdpass has that the reference lacks
 * is listed below with its own citation; an unlisted one fails the test.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { lookupPlatform, supportedPlatforms, type Platform } from '../src/platform/index.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any;

const reference = JSON.parse(readFileSync(new URL('./data/platform-reference/platforms.json', import.meta.url), 'utf8')) as Json;

interface Field { name: string; offset: number; size: number }

/** The reference entry for a table key, and whether the musl overlay applies. */
function referenceOf(key: string): { ref: Json; musl: Json | null } {
  const m = /^linux-([a-z0-9]+)-(glibc|musl)$/.exec(key);
  if (!m) return { ref: reference.platforms[key], musl: null };
  const ref = reference.platforms[`linux-${m[1]}-glibc`];
  return { ref, musl: m[2] === 'musl' ? ref.musl : null };
}

function field(fields: Field[], name: string): Field {
  const f = fields.find((x) => x.name === name || x.name.startsWith(`${name} `));
  if (!f) throw new Error(`reference has no field ${name} in ${fields.map((x) => x.name).join(', ')}`);
  return f;
}

/** Field names of the peer-credential struct per kind, in the reference's spelling. */
const peerFieldNames: Record<string, { pid: string | null; uid: string; gid: string }> = {
  ucred: { pid: 'pid', uid: 'uid', gid: 'gid' },
  sockpeercred: { pid: 'pid', uid: 'uid', gid: 'gid' },
  unpcbid: { pid: 'unp_pid', uid: 'unp_euid', gid: 'unp_egid' },
  // darwin's xucred has no cr_pid; the gid fdpass reports is cr_groups[0], the effective gid.
  xucred: { pid: 'cr_pid', uid: 'cr_uid', gid: 'cr_groups' },
};

/**
 * Values the reference does not contain, with where they come from. Keyed by table path; a
 * function gets the table key. golang/sys citations are at the reference's commit e8c1c327.
 */
const goArch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm', riscv64: 'riscv64', ppc64: 'ppc64le', loong64: 'loong64', s390x: 's390x' };
const oPathLine: Record<string, number> = { amd64: 194, arm64: 196, '386': 194, arm: 191, riscv64: 191, ppc64le: 193, loong64: 195, s390x: 191 };
const pollfdCite: Record<string, string> = {
  linux: 'golang/sys:unix/ztypes_linux.go#L944-948',
  'darwin-arm64': 'golang/sys:unix/ztypes_darwin_arm64.go#L698-702',
  'darwin-x64': 'golang/sys:unix/ztypes_darwin_amd64.go#L698-702',
  'freebsd-x64': 'golang/sys:unix/ztypes_freebsd_amd64.go#L615-619',
  'freebsd-ia32': 'golang/sys:unix/ztypes_freebsd_386.go#L610-614',
  'freebsd-arm': 'golang/sys:unix/ztypes_freebsd_arm.go#L601-605',
  'freebsd-arm64': 'golang/sys:unix/ztypes_freebsd_arm64.go#L595-599',
  'openbsd-x64': 'golang/sys:unix/ztypes_openbsd_amd64.go#L441-445',
  'openbsd-arm64': 'golang/sys:unix/ztypes_openbsd_arm64.go#L441-445',
  'netbsd-x64': 'golang/sys:unix/ztypes_netbsd_amd64.go#L461-465',
};
const inet6: Record<string, [number, string]> = {
  linux: [10, 'golang/sys:unix/zerrors_linux.go#L31'],
  darwin: [30, 'golang/sys:unix/zerrors_darwin_arm64.go#L28 (and _amd64.go#L28)'],
  freebsd: [28, 'golang/sys:unix/zerrors_freebsd_amd64.go#L31 (and _arm64/_386/_arm.go#L31)'],
  openbsd: [24, 'golang/sys:unix/zerrors_openbsd_amd64.go#L29 (and _arm64.go#L29)'],
  netbsd: [24, 'golang/sys:unix/zerrors_netbsd_amd64.go#L30'],
};

interface Extra { value: number | null; cite: string }

function fdpassOnly(key: string, path: string, p: Platform): Extra | undefined {
  const os = p.os;
  const linux = os === 'linux';
  const ga = goArch[p.arch];
  switch (path) {
    case 'constants.AF_INET':
      return { value: 2, cite: 'golang/sys:unix/zerrors_*.go AF_INET = 0x2 on every OS here (e.g. zerrors_linux.go#L30, zerrors_darwin_arm64.go#L27)' };
    case 'constants.AF_INET6':
      return { value: inet6[os][0], cite: inet6[os][1] };
    case 'constants.AF_NETLINK':
      return linux ? { value: 16, cite: 'golang/sys:unix/zerrors_linux.go#L44' } : { value: null, cite: 'netlink is Linux-only' };
    case 'constants.SOCK_RAW':
      return { value: 3, cite: 'golang/sys:unix/zerrors_linux.go#L3617, zerrors_darwin_arm64.go#L1369, zerrors_freebsd_amd64.go#L1451, zerrors_openbsd_amd64.go#L1420, zerrors_netbsd_amd64.go#L1300' };
    case 'constants.O_PATH':
      return linux
        ? { value: 0x200000, cite: `golang/sys:unix/zerrors_linux_${ga}.go#L${oPathLine[ga]}` }
        : { value: null, cite: 'fdpass names O_PATH only on Linux (describeFd); other kernels have no such open mode or fdpass does not report it' };
    case 'constants.SCM_MAX_FD':
      return { value: 253, cite: linux ? 'torvalds/linux:include/net/scm.h #define SCM_MAX_FD 253 (also proved by the host probe in platform.test.ts)' : "fdpass's own per-message limit everywhere (Linux's SCM_MAX_FD), so a message that works on one platform works on all; NOTES.md §1 (musl's sendmsg copy holds 255 fds)" };
    case 'layouts.pollfd.size':
    case 'layouts.pollfd.fd':
    case 'layouts.pollfd.events':
    case 'layouts.pollfd.revents':
      return { value: { 'layouts.pollfd.size': 8, 'layouts.pollfd.fd': 0, 'layouts.pollfd.events': 4, 'layouts.pollfd.revents': 6 }[path]!, cite: `${pollfdCite[linux ? 'linux' : key]}: type PollFd struct { Fd int32; Events int16; Revents int16 }` };
    case 'layouts.credentialMessage':
      if (os === 'netbsd') return { value: null, cite: 'NetBSD LOCAL_CREDS sends credentials once per connection on stream/seqpacket sockets (sys/kern/uipc_usrreq.c clears UNP_WANTCRED after the first message): not the per-message credentials passCredentials() promises, so fdpass offers none there' };
      return undefined;
    case 'layouts.credentialMessage.maxSize':
      if (os === 'freebsd') return { value: 32 + 15 * 4, cite: 'SOCKCRED2SIZE(CMGROUP_MAX): FreeBSD sys/kern/uipc_usrreq.c unp_addsockcred caps groups at CMGROUP_MAX; CMGROUP_MAX = 16 per the reference (struct cmsgcred cmcred_groups: 64 bytes of gid_t)' };
      return undefined;
    case 'layouts.mmsghdr':
      return linux ? undefined : { value: null, cite: 'fdpass calls sendmmsg/recvmmsg only on Linux (capabilities.messageVectors); the BSDs have them, but fdpass has never run there' };
    case 'layouts.mmsghdr.len':
    case 'layouts.mmsghdr.size': {
      // torvalds/linux:include/linux/socket.h: struct mmsghdr { struct user_msghdr msg_hdr; unsigned int msg_len; };
      // glibc and musl declare the same; the struct is aligned (and so strided) like its pointers.
      const msghdr = referenceValue(key, 'layouts.msghdr.size', p)!.value as number;
      const pointer = p.layouts.pointerSize;
      const value = path.endsWith('len') ? msghdr : Math.ceil((msghdr + 4) / pointer) * pointer;
      return { value, cite: 'torvalds/linux:include/linux/socket.h struct mmsghdr { struct user_msghdr msg_hdr; unsigned int msg_len; } (glibc bits/socket.h and musl sys/socket.h alike), from the reference msghdr size' };
    }
    case 'linux.P_PIDFD':
      return { value: 3, cite: 'golang/sys:unix/zerrors_linux.go#L3130' };
    case 'linux.SYS_close_range':
      return { value: 436, cite: 'torvalds/linux:include/uapi/asm-generic/unistd.h #define __NR_close_range 436; arch/x86/entry/syscalls/syscall_64.tbl and syscall_32.tbl, arch/arm/tools/syscall.tbl: 436 close_range (a number every architecture shares since Linux 5.1); checked against the host headers in pidfd.test.ts' };
    case 'linux.RLIMIT_NOFILE':
      return { value: 7, cite: 'torvalds/linux:include/uapi/asm-generic/resource.h #define RLIMIT_NOFILE 7 (checked against the host headers in pidfd.test.ts); mips, sparc and alpha, which fdpass has no table for, use their own numbers' };
    case 'linux.WNOHANG':
      return { value: 1, cite: 'golang/sys:unix/zerrors_linux.go#L4102' };
    case 'linux.WEXITED':
      return { value: 4, cite: 'golang/sys:unix/zerrors_linux.go#L4014' };
    case 'linux.WNOWAIT':
      return { value: 0x1000000, cite: 'golang/sys:unix/zerrors_linux.go#L4104' };
    case 'linux.CLD_EXITED':
    case 'linux.CLD_KILLED':
    case 'linux.CLD_DUMPED':
      return { value: { 'linux.CLD_EXITED': 1, 'linux.CLD_KILLED': 2, 'linux.CLD_DUMPED': 3 }[path]!, cite: 'torvalds/linux:include/uapi/asm-generic/siginfo.h (CLD_EXITED 1, CLD_KILLED 2, CLD_DUMPED 3; no architecture overrides them); host headers checked in pidfd.test.ts' };
    case 'linux.siginfo.size':
    case 'linux.siginfo.signo':
    case 'linux.siginfo.code': {
      const pad = p.layouts.pointerSize === 8 ? '_ int32; _ [112]byte' : '_ [116]byte';
      return { value: { 'linux.siginfo.size': 128, 'linux.siginfo.signo': 0, 'linux.siginfo.code': 8 }[path]!, cite: `golang/sys:unix/ztypes_linux_${ga}.go type Siginfo { Signo int32; Errno int32; Code int32; ${pad} }` };
    }
    case 'linux.siginfo.pid':
    case 'linux.siginfo.status': {
      // The union follows Signo/Errno/Code, aligned to 8 on LP64 (golang's `_ int32` pad), 4 on ILP32.
      const union = p.layouts.pointerSize === 8 ? 16 : 12;
      return { value: path.endsWith('pid') ? union : union + 8, cite: `torvalds/linux:include/uapi/asm-generic/siginfo.h _sigchld { _pid; _uid; _status } at the union, which starts at ${union} (golang/sys ztypes_linux_${ga}.go Siginfo padding)` };
    }
  }
  return undefined;
}

/** The reference's value for a numeric table path, or undefined when it has none. */
function referenceValue(key: string, path: string, p: Platform): { value: number | null } | undefined {
  const { ref, musl } = referenceOf(key);
  const parts = path.split('.');
  const s = ref.structs;
  if (parts[0] === 'constants') {
    return Object.hasOwn(ref.constants, parts[1]) ? { value: ref.constants[parts[1]] } : undefined;
  }
  if (parts[0] === 'errno') return { value: ref.errno[parts[1]] };
  if (parts[0] === 'linux') {
    const sys = ref.linux?.syscalls;
    const name = parts[1];
    if (name.startsWith('SYS_')) return Object.hasOwn(sys, name.slice(4)) ? { value: sys[name.slice(4)] } : undefined;
    if (name === 'SO_PEERPIDFD') return { value: ref.constants.SO_PEERPIDFD };
    // include/uapi/linux/pidfd.h: #define PIDFD_NONBLOCK O_NONBLOCK
    if (name === 'PIDFD_NONBLOCK') return { value: ref.constants.O_NONBLOCK };
    return undefined;
  }
  if (parts[0] !== 'layouts') return undefined;
  const [, struct, member] = parts;
  if (struct === 'pointerSize') return { value: ref.pointer_size };
  if (struct === 'msghdr') {
    // musl: its own msghdr (32-bit lengths, pads before or after by byte order).
    const m = musl ? musl.msghdr : s.msghdr;
    if (member === 'size') return { value: m.size };
    const name = { name: 'msg_name', namelen: 'msg_namelen', iov: 'msg_iov', iovlen: 'msg_iovlen', iovlenSize: 'msg_iovlen', control: 'msg_control', controllen: 'msg_controllen', controllenSize: 'msg_controllen', flags: 'msg_flags' }[member]!;
    const f = field(m.fields, name);
    return { value: member.endsWith('Size') ? f.size : f.offset };
  }
  if (struct === 'cmsghdr') {
    const c = musl ? musl.cmsghdr : s.cmsghdr;
    if (member === 'size') return { value: c.size };
    if (member === 'align') return { value: musl ? musl.cmsg_align : ref.cmsg.align };
    const f = field(c.fields, { len: 'cmsg_len', lenSize: 'cmsg_len', level: 'cmsg_level', type: 'cmsg_type' }[member]!);
    return { value: member === 'lenSize' ? f.size : f.offset };
  }
  // musl shares the kernel's iovec, sockaddr_un and ucred with glibc: the reference keeps only
  // msghdr/cmsghdr under `musl` (its constant_differences_vs_glibc lists O_ACCMODE alone).
  if (struct === 'iovec') {
    if (member === 'size') return { value: s.iovec.size };
    const f = field(s.iovec.fields, member === 'base' ? 'iov_base' : 'iov_len');
    return { value: member === 'lenSize' ? f.size : f.offset };
  }
  if (struct === 'sockaddr_un') {
    const u = s.sockaddr_un;
    if (member === 'size') return { value: u.size };
    if (member === 'len') return { value: u.fields.some((f: Field) => f.name === 'sun_len') ? field(u.fields, 'sun_len').offset : null };
    const f = field(u.fields, member === 'path' || member === 'pathSize' ? 'sun_path' : 'sun_family');
    return { value: member === 'pathSize' || member === 'familySize' ? f.size : f.offset };
  }
  if (struct === 'peerCred') {
    const layout = s.peer_cred.layout;
    if (member === 'size') return { value: layout.size };
    const names = peerFieldNames[p.capabilities.peerCredentials.kind];
    const name = names[member as 'pid' | 'uid' | 'gid'];
    const f = name === null ? undefined : layout.fields.find((x: Field) => x.name === name || x.name.startsWith(`${name} `));
    return { value: f === undefined ? null : f.offset };
  }
  if (struct === 'credentialMessage') {
    const cmsg = s.peer_cred.cmsg;
    // No credential message at all: darwin (the kernel takes only SCM_RIGHTS), OpenBSD.
    if (member === undefined) return cmsg === null ? { value: null } : undefined;
    if (p.os === 'linux') {
      // SCM_CREDENTIALS carries the same struct ucred as SO_PEERCRED.
      expect(cmsg.payload).toBe('struct ucred');
      const layout = s.peer_cred.layout;
      if (member === 'size' || member === 'maxSize') return { value: layout.size };
      return { value: field(layout.fields, member).offset };
    }
    if (p.os === 'freebsd') {
      const layout = cmsg.LOCAL_CREDS_PERSISTENT.layout_min;
      if (member === 'size') return { value: layout.size };
      if (member === 'maxSize') return undefined;
      return { value: field(layout.fields, `sc_${member}`).offset };
    }
  }
  return undefined;
}

/** Every leaf of an object as [path, value]. */
function leaves(o: object, prefix = ''): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [k, v] of Object.entries(o)) {
    if (v !== null && typeof v === 'object') out.push(...leaves(v as object, `${prefix}${k}.`));
    else out.push([`${prefix}${k}`, v]);
  }
  return out;
}

const tables = supportedPlatforms.map((key) => [key, lookupPlatform(key)!] as const);

describe('the tables cover the platforms the reference describes', () => {
  it('every reference platform has a table; every Linux one also for musl', () => {
    const expected = Object.keys(reference.platforms).flatMap((k) => (k.endsWith('-glibc') ? [k, k.replace('-glibc', '-musl')] : [k]));
    expect([...supportedPlatforms].sort()).toEqual(expected.sort());
  });
});

describe.each(tables)('%s', (key, p) => {
  const { ref, musl } = referenceOf(key);

  it('every number (and every absent constant) matches the reference or a cited extra', () => {
    const numeric = leaves({ constants: p.constants, layouts: p.layouts, errno: p.errno, linux: p.linux ?? {} })
      .filter(([, v]) => typeof v === 'number' || v === null);
    const problems: string[] = [];
    let checked = 0;
    for (const [path, value] of numeric) {
      const fromRef = referenceValue(key, path, p);
      const extra = fdpassOnly(key, path, p);
      if (fromRef !== undefined && extra !== undefined) problems.push(`${path}: both in the reference and listed as an extra`);
      else if (fromRef !== undefined) {
        if (fromRef.value !== value) problems.push(`${path}: table ${value}, reference ${fromRef.value}`);
      } else if (extra !== undefined) {
        if (extra.value !== value) problems.push(`${path}: table ${value}, cited extra ${extra.value} (${extra.cite})`);
        expect(extra.cite.length, `${path} needs a citation`).toBeGreaterThan(10);
      } else problems.push(`${path}: ${value} is neither in the reference nor a cited extra`);
      checked++;
    }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThan(80);
  });

  it('every constant the reference defines that fdpass keeps is present with the same value', () => {
    for (const name of Object.keys(p.constants)) {
      if (!Object.hasOwn(ref.constants, name)) continue;
      expect(p.constants[name as keyof typeof p.constants], name).toBe(ref.constants[name]);
    }
  });

  it('byte order, pointer size, libc, symbol renames', () => {
    expect(p.endianness).toBe(ref.endianness);
    expect(p.layouts.pointerSize).toBe(ref.pointer_size);
    expect(p.symbols).toEqual(ref.libc.symbol_renames ?? {});
    if (musl) {
      // musl: no soname upstream; fdpass binds the symbols already in the process.
      expect(musl.libc.upstream_soname).toBeNull();
      expect(p.libcName).toBeNull();
    } else if (p.os === 'openbsd') {
      // The libc major changes between releases (NOTES §10): the process's own libc.
      expect(ref.libc.soname).toBeNull();
      expect(p.libcName).toBeNull();
    } else {
      expect(p.libcName).toBe(ref.libc.soname);
    }
  });

  it('CMSG_LEN/CMSG_SPACE for 1, 2 and 253 fds follow from the alignment as the reference works them out', () => {
    const rows = musl ? musl.cmsg : ref.cmsg.scm_rights_fds;
    const hdr = p.layouts.cmsghdr;
    const align = (n: number): number => Math.ceil(n / hdr.align) * hdr.align;
    for (const n of ['1', '2', '253']) {
      expect({ n, len: align(hdr.size) + Number(n) * 4, space: align(hdr.size) + align(Number(n) * 4) }).toEqual({ n, len: rows[n].CMSG_LEN, space: rows[n].CMSG_SPACE });
    }
  });

  it('capabilities agree with the reference behaviours', () => {
    const b = ref.behaviours;
    const c = p.capabilities;
    expect(c.seqpacket).toBe(b.seqpacket_af_unix.supported);
    const coe = b.close_on_exec;
    expect(c.atomicCloexec).toBe(coe.socket_flag !== null && coe.recv_flag !== null && coe.accept4 === true && coe.pipe2 === true);
    if (!c.atomicCloexec) expect(ref.libc.missing).toEqual(expect.arrayContaining(['accept4', 'pipe2']));
    if (c.sigpipe === 'msg_nosignal') expect(b.sigpipe.per_call).toBe('MSG_NOSIGNAL');
    if (c.sigpipe === 'so_nosigpipe') expect(b.sigpipe.per_socket).toBe('SO_NOSIGPIPE');
    expect(c.sigpipe).not.toBe('process_ignores');
    expect(c.singleRightsMessage).toBe(b.one_cmsg_per_send?.value === true);
    // The peer-credential getsockopt: level and option by name, and their values.
    const g = ref.structs.peer_cred.getsockopt;
    expect([c.peerCredentials.level, c.peerCredentials.option]).toEqual([g.level, g.optname]);
    expect([p.constants[c.peerCredentials.level], p.constants[c.peerCredentials.option]]).toEqual([g.level_value, g.optname_value]);
    expect(ref.structs.peer_cred.struct).toBe(`struct ${c.peerCredentials.kind}`);
    expect(c.peerCredentials.pidOption).toBe(ref.structs.peer_cred.pid?.optname ?? null);
    const cmsg = ref.structs.peer_cred.cmsg;
    const cm = c.credentialMessages;
    if (p.os === 'linux') {
      expect(cm).toMatchObject({ type: cmsg.type, enableLevel: 'SOL_SOCKET', enableOption: cmsg.receiver_enable.optname, claim: true });
      expect(p.constants[cm!.enableOption]).toBe(cmsg.receiver_enable.optname_value);
    } else if (p.os === 'freebsd') {
      const persistent = cmsg.LOCAL_CREDS_PERSISTENT;
      expect(cm).toMatchObject({ type: persistent.type, enableLevel: 'SOL_LOCAL', enableOption: 'LOCAL_CREDS_PERSISTENT', claim: false });
      expect([p.constants.SCM_CREDS2, p.constants.LOCAL_CREDS_PERSISTENT]).toEqual([persistent.type_value, persistent.optname_value]);
    } else if (p.os === 'netbsd') {
      // The reference has LOCAL_CREDS (SCM_CREDS, sockcred): sent once per connection on stream
      // and seqpacket sockets (NetBSD uipc_usrreq.c clears UNP_WANTCRED), not per message as
      // passCredentials() promises. fdpass leaves it out.
      expect(cmsg.LOCAL_CREDS.type).toBe('SCM_CREDS');
      expect(cm).toBeNull();
    } else {
      expect(cmsg).toBeNull();
      expect(cm).toBeNull();
    }
  });

  it('Linux-only capabilities are on exactly for Linux (unix(7) abstract names, pidfd(2), proc(5))', () => {
    const linux = p.os === 'linux';
    expect({ abstractNames: p.capabilities.abstractNames, pidfd: p.capabilities.pidfd, procFs: p.capabilities.procFs, syscalls: p.linux !== null })
      .toEqual({ abstractNames: linux, pidfd: linux, procFs: linux, syscalls: linux });
    // fchmod(2) on a socket: EINVAL on darwin and the BSDs (their fchmod(2) manual pages).
    expect(p.capabilities.fchmodSocket).toBe(linux);
  });
});
