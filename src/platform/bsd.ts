/**
 * darwin (macOS), FreeBSD, OpenBSD and NetBSD. These share the 4.4BSD socket ABI (SOL_SOCKET
 * 0xffff, sun_len, 4-byte msg_controllen/cmsg_len) and differ in flags, CMSG alignment, the
 * peer-credential struct and which features exist. None of them has been run by fdpass's
 * tests: every number here is checked against test/data/platform-reference/platforms.json.
 */
import type { Capabilities, PlatformConstants, PlatformLayouts, PlatformTable } from './types.js';

/** Values every BSD-derived table shares; each OS below fills in or overrides the rest. */
const bsdConstants = {
  AF_UNIX: 1,
  AF_INET: 2,
  AF_NETLINK: null,
  SOCK_STREAM: 1,
  SOCK_DGRAM: 2,
  SOCK_RAW: 3,
  SOCK_SEQPACKET: 5,
  SOL_SOCKET: 0xffff,
  SCM_RIGHTS: 1,
  SCM_CREDENTIALS: null,
  SCM_PIDFD: null,
  SO_ERROR: 0x1007,
  SO_TYPE: 0x1008,
  SO_ACCEPTCONN: 2,
  SO_PASSCRED: null,
  SO_SNDBUF: 0x1001,
  SO_RCVBUF: 0x1002,
  MSG_PEEK: 0x2,
  MSG_CTRUNC: 0x20,
  MSG_TRUNC: 0x10,
  MSG_DONTWAIT: 0x80,
  SHUT_RD: 0,
  SHUT_WR: 1,
  SHUT_RDWR: 2,
  F_GETFD: 1,
  F_SETFD: 2,
  F_GETFL: 3,
  F_SETFL: 4,
  FD_CLOEXEC: 1,
  O_NONBLOCK: 0x4,
  O_PATH: null,
  POLLIN: 0x1,
  POLLOUT: 0x4,
  POLLERR: 0x8,
  POLLHUP: 0x10,
  // No kernel constant on these systems: fdpass keeps Linux's limit so a message fits everywhere.
  SCM_MAX_FD: 253,
} as const;

export const darwinConstants: PlatformConstants = {
  ...bsdConstants,
  AF_INET6: 30,
  SOCK_NONBLOCK: null,
  SOCK_CLOEXEC: null,
  SOL_LOCAL: 0,
  SCM_CREDS: 3,
  SCM_CREDS2: null,
  SO_DOMAIN: null,
  SO_PROTOCOL: null,
  SO_PEERCRED: null,
  SO_NOSIGPIPE: 0x1022,
  LOCAL_PEERCRED: 1,
  LOCAL_PEERPID: 2,
  LOCAL_PEEREID: null,
  LOCAL_CREDS_PERSISTENT: null,
  MSG_NOSIGNAL: 0x80000,
  MSG_CMSG_CLOEXEC: null,
  F_DUPFD_CLOEXEC: 67,
  O_CLOEXEC: 0x1000000,
};

export const freebsdConstants: PlatformConstants = {
  ...bsdConstants,
  AF_INET6: 28,
  SOCK_NONBLOCK: 0x20000000,
  SOCK_CLOEXEC: 0x10000000,
  SOL_LOCAL: 0,
  SCM_CREDS: 3,
  SCM_CREDS2: 8,
  SO_DOMAIN: 0x1019,
  SO_PROTOCOL: 0x1016,
  SO_PEERCRED: null,
  SO_NOSIGPIPE: 0x800,
  LOCAL_PEERCRED: 1,
  LOCAL_PEERPID: null,
  LOCAL_PEEREID: null,
  LOCAL_CREDS_PERSISTENT: 3,
  MSG_NOSIGNAL: 0x20000,
  MSG_CMSG_CLOEXEC: 0x40000,
  F_DUPFD_CLOEXEC: 17,
  O_CLOEXEC: 0x100000,
};

export const openbsdConstants: PlatformConstants = {
  ...bsdConstants,
  AF_INET6: 24,
  SOCK_NONBLOCK: 0x4000,
  SOCK_CLOEXEC: 0x8000,
  SOL_LOCAL: null,
  SCM_CREDS: null,
  SCM_CREDS2: null,
  SO_DOMAIN: 0x1024,
  SO_PROTOCOL: 0x1025,
  SO_PEERCRED: 0x1022,
  SO_NOSIGPIPE: null,
  LOCAL_PEERCRED: null,
  LOCAL_PEERPID: null,
  LOCAL_PEEREID: null,
  LOCAL_CREDS_PERSISTENT: null,
  MSG_NOSIGNAL: 0x400,
  MSG_CMSG_CLOEXEC: 0x800,
  F_DUPFD_CLOEXEC: 10,
  O_CLOEXEC: 0x10000,
};

