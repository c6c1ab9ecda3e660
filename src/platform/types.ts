/** Shape of one platform table: every number fdpass needs from the C headers. */
export interface PlatformConstants {
  AF_UNIX: number;
  AF_INET: number;
  AF_INET6: number;
  AF_NETLINK: number;
  SOCK_STREAM: number;
  SOCK_DGRAM: number;
  SOCK_SEQPACKET: number;
  SOCK_NONBLOCK: number;
  SOCK_CLOEXEC: number;
  SOL_SOCKET: number;
  SCM_RIGHTS: number;
  SCM_CREDENTIALS: number;
  /** Linux 6.5+: a pidfd of the sender, when SO_PASSPIDFD is set. */
  SCM_PIDFD: number;
  SO_ERROR: number;
  SO_TYPE: number;
  SO_DOMAIN: number;
  SO_PROTOCOL: number;
  SO_ACCEPTCONN: number;
  SO_PASSCRED: number;
  SO_PEERCRED: number;
  SO_SNDBUF: number;
  SO_RCVBUF: number;
  MSG_PEEK: number;
  MSG_CTRUNC: number;
  MSG_TRUNC: number;
  MSG_DONTWAIT: number;
  MSG_NOSIGNAL: number;
  MSG_CMSG_CLOEXEC: number;
  SHUT_RD: number;
  SHUT_WR: number;
  SHUT_RDWR: number;
  F_GETFD: number;
  F_SETFD: number;
  F_GETFL: number;
  F_SETFL: number;
  F_DUPFD_CLOEXEC: number;
  FD_CLOEXEC: number;
  O_NONBLOCK: number;
  O_CLOEXEC: number;
  O_PATH: number;
  POLLIN: number;
  POLLOUT: number;
  POLLERR: number;
  POLLHUP: number;
  /** Most fds one SCM_RIGHTS message may carry (kernel SCM_MAX_FD). */
  SCM_MAX_FD: number;
}

/** Byte offsets and widths of the C structs fdpass builds by hand. */
export interface PlatformLayouts {
  pointerSize: number;
  msghdr: {
    size: number;
    name: number;
    namelen: number;
    iov: number;
    iovlen: number;
    iovlenSize: number;
    control: number;
    controllen: number;
    controllenSize: number;
    flags: number;
  };
  iovec: { size: number; base: number; len: number; lenSize: number };
  cmsghdr: { size: number; len: number; lenSize: number; level: number; type: number; align: number };
  ucred: { size: number; pid: number; uid: number; gid: number };
  sockaddr_un: { size: number; family: number; path: number; pathSize: number };
  pollfd: { size: number; fd: number; events: number; revents: number };
}

export interface Platform {
  /** e.g. "linux-x64-glibc" */
  name: string;
  os: 'linux';
  /** What koffi.load() opens; null = the symbols already in the process. */
  libcName: string | null;
  constants: PlatformConstants;
  layouts: PlatformLayouts;
}
