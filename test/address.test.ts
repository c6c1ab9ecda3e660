/**
 * src/address.ts: sockaddr_un encoding/decoding and sockaddr_in/in6 decoding, as pure Buffer
 * code against the Linux layouts (sockaddr_un: family u16 at 0, sun_path[108] at 2).
 */
import { SocketAddress } from 'node:net';
import { describe, expect, it } from 'vitest';
import { decodeInetAddress, decodeUnixAddress, encodeUnixAddress, type UnixAddress } from '../src/address.js';
import { byteOrder } from '../src/byteorder.js';
import { lib } from '../src/libc.js';
import { linux64GlibcLayouts, linux64MuslLayouts, linuxConstants as C } from '../src/platform/linux.js';

const SUN = linux64GlibcLayouts.sockaddr_un;

function encode(address: UnixAddress) {
  return encodeUnixAddress(address, SUN, C, byteOrder('little'));
}

function thrown(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a throw');
}

describe('encodeUnixAddress / decodeUnixAddress', () => {
  it('uses the same sockaddr_un layout on glibc and musl', () => {
    expect(linux64MuslLayouts.sockaddr_un).toEqual(SUN);
    expect(SUN).toEqual({ size: 110, len: null, family: 0, familySize: 2, path: 2, pathSize: 108 });
  });

  it('a path: family, the bytes, one NUL; length = 2 + bytes + 1', () => {
    const path = '/run/fdpass/app.sock';
    const { sockaddr, length } = encode({ path });
    expect(sockaddr.length).toBe(110);
    expect(sockaddr.readUInt16LE(0)).toBe(C.AF_UNIX);
    expect(length).toBe(2 + path.length + 1);
    expect(sockaddr.toString('latin1', 2, 2 + path.length)).toBe(path);
    expect(sockaddr[2 + path.length]).toBe(0);
    expect([...sockaddr.subarray(2 + path.length)].every((b) => b === 0)).toBe(true);
    expect(decodeUnixAddress(sockaddr, length, SUN)).toEqual({ path });
    // getsockname may report the length with or without the terminator.
    expect(decodeUnixAddress(sockaddr, length - 1, SUN)).toEqual({ path });
  });

  it('a relative path is kept as given', () => {
    const { sockaddr, length } = encode({ path: 'app.sock' });
    expect(length).toBe(2 + 8 + 1);
    expect(decodeUnixAddress(sockaddr, length, SUN)).toEqual({ path: 'app.sock' });
  });

  it('an abstract name: a leading NUL then the bytes, no terminator; length = 2 + 1 + bytes', () => {
    const name = 'fdpass-test-abstract';
    const { sockaddr, length } = encode({ abstract: name });
    expect(sockaddr.readUInt16LE(0)).toBe(C.AF_UNIX);
    expect(sockaddr[2]).toBe(0);
    expect(sockaddr.toString('latin1', 3, 3 + name.length)).toBe(name);
    expect(length).toBe(2 + 1 + name.length);
    expect(decodeUnixAddress(sockaddr, length, SUN)).toEqual({ abstract: name });
  });

  it('abstract names are binary: an embedded NUL is part of the name (the length delimits it)', () => {
    const name = 'a\0b';
    const { sockaddr, length } = encode({ abstract: name });
    expect(length).toBe(2 + 1 + 3);
    expect(decodeUnixAddress(sockaddr, length, SUN)).toEqual({ abstract: name });
  });

  it('abstract names: 107 bytes fit, 108 do not', () => {
    const ok = 'x'.repeat(107);
    const { sockaddr, length } = encode({ abstract: ok });
    expect(length).toBe(110);
    expect(decodeUnixAddress(sockaddr, length, SUN)).toEqual({ abstract: ok });
    const err = thrown(() => encode({ abstract: 'x'.repeat(108) }));
    expect(err).toBeInstanceOf(TypeError);
    expect(err.code).toBe('ERR_INVALID_ARG_VALUE');
    expect(err.message).toMatch(/107/);
  });

  it('the 107-byte maximum path fits (the NUL takes the last byte of sun_path)', () => {
    const path = '/' + 'p'.repeat(106);
    expect(Buffer.byteLength(path)).toBe(107);
    const { sockaddr, length } = encode({ path });
    expect(length).toBe(110);
    expect(sockaddr[109]).toBe(0);
    expect(decodeUnixAddress(sockaddr, length, SUN)).toEqual({ path });
  });

  it('a 108-byte path is a TypeError (ERR_INVALID_ARG_VALUE) naming the limit, not a silent truncation', () => {
    const path = '/' + 'p'.repeat(107);
    const err = thrown(() => encode({ path }));
    expect(err).toBeInstanceOf(TypeError);
    expect(err.code).toBe('ERR_INVALID_ARG_VALUE');
    expect(err.message).toMatch(/108 bytes/);
    expect(err.message).toMatch(/at most 107/);
  });

  it('multi-byte UTF-8 is counted in bytes, not characters', () => {
    // 'é' is 2 bytes, '😀' is 4 bytes (2 UTF-16 units).
    const fits = '/' + 'é'.repeat(53); // 1 + 106 = 107 bytes, 54 characters
    expect(Buffer.byteLength(fits)).toBe(107);
    const { sockaddr, length } = encode({ path: fits });
    expect(length).toBe(2 + 107 + 1);
    expect(decodeUnixAddress(sockaddr, length, SUN)).toEqual({ path: fits });

    const tooLong = fits + 'x'; // 55 characters, 108 bytes
    expect(tooLong.length).toBeLessThan(108);
    expect(thrown(() => encode({ path: tooLong })).code).toBe('ERR_INVALID_ARG_VALUE');

    const emoji = '/tmp/😀.sock';
    const e = encode({ path: emoji });
    expect(e.length).toBe(2 + Buffer.byteLength(emoji) + 1);
    expect(e.length).toBe(2 + emoji.length + 2 + 1);
    expect(decodeUnixAddress(e.sockaddr, e.length, SUN)).toEqual({ path: emoji });

    const abstract = 'ñame-😀';
    const a = encode({ abstract });
    expect(a.length).toBe(2 + 1 + Buffer.byteLength(abstract));
    expect(decodeUnixAddress(a.sockaddr, a.length, SUN)).toEqual({ abstract });
    expect(thrown(() => encode({ abstract: '😀'.repeat(27) })).code).toBe('ERR_INVALID_ARG_VALUE'); // 108 bytes
  });

  it('a NUL byte in a path is rejected (it would silently shorten the path)', () => {
    for (const path of ['/tmp/a\0b', '\0abstract-looking', '/tmp/x\0']) {
      const err = thrown(() => encode({ path }));
      expect(err, JSON.stringify(path)).toBeInstanceOf(TypeError);
      expect(err.code).toBe('ERR_INVALID_ARG_VALUE');
      expect(err.message).toMatch(/NUL/);
    }
  });

  it('an empty path (or no address at all) is rejected', () => {
    for (const address of [{ path: '' }, {}]) {
      const err = thrown(() => encode(address));
      expect(err).toBeInstanceOf(TypeError);
      expect(err.code).toBe('ERR_INVALID_ARG_VALUE');
      expect(err.message).toMatch(/empty/);
    }
  });

  it('decodes an unnamed socket (length = family only) as {}', () => {
    const sockaddr = Buffer.alloc(110);
    sockaddr.writeUInt16LE(C.AF_UNIX, 0);
    expect(decodeUnixAddress(sockaddr, 2, SUN)).toEqual({});
    expect(decodeUnixAddress(sockaddr, 0, SUN)).toEqual({});
  });

  it('decoding never reads past `length` or the Buffer', () => {
    const { sockaddr } = encode({ path: '/tmp/abcdef' });
    // `length` cuts the path: only the bytes inside it count.
    expect(decodeUnixAddress(sockaddr, 2 + 4, SUN)).toEqual({ path: '/tmp' });
    // `length` beyond the Buffer: clamped.
    expect(decodeUnixAddress(sockaddr, 4096, SUN)).toEqual({ path: '/tmp/abcdef' });
    // A full 108-byte sun_path with no terminator (the kernel allows it): every byte, no more.
    const full = Buffer.alloc(128, 0x41);
    full.writeUInt16LE(C.AF_UNIX, 0);
    expect(decodeUnixAddress(full, 110, SUN)).toEqual({ path: 'A'.repeat(108) });
    const { sockaddr: abs } = encode({ abstract: 'name' });
    expect(decodeUnixAddress(abs, 2 + 1 + 2, SUN)).toEqual({ abstract: 'na' });
  });
});

