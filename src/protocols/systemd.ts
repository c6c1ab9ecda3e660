/**
 * systemd's fd protocols, without libsystemd:
 *
 * - Socket activation (sd_listen_fds(3)): the service manager starts us with its sockets at
 *   fd 3, 4, … and `LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES` (and, in newer systemd,
 *   `LISTEN_PIDFDID`) in the environment. `listenFds()` takes them; `listenServers()` turns
 *   listening TCP / Unix stream sockets into `net.Server`s.
 * - Notification (sd_notify(3)): one datagram to `$NOTIFY_SOCKET` (a path, or '@' for an
 *   abstract name) with newline-separated `KEY=VALUE` assignments and, for the fd store
 *   (`FDSTORE=1`, `FDNAME=`), the fds as SCM_RIGHTS. `notifyBarrier()` is sd_notify_barrier.
 * - `listenNotify()`: the receiving side, for supervisors written in Node (and for tests):
 *   what systemd's manager reads, with the sender's pid/uid/gid from SCM_CREDENTIALS.
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { once } from 'node:events';
import * as net from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { encodeUnixAddress } from '../address.js';
import { FdPassError, abortError, invalidArgType, invalidArgValue, outOfRange } from '../errors.js';
import { Fd, pipe, type FdDescription } from '../fd.js';
import { createSocket } from '../create.js';
import { C, CAPS, CREDENTIALS, E, EAGAIN, EINTR, ETIMEDOUT, L, check, closeQuietly, fcntlInt, lastErrno, sys, unsupported } from '../libc.js';
import type { FdLike } from '../fdlike.js';
import { describeKind, toNetServer } from '../node.js';
import { PidFd } from '../pidfd.js';
import { fdInode } from '../stat.js';
import { Watcher } from '../poll.js';
import { integerOption, timeoutOption, toFdNumbers, type SignalOptions } from '../args.js';
import { adopt, connect } from '../connect.js';
import { UnixSocket } from '../socket.js';

/** The first passed descriptor (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

/** systemd reads at most this many bytes of a notification (NOTIFY_BUFFER_MAX = PIPE_BUF). */
export const NOTIFY_MAX_BYTES = 4096;

const LISTEN_VARS = ['LISTEN_PID', 'LISTEN_PIDFDID', 'LISTEN_FDS', 'LISTEN_FDNAMES'] as const;

function envError(message: string): FdPassError {
  return new FdPassError('ERR_FDPASS_LISTEN_FDS', message);
}

/** A descriptor passed by the service manager, with its name from LISTEN_FDNAMES ("unknown" when none was given). */
export class ListenFd extends Fd {
  constructor(
    fd: number,
    /** The name from LISTEN_FDNAMES (FileDescriptorName= in the .socket unit), or "unknown". */
    readonly name: string,
  ) {
    super(fd);
  }
}

/** Options of `listenFds()`. */
export interface ListenFdsOptions {
  /**
   * Remove LISTEN_PID, LISTEN_PIDFDID, LISTEN_FDS and LISTEN_FDNAMES from the environment (in
   * every case, also on errors), so child processes do not think the fds are theirs. Default
   * true: the returned Fds own the descriptors, and a second call must not wrap them again.
   */
  unsetEnv?: boolean;
}

/** Our own pidfd's inode number (what systemd puts in LISTEN_PIDFDID), or undefined if pidfds are unavailable. */
function ownPidfdId(): bigint | undefined {
  let pidfd: PidFd;
  try {
    pidfd = PidFd.open(process.pid);
  } catch {
    return undefined;
  }
  try {
    return fdInode(pidfd.fd);
  } finally {
    pidfd.close();
  }
}