export const netbsdConstants: PlatformConstants = {
  ...bsdConstants,
  AF_INET6: 24,
  SOCK_NONBLOCK: 0x20000000,
  SOCK_CLOEXEC: 0x10000000,
  SOL_LOCAL: 0,
  SCM_CREDS: 0x10,
  SCM_CREDS2: null,
  SO_DOMAIN: null,
  SO_PROTOCOL: null,
  SO_PEERCRED: null,
  SO_NOSIGPIPE: 0x800,
  LOCAL_PEERCRED: null,
  LOCAL_PEERPID: null,
  LOCAL_PEEREID: 3,
  LOCAL_CREDS_PERSISTENT: null,
  MSG_NOSIGNAL: 0x400,
  MSG_CMSG_CLOEXEC: 0x800,
  F_DUPFD_CLOEXEC: 12,
  O_CLOEXEC: 0x400000,
};

const sockaddrUn = { size: 106, len: 0, family: 1, familySize: 1, path: 2, pathSize: 104 } as const;
const pollfd = { size: 8, fd: 0, events: 4, revents: 6 } as const;

/** LP64: int msg_iovlen and socklen_t msg_controllen leave 4-byte holes after them. */
const bsd64 = {
  pointerSize: 8,
  msghdr: {
    size: 48, name: 0, namelen: 8, iov: 16, iovlen: 24, iovlenSize: 4,
    control: 32, controllen: 40, controllenSize: 4, flags: 44,
  },
  iovec: { size: 16, base: 0, len: 8, lenSize: 8 },
  sockaddr_un: sockaddrUn,
  pollfd,
  // FreeBSD, NetBSD and OpenBSD have sendmmsg/recvmmsg, but fdpass has never run there: off.
  mmsghdr: null,
} as const;

const bsd32 = {
  pointerSize: 4,
  msghdr: {
    size: 28, name: 0, namelen: 4, iov: 8, iovlen: 12, iovlenSize: 4,
    control: 16, controllen: 20, controllenSize: 4, flags: 24,
  },
  iovec: { size: 8, base: 0, len: 4, lenSize: 4 },
  sockaddr_un: sockaddrUn,
  pollfd,
  // FreeBSD, NetBSD and OpenBSD have sendmmsg/recvmmsg, but fdpass has never run there: off.
  mmsghdr: null,
} as const;

/** A 12-byte cmsghdr whose data starts at CMSG_ALIGN(12). */
const cmsghdr = (align: number) => ({ size: 12, len: 0, lenSize: 4, level: 4, type: 8, align }) as const;

/** struct xucred: cr_uid at 4, cr_groups[0] (the effective gid) at 12. */
const xucred = (size: number, pid: number | null) => ({ size, uid: 4, gid: 12, pid });

/** FreeBSD struct sockcred2 (real ids, as Linux's SCM_CREDENTIALS), up to CMGROUP_MAX = 16 groups. */
const sockcred2 = { size: 32, maxSize: 32 + 15 * 4, pid: 4, uid: 8, gid: 16 } as const;

// darwin: 4-byte CMSG alignment even on LP64; xucred has no pid (LOCAL_PEERPID gives it).
export const darwinLayouts: PlatformLayouts = { ...bsd64, cmsghdr: cmsghdr(4), peerCred: xucred(76, null), credentialMessage: null };
// FreeBSD: CMSG_ALIGN is sizeof(long) on amd64/i386, 8 on arm64, 4 on armv7; xucred ends in cr_pid.
export const freebsd64Layouts: PlatformLayouts = { ...bsd64, cmsghdr: cmsghdr(8), peerCred: xucred(88, 80), credentialMessage: sockcred2 };
export const freebsd32Layouts: PlatformLayouts = { ...bsd32, cmsghdr: cmsghdr(4), peerCred: xucred(80, 76), credentialMessage: sockcred2 };
// OpenBSD struct sockpeercred { uid_t uid; gid_t gid; pid_t pid; }.
export const openbsdLayouts: PlatformLayouts = { ...bsd64, cmsghdr: cmsghdr(8), peerCred: { size: 12, uid: 0, gid: 4, pid: 8 }, credentialMessage: null };
// NetBSD struct unpcbid { pid_t unp_pid; uid_t unp_euid; gid_t unp_egid; }.
export const netbsdLayouts: PlatformLayouts = { ...bsd64, cmsghdr: cmsghdr(8), peerCred: { size: 12, pid: 0, uid: 4, gid: 8 }, credentialMessage: null };