/** struct sockaddr_in (16 bytes): family u16 host order, port u16 network order, 4 address bytes, 8 zero. */
function sockaddrIn(bytes: number[], port: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(C.AF_INET, 0);
  b.writeUInt16BE(port, 2);
  Buffer.from(bytes).copy(b, 4);
  return b;
}

/** struct sockaddr_in6 (28 bytes): family, port (network order), flowinfo u32, 16 address bytes, scope_id u32. */
function sockaddrIn6(groups: number[], port: number, flowinfo = 0, scopeId = 0): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16LE(C.AF_INET6, 0);
  b.writeUInt16BE(port, 2);
  b.writeUInt32BE(flowinfo, 4);
  groups.forEach((g, i) => b.writeUInt16BE(g, 8 + i * 2));
  b.writeUInt32LE(scopeId, 24);
  return b;
}

/**
 * The reference text for an IPv6 address: Node's own formatting (net.SocketAddress, libuv's
 * inet_ntop). Bun's SocketAddress returns the text it was given, and Deno's formats as Rust does
 * (an IPv4-compatible '::10.0.0.1' is '::a00:1' there), so there libc's inet_ntop is the reference
 * (the BIND code both libuv's and glibc's come from).
 */
function nodeFormat(groups: number[]): string {
  const text = groups.map((g) => g.toString(16)).join(':');
  if (socketAddressFormats) return new SocketAddress({ address: text, family: 'ipv6' }).address;
  const bytes = Buffer.alloc(16);
  groups.forEach((g, i) => bytes.writeUInt16BE(g, i * 2));
  const out = Buffer.alloc(64);
  if (inetNtop(C.AF_INET6, bytes, out, out.length) === null) throw new Error('inet_ntop failed');
  return out.toString('latin1', 0, out.indexOf(0));
}
const socketAddressFormats = new SocketAddress({ address: '0:0:0:0:0:0:0:1', family: 'ipv6' }).address === '::1'
  && new SocketAddress({ address: '0:0:0:0:0:0:a00:1', family: 'ipv6' }).address === '::10.0.0.1';
