/**
 * Python `multiprocessing.reduction` on the wire: `send_handle` / `recv_handle` and
 * `sendfds` / `recvfds`, so a Node process can trade descriptors with a Python process that
 * uses them (directly, or through a `multiprocessing.connection.Connection`'s fd).
 *
 * CPython (Lib/multiprocessing/reduction.py, Unix branch):
 *   sendfds(sock, fds): sock.sendmsg([bytes([len(fds) % 256])], [(SOL_SOCKET, SCM_RIGHTS, array('i', fds))])
 *                       then, on macOS only (ACKNOWLEDGE), waits for the byte b'A'
 *   recvfds(sock, size): recvmsg(1, CMSG_SPACE(4 * size)); EOFError if nothing came; on macOS
 *                        sends b'A'; exactly one SCM_RIGHTS item whose count % 256 equals the byte
 *   send_handle(conn, handle, destination_pid) = sendfds on socket.fromfd(conn.fileno(), AF_UNIX, SOCK_STREAM)
 *   recv_handle(conn) = recvfds(..., 1)[0]
 * `destination_pid` is only used on Windows (DuplicateHandle); on Unix it is ignored.
 */
import { integerOption } from '../args.js';
import { FdPassError, invalidArgType, outOfRange } from '../errors.js';
import type { Fd } from '../fd.js';
import { C } from '../libc.js';
import type { FdLike } from '../fdlike.js';
import { UnixSocket, type SignalOptions } from '../socket.js';

/** Options of the multiprocessing helpers: `signal`, and CPython's acknowledgement byte. */
export interface HandleOptions extends SignalOptions {
  /**
   * CPython's acknowledgement byte (`b'A'` sent by the receiver after each message). CPython
   * uses it only on macOS (`ACKNOWLEDGE = sys.platform == 'darwin'`), so the default is
   * `process.platform === 'darwin'`. Both ends must agree.
   */
  acknowledge?: boolean;
}

const ACK = 0x41; // 'A'
const ACK_BYTE = Buffer.of(ACK);

function protocolError(message: string): FdPassError {
  return new FdPassError('ERR_FDPASS_PROTOCOL', message);
}

function checkSocket(socket: unknown): UnixSocket {
  if (!(socket instanceof UnixSocket)) {
    throw invalidArgType('socket', 'a UnixSocket (wrap an inherited Connection fd with adopt(fd))', socket);
  }
  // Python writes the raw stream; fdpass's frame headers would be read as its payload bytes.
  if (socket.type === 'framed') {
    throw new FdPassError('ERR_FDPASS_WRONG_KIND', "multiprocessing speaks a raw byte stream, and this socket is 'framed': open it as { type: 'stream' } (adopt(fd, { type: 'stream' }), connect({ path, type: 'stream' }))");
  }
  return socket;
}

function acknowledgeOf(options: HandleOptions | undefined): boolean {
  const ack = options?.acknowledge;
  if (ack !== undefined && typeof ack !== 'boolean') throw invalidArgType('options.acknowledge', 'a boolean', ack);
  return ack ?? process.platform === 'darwin';
}

function closeAll(fds: readonly Fd[]): void {
  for (const f of fds) f.close();
}

/**
 * `multiprocessing.reduction.sendfds(sock, fds)`: one message whose single payload byte is
 * `fds.length % 256`, carrying `fds` (1 to 253). Our copies stay open.
 */
