/**
 * Linux process-descriptor data: raw syscall numbers (for libcs without the pidfd wrappers),
 * waitid(2) constants and the siginfo_t fields it fills. Data only, keyed by `process.arch`,
 * checked against the C headers in test/pidfd.test.ts.
 */

export interface PidfdSyscalls {
  /** syscall(2) numbers. Since Linux 5.1 new syscalls share one number on every architecture. */
  SYS_pidfd_send_signal: number;
  SYS_pidfd_open: number;
  SYS_pidfd_getfd: number;
  /** pidfd_open flag: waitid() on the pidfd returns EAGAIN instead of blocking (= O_NONBLOCK). */
  PIDFD_NONBLOCK: number;
  /** getsockopt(SOL_SOCKET): a pidfd for the peer of a Unix socket (Linux 6.5+). */
  SO_PEERPIDFD: number;
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

const siginfo64 = { size: 128, signo: 0, code: 8, pid: 16, status: 24 } as const;
const siginfo32 = { size: 128, signo: 0, code: 8, pid: 12, status: 20 } as const;

const generic = {
  SYS_pidfd_send_signal: 424,
  SYS_pidfd_open: 434,
  SYS_pidfd_getfd: 438,
  PIDFD_NONBLOCK: 0o4000,
  SO_PEERPIDFD: 77,
  P_PIDFD: 3,
  WNOHANG: 1,
  WEXITED: 4,
  WNOWAIT: 0x01000000,
  CLD_EXITED: 1,
  CLD_KILLED: 2,
  CLD_DUMPED: 3,
} as const;

/** Per `process.arch`. x64 and ia32 use their own tables, arm64 asm-generic: same numbers. */
export const pidfdSyscalls: Record<string, PidfdSyscalls> = {
  x64: { ...generic, siginfo: siginfo64 },
  arm64: { ...generic, siginfo: siginfo64 },
  ia32: { ...generic, siginfo: siginfo32 },
  arm: { ...generic, siginfo: siginfo32 },
};