function parseListenEnv(env: NodeJS.ProcessEnv): { count: number; names: string[] | undefined } | null {
  const pidText = env.LISTEN_PID;
  if (pidText === undefined) return null;
  if (!/^[1-9][0-9]{0,9}$/.test(pidText)) throw envError(`LISTEN_PID is not a process id: ${JSON.stringify(pidText)}`);
  // Meant for another process (e.g. inherited through a shell): not ours.
  if (Number(pidText) !== process.pid) return null;
  const pidfdText = env.LISTEN_PIDFDID;
  if (pidfdText !== undefined) {
    if (!/^[0-9]{1,20}$/.test(pidfdText) || BigInt(pidfdText) >= 2n ** 64n) throw envError(`LISTEN_PIDFDID is not a number: ${JSON.stringify(pidfdText)}`);
    const own = ownPidfdId();
    // A recycled pid: same number, another process. (No pidfd support: the pid check stands.)
    if (own !== undefined && own !== BigInt(pidfdText)) return null;
  }
  const fdsText = env.LISTEN_FDS;
  if (fdsText === undefined) return null;
  if (!/^[0-9]{1,10}$/.test(fdsText) || Number(fdsText) < 1 || Number(fdsText) > 0x7fffffff - LISTEN_FDS_START) {
    throw envError(`LISTEN_FDS is not a positive count: ${JSON.stringify(fdsText)}`);
  }
  const count = Number(fdsText);
  const namesText = env.LISTEN_FDNAMES;
  let names: string[] | undefined;
  if (namesText !== undefined) {
    names = namesText === '' ? [] : namesText.split(':');
    if (names.length !== count) throw envError(`LISTEN_FDNAMES has ${names.length} names for ${count} descriptors: ${JSON.stringify(namesText)}`);
  }
  return { count, names };
}

/**
 * sd_listen_fds_with_names: the descriptors the service manager passed (fd 3, 4, …), each
 * set close-on-exec and owned by the returned `ListenFd` (with `.name`). Returns [] when the
 * environment is absent or meant for another process (LISTEN_PID, LISTEN_PIDFDID). Throws
 * ERR_FDPASS_LISTEN_FDS for a malformed environment, EBADF if a promised fd is not open.
 */
export function listenFds(options?: ListenFdsOptions): ListenFd[] {
  const unsetEnv = options?.unsetEnv ?? true;
  if (typeof unsetEnv !== 'boolean') throw invalidArgType('options.unsetEnv', 'a boolean', unsetEnv);
  try {
    const parsed = parseListenEnv(process.env);
    if (parsed === null) return [];
    const { count, names } = parsed;
    for (let fd = LISTEN_FDS_START; fd < LISTEN_FDS_START + count; fd++) {
      let flags: number;
      try {
        flags = fcntlInt('fcntl', fd, C.F_GETFD);
      } catch (err) {
        throw new FdPassError((err as FdPassError).code, `LISTEN_FDS=${count} but fd ${fd} is not open (fcntl ${(err as FdPassError).code})`, { errno: -((err as FdPassError).errno ?? 0), syscall: 'fcntl', cause: err });
      }
      if (!(flags & C.FD_CLOEXEC)) fcntlInt('fcntl', fd, C.F_SETFD, flags | C.FD_CLOEXEC);
    }
    const out: ListenFd[] = [];
    for (let i = 0; i < count; i++) out.push(new ListenFd(LISTEN_FDS_START + i, names ? names[i] : 'unknown'));
    return out;
  } finally {
    if (unsetEnv) for (const name of LISTEN_VARS) delete process.env[name];
  }
}

function isStreamListener(desc: FdDescription): boolean {
  const s = desc.socket;
  return desc.kind === 'socket' && s !== undefined && s.listening && s.type === 'stream' && (s.family === 'inet' || s.family === 'inet6' || s.family === 'unix');
}

/** One socket-activated listener from `listenServers()`: its name and its listening net.Server. */
export interface ActivatedServer {
  /** The descriptor's name (LISTEN_FDNAMES; FileDescriptorName= in the .socket unit). */
  name: string;
  /** A net.Server (or the server createServer made) listening on the descriptor. */
  server: net.Server;
}

