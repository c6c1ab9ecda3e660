/** Socket options and names read from the kernel: getsockopt, getsockname. */
import { decodeInetAddress, decodeUnixAddress, readFamily } from './address.js';
import type { PeerCredentials } from './cmsg.js';
import { C, CAPS, E, L, check, sys } from './libc.js';

// One scratch set for the whole process: each call fills and reads it synchronously.
const value = Buffer.alloc(128);
const valueLen = Buffer.alloc(4);

export function getIntOption(fd: number, name: number, level = C.SOL_SOCKET): number {
  E.writeUInt32(valueLen, 0, 4);
  check('getsockopt', sys.getsockopt(fd, level, name, value, valueLen) as number);
  return E.readInt32(value, 0);
}

export function setIntOption(fd: number, name: number, on: number, level = C.SOL_SOCKET): void {
  E.writeInt32(value, 0, on);
  check('setsockopt', sys.setsockopt(fd, level, name, value, 4) as number);
}

const peer = CAPS.peerCredentials;

/**
 * Who was on the other end when the connection (or socketpair) was made: one getsockopt for
 * the platform's struct (ucred, sockpeercred, unpcbid, xucred), and where that struct has no
 * pid, the platform's pid option (darwin LOCAL_PEERPID). `pid` undefined: the kernel did not say.
 */
export function peerCredentials(fd: number): PeerCredentials {
  const layout = L.peerCred;
  E.writeUInt32(valueLen, 0, layout.size);
  value.fill(0, 0, layout.size);
  check('getsockopt', sys.getsockopt(fd, C[peer.level]!, C[peer.option]!, value, valueLen) as number);
  const uid = E.readUInt32(value, layout.uid);
  const gid = E.readUInt32(value, layout.gid);
  let pid: number | undefined;
  if (layout.pid !== null) pid = E.readInt32(value, layout.pid);
  else if (peer.pidOption !== null) {
    try {
      pid = getIntOption(fd, C[peer.pidOption]!, C[peer.level]!);
    } catch {
      pid = undefined; // an older kernel without the option: the pid is not known
    }
  }
  // FreeBSD before 13 leaves xucred's cr_pid zero: no process has pid 0.
  if (pid === 0 && layout.pid !== null && peer.kind === 'xucred') pid = undefined;
  return { pid, uid, gid };
}

/**
 * The socket's address family: SO_DOMAIN where the platform has it, else the family field of
 * getsockname's address (darwin and NetBSD have no SO_DOMAIN).
 */
export function socketDomain(fd: number): number {
  if (C.SO_DOMAIN !== null) return getIntOption(fd, C.SO_DOMAIN);
  return domainFromName(fd);
}

/** The fallback of socketDomain, exported so that Linux tests can run it. */
export function domainFromName(fd: number): number {
  return readFamily(socketName(fd).buf, L.sockaddr_un, E);
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
  /** SO_PROTOCOL; absent where the platform has no such option (darwin, NetBSD). */
  protocol?: number;
  /** SO_ACCEPTCONN: a listening socket (accept() works on it). */
  listening: boolean;
  /** Unix sockets: the bound path ('@name' for an abstract name). */
  path?: string;
  /** inet/inet6 sockets: the local address and port. */
  localAddress?: string;
  /** inet/inet6 sockets: the local port. */
  localPort?: number;
}

const familyNames = new Map<number, SocketFamily>([[C.AF_UNIX, 'unix'], [C.AF_INET, 'inet'], [C.AF_INET6, 'inet6']]);
if (C.AF_NETLINK !== null) familyNames.set(C.AF_NETLINK, 'netlink');
const typeNames = new Map<number, SocketTypeName>([[C.SOCK_STREAM, 'stream'], [C.SOCK_DGRAM, 'dgram'], [C.SOCK_SEQPACKET, 'seqpacket'], [C.SOCK_RAW, 'raw']]);

export function socketTypeName(type: number): SocketTypeName {
  return typeNames.get(type) ?? type;
}

function socketName(fd: number): { buf: Buffer; length: number } {
  const buf = Buffer.alloc(128);
  E.writeUInt32(valueLen, 0, buf.length);
  check('getsockname', sys.getsockname(fd, buf, valueLen) as number);
  return { buf, length: E.readUInt32(valueLen, 0) };
}

export function describeSocket(fd: number): SocketDescription {
  const familyNumber = socketDomain(fd);
  const family = familyNames.get(familyNumber) ?? familyNumber;
  const type = socketTypeName(getIntOption(fd, C.SO_TYPE));
  const listening = getIntOption(fd, C.SO_ACCEPTCONN) !== 0;
  const desc: SocketDescription = C.SO_PROTOCOL === null
    ? { family, type, listening }
    : { family, type, protocol: getIntOption(fd, C.SO_PROTOCOL), listening };
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