const inetNtop = lib.func('const char *inet_ntop(int af, const uint8_t *src, _Out_ uint8_t *dst, uint32_t size)') as (af: number, src: Buffer, dst: Buffer, size: number) => unknown;

describe('decodeInetAddress', () => {
  it('IPv4: dotted quad and host-order port', () => {
    expect(decodeInetAddress(sockaddrIn([127, 0, 0, 1], 8080), 'inet')).toEqual({ address: '127.0.0.1', port: 8080 });
    expect(decodeInetAddress(sockaddrIn([0, 0, 0, 0], 0), 'inet')).toEqual({ address: '0.0.0.0', port: 0 });
    expect(decodeInetAddress(sockaddrIn([255, 255, 255, 255], 65535), 'inet')).toEqual({ address: '255.255.255.255', port: 65535 });
    // The port's bytes really are big-endian: 0x1234 is not read as 0x3412.
    expect(decodeInetAddress(sockaddrIn([10, 1, 2, 3], 0x1234), 'inet')).toEqual({ address: '10.1.2.3', port: 0x1234 });
  });

  it("IPv6: '::1', '::', and the longest zero run compressed as inet_ntop does", () => {
    const cases: [number[], string][] = [
      [[0, 0, 0, 0, 0, 0, 0, 1], '::1'],
      [[0, 0, 0, 0, 0, 0, 0, 0], '::'],
      [[0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], '2001:db8::1'],
      [[0xfe80, 0, 0, 0, 0x1, 0x2, 0x3, 0x4], 'fe80::1:2:3:4'],
      [[1, 0, 0, 0, 0, 0, 0, 0], '1::'],
      [[1, 0, 0, 1, 0, 0, 0, 1], '1:0:0:1::1'], // the longer run wins
      [[1, 0, 0, 1, 1, 0, 0, 1], '1::1:1:0:0:1'], // equal runs: the first wins
      [[1, 0, 1, 1, 1, 1, 1, 1], '1:0:1:1:1:1:1:1'], // a single zero group is not compressed
      [[0x2001, 0xdb8, 0x85a3, 0x8d3, 0x1319, 0x8a2e, 0x370, 0x7344], '2001:db8:85a3:8d3:1319:8a2e:370:7344'],
      [[0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff], 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    ];
    for (const [groups, text] of cases) {
      const got = decodeInetAddress(sockaddrIn6(groups, 443, 0x12345, 7), 'inet6');
      expect(got, text).toEqual({ address: text, port: 443 });
      expect(text).toBe(nodeFormat(groups)); // the expectation itself agrees with Node
    }
  });

  it("IPv6: IPv4-mapped addresses print as Node's net does ('::ffff:127.0.0.1')", () => {
    // What an IPv4 client looks like on a dual-stack ('::') listener: net.Socket#localAddress
    // and #remoteAddress say '::ffff:127.0.0.1', and so must Fd#describe().localAddress.
    const cases: [number[], string][] = [
      [[0, 0, 0, 0, 0, 0xffff, 0x7f00, 0x0001], '::ffff:127.0.0.1'],
      [[0, 0, 0, 0, 0, 0xffff, 0xc0a8, 0x0102], '::ffff:192.168.1.2'],
      [[0, 0, 0, 0, 0, 0, 0x0a00, 0x0001], '::10.0.0.1'], // IPv4-compatible (deprecated), as inet_ntop prints it
    ];
    for (const [groups, text] of cases) {
      expect(text).toBe(nodeFormat(groups));
      expect(decodeInetAddress(sockaddrIn6(groups, 80), 'inet6').address, text).toBe(text);
    }
  });

  it('IPv6: agrees with Node for 2,000 addresses rich in zero groups (seeded)', () => {
    const seed = 0x5eed;
    let state = seed;
    const next = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) >>> 16;
    const mismatches: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const groups = Array.from({ length: 8 }, () => (next() % 3 === 0 ? next() % 65536 : next() % 4 === 0 ? 0xffff : 0));
      const port = next() % 65536;
      const want = nodeFormat(groups);
      const got = decodeInetAddress(sockaddrIn6(groups, port), 'inet6');
      if (got.address !== want || got.port !== port) mismatches.push(`${groups.map((g) => g.toString(16)).join(':')}: got ${got.address}:${got.port}, Node ${want}:${port}`);
    }
    expect(mismatches.slice(0, 10), `seed ${seed}, ${mismatches.length} mismatches`).toEqual([]);
  });
});
