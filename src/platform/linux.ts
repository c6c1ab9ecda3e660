/**
 * Linux: one set of constants for every architecture fdpass has a table for (asm-generic values;
 * powerpc moves SO_PASSCRED/SO_PEERCRED), and the struct layouts of glibc and musl on 64-bit
 * little-endian, 64-bit big-endian (s390x) and 32-bit ABIs.
 */
import { pidfdSyscalls } from './syscalls.js';
import type { Capabilities, Endianness, PlatformConstants, PlatformLayouts, PlatformTable } from './types.js';

/** Linux's generic ABI values (asm-generic): x64, arm64, ia32, arm, riscv64, loong64, s390x. */
export const linuxConstants: PlatformConstants = {
  AF_UNIX: 1,
  AF_INET: 2,
  AF_INET6: 10,
  AF_NETLINK: 16,
  SOCK_STREAM: 1,
  SOCK_DGRAM: 2,
  SOCK_RAW: 3,
  SOCK_SEQPACKET: 5,
  SOCK_NONBLOCK: 0o4000,
  SOCK_CLOEXEC: 0o2000000,
  SOL_SOCKET: 1,
  SOL_LOCAL: null,
  SCM_RIGHTS: 1,
  SCM_CREDENTIALS: 2,
  SCM_CREDS: null,
  SCM_CREDS2: null,
  SCM_PIDFD: 4,
  SO_ERROR: 4,
  SO_TYPE: 3,
  SO_DOMAIN: 39,
  SO_PROTOCOL: 38,
  SO_ACCEPTCONN: 30,
  SO_PASSCRED: 16,
  SO_PEERCRED: 17,
  SO_NOSIGPIPE: null,
  SO_SNDBUF: 7,
  SO_RCVBUF: 8,
  LOCAL_PEERCRED: null,
  LOCAL_PEERPID: null,
  LOCAL_PEEREID: null,
  LOCAL_CREDS_PERSISTENT: null,
  MSG_PEEK: 0x2,
  MSG_CTRUNC: 0x8,
  MSG_TRUNC: 0x20,
  MSG_DONTWAIT: 0x40,
  MSG_NOSIGNAL: 0x4000,
  MSG_CMSG_CLOEXEC: 0x40000000,
  SHUT_RD: 0,
  SHUT_WR: 1,
  SHUT_RDWR: 2,
  F_GETFD: 1,
  F_SETFD: 2,
  F_GETFL: 3,
  F_SETFL: 4,
  F_DUPFD_CLOEXEC: 1030,
  FD_CLOEXEC: 1,
  O_NONBLOCK: 0o4000,
  O_CLOEXEC: 0o2000000,
  O_PATH: 0o10000000,
  POLLIN: 0x1,
  POLLOUT: 0x4,
  POLLERR: 0x8,
  POLLHUP: 0x10,
  SCM_MAX_FD: 253,
};

/** arch/powerpc/include/uapi/asm/socket.h renumbers these two. */
export const linuxPowerpcConstants: PlatformConstants = { ...linuxConstants, SO_PASSCRED: 20, SO_PEERCRED: 21 };

const ucred = { size: 12, pid: 0, uid: 4, gid: 8 } as const;

const linuxCommon = {
  sockaddr_un: { size: 110, len: null, family: 0, familySize: 2, path: 2, pathSize: 108 },
  pollfd: { size: 8, fd: 0, events: 4, revents: 6 },
  peerCred: ucred,
  credentialMessage: { ...ucred, maxSize: 12 },
} as const;

/** glibc on LP64 Linux: size_t lengths, as the kernel itself declares them. */
export const linux64GlibcLayouts: PlatformLayouts = {
  ...linuxCommon,
  pointerSize: 8,
  msghdr: {
    size: 56, name: 0, namelen: 8, iov: 16, iovlen: 24, iovlenSize: 8,
    control: 32, controllen: 40, controllenSize: 8, flags: 48,
  },
  iovec: { size: 16, base: 0, len: 8, lenSize: 8 },
  cmsghdr: { size: 16, len: 0, lenSize: 8, level: 8, type: 12, align: 8 },
  mmsghdr: { size: 64, len: 56 },
};

/**
 * musl on LP64 little-endian Linux declares msg_iovlen/msg_controllen/cmsg_len as 32-bit with
 * an explicit pad word after them: the kernel's offsets, 4-byte values.
 */