/** Options of `listenServers()`. */
export interface ListenServersOptions extends ListenFdsOptions {
  /** Make the server for each descriptor (e.g. `() => http.createServer(app)`). Default `net.createServer()`. */
  createServer?: (name: string) => net.Server;
}

/**
 * The one-liner for socket-activated services: every passed descriptor as a listening
 * `net.Server` (TCP or Unix stream). If any descriptor is something else (a datagram or
 * seqpacket socket, a FIFO, an accepted connection with `Accept=yes`), all of them are closed
 * and ERR_FDPASS_NOT_LISTENING says which: use `listenFds()` for those.
 */
export async function listenServers(options?: ListenServersOptions): Promise<ActivatedServer[]> {
  const createServer = options?.createServer;
  if (createServer !== undefined && typeof createServer !== 'function') throw invalidArgType('options.createServer', 'a function', createServer);
  const fds = listenFds(options);
  const problems: string[] = [];
  for (const f of fds) {
    const desc = f.describe();
    if (!isStreamListener(desc)) problems.push(`fd ${f.fd} "${f.name}" is ${describeKind(desc)}`);
  }
  if (problems.length > 0) {
    for (const f of fds) f.close();
    throw new FdPassError('ERR_FDPASS_NOT_LISTENING', `listenServers: ${problems.join('; ')} (not a listening TCP or Unix stream socket). All ${fds.length} passed descriptors were closed; use listenFds() to take other kinds`);
  }
  const servers: ActivatedServer[] = [];
  try {
    for (const f of fds) {
      const server = toNetServer(f, createServer ? createServer(f.name) : net.createServer());
      if (!server.listening) await once(server, 'listening');
      servers.push({ name: f.name, server });
    }
  } catch (err) {
    for (const s of servers) s.server.close();
    for (const f of fds) f.close();
    throw err;
  }
  return servers;
}

// ---------------------------------------------------------------------------------------------
// sd_notify

/** An sd_notify message: 'READY=1\nSTATUS=…' text, or `{ READY: 1, STATUS: '…' }`. */
export type NotifyState = string | Readonly<Record<string, string | number | boolean>>;

/** Options of `notify()`, `storeFds()` and `removeStoredFds()`. */
export interface NotifyOptions {
  /** Remove NOTIFY_SOCKET from the environment afterwards (sd_notify's unset_environment). Default false. */
  unsetEnv?: boolean;
  /** Send here instead of `$NOTIFY_SOCKET` (same syntax: an absolute path, or '@name'). */
  socket?: string;
}

function formatState(state: NotifyState): string {
  let text: string;
  if (typeof state === 'string') text = state;
  else if (state !== null && typeof state === 'object') {
    const lines: string[] = [];
    for (const [key, value] of Object.entries(state)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw invalidArgValue('state', `has an invalid variable name ${JSON.stringify(key)}`);
      const v = typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
      if (v.includes('\n')) throw invalidArgValue('state', `value of ${key} must not contain a newline`);
      lines.push(`${key}=${v}`);
    }
    text = lines.join('\n');
  } else throw invalidArgType('state', 'a string or an object of KEY: value', state);
  if (text.length === 0) throw invalidArgValue('state', 'must not be empty');
  if (text.includes('\0')) throw invalidArgValue('state', 'must not contain NUL bytes (systemd ignores such messages)');
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > NOTIFY_MAX_BYTES) throw outOfRange('state', `at most ${NOTIFY_MAX_BYTES} bytes (systemd ignores longer notifications)`, `${bytes} bytes`);
  return text;
}

