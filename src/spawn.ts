/**
 * Child processes with a channel: the parent keeps one end of a socket pair, the child gets the
 * other as an extra stdio descriptor (fd 3 unless told otherwise) and finds it with
 * `inheritedSocket()` — or, in any other language, reads fd `$FDPASS_FD`.
 */
import { spawn, type ChildProcess, type SpawnOptions, type StdioOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FdPassError, invalidArgType, invalidArgValue, outOfRange } from './errors.js';
import { Fd, describeFd } from './fd.js';
import { describeKind } from './node.js';
import { adopt, defaultMessageType, socketPair } from './connect.js';
import type { SocketType, UnixSocket } from './socket.js';

/** The environment variable that tells a child which descriptor is its socket. */
export const FDPASS_FD_ENV = 'FDPASS_FD';
/**
 * …and which fdpass type it is, so `inheritedSocket()` reads a stream socket the way the parent
 * made it ('stream' raw bytes or 'framed' messages: the kernel type is the same).
 */
export const FDPASS_TYPE_ENV = 'FDPASS_TYPE';
const DEFAULT_CHILD_FD = 3;

export interface SpawnWithSocketOptions extends SpawnOptions {
  /** The descriptor number the child's end gets (default 3; 0–2 are stdin/stdout/stderr). */
  fd?: number;
  /** Socket type of the pair (default 'seqpacket', or 'framed' where there is none: one message per send). */
  type?: SocketType;
}

export interface ChildWithSocket {
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
 */
export function spawnWithSocket(command: string, args: readonly string[] = [], options: SpawnWithSocketOptions = {}): ChildWithSocket {
  if (typeof command !== 'string') throw invalidArgType('command', 'a string', command);
  if (!Array.isArray(args)) throw invalidArgType('args', 'an array of strings', args);
  const { fd: requestedFd, type = defaultMessageType, stdio, env, ...spawnOptions } = options;
  const childFd = requestedFd ?? DEFAULT_CHILD_FD;
  if (!Number.isInteger(childFd) || childFd < 3 || childFd > 1023) throw outOfRange('options.fd', 'an integer from 3 to 1023', childFd);
  const entries = stdioArray(stdio, childFd);
  const [parentEnd, childEnd] = socketPair(type);
  let child: ChildProcess;
  try {
    entries[childFd] = childEnd.fd;
    child = spawn(command, args, {
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
 * Unix socket there.
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
  throw new FdPassError('ERR_FDPASS_NO_INHERITED_SOCKET', `inheritedSocket: fd ${fd} (${origin}) ${what}; start this process with spawnWithSocket() or forkWithSocket(), or give it a socket pair end at that fd`);
}
