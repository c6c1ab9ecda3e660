/** A received message as fdpass hands it out: from what one recvmsg (or one recvmmsg slot) left in the buffers. */
import { Buffer } from 'node:buffer';
import { NO_FDS } from './args.js';
import { parseControl, type ParsedControl } from './cmsg.js';
import { receivedCloexec } from './create.js';
import { FdPassError } from './errors.js';
import { Fd } from './fd.js';
import { C, CAPS, CMSG, CREDENTIALS, closeQuietly } from './libc.js';
import { rightsFd, singleRightsCount } from './msghdr.js';
import { payloadBuffer } from './payload-pool.js';
import type { Message, SocketType } from './socket.js';

const MSG_CTRUNC = C.MSG_CTRUNC;
const MSG_TRUNC = C.MSG_TRUNC;
const ATOMIC_CLOEXEC = CAPS.atomicCloexec;

/**
 * One message as recvmsg (or one recvmmsg slot) left it: `n` payload bytes at `data[offset..]`
 * (or in `into`), msg_flags, and `controlLength` bytes of control data in `control`/`control32`.
 * Returns the Message (fds beyond maxFds, and any in control messages fdpass does not hand out,
 * closed and counted), null for end of stream (no bytes, no fds, not a datagram), or throws
 * ERR_FDPASS_CTRUNC / ERR_FDPASS_TRUNC after closing every fd that arrived with it.
 */
export function messageOf(
  type: SocketType, n: number, flags: number, controlLength: number, control: Buffer, control32: Int32Array,
  data: Buffer, offset: number, maxBytes: number, maxFds: number, into: Buffer | undefined,
): Message | null {
  let fds: Fd[];
  let dropped = 0;
  let parsed: ParsedControl | undefined;
  // The common cases without a walk: no control data, or one SCM_RIGHTS message.
  const single = controlLength === 0 ? 0 : ATOMIC_CLOEXEC ? singleRightsCount(control32, controlLength) : -1;
  if (single >= 0 && (flags & (MSG_CTRUNC | MSG_TRUNC)) === 0) {
    if (n === 0 && single === 0 && type !== 'dgram') return null;
    const keep = single <= maxFds ? single : maxFds;
    if (keep === 1) fds = [new Fd(rightsFd(control32, 0))];
    else {
      fds = new Array<Fd>(keep);
      for (let i = 0; i < keep; i++) fds[i] = new Fd(rightsFd(control32, i));
    }
    for (let i = keep; i < single; i++) closeQuietly(rightsFd(control32, i));
    dropped = single - keep;
  } else {
    let received = NO_FDS;
    if (controlLength > 0) {
      parsed = parseControl(control, controlLength, CMSG, CREDENTIALS, C);
      received = parsed.fds;
      for (const x of parsed.extraFds) closeQuietly(x);
    }
    receivedCloexec(received);
    if (flags & MSG_CTRUNC) {
      for (const x of received) closeQuietly(x);
      throw new FdPassError(
        'ERR_FDPASS_CTRUNC',
        `recvmsg: control data was truncated (MSG_CTRUNC): descriptors were lost${received.length ? `; the ${received.length} that arrived were closed` : ''}. The receiver may be out of file descriptors (EMFILE)`,
        { syscall: 'recvmsg' },
      );
    }
    if (flags & MSG_TRUNC && type !== 'stream') {
      for (const x of received) closeQuietly(x);
      throw new FdPassError('ERR_FDPASS_TRUNC', `recvmsg: a message longer than maxBytes (${maxBytes}) was truncated and discarded${received.length ? `, and its ${received.length} fds closed` : ''}`, { syscall: 'recvmsg' });
    }
    if (n === 0 && received.length === 0 && type !== 'dgram') return null;
    const keep = received.length <= maxFds ? received.length : maxFds;
    for (let i = keep; i < received.length; i++) closeQuietly(received[i]);
    fds = new Array<Fd>(keep);
    for (let i = 0; i < keep; i++) fds[i] = new Fd(received[i]);
    dropped = received.length - keep + (parsed === undefined ? 0 : parsed.extraFds.length);
  }
  let payload: Buffer;
  if (into !== undefined) payload = into.subarray(0, n);
  else {
    payload = payloadBuffer(n);
    // A loop beats Buffer#copy's per-call setup for the tiny payloads fd messages usually have.
    if (n <= 16) for (let i = 0; i < n; i++) payload[i] = data[offset + i];
    else data.copy(payload, 0, offset, offset + n);
  }
  const message: Message = { data: payload, fds, droppedFds: dropped };
  if (parsed?.credentials) message.credentials = parsed.credentials;
  return message;
}