function parseNotifyAddress(address: string): { path: string } | { abstract: string } {
  if (address.startsWith('vsock:') || address.startsWith('vsock-')) {
    throw new FdPassError('ERR_FDPASS_UNSUPPORTED', `NOTIFY_SOCKET ${address}: AF_VSOCK notification sockets are not supported`);
  }
  if (address.length < 2 || (address[0] !== '/' && address[0] !== '@')) {
    throw new FdPassError('ERR_FDPASS_NOTIFY_SOCKET', `NOTIFY_SOCKET must be an absolute path or '@' and an abstract name: ${JSON.stringify(address)}`);
  }
  return address[0] === '@' ? { abstract: address.slice(1) } : { path: address };
}

/**
 * sd_notify / sd_pid_notify_with_fds: send `state` ("READY=1", "STATUS=…", "STOPPING=1",
 * "FDSTORE=1\nFDNAME=db", or an object `{ READY: 1, STATUS: 'up' }`) as one datagram to
 * `$NOTIFY_SOCKET`, with `fds` as SCM_RIGHTS. Resolves false when there is no NOTIFY_SOCKET
 * (not run by systemd), true once sent.
 */
export async function notify(state: NotifyState, fds?: readonly FdLike[] | null, options?: NotifyOptions): Promise<boolean> {
  const text = formatState(state);
  const fdNumbers = toFdNumbers(fds); // bad fds fail here, before anything is connected or sent
  const unsetEnv = options?.unsetEnv ?? false;
  try {
    const address = options?.socket ?? process.env.NOTIFY_SOCKET;
    if (address === undefined || address === '') return false;
    const target = parseNotifyAddress(address);
    const sock = await connect({ ...target, type: 'dgram' });
    try {
      await sock.send(text, fdNumbers);
    } finally {
      sock.close();
    }
    return true;
  } finally {
    if (unsetEnv) delete process.env.NOTIFY_SOCKET;
  }
}

/** FDNAME rules (systemd's fdname_is_valid): 1 to 255 printable ASCII characters, no ':'. */
function checkFdName(name: unknown): string {
  if (typeof name !== 'string') throw invalidArgType('name', 'a string', name);
  if (!/^[\x20-\x39\x3b-\x7e]{1,255}$/.test(name)) throw invalidArgValue('name', `must be 1 to 255 printable ASCII characters without ':'. Received ${JSON.stringify(name)}`);
  return name;
}

/** Keep `fds` in the service manager's fd store (FDSTORE=1, FDNAME=name); they come back as listenFds() on restart. */
export function storeFds(fds: readonly FdLike[], name?: string, options?: NotifyOptions): Promise<boolean> {
  if (!Array.isArray(fds)) return Promise.reject(invalidArgType('fds', 'an array of fds', fds));
  if (fds.length === 0) return Promise.reject(invalidArgValue('fds', 'must be a non-empty array'));
  let state = 'FDSTORE=1';
  try {
    if (name !== undefined) state += `\nFDNAME=${checkFdName(name)}`;
  } catch (err) {
    return Promise.reject(err);
  }
  return notify(state, fds, options);
}

