/** Socket options and names read from the kernel: getsockopt, getsockname. */
import { decodeInetAddress, decodeUnixAddress } from './address.js';
import type { Credentials } from './cmsg.js';
import { C, L, check, sys } from './libc.js';

// One scratch set for the whole process: each call fills and reads it synchronously.
const value = Buffer.alloc(128);
const valueLen = Buffer.alloc(4);

export function getIntOption(fd: number, name: number, level = C.SOL_SOCKET): number {
  valueLen.writeUInt32LE(4, 0);
  check('getsockopt', sys.getsockopt(fd, level, name, value, valueLen) as number);
  return value.readInt32LE(0);
}

export function setIntOption(fd: number, name: number, on: number, level = C.SOL_SOCKET): void {
  value.writeInt32LE(on, 0);
  check('setsockopt', sys.setsockopt(fd, level, name, value, 4) as number);
}

/** SO_PEERCRED: who was on the other end when the connection (or socketpair) was made. */
export function peerCredentials(fd: number): Credentials {
  valueLen.writeUInt32LE(L.ucred.size, 0);
  check('getsockopt', sys.getsockopt(fd, C.SOL_SOCKET, C.SO_PEERCRED, value, valueLen) as number);
  return {
    pid: value.readInt32LE(L.ucred.pid),
    uid: value.readUInt32LE(L.ucred.uid),
    gid: value.readUInt32LE(L.ucred.gid),
  };
}

/** A socket's address family by name, or the number when fdpass has no name for it. */
export type SocketFamily = 'unix' | 'inet' | 'inet6' | 'netlink' | number;
/** A socket's type by name, or the number when fdpass has no name for it. */
export type SocketTypeName = 'stream' | 'dgram' | 'seqpacket' | 'raw' | number;

/** What describeFd() reports about a socket (`FdDescription.socket`), read with getsockopt/getsockname. */
export interface SocketDescription {
  /** SO_DOMAIN: 'unix', 'inet', 'inet6', 'netlink', or the number. */
  family: SocketFamily;
  /** SO_TYPE: 'stream', 'dgram', 'seqpacket', 'raw', or the number. */
  type: SocketTypeName;
  /** SO_PROTOCOL (6 for TCP, 17 for UDP, 0 for Unix sockets). */
  protocol: number;
  /** SO_ACCEPTCONN: a listening socket (accept() works on it). */
  listening: boolean;
  /** Unix sockets: the bound path ('@name' for an abstract name). */
  path?: string;
  /** inet/inet6 sockets: the local address and port. */
  localAddress?: string;
  /** inet/inet6 sockets: the local port. */
  localPort?: number;
}

const familyNames = new Map<number, SocketFamily>([[C.AF_UNIX, 'unix'], [C.AF_INET, 'inet'], [C.AF_INET6, 'inet6'], [C.AF_NETLINK, 'netlink']]);
const typeNames = new Map<number, SocketTypeName>([[C.SOCK_STREAM, 'stream'], [C.SOCK_DGRAM, 'dgram'], [C.SOCK_SEQPACKET, 'seqpacket'], [3, 'raw']]);

export function socketTypeName(type: number): SocketTypeName {
  return typeNames.get(type) ?? type;
}

function socketName(fd: number): { buf: Buffer; length: number } {
  const buf = Buffer.alloc(128);
  valueLen.writeUInt32LE(buf.length, 0);
  check('getsockname', sys.getsockname(fd, buf, valueLen) as number);
  return { buf, length: valueLen.readUInt32LE(0) };
}

export function describeSocket(fd: number): SocketDescription {
  const familyNumber = getIntOption(fd, C.SO_DOMAIN);
  const family = familyNames.get(familyNumber) ?? familyNumber;
  const desc: SocketDescription = {
    family,
    type: socketTypeName(getIntOption(fd, C.SO_TYPE)),
    protocol: getIntOption(fd, C.SO_PROTOCOL),
    listening: getIntOption(fd, C.SO_ACCEPTCONN) !== 0,
  };
  if (family === 'unix') {
    const { buf, length } = socketName(fd);
    const addr = decodeUnixAddress(buf, length, L.sockaddr_un);
    if (addr.path !== undefined) desc.path = addr.path;
    else if (addr.abstract !== undefined) desc.path = `@${addr.abstract}`;
  } else if (family === 'inet' || family === 'inet6') {
    const { address, port } = decodeInetAddress(socketName(fd).buf, family);
    desc.localAddress = address;
    desc.localPort = port;
  }
  return desc;
}
