/**
 * Shape of one platform table: every number fdpass needs from the C headers, the layouts of the
 * structs it builds by hand, which libc to bind, and what the platform can do (capabilities).
 * `null` means "this platform does not have it": code that needs it reads the capability first.
 */

export type Os = 'linux' | 'darwin' | 'freebsd' | 'openbsd' | 'netbsd';
export type Endianness = 'little' | 'big';

export interface PlatformConstants {
  AF_UNIX: number;
  AF_INET: number;
  AF_INET6: number;
  AF_NETLINK: number | null;
  SOCK_STREAM: number;
  SOCK_DGRAM: number;
  SOCK_RAW: number;
  SOCK_SEQPACKET: number;
  SOCK_NONBLOCK: number | null;
  SOCK_CLOEXEC: number | null;
  SOL_SOCKET: number;
  /** Level of the LOCAL_* options (darwin, BSD). */
  SOL_LOCAL: number | null;
  SCM_RIGHTS: number;
  /** Linux: struct ucred, with SO_PASSCRED. */
  SCM_CREDENTIALS: number | null;
  /** FreeBSD/NetBSD/darwin constant (darwin's kernel refuses the message). */
  SCM_CREDS: number | null;
  /** FreeBSD 13+: struct sockcred2, with LOCAL_CREDS_PERSISTENT. */
  SCM_CREDS2: number | null;
  /** Linux 6.5+: a pidfd of the sender, when SO_PASSPIDFD is set. */
  SCM_PIDFD: number | null;
  SO_ERROR: number;
  SO_TYPE: number;
  SO_DOMAIN: number | null;
  SO_PROTOCOL: number | null;
  SO_ACCEPTCONN: number;
  SO_PASSCRED: number | null;
  SO_PEERCRED: number | null;
  SO_NOSIGPIPE: number | null;
  SO_SNDBUF: number;
  SO_RCVBUF: number;
  LOCAL_PEERCRED: number | null;
  LOCAL_PEERPID: number | null;
  LOCAL_PEEREID: number | null;
  LOCAL_CREDS_PERSISTENT: number | null;
  MSG_PEEK: number;
  MSG_CTRUNC: number;
  MSG_TRUNC: number;
  MSG_DONTWAIT: number;
  MSG_NOSIGNAL: number;
  MSG_CMSG_CLOEXEC: number | null;
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
  O_PATH: number | null;
  POLLIN: number;
  POLLOUT: number;
  POLLERR: number;
  POLLHUP: number;
  /** Most fds fdpass puts in one message (Linux's SCM_MAX_FD; musl's sendmsg copy holds 255). */
  SCM_MAX_FD: number;
}

/** Names of constants a capability refers to (the value is read from the same table). */
export type ConstantName = keyof PlatformConstants;

/** Byte offsets and widths of the C structs fdpass builds by hand. */
export interface PlatformLayouts {
  pointerSize: 4 | 8;
  msghdr: {
    size: number;
    name: number;
    namelen: number;
    iov: number;
    /** Where the msg_iovlen value itself sits (musl on big-endian: after its pad word). */
    iovlen: number;
    iovlenSize: 4 | 8;
    control: number;
    controllen: number;
    controllenSize: 4 | 8;
    flags: number;
  };
  iovec: { size: number; base: number; len: number; lenSize: 4 | 8 };
  /** `align` is what CMSG_ALIGN rounds to. */
  cmsghdr: { size: number; len: number; lenSize: 4 | 8; level: number; type: number; align: number };
  /** `len`: offset of sun_len (BSD, darwin), null where there is none (Linux). */
  sockaddr_un: { size: number; len: number | null; family: number; familySize: 1 | 2; path: number; pathSize: number };
  pollfd: { size: number; fd: number; events: number; revents: number };
  /**
   * What getsockopt(peerCredentials.level, .option) fills in: Linux ucred, OpenBSD sockpeercred,
   * NetBSD unpcbid, darwin/FreeBSD xucred (gid = cr_groups[0]). `pid` null: the struct has none.
   */
  peerCred: { size: number; pid: number | null; uid: number; gid: number };
  /**
   * The payload of a credentials control message (Linux ucred, FreeBSD sockcred2), null where
   * the platform has none. `size` is the smallest valid payload, `maxSize` the largest.
   */
  credentialMessage: { size: number; maxSize: number; pid: number; uid: number; gid: number } | null;
  /**
   * struct mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; } for sendmmsg/recvmmsg: `len`
   * is msg_len's offset, `size` the array stride. Null where fdpass does not use them.
   */
  mmsghdr: { size: number; len: number } | null;
}

export type SigpipeMechanism =
  /** MSG_NOSIGNAL on every send. */
  | 'msg_nosignal'
  /** SO_NOSIGPIPE set on every socket fdpass creates, accepts or adopts. */
  | 'so_nosigpipe'
  /** Neither: safe only because Node ignores SIGPIPE (the test-only minimal mode). */
  | 'process_ignores';