/** Drop the fd store entries named `name` (FDSTOREREMOVE=1). */
export function removeStoredFds(name: string, options?: NotifyOptions): Promise<boolean> {
  try {
    return notify(`FDSTOREREMOVE=1\nFDNAME=${checkFdName(name)}`, null, options);
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Options of `notifyBarrier()`. */
export interface BarrierOptions extends NotifyOptions, SignalOptions {
  /** Give up with ETIMEDOUT after this long (default 5000, as systemd-notify; Infinity waits forever). */
  timeoutMs?: number;
}

/**
 * sd_notify_barrier: resolves once the service manager has processed every notification sent
 * before it. Sends BARRIER=1 with the write end of a pipe, closes ours, and waits for EOF on
 * the read end (the manager closes its copy after reading). False when there is no NOTIFY_SOCKET.
 */
export async function notifyBarrier(options?: BarrierOptions): Promise<boolean> {
  // -1: forever (Infinity). setTimeout cannot wait longer than 2^31-1 ms, which timeoutOption enforces.
  const timeoutMs = options?.timeoutMs === undefined ? 5000 : timeoutOption(options.timeoutMs);
  const signal = options?.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgType('options.signal', 'an AbortSignal', signal);
  if (signal?.aborted) throw abortError(signal);
  const [readEnd, writeEnd] = pipe();
  try {
    const flags = fcntlInt('fcntl', readEnd.fd, C.F_GETFL);
    fcntlInt('fcntl', readEnd.fd, C.F_SETFL, flags | C.O_NONBLOCK);
    const sent = await notify('BARRIER=1', [writeEnd], options);
    writeEnd.close();
    if (!sent) return false;
    await waitForEof(readEnd.fd, timeoutMs, signal);
    return true;
  } finally {
    writeEnd.close();
    readEnd.close();
  }
}

/** Resolve when every writer of the (non-blocking) pipe `fd` has closed it. */
function waitForEof(fd: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const scratch = Buffer.alloc(64);
    let timer: NodeJS.Timeout | undefined;
    let watcher: Watcher | undefined;
    const finish = (err?: unknown): void => {
      watcher?.close();
      watcher = undefined;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onAbort = (): void => finish(abortError(signal!));
    // The signal may have fired while notify() was sending: its event is gone by now.
    if (signal?.aborted) return finish(abortError(signal));
    /** True at EOF; data (nobody should write any) is read and ignored. */
    const drained = (): boolean => {
      for (;;) {
        // libc's read, not node:fs's: Deno's node:fs refuses descriptors it did not open.
        const n = sys.read(fd, scratch, scratch.length) as number;
        if (n === 0) return true;
        if (n > 0) continue;
        const errno = lastErrno();
        if (errno === EAGAIN) return false;
        if (errno !== EINTR) throw FdPassError.fromErrno('read', errno);
      }
    };
    try {
      if (drained()) return finish();
    } catch (err) {
      return finish(err);
    }
    watcher = new Watcher(fd, () => {
      try {
        if (drained()) finish();
      } catch (err) {
        finish(err);
      }
    });
    watcher.want(true, false);
    if (timeoutMs >= 0) {
      timer = setTimeout(() => finish(new FdPassError('ETIMEDOUT', `notifyBarrier ETIMEDOUT: the service manager did not close the barrier pipe within ${timeoutMs} ms`, { syscall: 'poll', errno: ETIMEDOUT })), timeoutMs);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

// ---------------------------------------------------------------------------------------------
// The receiving side

/** One notification a NotifyListener received, with the sender's kernel-checked identity. */
export interface NotifyMessage {
  /** The datagram as text ("READY=1\nSTATUS=…"). */
  state: string;
  /** Its KEY=VALUE lines (a later line with the same key wins). */
  fields: Record<string, string>;
  /** Descriptors that came with it (FDSTORE=1, BARRIER=1), owned by the caller. */
  fds: Fd[];
  /** The sender's pid, checked by the kernel (SCM_CREDENTIALS). */
  pid: number;
  /** The sender's uid, checked by the kernel. */
  uid: number;
  /** The sender's gid, checked by the kernel. */
  gid: number;
}

function parseFields(state: string): Record<string, string> {
  const fields: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const line of state.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return fields;
}

/** A bound datagram socket that receives sd_notify messages, as systemd's manager does. */
export class NotifyListener {
  /** The value to give a child as NOTIFY_SOCKET. */
  readonly address: string;
  readonly #socket: UnixSocket;
  readonly #created: { path: string; dev: number; ino: number } | undefined;

  /** @internal use listenNotify() */
  constructor(socket: UnixSocket, address: string, created?: { path: string; dev: number; ino: number }) {
    this.#socket = socket;
    this.address = address;
    this.#created = created;
  }

  /**
   * The next notification. A datagram longer than NOTIFY_MAX_BYTES fails with ERR_FDPASS_TRUNC
   * (its fds closed), as systemd ignores it; keep receiving after that.
   */
  async recv(options?: SignalOptions): Promise<NotifyMessage> {
    const msg = await this.#socket.recv({ maxBytes: NOTIFY_MAX_BYTES, signal: options?.signal });
    // A datagram socket never reports end of stream; recv resolves null only once closed.
    if (msg === null) throw new FdPassError('ERR_FDPASS_CLOSED', 'NotifyListener is closed');
    const state = msg.data.toString('utf8');
    const cred = msg.credentials ?? { pid: 0, uid: 0, gid: 0 };
    return { state, fields: parseFields(state), fds: msg.fds, pid: cred.pid, uid: cred.uid, gid: cred.gid };
  }

  /** True after close(). */
  get closed(): boolean {
    return this.#socket.closed;
  }

  /** Close the socket and remove the socket file this listener created. */
  close(): void {
    if (this.#socket.closed) return;
    this.#socket.close();
    const created = this.#created;
    if (created) {
      try {
        const st = lstatSync(created.path);
        if (st.isSocket() && st.dev === created.dev && st.ino === created.ino) unlinkSync(created.path);
      } catch {
        // already gone
      }
    }
  }

  /** close(), for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Where `listenNotify()` binds (`path` or `abstract`), and the socket file's mode. */
export interface ListenNotifyOptions {
  /** A socket file to bind (created with `mode`). */
  path?: string;
  /** A Linux abstract name instead (no file; anyone in the network namespace can send). */
  abstract?: string;
  /** Permissions of the socket file (default 0o600: only this user's processes can notify). */
  mode?: number;
}

/**
 * Bind a notification socket (SOCK_DGRAM, SO_PASSCRED) at a path or '@abstract' name and
 * receive what services send to it with sd_notify / `notify()`. Give children
 * `NOTIFY_SOCKET=listener.address`.
 */
export function listenNotify(target: string | ListenNotifyOptions): NotifyListener {
  const options: ListenNotifyOptions = typeof target === 'string' ? (target.startsWith('@') ? { abstract: target.slice(1) } : { path: target }) : target;
  if (options === null || typeof options !== 'object') throw invalidArgType('target', 'a path string or an options object', target);
  const mode = integerOption(options.mode, 'options.mode', 0, 0o777, 0o600);
  let address: { path: string } | { abstract: string };
  if (options.abstract !== undefined) {
    if (options.path !== undefined) throw invalidArgValue('target', 'must have either path or abstract, not both');
    if (!CAPS.abstractNames) throw unsupported('an abstract socket name', 'use a path');
    address = { abstract: options.abstract };
  } else if (typeof options.path === 'string') {
    address = { path: resolvePath(options.path) };
  } else throw invalidArgType('target.path', 'a string', options.path);
  if (CREDENTIALS === null) {
    throw unsupported(
      'listenNotify() (it reads each sender\'s pid, uid and gid from credential messages)',
      'a supervisor on this platform must identify its children another way, e.g. one socketPair() per child',
    );
  }
  const { sockaddr, length } = encodeUnixAddress(address, L.sockaddr_un, C, E);
  const fd = createSocket(C.AF_UNIX, C.SOCK_DGRAM, false);
  let created: { path: string; dev: number; ino: number } | undefined;
  try {
    if ('path' in address && CAPS.fchmodSocket) check('fchmod', sys.fchmod(fd, mode) as number);
    check('bind', sys.bind(fd, sockaddr, length) as number, 'path' in address ? address.path : `@${address.abstract}`);
    if ('path' in address) {
      const st = lstatSync(address.path);
      created = { path: address.path, dev: st.dev, ino: st.ino };
      // The umask may have removed bits the caller asked for: widen after bind, never narrow late.
      if ((st.mode & 0o777) !== mode) chmodSync(address.path, mode);
    }
    const socket = adopt(fd).passCredentials();
    return new NotifyListener(socket, 'path' in address ? address.path : `@${address.abstract}`, created);
  } catch (err) {
    closeQuietly(fd);
    if (created) unlinkSync(created.path);
    throw err;
  }
}
