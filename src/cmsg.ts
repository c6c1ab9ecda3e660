/**
 * Control-message (cmsg) arithmetic and encoding, as pure Buffer code: no syscalls, so it is
 * unit-testable (and fuzzable) on any machine for every platform's layout. Layouts, byte order
 * and constants come from a platform table.
 */
import { byteOrder } from './byteorder.js';
import type { Endianness, Platform, PlatformLayouts } from './platform/types.js';

/** A platform's cmsghdr layout and byte order: everything the encoder and parser need. */
export interface CmsgLayout extends Readonly<PlatformLayouts['cmsghdr']> {
  endianness: Endianness;
}

export interface CmsgConstants {
  SOL_SOCKET: number;
  SCM_RIGHTS: number;
  /** Linux's pidfd message; null where there is none. */
  SCM_PIDFD: number | null;
}

/** A credentials control message: SOL_SOCKET/`type` carrying pid/uid/gid at these offsets. */
export interface CredentialCodec {
  type: number;
  /** Smallest valid payload. */
  size: number;
  /** Largest payload the kernel sends (the receive buffer is sized for it). */
  maxSize: number;
  pid: number;
  uid: number;
  gid: number;
}

export function cmsgLayoutOf(platform: Pick<Platform, 'layouts' | 'endianness'>): CmsgLayout {
  return { ...platform.layouts.cmsghdr, endianness: platform.endianness };
}

/** The platform's credentials message (with its capability in force), or null. */
export function credentialCodecOf(platform: Pick<Platform, 'layouts' | 'constants' | 'capabilities'>): CredentialCodec | null {
  const spec = platform.capabilities.credentialMessages;
  const layout = platform.layouts.credentialMessage;
  const type = spec === null ? null : platform.constants[spec.type];
  if (spec === null || layout === null || type === null) return null;
  return { type, ...layout };
}

export const FD_SIZE = 4; // sizeof(int)

export function cmsgAlign(n: number, layout: Pick<CmsgLayout, 'align'>): number {
  return (n + layout.align - 1) & ~(layout.align - 1);
}

/** CMSG_LEN: header plus `dataBytes`, the value stored in cmsg_len. */
export function cmsgLen(dataBytes: number, layout: Pick<CmsgLayout, 'align' | 'size'>): number {
  return cmsgAlign(layout.size, layout) + dataBytes;
}

/** CMSG_SPACE: bytes a control message with `dataBytes` of payload occupies in the buffer. */
export function cmsgSpace(dataBytes: number, layout: Pick<CmsgLayout, 'align' | 'size'>): number {
  return cmsgAlign(layout.size, layout) + cmsgAlign(dataBytes, layout);
}

/** Zero the message's space and write its header; returns the offset of its data. */
function writeHeader(buf: Buffer, offset: number, dataBytes: number, type: number, layout: CmsgLayout, level: number): number {
  const space = cmsgSpace(dataBytes, layout);
  buf.fill(0, offset, offset + space);
  const E = byteOrder(layout.endianness);
  E.writeLength(buf, offset + layout.len, layout.lenSize, cmsgLen(dataBytes, layout));
  E.writeInt32(buf, offset + layout.level, level);
  E.writeInt32(buf, offset + layout.type, type);
  return offset + cmsgAlign(layout.size, layout);
}

/**
 * Encode one SOL_SOCKET/SCM_RIGHTS message carrying `fds` at `offset` of `buf`.
 * Returns the bytes it occupies (CMSG_SPACE), which is what msg_controllen must say.
 */
export function encodeRights(buf: Buffer, offset: number, fds: ArrayLike<number>, layout: CmsgLayout, constants: CmsgConstants): number {
  const dataBytes = fds.length * FD_SIZE;
  const space = cmsgSpace(dataBytes, layout);
  if (offset + space > buf.length) throw new RangeError(`control buffer too small for ${fds.length} fds`);
  const data = writeHeader(buf, offset, dataBytes, constants.SCM_RIGHTS, layout, constants.SOL_SOCKET);
  const E = byteOrder(layout.endianness);
  for (let i = 0; i < fds.length; i++) E.writeInt32(buf, data + i * FD_SIZE, fds[i]);
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

/**
 * The peer's identity as getsockopt reports it. `pid` is undefined where the kernel does not
 * say (a darwin kernel without LOCAL_PEERPID, FreeBSD before 13 where xucred has no cr_pid).
 */
export interface PeerCredentials {
  pid: number | undefined;
  uid: number;
  gid: number;
}

/** Encode one credentials message (Linux SCM_CREDENTIALS: a claimed ucred); returns its CMSG_SPACE. */
export function encodeCredentials(
  buf: Buffer,
  offset: number,
  cred: Credentials,
  layout: CmsgLayout,
  codec: CredentialCodec,
  constants: CmsgConstants,
): number {
  const space = cmsgSpace(codec.size, layout);
  if (offset + space > buf.length) throw new RangeError('control buffer too small for credentials');
  const data = writeHeader(buf, offset, codec.size, codec.type, layout, constants.SOL_SOCKET);
  const E = byteOrder(layout.endianness);
  E.writeInt32(buf, data + codec.pid, cred.pid);
  E.writeUInt32(buf, data + codec.uid, cred.uid);
  E.writeUInt32(buf, data + codec.gid, cred.gid);
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
 * `credentials` null: credentials messages are not interpreted (counted as unknown).
 */
export function parseControl(
  buf: Buffer,
  length: number,
  layout: CmsgLayout,
  credentials: CredentialCodec | null,
  constants: CmsgConstants,
): ParsedControl {
  const result: ParsedControl = { fds: [], extraFds: [], rightsMessages: 0, unknownMessages: 0, malformed: false };
  const E = byteOrder(layout.endianness);
  const end = Math.min(length, buf.length);
  const headerSize = cmsgAlign(layout.size, layout);
  let offset = 0;
  while (offset + layout.size <= end) {
    const len = E.readLength(buf, offset + layout.len, layout.lenSize);
    if (len < layout.size || len > end - offset) {
      result.malformed = true;
      break;
    }
    const level = E.readInt32(buf, offset + layout.level);
    const type = E.readInt32(buf, offset + layout.type);
    const dataStart = offset + headerSize;
    const dataBytes = Math.max(0, offset + len - dataStart);
    if (level !== constants.SOL_SOCKET) {
      result.unknownMessages++;
    } else if (type === constants.SCM_RIGHTS) {
      result.rightsMessages++;
      for (let i = 0; i + FD_SIZE <= dataBytes; i += FD_SIZE) result.fds.push(E.readInt32(buf, dataStart + i));
    } else if (credentials !== null && type === credentials.type && dataBytes >= credentials.size) {
      result.credentials = {
        pid: E.readInt32(buf, dataStart + credentials.pid),
        uid: E.readUInt32(buf, dataStart + credentials.uid),
        gid: E.readUInt32(buf, dataStart + credentials.gid),
      };
    } else if (type === constants.SCM_PIDFD && dataBytes >= FD_SIZE) {
      // The kernel puts a negative errno here when it could not make the pidfd (sender gone).
      const pidfd = E.readInt32(buf, dataStart);
      if (pidfd >= 0) result.extraFds.push(pidfd);
    } else {
      result.unknownMessages++;
    }
    offset += cmsgAlign(len, layout);
  }
  return result;
}