export async function sendFds(socket: UnixSocket, fds: readonly FdLike[], options?: HandleOptions): Promise<void> {
  checkSocket(socket);
  if (!Array.isArray(fds)) throw invalidArgType('fds', 'an array of fds', fds);
  // An empty SCM_RIGHTS item sends no descriptors at all: recvfds would then fail on the other side.
  if (fds.length < 1 || fds.length > C.SCM_MAX_FD) throw outOfRange('fds.length', `from 1 to ${C.SCM_MAX_FD}`, fds.length);
  const acknowledge = acknowledgeOf(options);
  const signal = options?.signal;
  await socket.send(Buffer.of(fds.length % 256), fds, { signal });
  if (acknowledge) {
    const reply = await socket.recv({ maxBytes: 1, maxFds: 0, signal });
    if (reply === null) throw new FdPassError('ERR_FDPASS_EOF', 'sendfds: the peer closed the connection instead of acknowledging the descriptors');
    if (reply.data[0] !== ACK) throw protocolError(`sendfds: did not receive acknowledgement of fd (expected b'A', got 0x${(reply.data[0] ?? 0).toString(16)})`);
  }
}

/**
 * `multiprocessing.reduction.send_handle(conn, handle, destination_pid)`: send one descriptor.
 * `destinationPid` exists for signature parity; CPython ignores it on Unix, and so does this.
 */
export async function sendHandle(socket: UnixSocket, handle: FdLike, destinationPid?: number, options?: HandleOptions): Promise<void> {
  integerOption(destinationPid, 'destinationPid', 1, 0x3fffffff, 0);
  await sendFds(socket, [handle], options);
}

/**
 * `multiprocessing.reduction.recvfds(sock, size)`: receive one message of one byte and 1 to
 * `size` descriptors, checking the byte equals the count % 256. Throws ERR_FDPASS_EOF if the
 * peer closed first (CPython's EOFError) and ERR_FDPASS_PROTOCOL for anything else (more than
 * `size` fds, none, a wrong count byte, a longer payload); every descriptor that arrived with a
 * rejected message is closed.
 */
export async function recvFds(socket: UnixSocket, size: number, options?: HandleOptions): Promise<Fd[]> {
  checkSocket(socket);
  if (size === undefined) throw invalidArgType('size', 'a number', size);
  integerOption(size, 'size', 1, C.SCM_MAX_FD, 0);
  const acknowledge = acknowledgeOf(options);
  const signal = options?.signal;
  // One byte, as CPython reads: on a stream socket the next message's byte stays queued.
  let msg;
  try {
    msg = await socket.recv({ maxBytes: 1, maxFds: size, signal });
  } catch (err) {
    const code = (err as FdPassError).code;
    if (code === 'ERR_FDPASS_TRUNC') throw protocolError(`recvfds: expected a one-byte message, got a longer one (its descriptors were closed)`);
    throw err;
  }
  if (msg === null || (msg.data.length === 0 && msg.fds.length === 0 && msg.droppedFds === 0)) {
    throw new FdPassError('ERR_FDPASS_EOF', 'recvfds: the peer closed the connection before sending descriptors');
  }
  const { data, fds, droppedFds } = msg;
  try {
    if (acknowledge) await socket.send(ACK_BYTE, null, { signal });
  } catch (err) {
    closeAll(fds);
    throw err;
  }
  const total = fds.length + droppedFds;
  let problem: string | undefined;
  if (droppedFds > 0) problem = `expected at most ${size} descriptor${size === 1 ? '' : 's'}, got ${total}`;
  else if (fds.length === 0) problem = `expected ${size === 1 ? 'a descriptor' : `1 to ${size} descriptors`}, got a message with none`;
  else if (data.length !== 1) problem = 'expected a one-byte payload (the descriptor count), got an empty one';
  else if (data[0] !== fds.length % 256) problem = `the payload byte says ${data[0]} descriptors but ${fds.length} arrived`;
  if (problem !== undefined) {
    closeAll(fds);
    throw protocolError(`recvfds: ${problem}${total > 0 ? ` (all ${total} closed)` : ''}`);
  }
  return fds;
}

/** `multiprocessing.reduction.recv_handle(conn)`: receive exactly one descriptor. */
export async function recvHandle(socket: UnixSocket, options?: HandleOptions): Promise<Fd> {
  const [fd] = await recvFds(socket, 1, options);
  return fd;
}
