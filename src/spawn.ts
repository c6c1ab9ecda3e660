/**
 * Child processes with a channel: the parent keeps one end of a socket pair, the child gets the
 * other as an extra stdio descriptor (fd 3 unless told otherwise) and finds it with
 * `inheritedSocket()` — or, in any other language, reads fd `$FDPASS_FD`.
 */
import { spawn, type ChildProcess, type SpawnOptions, type StdioOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { integerOption } from './args.js';
import { FdPassError, invalidArgType, invalidArgValue } from './errors.js';
import { Fd, describeFd } from './fd.js';
import { describeKind } from './node.js';
import { adopt, defaultMessageType, socketPair } from './connect.js';
import { launcherHint, planLaunch } from './launcher.js';
import type { SocketType, UnixSocket } from './socket.js';

/** The environment variable that tells a child which descriptor is its socket. */
export const FDPASS_FD_ENV = 'FDPASS_FD';
/**
 * …and which fdpass type it is, so `inheritedSocket()` reads a stream socket the way the parent
 * made it ('stream' raw bytes or 'framed' messages: the kernel type is the same).
 */
export const FDPASS_TYPE_ENV = 'FDPASS_TYPE';
const DEFAULT_CHILD_FD = 3;

/** `child_process.spawn` options, plus where the child's socket goes (`fd`) and its `type`. */
export interface SpawnWithSocketOptions extends SpawnOptions {
  /** The descriptor number the child's end gets (default 3; 0–2 are stdin/stdout/stderr). */
  fd?: number;
  /** Socket type of the pair (default 'seqpacket', or 'framed' where there is none: one message per send). */
  type?: SocketType;
}

/** What spawnWithSocket/forkWithSocket return: the child, and the parent's end of its socket. */
export interface ChildWithSocket {
  /** The child process, as child_process.spawn returns it. */
  child: ChildProcess;
  /** The parent's end. The child's end is closed in the parent once the child is spawned. */
  socket: UnixSocket;
}

type StdioEntry = Exclude<StdioOptions, string>[number];

function stdioArray(stdio: StdioOptions | undefined, childFd: number): StdioEntry[] {
  let entries: StdioEntry[];
  if (stdio === undefined) entries = ['pipe', 'pipe', 'pipe'];
  else if (typeof stdio === 'string') entries = [stdio, stdio, stdio];
  else if (Array.isArray(stdio)) entries = [...stdio];
  else throw invalidArgType('options.stdio', 'a string or an array', stdio);
  if (entries[childFd] !== undefined && entries[childFd] !== null) {
    throw invalidArgValue('options.stdio', `already uses descriptor ${childFd} of the child; pass another options.fd for the socket`);
  }
  while (entries.length < childFd) entries.push('ignore');
  for (let i = 3; i < childFd; i++) entries[i] ??= 'ignore';
  return entries;
}

/**
 * `child_process.spawn` with a socket pair: the child gets one end at descriptor
 * `options.fd` (default 3) and `FDPASS_FD=<n>` in its environment; the parent gets the other
 * end as a UnixSocket. The parent's copy of the child's end is closed once the child is
 * spawned, so the parent's socket sees end-of-stream when the child exits. Works for any
 * program: Python reads it with `socket.socket(fileno=3)` and `socket.recv_fds`, C with recvmsg.
 * The tsx CLI (`tsx file.ts`, `npx tsx file.ts`, `node_modules/.bin/tsx file.ts`) would lose the
 * socket, so it is run as `node --import <tsx's loader> file.ts` instead; other package runners
 * (npx, npm exec/run, pnpm, yarn, bunx) are refused with ERR_INVALID_ARG_VALUE before spawning.
 */
export function spawnWithSocket(command: string, args: readonly string[] = [], options: SpawnWithSocketOptions = {}): ChildWithSocket {
  if (typeof command !== 'string') throw invalidArgType('command', 'a string', command);
  if (!Array.isArray(args)) throw invalidArgType('args', 'an array of strings', args);
  const { fd: requestedFd, type = defaultMessageType, stdio, env, ...spawnOptions } = options;
  const childFd = integerOption(requestedFd, 'options.fd', 3, 1023, DEFAULT_CHILD_FD);
  const entries = stdioArray(stdio, childFd);
  // The tsx CLI and package runners (npx, npm exec) do not pass fd 3 on: run node with tsx's
  // loader instead of `tsx file.ts`, and refuse the others before anything is spawned.
  const cwd = spawnOptions.cwd instanceof URL ? fileURLToPath(spawnOptions.cwd) : spawnOptions.cwd ?? process.cwd();
  const plan = planLaunch(command, args, cwd, env ?? process.env);
  if (plan !== null && 'refuse' in plan) throw invalidArgValue('command', plan.refuse);
  const [file, argv] = plan === null ? [command, args] : [plan.command, plan.args];
  const [parentEnd, childEnd] = socketPair(type);
  let child: ChildProcess;
  try {
    entries[childFd] = childEnd.fd;
    child = spawn(file, argv, {
      ...spawnOptions,
      stdio: entries,
      env: { ...(env ?? process.env), [FDPASS_FD_ENV]: String(childFd), [FDPASS_TYPE_ENV]: type },
    });
  } catch (err) {
    parentEnd.close();
    throw err;
  } finally {
    // The child has its own copy now (spawn has forked by the time it returns).
    childEnd.close();
  }
  return { child, socket: parentEnd };
}

/** spawnWithSocket options, plus the Node binary and its options (as `child_process.fork`). */
export interface ForkWithSocketOptions extends SpawnWithSocketOptions {
  /** The Node binary (default process.execPath). */
  execPath?: string;
  /** Node options for the child (default process.execArgv, like child_process.fork). */
  execArgv?: string[];
}

const TS_MODULE = /\.[cm]?tsx?$/;

/**
 * Run a Node script (`.js`, `.mjs`, or `.ts` through tsx) with a socket at fd 3:
 * `spawnWithSocket(process.execPath, [...execArgv, modulePath, ...args])`, stdio inherited by
 * default as with `fork`. A TypeScript module gets `--import tsx` unless execArgv already
 * loads tsx (tsx must then be installed where the child runs). No IPC channel is opened:
 * use the socket.
 */
export function forkWithSocket(modulePath: string | URL, args: readonly string[] = [], options: ForkWithSocketOptions = {}): ChildWithSocket {
  const path = modulePath instanceof URL ? fileURLToPath(modulePath) : modulePath;
  if (typeof path !== 'string') throw invalidArgType('modulePath', 'a string or a file URL', modulePath);
  const { execPath = process.execPath, execArgv = process.execArgv, stdio = 'inherit', ...rest } = options;
  const loader = TS_MODULE.test(path) && !execArgv.some((a) => a.includes('tsx')) ? ['--import', 'tsx'] : [];
  return spawnWithSocket(execPath, [...loader, ...execArgv, path, ...args], { ...rest, stdio });
}

let inherited: UnixSocket | undefined;

/**
 * In a child started by `spawnWithSocket`/`forkWithSocket`: the UnixSocket at fd
 * `$FDPASS_FD` (default 3). The same socket is returned on every call. The descriptor is made
 * close-on-exec and FDPASS_FD is removed from process.env, so this process's own children
 * neither inherit it nor look for it. Throws ERR_FDPASS_NO_INHERITED_SOCKET when there is no
 * Unix socket there, saying what is there instead and which launcher lost it (the tsx CLI and
 * npx start programs with only stdin, stdout and stderr: use `node --import tsx file.ts`).
 */
export function inheritedSocket(): UnixSocket {
  if (inherited) return inherited;
  const value = process.env[FDPASS_FD_ENV];
  const fd = value === undefined || value === '' ? DEFAULT_CHILD_FD : Number(value);
  const origin = value === undefined || value === '' ? 'FDPASS_FD is not set; 3 is the default' : `FDPASS_FD=${value}`;
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
    throw new FdPassError('ERR_FDPASS_NO_INHERITED_SOCKET', `inheritedSocket: ${origin}, which is not a descriptor number`);
  }
  let what: string;
  try {
    const desc = describeFd(fd);
    if (desc.kind === 'socket' && desc.socket?.family === 'unix' && !desc.socket.listening) {
      const type = process.env[FDPASS_TYPE_ENV] as SocketType | undefined;
      const f = new Fd(fd);
      f.setCloseOnExec(true);
      inherited = adopt(f, type ? { type } : undefined);
      delete process.env[FDPASS_FD_ENV];
      delete process.env[FDPASS_TYPE_ENV];
      return inherited;
    }
    what = `is ${describeKind(desc)}, not a connected Unix socket`;
  } catch (err) {
    if ((err as FdPassError).code !== 'EBADF') throw err;
    what = 'is not open';
  }
  let fix = launcherHint(fd);
  if (fix === '' && (value === undefined || value === '')) fix = '; start this process with spawnWithSocket() or forkWithSocket(), or give it a socket pair end at that fd';
  // FDPASS_FD is set: the parent did use spawnWithSocket, and the socket got lost on the way.
  else if (fix === '') fix = '; the parent passed a socket (it set FDPASS_FD), so something between it and this process did not pass the descriptor on: a launcher such as the tsx CLI or npx (start node itself: `node --import tsx file.ts`), or a wrapper that closes descriptors';
  throw new FdPassError('ERR_FDPASS_NO_INHERITED_SOCKET', `inheritedSocket: fd ${fd} (${origin}) ${what}${fix}`);
}
