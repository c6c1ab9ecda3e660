/**
 * The OCI runtime console socket (`runc create --console-socket PATH`, also crun, youki): the
 * runtime connects to PATH (SOCK_STREAM) and sends the pseudo-terminal master of the
 * container's console as one message: the payload is the master's file *name* and one fd.
 *
 * runc's code (libcontainer/utils/cmsg.go): `SendFile(socket, file)` →
 * `unix.Sendmsg(socket, []byte(file.Name()), unix.UnixRights(fd), nil, 0)`, names shorter than
 * `MaxNameLen` (4096). The file is the master it opened (containerd/console NewPty:
 * `os.OpenFile("/dev/ptmx", O_RDWR|O_NOCTTY|O_CLOEXEC)`; newer runc reopens `/dev/pts/ptmx`),
 * so the name is the master's path ("/dev/ptmx"), not the "/dev/pts/N" of the container's side.
 * Its receiver, `RecvFile`, requires exactly one control message with exactly one fd and a
 * name shorter than 4096 bytes; so does this one.
 */
import { FdPassError, invalidArgType } from '../errors.js';
import type { Fd } from '../fd.js';
import { UnixServer } from '../server.js';
import { UnixSocket, type Message, type SignalOptions } from '../socket.js';

/** runc's utils.MaxNameLen: a name must be shorter than this. */
export const MAX_NAME_LENGTH = 4096;

/** Options of `receiveConsole()`. */
export interface ReceiveConsoleOptions extends SignalOptions {
  /** Reject (and close) a descriptor that is not a terminal. Default true. */
  requireTty?: boolean;
}

/** The console a container runtime sent: the pty master and the name sent with it. */
export interface ReceivedConsole {
  /** The pty master: read the container's output from it, write its input to it. */
  fd: Fd;
  /** The name the runtime sent with it (the master's path, e.g. "/dev/ptmx"). */
  name: string;
}

function protocolError(message: string): FdPassError {
  return new FdPassError('ERR_FDPASS_PROTOCOL', message);
}

/**
 * Take the console a container runtime sends over a console socket. Given a `UnixServer`
 * (listen on the path you pass as `--console-socket`, type 'stream'), accepts one connection,
 * reads the console from it and closes it; given an accepted `UnixSocket`, reads from that
 * (and leaves it open). Errors (ERR_FDPASS_EOF, ERR_FDPASS_PROTOCOL) close every fd received.
 */
export async function receiveConsole(source: UnixServer | UnixSocket, options?: ReceiveConsoleOptions): Promise<ReceivedConsole> {
  const requireTty = options?.requireTty ?? true;
  if (typeof requireTty !== 'boolean') throw invalidArgType('options.requireTty', 'a boolean', requireTty);
  const signal = options?.signal;
  if (source instanceof UnixServer) {
    const conn = await source.accept({ signal });
    try {
      return await readConsole(conn, requireTty, signal);
    } finally {
      conn.close();
    }
  }
  if (source instanceof UnixSocket) return readConsole(source, requireTty, signal);
  throw invalidArgType('source', 'a UnixServer or a UnixSocket', source);
}

async function readConsole(conn: UnixSocket, requireTty: boolean, signal: AbortSignal | undefined): Promise<ReceivedConsole> {
  let msg: Message | null;
  try {
    msg = await conn.recv({ maxBytes: MAX_NAME_LENGTH, maxFds: 1, signal });
  } catch (err) {
    if ((err as FdPassError).code === 'ERR_FDPASS_TRUNC') throw protocolError(`console socket: the name is ${MAX_NAME_LENGTH} bytes or longer (its descriptors were closed)`);
    throw err;
  }
  if (msg === null) throw new FdPassError('ERR_FDPASS_EOF', 'console socket: the runtime closed the connection without sending a console');
  const { data, fds, droppedFds } = msg;
  const total = fds.length + droppedFds;
  let problem: string | undefined;
  if (total !== 1) problem = `expected exactly one descriptor, got ${total}`;
  else if (data.length >= MAX_NAME_LENGTH) problem = `the name is ${MAX_NAME_LENGTH} bytes or longer`;
  else if (requireTty) {
    const kind = fds[0].describe().kind;
    if (kind !== 'tty') problem = `the descriptor is not a terminal (it is ${kind})`;
  }
  if (problem !== undefined) {
    for (const f of fds) f.close();
    throw protocolError(`console socket: ${problem}${total > 0 ? ` (closed ${total === 1 ? 'it' : `all ${total}`})` : ''}`);
  }
  return { fd: fds[0], name: data.toString('utf8') };
}
