/**
 * The `fdpass` command (Linux):
 *   fdpass ls <pid> [--json]                       the process's fds: kind, flags, offset, path/socket
 *   fdpass grab <pid> <fd>... -- <command> [args]  run command with those fds at 3, 4, … and
 *                                                  LISTEN_FDS / LISTEN_PID set (systemd socket activation)
 * Installed as the package's `bin` (bin/fdpass.js runs dist/cli.js, made by `npm run build`);
 * from a checkout: `npx tsx src/cli.ts …`.
 */
import { spawn } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Fd } from './fd.js';
import { PidFd, listProcessFds, type ProcessFdInfo } from './pidfd.js';

const USAGE = `usage:
  fdpass ls <pid> [--json]
      List the open fds of process <pid>: kind, open flags, offset, path or socket details.
      Sockets are inspected by taking a copy with pidfd_getfd and closing it at once.
  fdpass grab <pid> <fd> [<fd>...] -- <command> [args...]
      Take fd(s) from process <pid> (pidfd_getfd, Linux 5.6+, needs ptrace access) and run
      <command> with them as fds 3, 4, … and LISTEN_FDS=<count>, LISTEN_PID=<its own pid>, so a
      systemd-style (socket-activated) server accepts on them. Exits with the command's status.
`;

class UsageError extends Error {}

interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

const defaultIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

function parsePid(arg: string | undefined): number {
  if (arg === undefined || !/^\d+$/.test(arg) || Number(arg) <= 0) throw new UsageError(`expected a process id, got ${arg === undefined ? 'nothing' : JSON.stringify(arg)}`);
  return Number(arg);
}

function parseFd(arg: string): number {
  if (!/^\d+$/.test(arg)) throw new UsageError(`expected an fd number, got ${JSON.stringify(arg)}`);
  return Number(arg);
}

function details(info: ProcessFdInfo): string {
  if (info.error !== undefined) return `(cannot read this entry: ${info.error})`;
  const s = info.socket;
  if (s) {
    const where = s.localAddress !== undefined ? (s.family === 'inet6' ? `[${s.localAddress}]:${s.localPort}` : `${s.localAddress}:${s.localPort}`) : s.path ?? '';
    return [s.family, s.type, s.listening ? 'LISTEN' : '', where, info.target].filter(Boolean).join(' ');
  }
  if (info.socketError) return `${info.target} (details: ${info.socketError})`;
  if (info.path !== undefined) return info.deleted ? `${info.path} (deleted)` : info.path;
  return info.target;
}

/** Plain columns, like lsof: FD KIND FLAGS POS DETAILS. */
export function formatFdTable(fds: ProcessFdInfo[]): string {
  const rows = [['FD', 'KIND', 'FLAGS', 'POS', 'DETAILS']];
  for (const info of fds) {
    const flags = [...info.openFlags, ...(info.closeOnExec ? ['O_CLOEXEC'] : [])].map((f) => f.replace(/^O_/, '')).join(',');
    rows.push([String(info.fd), info.error === undefined ? info.kind : '?', info.error === undefined ? flags : '-', info.position === undefined ? '-' : String(info.position), details(info)]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ').trimEnd()).join('\n') + '\n';
}

function ls(args: string[], io: Io): number {
  const json = args.includes('--json');
  const rest = args.filter((a) => a !== '--json');
  if (rest.length !== 1) throw new UsageError('ls takes one process id');
  const pid = parsePid(rest[0]);
  const fds = listProcessFds(pid);
  io.out(json ? JSON.stringify(fds, null, 2) + '\n' : formatFdTable(fds));
  const failed = fds.filter((info) => info.error !== undefined);
  if (failed.length === 0) return 0;
  const codes = [...new Set(failed.map((info) => info.error))].join(', ');
  const why = `reading /proc/${pid}/fd/<n> and fdinfo needs ptrace read access to process ${pid} (the same user, or CAP_SYS_PTRACE)`;
  if (failed.length < fds.length) {
    io.err(`fdpass: ${failed.length} of ${fds.length} fds of process ${pid} could not be read (${codes}): ${why}\n`);
    return 0;
  }
  io.err(`fdpass: none of the ${fds.length} fds of process ${pid} could be read (${codes}): ${why}\n`);
  return 1;
}

// sh puts its own pid ($$) in LISTEN_PID, then exec()s the command, which keeps that pid.
const SET_LISTEN_PID = 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"';

async function grab(args: string[], io: Io): Promise<number> {
  const dashes = args.indexOf('--');
  if (dashes < 0 || dashes === args.length - 1) throw new UsageError('grab needs -- and a command');
  const [pidArg, ...fdArgs] = args.slice(0, dashes);
  const command = args.slice(dashes + 1);
  const pid = parsePid(pidArg);
  if (fdArgs.length === 0) throw new UsageError('grab needs at least one fd number');
  const targets = fdArgs.map(parseFd);

  const grabbed: Fd[] = [];
  try {
    {
      using pidfd = PidFd.open(pid);
      for (const fd of targets) grabbed.push(pidfd.getFd(fd));
    }
    const env: NodeJS.ProcessEnv = { ...process.env, LISTEN_FDS: String(grabbed.length) };
    delete env.LISTEN_PID;
    delete env.LISTEN_FDNAMES;
    // Node dup2()s each stdio entry into place (3, 4, …) in the child, clearing close-on-exec there.
    const child = spawn('/bin/sh', ['-c', SET_LISTEN_PID, 'fdpass-grab', ...command], {
      stdio: ['inherit', 'inherit', 'inherit', ...grabbed.map((f) => f.fd)],
      env,
    });
    // Our copies are not needed once the child has its own.
    for (const f of grabbed) f.close();
    // Forward termination requests; SIGINT from a terminal already reaches the whole process group.
    const forward = (sig: NodeJS.Signals): void => {
      child.kill(sig);
    };
    const forwarded: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP'];
    for (const sig of forwarded) process.on(sig, forward);
    const onInt = (): void => {};
    process.on('SIGINT', onInt);
    try {
      return await new Promise<number>((resolve, reject) => {
        child.once('error', reject);
        child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? osConstants.signals[signal] : 0)));
      });
    } finally {
      for (const sig of forwarded) process.off(sig, forward);
      process.off('SIGINT', onInt);
    }
  } finally {
    for (const f of grabbed) f.close();
  }
}

/** Runs the CLI; resolves with the exit status. Errors are printed, never thrown. */
export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  const [command, ...args] = argv;
  try {
    switch (command) {
      case 'ls':
        return ls(args, io);
      case 'grab':
        return await grab(args, io);
      case undefined:
      case 'help':
      case '-h':
      case '--help':
        (command === undefined ? io.err : io.out)(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`fdpass: ${err.message}\n${USAGE}`);
      return 2;
    }
    io.err(`fdpass: ${(err as Error).message ?? String(err)}\n`);
    return 1;
  }
}

function isEntryPoint(): boolean {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  process.exitCode = await main(process.argv.slice(2));
}
