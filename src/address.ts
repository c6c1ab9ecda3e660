/** sockaddr encoding and decoding, as pure Buffer code driven by the platform table. */
import type { ByteOrder } from './byteorder.js';
import { invalidArgValue } from './errors.js';
import type { PlatformConstants, PlatformLayouts } from './platform/types.js';

type SockaddrLayout = PlatformLayouts['sockaddr_un'];

/** Store the address family: a 2-byte sa_family_t in the platform's order (Linux), or 1 byte after sun_len (BSD). */
function writeFamily(sockaddr: Buffer, layout: SockaddrLayout, family: number, order: ByteOrder): void {
  if (layout.familySize === 1) sockaddr[layout.family] = family;
  else order.writeUInt16(sockaddr, layout.family, family);
}

/** The family of any sockaddr (they all start like sockaddr_un). */
export function readFamily(sockaddr: Buffer, layout: SockaddrLayout, order: ByteOrder): number {
  if (layout.familySize === 1) return sockaddr[layout.family];
  return order.endianness === 'big' ? sockaddr.readUInt16BE(layout.family) : sockaddr.readUInt16LE(layout.family);
}

/** BSD's sun_len holds the address length; Linux has no such field. */
function finish(sockaddr: Buffer, layout: SockaddrLayout, length: number): { sockaddr: Buffer; length: number } {
  if (layout.len !== null) sockaddr[layout.len] = length;
  return { sockaddr, length };
}

export interface UnixAddress {
  /** A filesystem path, or undefined for an abstract name. */
  path?: string;
  /** A Linux abstract socket name (no leading NUL, no '@'). */
  abstract?: string;
}

/** Encode a sockaddr_un; rejects names that do not fit rather than truncating them. */
export function encodeUnixAddress(
  address: UnixAddress,
  layout: SockaddrLayout,
  constants: Pick<PlatformConstants, 'AF_UNIX'>,
  order: ByteOrder,
): { sockaddr: Buffer; length: number } {
  const sockaddr = Buffer.alloc(layout.size);
  writeFamily(sockaddr, layout, constants.AF_UNIX, order);
  if (address.abstract !== undefined) {
    const name = Buffer.from(address.abstract, 'utf8');
    // Abstract names: a leading NUL, then exactly the name's bytes (no terminator).
    if (name.length + 1 > layout.pathSize) {
      throw invalidArgValue('abstract', `is ${name.length} bytes; an abstract name may have at most ${layout.pathSize - 1}`);
    }
    name.copy(sockaddr, layout.path + 1);
    return finish(sockaddr, layout, layout.path + 1 + name.length);
  }
  const path = address.path ?? '';
  const bytes = Buffer.from(path, 'utf8');
  if (bytes.length === 0) throw invalidArgValue('path', 'must not be empty');
  if (bytes.includes(0)) throw invalidArgValue('path', 'must not contain NUL bytes');
  if (bytes.length + 1 > layout.pathSize) {
    throw invalidArgValue('path', `is ${bytes.length} bytes; a Unix socket path may have at most ${layout.pathSize - 1} (sockaddr_un.sun_path). Use a shorter path or an abstract name`);
  }
  bytes.copy(sockaddr, layout.path);
  return finish(sockaddr, layout, layout.path + bytes.length + 1);
}

/** Decode a sockaddr_un of `length` bytes: a path, an abstract name, or unnamed ({}). */
export function decodeUnixAddress(sockaddr: Buffer, length: number, layout: SockaddrLayout): UnixAddress {
  const end = Math.min(length, sockaddr.length);
  if (end <= layout.path) return {};
  if (sockaddr[layout.path] === 0) return { abstract: sockaddr.toString('utf8', layout.path + 1, end) };
  const nul = sockaddr.indexOf(0, layout.path);
  return { path: sockaddr.toString('utf8', layout.path, nul < 0 || nul > end ? end : nul) };
}

export interface InetAddress {
  address: string;
  port: number;
}

/**
 * Decode sockaddr_in / sockaddr_in6: the port (big-endian) at 2 and the address at 4 (in) or 8
 * (in6) on every platform — BSD's sun_len/family bytes take the place of Linux's 2-byte family.
 */
export function decodeInetAddress(sockaddr: Buffer, family: 'inet' | 'inet6'): InetAddress {
  const port = sockaddr.readUInt16BE(2);
  if (family === 'inet') return { address: [...sockaddr.subarray(4, 8)].join('.'), port };
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(sockaddr.readUInt16BE(8 + i * 2).toString(16));
  return { address: compressIpv6(groups, [...sockaddr.subarray(20, 24)].join('.')), port };
}

function compressIpv6(groups: string[], ipv4Tail: string): string {
  // Replace the longest run of zero groups (length >= 2) by '::', as inet_ntop does.
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  // IPv4-compatible (::a.b.c.d) and IPv4-mapped (::ffff:a.b.c.d), as inet_ntop (and Node) print them.
  if (bestStart === 0 && (bestLen === 6 || (bestLen === 5 && groups[5] === 'ffff'))) {
    return `::${bestLen === 5 ? 'ffff:' : ''}${ipv4Tail}`;
  }
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}