const bsdCapabilities = {
  atomicCloexec: true,
  sigpipe: 'msg_nosignal',
  seqpacket: true,
  singleRightsMessage: false,
  messageVectors: false,
  // FreeBSD 13 has close_range(2) too; fdpass has never run there.
  closeRange: false,
  // fchmod(2) on a socket is EINVAL on darwin and the BSDs: the mode is set right after bind.
  fchmodSocket: false,
  abstractNames: false,
  pidfd: false,
  procFs: false,
} as const;

export const darwinCapabilities: Capabilities = {
  ...bsdCapabilities,
  atomicCloexec: false,
  // MSG_NOSIGNAL exists only on kernels from the xnu-7195 line on; SO_NOSIGPIPE everywhere.
  sigpipe: 'so_nosigpipe',
  seqpacket: false,
  singleRightsMessage: true,
  peerCredentials: { kind: 'xucred', level: 'SOL_LOCAL', option: 'LOCAL_PEERCRED', pidOption: 'LOCAL_PEERPID' },
  // SCM_CREDS is defined but the kernel accepts no control message besides SCM_RIGHTS.
  credentialMessages: null,
};

export const freebsdCapabilities: Capabilities = {
  ...bsdCapabilities,
  peerCredentials: { kind: 'xucred', level: 'SOL_LOCAL', option: 'LOCAL_PEERCRED', pidOption: null },
  // LOCAL_CREDS_PERSISTENT (FreeBSD 13+): a sockcred2 with every message, as Linux's SO_PASSCRED.
  credentialMessages: { kind: 'scm_creds2', type: 'SCM_CREDS2', enableLevel: 'SOL_LOCAL', enableOption: 'LOCAL_CREDS_PERSISTENT', claim: false },
};

export const openbsdCapabilities: Capabilities = {
  ...bsdCapabilities,
  peerCredentials: { kind: 'sockpeercred', level: 'SOL_SOCKET', option: 'SO_PEERCRED', pidOption: null },
  credentialMessages: null,
};

export const netbsdCapabilities: Capabilities = {
  ...bsdCapabilities,
  peerCredentials: { kind: 'unpcbid', level: 'SOL_LOCAL', option: 'LOCAL_PEEREID', pidOption: null },
  // NetBSD's LOCAL_CREDS sends credentials only once on stream/seqpacket sockets: not offered.
  credentialMessages: null,
};

type Table = PlatformTable;
const common = { endianness: 'little', errno: { ETOOMANYREFS: 59 }, linux: null, symbols: {} } as const;

export const bsdPlatforms: Record<string, Table> = {
  'darwin-x64': { ...common, os: 'darwin', arch: 'x64', libc: 'libSystem', libcName: '/usr/lib/libSystem.B.dylib', constants: darwinConstants, layouts: darwinLayouts, capabilities: darwinCapabilities },
  'darwin-arm64': { ...common, os: 'darwin', arch: 'arm64', libc: 'libSystem', libcName: '/usr/lib/libSystem.B.dylib', constants: darwinConstants, layouts: darwinLayouts, capabilities: darwinCapabilities },
  'freebsd-x64': { ...common, os: 'freebsd', arch: 'x64', libc: 'freebsd', libcName: 'libc.so.7', constants: freebsdConstants, layouts: freebsd64Layouts, capabilities: freebsdCapabilities },
  'freebsd-arm64': { ...common, os: 'freebsd', arch: 'arm64', libc: 'freebsd', libcName: 'libc.so.7', constants: freebsdConstants, layouts: freebsd64Layouts, capabilities: freebsdCapabilities },
  'freebsd-ia32': { ...common, os: 'freebsd', arch: 'ia32', libc: 'freebsd', libcName: 'libc.so.7', constants: freebsdConstants, layouts: freebsd32Layouts, capabilities: freebsdCapabilities },
  'freebsd-arm': { ...common, os: 'freebsd', arch: 'arm', libc: 'freebsd', libcName: 'libc.so.7', constants: freebsdConstants, layouts: freebsd32Layouts, capabilities: freebsdCapabilities },
  // OpenBSD's libc major changes between releases: bind the libc already loaded into Node.
  'openbsd-x64': { ...common, os: 'openbsd', arch: 'x64', libc: 'openbsd', libcName: null, constants: openbsdConstants, layouts: openbsdLayouts, capabilities: openbsdCapabilities },
  'openbsd-arm64': { ...common, os: 'openbsd', arch: 'arm64', libc: 'openbsd', libcName: null, constants: openbsdConstants, layouts: openbsdLayouts, capabilities: openbsdCapabilities },
  'netbsd-x64': { ...common, os: 'netbsd', arch: 'x64', libc: 'netbsd', libcName: 'libc.so.12', symbols: { socket: '__socket30' }, constants: netbsdConstants, layouts: netbsdLayouts, capabilities: netbsdCapabilities },
};
