/**
 * Linux process-descriptor data: raw syscall numbers (for libcs without the pidfd wrappers),
 * RLIMIT_NOFILE, waitid(2) constants and the siginfo_t fields it fills. Data only, keyed by `process.arch`;
 * each Linux platform table points at its entry. Checked against the C headers of the host in
 * test/pidfd.test.ts and against the reference data in test/platform-reference.test.ts.
 */
import type { LinuxSyscalls } from './types.js';

export type PidfdSyscalls = LinuxSyscalls;

/** asm-generic/siginfo.h: the union follows three ints, aligned to the pointer size. */
const siginfo64 = { size: 128, signo: 0, code: 8, pid: 16, status: 24 } as const;
const siginfo32 = { size: 128, signo: 0, code: 8, pid: 12, status: 20 } as const;

/** Every architecture fdpass has a table for uses the unified numbers of Linux 5.1+. */
const generic = {
  SYS_pidfd_send_signal: 424,
  SYS_pidfd_open: 434,
  SYS_pidfd_getfd: 438,
  SYS_close_range: 436,
  PIDFD_NONBLOCK: 0o4000,
  SO_PEERPIDFD: 77,
  // asm-generic/resource.h; mips, sparc and alpha (no table here) differ.
  RLIMIT_NOFILE: 7,
  P_PIDFD: 3,
  WNOHANG: 1,
  WEXITED: 4,
  WNOWAIT: 0x01000000,
  CLD_EXITED: 1,
  CLD_KILLED: 2,
  CLD_DUMPED: 3,
} as const;

/** Per `process.arch`. */
export const pidfdSyscalls: Record<string, PidfdSyscalls> = {
  x64: { ...generic, siginfo: siginfo64 },
  arm64: { ...generic, siginfo: siginfo64 },
  ia32: { ...generic, siginfo: siginfo32 },
  arm: { ...generic, siginfo: siginfo32 },
  riscv64: { ...generic, siginfo: siginfo64 },
  ppc64: { ...generic, siginfo: siginfo64 },
  loong64: { ...generic, siginfo: siginfo64 },
  s390x: { ...generic, siginfo: siginfo64 },
};
