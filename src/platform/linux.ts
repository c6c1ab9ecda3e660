import type { PlatformConstants, PlatformLayouts } from './types.js';

/** Linux's generic ABI values: identical on x86-64 and arm64 (asm-generic). */
export const linuxConstants: PlatformConstants = {
  AF_UNIX: 1,
  AF_INET: 2,
  AF_INET6: 10,
  AF_NETLINK: 16,
  SOCK_STREAM: 1,
  SOCK_DGRAM: 2,
  SOCK_SEQPACKET: 5,
  SOCK_NONBLOCK: 0o4000,
  SOCK_CLOEXEC: 0o2000000,
  SOL_SOCKET: 1,
  SCM_RIGHTS: 1,
  SCM_CREDENTIALS: 2,
  SCM_PIDFD: 4,
  SO_ERROR: 4,
  SO_TYPE: 3,
  SO_DOMAIN: 39,
  SO_PROTOCOL: 38,
  SO_ACCEPTCONN: 30,
  SO_PASSCRED: 16,
  SO_PEERCRED: 17,
  SO_SNDBUF: 7,
  SO_RCVBUF: 8,
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

const common64 = {
  pointerSize: 8,
  ucred: { size: 12, pid: 0, uid: 4, gid: 8 },
  sockaddr_un: { size: 110, family: 0, path: 2, pathSize: 108 },
  pollfd: { size: 8, fd: 0, events: 4, revents: 6 },
} as const;

/** glibc on LP64 Linux: size_t lengths, as the kernel itself declares them. */
export const linux64GlibcLayouts: PlatformLayouts = {
  ...common64,
  msghdr: {
    size: 56, name: 0, namelen: 8, iov: 16, iovlen: 24, iovlenSize: 8,
    control: 32, controllen: 40, controllenSize: 8, flags: 48,
  },
  iovec: { size: 16, base: 0, len: 8, lenSize: 8 },
  cmsghdr: { size: 16, len: 0, lenSize: 8, level: 8, type: 12, align: 8 },
};

/**
 * musl on LP64 Linux declares msg_iovlen/msg_controllen/cmsg_len as 32-bit with explicit
 * padding after them; the offsets are the kernel's, so only the widths differ.
 */
export const linux64MuslLayouts: PlatformLayouts = {
  ...common64,
  msghdr: { ...linux64GlibcLayouts.msghdr, iovlenSize: 4, controllenSize: 4 },
  iovec: linux64GlibcLayouts.iovec,
  cmsghdr: { ...linux64GlibcLayouts.cmsghdr, lenSize: 4 },
};