export interface Capabilities {
  /**
   * SOCK_CLOEXEC/SOCK_NONBLOCK at creation, accept4, pipe2, MSG_CMSG_CLOEXEC. Without them:
   * fcntl(F_SETFD/F_SETFL) right after each call (a concurrent fork+exec may inherit the fd).
   */
  atomicCloexec: boolean;
  sigpipe: SigpipeMechanism;
  /** AF_UNIX SOCK_SEQPACKET exists; without it fdpass's default type is 'framed'. */
  seqpacket: boolean;
  /**
   * The kernel accepts exactly one control message per send, SCM_RIGHTS, with cmsg_len equal
   * to msg_controllen (darwin's unp_internalize). fdpass then sets msg_controllen = CMSG_LEN.
   */
  singleRightsMessage: boolean;
  /**
   * sendmmsg/recvmmsg: several messages per call. fdpass sends queued messages and receives
   * batches with them on SEQPACKET and datagram sockets (Linux; musl on LP64 loops sendmsg
   * inside its sendmmsg, which keeps the semantics). Without: one sendmsg/recvmsg per message.
   */
  messageVectors: boolean;
  /**
   * close_range(2) closes a run of consecutive descriptors in one call (Linux 5.9+, through
   * syscall(2) and `linux.SYS_close_range`). fdpass closes the duplicates of sends that went out
   * together with it; a kernel or seccomp filter that refuses it (the call then closes nothing)
   * turns it off for the process. Without: one close per descriptor.
   */
  closeRange: boolean;
  /** fchmod() on a socket before bind() sets the mode of the file bind creates (Linux). */
  fchmodSocket: boolean;
  /** getsockopt for the peer's credentials; `pidOption` is a second int getsockopt for the pid. */
  peerCredentials: {
    kind: 'ucred' | 'sockpeercred' | 'unpcbid' | 'xucred';
    level: ConstantName;
    option: ConstantName;
    pidOption: ConstantName | null;
  };
  /**
   * Credential control messages: the receiver enables them with setsockopt(enableLevel,
   * enableOption); `claim`: a sender may attach credentials of its own choosing (Linux).
   */
  credentialMessages: {
    kind: 'scm_credentials' | 'scm_creds2';
    type: ConstantName;
    enableLevel: ConstantName;
    enableOption: ConstantName;
    claim: boolean;
  } | null;
  /** Linux abstract socket names (sun_path starting with a NUL byte). */
  abstractNames: boolean;
  /** pidfd_open/pidfd_getfd/pidfd_send_signal, SO_PEERPIDFD. */
  pidfd: boolean;
  /** /proc/<pid>/fd and /proc/self/fdinfo. */
  procFs: boolean;
}

/** Linux process-descriptor data (see syscalls.ts). */
export interface LinuxSyscalls {
  /** syscall(2) numbers. Since Linux 5.1 new syscalls share one number on every architecture. */
  SYS_pidfd_send_signal: number;
  SYS_pidfd_open: number;
  SYS_pidfd_getfd: number;
  /** close_range(2) (Linux 5.9+): see capabilities.closeRange. */
  SYS_close_range: number;
  /** pidfd_open flag: waitid() on the pidfd returns EAGAIN instead of blocking (= O_NONBLOCK). */
  PIDFD_NONBLOCK: number;
  /** getsockopt(SOL_SOCKET): a pidfd for the peer of a Unix socket (Linux 6.5+). */
  SO_PEERPIDFD: number;
  /** getrlimit(2): the descriptor limit, which recvmmsg's slot count respects (src/recv-vector.ts). */
  RLIMIT_NOFILE: number;
  /** waitid(2) */
  P_PIDFD: number;
  WNOHANG: number;
  WEXITED: number;
  WNOWAIT: number;
  /** siginfo_t.si_code for SIGCHLD */
  CLD_EXITED: number;
  CLD_KILLED: number;
  CLD_DUMPED: number;
  siginfo: { size: number; signo: number; code: number; pid: number; status: number };
}

export interface Platform {
  /** e.g. "linux-x64-glibc", "darwin-arm64" */
  name: string;
  os: Os;
  arch: string;
  libc: 'glibc' | 'musl' | 'libSystem' | 'freebsd' | 'openbsd' | 'netbsd';
  /** What koffi.load() opens; null = the symbols already in the process (dlopen(NULL)). */
  libcName: string | null;
  /** libc symbols bound under another name (NetBSD: socket is __socket30). */
  symbols: Readonly<Record<string, string>>;
  endianness: Endianness;
  constants: PlatformConstants;
  layouts: PlatformLayouts;
  /** Errno names os.constants.errno lacks (it lists libuv's set), with this platform's numbers. */
  errno: { ETOOMANYREFS: number };
  capabilities: Capabilities;
  /** Linux only. */
  linux: LinuxSyscalls | null;
  /** 'minimal' when FDPASS_CAPABILITIES=minimal replaced capabilities by their fallbacks (tests only). */
  capabilityMode: 'native' | 'minimal';
}

/** A table as written in the source, before the loader names it and applies the mode. */
export type PlatformTable = Omit<Platform, 'name' | 'capabilityMode'>;