export const linux64MuslLayouts: PlatformLayouts = {
  ...linux64GlibcLayouts,
  msghdr: { ...linux64GlibcLayouts.msghdr, iovlenSize: 4, controllenSize: 4 },
  cmsghdr: { ...linux64GlibcLayouts.cmsghdr, lenSize: 4 },
};

/** musl on big-endian LP64 (s390x): the pad word comes first, so each value sits 4 bytes later. */
export const linux64MuslBigEndianLayouts: PlatformLayouts = {
  ...linux64GlibcLayouts,
  msghdr: { ...linux64GlibcLayouts.msghdr, iovlen: 28, iovlenSize: 4, controllen: 44, controllenSize: 4 },
  cmsghdr: { ...linux64GlibcLayouts.cmsghdr, len: 4, lenSize: 4 },
};

/** ILP32 (ia32, arm EABI): every length is 4 bytes, glibc and musl alike; CMSG_ALIGN is 4. */
export const linux32Layouts: PlatformLayouts = {
  ...linuxCommon,
  pointerSize: 4,
  msghdr: {
    size: 28, name: 0, namelen: 4, iov: 8, iovlen: 12, iovlenSize: 4,
    control: 16, controllen: 20, controllenSize: 4, flags: 24,
  },
  iovec: { size: 8, base: 0, len: 4, lenSize: 4 },
  cmsghdr: { size: 12, len: 0, lenSize: 4, level: 4, type: 8, align: 4 },
  mmsghdr: { size: 32, len: 28 },
};

export const linuxCapabilities: Capabilities = {
  atomicCloexec: true,
  sigpipe: 'msg_nosignal',
  seqpacket: true,
  singleRightsMessage: false,
  messageVectors: true,
  closeRange: true,
  fchmodSocket: true,
  peerCredentials: { kind: 'ucred', level: 'SOL_SOCKET', option: 'SO_PEERCRED', pidOption: null },
  credentialMessages: { kind: 'scm_credentials', type: 'SCM_CREDENTIALS', enableLevel: 'SOL_SOCKET', enableOption: 'SO_PASSCRED', claim: true },
  abstractNames: true,
  pidfd: true,
  procFs: true,
};

type Table = PlatformTable;

function linux(arch: string, libc: 'glibc' | 'musl', endianness: Endianness, layouts: PlatformLayouts, constants = linuxConstants): Table {
  return {
    os: 'linux',
    arch,
    libc,
    // glibc's soname; musl: its loader is the libc, and its symbols are already in the process.
    libcName: libc === 'glibc' ? 'libc.so.6' : null,
    symbols: {},
    endianness,
    constants,
    layouts,
    errno: { ETOOMANYREFS: 109 },
    capabilities: linuxCapabilities,
    linux: pidfdSyscalls[arch],
  };
}

export const linuxPlatforms: Record<string, Table> = {
  'linux-x64-glibc': linux('x64', 'glibc', 'little', linux64GlibcLayouts),
  'linux-x64-musl': linux('x64', 'musl', 'little', linux64MuslLayouts),
  'linux-arm64-glibc': linux('arm64', 'glibc', 'little', linux64GlibcLayouts),
  'linux-arm64-musl': linux('arm64', 'musl', 'little', linux64MuslLayouts),
  'linux-ia32-glibc': linux('ia32', 'glibc', 'little', linux32Layouts),
  'linux-ia32-musl': linux('ia32', 'musl', 'little', linux32Layouts),
  'linux-arm-glibc': linux('arm', 'glibc', 'little', linux32Layouts),
  'linux-arm-musl': linux('arm', 'musl', 'little', linux32Layouts),
  'linux-riscv64-glibc': linux('riscv64', 'glibc', 'little', linux64GlibcLayouts),
  'linux-riscv64-musl': linux('riscv64', 'musl', 'little', linux64MuslLayouts),
  // Node's linux-ppc64 is little-endian (ELFv2); a big-endian host fails the endianness check.
  'linux-ppc64-glibc': linux('ppc64', 'glibc', 'little', linux64GlibcLayouts, linuxPowerpcConstants),
  'linux-ppc64-musl': linux('ppc64', 'musl', 'little', linux64MuslLayouts, linuxPowerpcConstants),
  'linux-loong64-glibc': linux('loong64', 'glibc', 'little', linux64GlibcLayouts),
  'linux-loong64-musl': linux('loong64', 'musl', 'little', linux64MuslLayouts),
  'linux-s390x-glibc': linux('s390x', 'glibc', 'big', linux64GlibcLayouts),
  'linux-s390x-musl': linux('s390x', 'musl', 'big', linux64MuslBigEndianLayouts),
};
