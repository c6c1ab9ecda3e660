/** sockaddr encoding and decoding, as pure Buffer code driven by the platform table. */
import { invalidArgValue } from './errors.js';
import type { PlatformConstants, PlatformLayouts } from './platform/types.js';

export interface UnixAddress {
  /** A filesystem path, or undefined for an abstract name. */
  path?: string;
  /** A Linux abstract socket name (no leading NUL, no '@'). */
  abstract?: string;
}

/** Encode a sockaddr_un; rejects names that do not fit rather than truncating them. */
export function encodeUnixAddress(
  address: UnixAddress,
  layout: PlatformLayouts['sockaddr_un'],
  constants: Pick<PlatformConstants, 'AF_UNIX'>,
): { sockaddr: Buffer; length: number } {
  const sockaddr = Buffer.alloc(layout.size);
  sockaddr.writeUInt16LE(constants.AF_UNIX, layout.family);
  if (address.abstract !== undefined) {
    const name = Buffer.from(address.abstract, 'utf8');
    // Abstract names: a leading NUL, then exactly the name's bytes (no terminator).
    if (name.length + 1 > layout.pathSize) {
      throw invalidArgValue('abstract', `is ${name.length} bytes; an abstract name may have at most ${layout.pathSize - 1}`);
    }
    name.copy(sockaddr, layout.path + 1);
    return { sockaddr, length: layout.path + 1 + name.length };
  }
  const path = address.path ?? '';
  const bytes = Buffer.from(path, 'utf8');
  if (bytes.length === 0) throw invalidArgValue('path', 'must not be empty');
  if (bytes.includes(0)) throw invalidArgValue('path', 'must not contain NUL bytes');
  if (bytes.length + 1 > layout.pathSize) {
    throw invalidArgValue('path', `is ${bytes.length} bytes; a Unix socket path may have at most ${layout.pathSize - 1} (sockaddr_un.sun_path). Use a shorter path or an abstract name`);
  }
  bytes.copy(sockaddr, layout.path);
  return { sockaddr, length: layout.path + bytes.length + 1 };
}

/** Decode a sockaddr_un of `length` bytes: a path, an abstract name, or unnamed ({}). */
export function decodeUnixAddress(sockaddr: Buffer, length: number, layout: PlatformLayouts['sockaddr_un']): UnixAddress {
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

/** Decode sockaddr_in / sockaddr_in6 (Linux layout: family u16, port big-endian, address). */
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
