/**
 * Control-message (cmsg) arithmetic and encoding, as pure Buffer code: no syscalls, so it
 * is unit-testable (and fuzzable) on any machine. Layouts come from a platform table.
 */
import type { PlatformConstants, PlatformLayouts } from './platform/types.js';

export type CmsgLayout = PlatformLayouts['cmsghdr'];
type CmsgConstants = Pick<PlatformConstants, 'SOL_SOCKET' | 'SCM_RIGHTS' | 'SCM_CREDENTIALS' | 'SCM_PIDFD'>;

export const FD_SIZE = 4; // sizeof(int)

export function cmsgAlign(n: number, layout: CmsgLayout): number {
  return (n + layout.align - 1) & ~(layout.align - 1);
}

/** CMSG_LEN: header plus `dataBytes`, the value stored in cmsg_len. */
export function cmsgLen(dataBytes: number, layout: CmsgLayout): number {
  return cmsgAlign(layout.size, layout) + dataBytes;
}

/** CMSG_SPACE: bytes a control message with `dataBytes` of payload occupies in the buffer. */
export function cmsgSpace(dataBytes: number, layout: CmsgLayout): number {
  return cmsgAlign(layout.size, layout) + cmsgAlign(dataBytes, layout);
}

/** Write a little-endian unsigned integer of 4 or 8 bytes (values below 2^32). */
export function writeUint(buf: Buffer, offset: number, width: number, value: number): void {
  buf.writeUInt32LE(value, offset);
  if (width === 8) buf.writeUInt32LE(0, offset + 4);
}

/** Read a little-endian unsigned integer of 4 or 8 bytes; large values become Infinity-safe numbers. */
export function readUint(buf: Buffer, offset: number, width: number): number {
  const low = buf.readUInt32LE(offset);
  return width === 8 ? low + buf.readUInt32LE(offset + 4) * 2 ** 32 : low;
}

/**
 * Encode one SOL_SOCKET/SCM_RIGHTS message carrying `fds` at `offset` of `buf`.
 * Returns the bytes it occupies (CMSG_SPACE), which is what msg_controllen must say.
 */
export function encodeRights(
  buf: Buffer,
  offset: number,
  fds: ArrayLike<number>,
  layout: CmsgLayout,
  constants: CmsgConstants,
): number {
  const dataBytes = fds.length * FD_SIZE;
  const space = cmsgSpace(dataBytes, layout);
  if (offset + space > buf.length) throw new RangeError(`control buffer too small for ${fds.length} fds`);
  buf.fill(0, offset, offset + space);
  writeUint(buf, offset + layout.len, layout.lenSize, cmsgLen(dataBytes, layout));
  buf.writeInt32LE(constants.SOL_SOCKET, offset + layout.level);
  buf.writeInt32LE(constants.SCM_RIGHTS, offset + layout.type);
  const data = offset + cmsgAlign(layout.size, layout);
  for (let i = 0; i < fds.length; i++) buf.writeInt32LE(fds[i], data + i * FD_SIZE);
  return space;
}

/** A process's pid, uid and gid, as the kernel reports them (SO_PEERCRED, SCM_CREDENTIALS). */
export interface Credentials {
  /** Process id (0 when the kernel could not map it: a message queued before SO_PASSCRED, another pid namespace). */
  pid: number;
  /** User id. */
  uid: number;
  /** Group id (the primary group). */
  gid: number;
}

export interface UcredLayout {
  size: number;
  pid: number;
  uid: number;
  gid: number;
}

/** Encode one SOL_SOCKET/SCM_CREDENTIALS message; returns its CMSG_SPACE. */
export function encodeCredentials(
  buf: Buffer,
  offset: number,
  cred: Credentials,
  layout: CmsgLayout,
  ucred: UcredLayout,
  constants: CmsgConstants,
): number {
  const space = cmsgSpace(ucred.size, layout);
  if (offset + space > buf.length) throw new RangeError('control buffer too small for credentials');
  buf.fill(0, offset, offset + space);
  writeUint(buf, offset + layout.len, layout.lenSize, cmsgLen(ucred.size, layout));
  buf.writeInt32LE(constants.SOL_SOCKET, offset + layout.level);
  buf.writeInt32LE(constants.SCM_CREDENTIALS, offset + layout.type);
  const data = offset + cmsgAlign(layout.size, layout);
  buf.writeInt32LE(cred.pid, data + ucred.pid);
  buf.writeUInt32LE(cred.uid, data + ucred.uid);
  buf.writeUInt32LE(cred.gid, data + ucred.gid);
  return space;
}

export interface ParsedControl {
  /** Every fd found in SCM_RIGHTS messages, in order. The caller owns (and must close) them. */
  fds: number[];
  /** Fds that arrived in other control messages (SCM_PIDFD): not asked for, to be closed. */
  extraFds: number[];
  /** Number of SCM_RIGHTS messages seen (more than one is unusual). */
  rightsMessages: number;
  credentials?: Credentials;
  /** Control messages of a level/type fdpass does not interpret. */
  unknownMessages: number;
  /** A header that claimed more bytes than the buffer holds, or fewer than a header: parsing stopped there. */
  malformed: boolean;
}

/**
 * Walk a control buffer as CMSG_FIRSTHDR/CMSG_NXTHDR do, never reading past `length`.
 * Trailing bytes of an SCM_RIGHTS payload that do not make a whole int are ignored.
 */
export function parseControl(
  buf: Buffer,
  length: number,
  layout: CmsgLayout,
  ucred: UcredLayout,
  constants: CmsgConstants,
): ParsedControl {
  const result: ParsedControl = { fds: [], extraFds: [], rightsMessages: 0, unknownMessages: 0, malformed: false };
  const end = Math.min(length, buf.length);
  const headerSize = cmsgAlign(layout.size, layout);
  let offset = 0;
  while (offset + layout.size <= end) {
    const len = readUint(buf, offset + layout.len, layout.lenSize);
    if (len < layout.size || len > end - offset) {
      result.malformed = true;
      break;
    }
    const level = buf.readInt32LE(offset + layout.level);
    const type = buf.readInt32LE(offset + layout.type);
    const dataStart = offset + headerSize;
    const dataBytes = Math.max(0, offset + len - dataStart);
    if (level === constants.SOL_SOCKET && type === constants.SCM_RIGHTS) {
      result.rightsMessages++;
      for (let i = 0; i + FD_SIZE <= dataBytes; i += FD_SIZE) result.fds.push(buf.readInt32LE(dataStart + i));
    } else if (level === constants.SOL_SOCKET && type === constants.SCM_CREDENTIALS && dataBytes >= ucred.size) {
      result.credentials = {
        pid: buf.readInt32LE(dataStart + ucred.pid),
        uid: buf.readUInt32LE(dataStart + ucred.uid),
        gid: buf.readUInt32LE(dataStart + ucred.gid),
      };
    } else if (level === constants.SOL_SOCKET && type === constants.SCM_PIDFD && dataBytes >= FD_SIZE) {
      // The kernel puts a negative errno here when it could not make the pidfd (sender gone).
      const pidfd = buf.readInt32LE(dataStart);
      if (pidfd >= 0) result.extraFds.push(pidfd);
    } else {
      result.unknownMessages++;
    }
    offset += cmsgAlign(len, layout);
  }
  return result;
}
