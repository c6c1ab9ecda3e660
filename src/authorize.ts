/**
 * Connection authorization for UnixServer: the peer's kernel-checked identity (SO_PEERCRED,
 * and SO_PEERPIDFD on demand) is shown to a synchronous `authorize` function inside accept;
 * a connection it does not admit is closed before any caller sees it.
 */
import type { PeerCredentials } from './cmsg.js';
import { FdPassError, invalidArgType } from './errors.js';
import { closeQuietly } from './libc.js';
import { peerPidFdOf, type PidFd } from './pidfd.js';
import { peerCredentials } from './sockopt.js';

/** Who is connecting, as the kernel recorded it when the peer called connect(2). */
export interface PeerInfo extends PeerCredentials {
  /**
   * A PidFd for the connecting process itself (SO_PEERPIDFD, Linux 6.5+; throws ENOPROTOOPT
   * before): unlike `pid`, it cannot come to name another process. Opened on first call and
   * closed by fdpass when `authorize` returns — use it inside `authorize` only (call
   * `conn.peerPidFd()` on the accepted socket to keep one).
   */
  pidfd(): PidFd;
}

/**
 * Decide synchronously whether a connection may reach the caller: return `true` to admit,
 * `false` to refuse (the connection is closed and accept goes on waiting for the next one).
 * Anything else — a throw, a Promise, a non-boolean — also refuses the connection, and the
 * pending accept fails with ERR_FDPASS_AUTHORIZE (the server itself stays open).
 */
export type Authorize = (peer: PeerInfo) => boolean;

export function checkAuthorize(value: unknown, name: string): Authorize | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') throw invalidArgType(name, 'a function', value);
  return value as Authorize;
}

class Peer implements PeerInfo {
  readonly pid: number | undefined;
  readonly uid: number;
  readonly gid: number;
  #fd: number;
  #pidfd: PidFd | undefined;

  constructor(fd: number, creds: PeerCredentials) {
    this.#fd = fd;
    this.pid = creds.pid;
    this.uid = creds.uid;
    this.gid = creds.gid;
  }

  pidfd(): PidFd {
    if (this.#fd < 0) throw new FdPassError('ERR_FDPASS_CLOSED', 'peer.pidfd() is only available while authorize runs');
    return (this.#pidfd ??= peerPidFdOf(this.#fd));
  }

  toJSON(): PeerCredentials {
    return { pid: this.pid, uid: this.uid, gid: this.gid };
  }

  dispose(): void {
    this.#pidfd?.close();
    this.#pidfd = undefined;
    this.#fd = -1;
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object' || typeof value === 'function') {
    return typeof (value as { then?: unknown }).then === 'function' ? 'a Promise' : `an instance of ${(value as object).constructor?.name ?? 'Object'}`;
  }
  return `${typeof value} ${String(value)}`;
}

/**
 * Run `authorize` for the freshly accepted connection `conn`. True: admitted (the caller
 * wraps it). False: refused and closed. Throws ERR_FDPASS_AUTHORIZE (connection closed) when
 * `authorize` throws or returns something other than a boolean.
 */
export function admit(conn: number, authorize: Authorize): boolean {
  let peer: Peer;
  try {
    peer = new Peer(conn, peerCredentials(conn));
  } catch (err) {
    closeQuietly(conn);
    throw new FdPassError('ERR_FDPASS_AUTHORIZE', `connection refused: its credentials could not be read (${(err as Error).message})`, { cause: err });
  }
  let verdict: unknown;
  try {
    verdict = authorize(peer);
  } catch (err) {
    closeQuietly(conn);
    throw new FdPassError(
      'ERR_FDPASS_AUTHORIZE',
      `authorize threw (${err instanceof Error ? err.message : String(err)}): the connection from pid ${peer.pid} (uid ${peer.uid}, gid ${peer.gid}) was refused and closed`,
      { cause: err },
    );
  } finally {
    peer.dispose();
  }
  if (verdict === true) return true;
  closeQuietly(conn);
  if (verdict === false) return false;
  const then = (verdict as { then?: unknown } | null)?.then;
  // An async authorize: its eventual rejection must not surface as an unhandled rejection.
  if (typeof then === 'function') (verdict as Promise<unknown>).then(undefined, () => {});
  throw new FdPassError(
    'ERR_FDPASS_AUTHORIZE',
    `authorize must return true or false synchronously; it returned ${describe(verdict)}: the connection from pid ${peer.pid} (uid ${peer.uid}) was refused and closed`,
  );
}
