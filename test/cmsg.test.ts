/**
 * src/cmsg.ts: control-message encoding and parsing as pure Buffer code, for every distinct
 * cmsghdr layout of every platform table: 64-bit glibc (8-byte cmsg_len), 64-bit musl (4-byte
 * cmsg_len and a pad word, after it on little-endian and before it on big-endian s390x), ILP32,
 * darwin (12-byte header, 4-byte alignment on LP64) and the BSDs (12-byte header, 8-byte
 * alignment). No syscalls, no fds.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { byteOrder, lowWordOffset } from '../src/byteorder.js';
import {
  cmsgAlign, cmsgLayoutOf, cmsgLen, cmsgSpace, credentialCodecOf, encodeCredentials, encodeRights, parseControl,
  type CmsgConstants, type CmsgLayout, type CredentialCodec, type ParsedControl,
} from '../src/cmsg.js';
import { lookupPlatform, supportedPlatforms, type Platform } from '../src/platform/index.js';

const reference = JSON.parse(readFileSync(new URL('./data/platform-reference/platforms.json', import.meta.url), 'utf8')) as {
  platforms: Record<string, { cmsg: { scm_rights_fds: Record<string, { CMSG_LEN: number; CMSG_SPACE: number }> }; musl?: { cmsg: Record<string, { CMSG_LEN: number; CMSG_SPACE: number }> } }>;
};

/** Linux's ucred message, used as "a credentials message" on layouts whose platform has none. */
const linuxUcred = credentialCodecOf(lookupPlatform('linux-x64-glibc')!)!;

interface LayoutCase {
  name: string;
  L: CmsgLayout;
  C: CmsgConstants & { SCM_CREDENTIALS: number; SCM_PIDFD: number };
  U: CredentialCodec;
}

/** One case per distinct (cmsghdr layout, byte order, SOL_SOCKET) among all tables, named by its first key. */
const layouts: [string, CmsgLayout, LayoutCase['C'], CredentialCodec][] = (() => {
  const seen = new Map<string, [string, CmsgLayout, LayoutCase['C'], CredentialCodec]>();
  for (const key of supportedPlatforms) {
    const p: Platform = lookupPlatform(key)!;
    const L = cmsgLayoutOf(p);
    const U = credentialCodecOf(p) ?? linuxUcred;
    const C = { SOL_SOCKET: p.constants.SOL_SOCKET, SCM_RIGHTS: p.constants.SCM_RIGHTS, SCM_PIDFD: 4, SCM_CREDENTIALS: U.type };
    const id = JSON.stringify([L, C.SOL_SOCKET]);
    if (!seen.has(id)) seen.set(id, [key, L, C, U]);
  }
  return [...seen.values()];
})();

it('the layouts under test are the seven kinds the tables have', () => {
  expect(layouts.map(([name]) => name)).toEqual([
    'linux-x64-glibc', 'linux-x64-musl', 'linux-ia32-glibc', 'linux-s390x-glibc', 'linux-s390x-musl',
    'darwin-x64', 'freebsd-x64',
  ]);
});

const SOL_IPV6 = 41;
const IPV6_PKTINFO = 50;

/** Write one control message by hand (for types encodeRights/encodeCredentials do not make). */
function writeCmsg(buf: Buffer, offset: number, L: CmsgLayout, level: number, type: number, payload: Buffer, len = cmsgLen(payload.length, L)): number {
  const E = byteOrder(L.endianness);
  if (L.lenSize === 8) {
    const high = Math.floor(len / 2 ** 32) >>> 0;
    E.writeUInt32(buf, offset + L.len + (L.endianness === 'big' ? 0 : 4), high);
    E.writeUInt32(buf, offset + L.len + (L.endianness === 'big' ? 4 : 0), len >>> 0);
  } else E.writeUInt32(buf, offset + L.len, len >>> 0);
  E.writeInt32(buf, offset + L.level, level);
  E.writeInt32(buf, offset + L.type, type);
  payload.copy(buf, offset + cmsgAlign(L.size, L));
  return cmsgSpace(payload.length, L);
}

/** ints in the layout's byte order. */
function intsOf(L: CmsgLayout, ...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => byteOrder(L.endianness).writeInt32(b, i * 4, v));
  return b;
}

const empty = { fds: [], extraFds: [], rightsMessages: 0, unknownMessages: 0, malformed: false };

describe('the reference data\'s CMSG_LEN/CMSG_SPACE for 1, 2 and 253 fds', () => {
  it.each(supportedPlatforms)('%s', (key) => {
    const p = lookupPlatform(key)!;
    const glibcKey = key.replace(/-musl$/, '-glibc');
    const ref = reference.platforms[glibcKey];
    const rows = key.endsWith('-musl') ? ref.musl!.cmsg : ref.cmsg.scm_rights_fds;
    const L = cmsgLayoutOf(p);
    for (const n of [1, 2, 253]) {
      expect({ n, len: cmsgLen(n * 4, L), space: cmsgSpace(n * 4, L) }).toEqual({ n, len: rows[n].CMSG_LEN, space: rows[n].CMSG_SPACE });
      // And the encoder writes exactly that: cmsg_len = CMSG_LEN, CMSG_SPACE bytes used.
      const buf = Buffer.alloc(cmsgSpace(n * 4, L));
      expect(encodeRights(buf, 0, new Array<number>(n).fill(7), L, { SOL_SOCKET: p.constants.SOL_SOCKET, SCM_RIGHTS: 1, SCM_PIDFD: null })).toBe(rows[n].CMSG_SPACE);
      expect(byteOrder(L.endianness).readLength(buf, L.len, L.lenSize)).toBe(rows[n].CMSG_LEN);
    }
  });
});

describe('byte order and pad placement, byte for byte', () => {
  const fd = [3];
  const bytes = (key: string): string => {
    const p = lookupPlatform(key)!;
    const L = cmsgLayoutOf(p);
    const buf = Buffer.alloc(cmsgSpace(4, L), 0xee);
    encodeRights(buf, 0, fd, L, { SOL_SOCKET: p.constants.SOL_SOCKET, SCM_RIGHTS: 1, SCM_PIDFD: null });
    return buf.toString('hex');
  };
  it('64-bit glibc: an 8-byte cmsg_len, little- or big-endian', () => {
    expect(bytes('linux-x64-glibc')).toBe('1400000000000000' + '01000000' + '01000000' + '03000000' + '00000000');
    expect(bytes('linux-s390x-glibc')).toBe('0000000000000014' + '00000001' + '00000001' + '00000003' + '00000000');
  });
  it('64-bit musl: a 4-byte cmsg_len; its zero pad comes after it on little-endian, before it on big-endian', () => {
    expect(bytes('linux-arm64-musl')).toBe('14000000' + '00000000' + '01000000' + '01000000' + '03000000' + '00000000');
    expect(bytes('linux-s390x-musl')).toBe('00000000' + '00000014' + '00000001' + '00000001' + '00000003' + '00000000');
  });
  it('ILP32, darwin (4-byte alignment on LP64 too), the BSDs (CMSG_DATA at 16 after a 12-byte header)', () => {
    expect(bytes('linux-arm-musl')).toBe('10000000' + '01000000' + '01000000' + '03000000');
    expect(bytes('darwin-arm64')).toBe('10000000' + 'ffff0000' + '01000000' + '03000000');
    expect(bytes('openbsd-arm64')).toBe('14000000' + 'ffff0000' + '01000000' + '00000000' + '03000000' + '00000000');
  });
  it('msghdr length fields: the hot path writes the low word, 4 bytes in on a big-endian 8-byte field', () => {
    for (const key of supportedPlatforms) {
      const p = lookupPlatform(key)!;
      for (const [offset, size] of [[p.layouts.msghdr.iovlen, p.layouts.msghdr.iovlenSize], [p.layouts.msghdr.controllen, p.layouts.msghdr.controllenSize], [p.layouts.iovec.len, p.layouts.iovec.lenSize]] as const) {
        // What an Int32Array in the machine's own order writes at the low word …
        const viaWord = Buffer.alloc(p.layouts.msghdr.size + 16);
        byteOrder(p.endianness).writeUInt32(viaWord, lowWordOffset(offset, size, p.endianness), 1028);
        // … is the whole field holding 1028, as C would store it.
        const whole = Buffer.alloc(viaWord.length);
        byteOrder(p.endianness).writeLength(whole, offset, size, 1028);
        expect(viaWord.toString('hex'), `${key} @${offset}/${size}`).toBe(whole.toString('hex'));
      }
    }
  });
});

describe.each(layouts)('cmsg (%s layout)', (_name, L, C, U) => {
  const E = byteOrder(L.endianness);
  const header = cmsgAlign(L.size, L);
  const ints = (...values: number[]): Buffer => intsOf(L, ...values);
  const parse = (buf: Buffer, length: number, _L: CmsgLayout, codec: CredentialCodec | null = U): ParsedControl => parseControl(buf, length, L, codec, C);
  describe('encodeRights / parseControl round trips', () => {
    for (const n of [0, 1, 3, 253]) {
      it(`${n} fds`, () => {
        const fds = Array.from({ length: n }, (_, i) => (i * 7919 + 3) % 0x7fffffff);
        if (n === 3) fds.splice(0, 3, 0, 2 ** 31 - 1, 65536);
        const space = cmsgSpace(n * 4, L);
        const buf = Buffer.alloc(space + 8, 0xaa); // garbage around it must be overwritten/ignored
        expect(encodeRights(buf, 0, fds, L, C)).toBe(space);
        // Header as C would write it.
        expect(E.readLength(buf, L.len, L.lenSize)).toBe(header + n * 4);
        // musl's padding word (after cmsg_len, or before it on big-endian) is zeroed.
        if (L.lenSize === 4 && L.size === 16) expect(E.readUInt32(buf, L.len === 0 ? 4 : 0)).toBe(0);
        expect(E.readInt32(buf, L.level)).toBe(C.SOL_SOCKET);
        expect(E.readInt32(buf, L.type)).toBe(C.SCM_RIGHTS);
        // Alignment padding after the fds is zeroed; bytes beyond the space are not touched.
        expect([...buf.subarray(header + n * 4, space)].every((b) => b === 0)).toBe(true);
        expect([...buf.subarray(space)].every((b) => b === 0xaa)).toBe(true);
        expect(parse(buf, space, L)).toEqual({ ...empty, fds, rightsMessages: 1 });
        // msg_controllen may also be the unpadded CMSG_LEN (what some peers send).
        expect(parse(buf, cmsgLen(n * 4, L), L).fds).toEqual(fds);
      });
    }

    it('encodes at an offset, and two rights messages are both read in order', () => {
      const first = [10, 11];
      const second = [12, 13, 14];
      const buf = Buffer.alloc(cmsgSpace(8, L) + cmsgSpace(12, L));
      const a = encodeRights(buf, 0, first, L, C);
      const b = encodeRights(buf, a, second, L, C);
      expect(a + b).toBe(buf.length);
      expect(parse(buf, buf.length, L)).toEqual({ ...empty, fds: [...first, ...second], rightsMessages: 2 });
    });

    it('refuses a buffer too small, before writing anything', () => {
      const buf = Buffer.alloc(cmsgSpace(12, L) - 1, 0x55);
      expect(() => encodeRights(buf, 0, [1, 2, 3], L, C)).toThrow(RangeError);
      expect(() => encodeRights(Buffer.alloc(64), 56, [1], L, C)).toThrow(RangeError);
      expect([...buf].every((b) => b === 0x55)).toBe(true);
    });
  });

  describe('credentials', () => {
    it('encodeCredentials / parseControl round trip, including the largest uid/gid', () => {
      for (const cred of [{ pid: 1, uid: 0, gid: 0 }, { pid: 4194304, uid: 1000, gid: 100 }, { pid: 2 ** 31 - 1, uid: 2 ** 32 - 2, gid: 2 ** 32 - 1 }]) {
        const space = cmsgSpace(U.size, L);
        const buf = Buffer.alloc(space, 0xaa);
        expect(encodeCredentials(buf, 0, cred, L, U, C)).toBe(space);
        expect(E.readLength(buf, L.len, L.lenSize)).toBe(cmsgLen(U.size, L));
        expect(E.readInt32(buf, L.type)).toBe(C.SCM_CREDENTIALS);
        expect(parse(buf, space, L)).toEqual({ ...empty, credentials: cred });
      }
    });

    it('rights and credentials in one buffer, in either order', () => {
      const fds = [5, 6, 7];
      const cred = { pid: 321, uid: 1001, gid: 1002 };
      const size = cmsgSpace(12, L) + cmsgSpace(U.size, L);
      const one = Buffer.alloc(size, 0xaa);
      encodeCredentials(one, encodeRights(one, 0, fds, L, C), cred, L, U, C);
      const two = Buffer.alloc(size, 0xaa);
      encodeRights(two, encodeCredentials(two, 0, cred, L, U, C), fds, L, C);
      for (const buf of [one, two]) {
        expect(parse(buf, size, L)).toEqual({ ...empty, fds, rightsMessages: 1, credentials: cred });
      }
    });

    it('a credentials message too short for a ucred is not read as credentials', () => {
      const buf = Buffer.alloc(64);
      writeCmsg(buf, 0, L, C.SOL_SOCKET, C.SCM_CREDENTIALS, ints(99, 98)); // 8 of 12 bytes
      const parsed = parse(buf, cmsgSpace(8, L), L);
      expect(parsed.credentials).toBeUndefined();
      expect(parsed.fds).toEqual([]);
      expect(parsed.malformed).toBe(false);
    });
  });

  describe('other control messages', () => {
    it('SCM_PIDFD (SOL_SOCKET, type 4): its fd goes to extraFds, never to fds', () => {
      expect(C.SCM_PIDFD).toBe(4);
      const buf = Buffer.alloc(128);
      let off = writeCmsg(buf, 0, L, C.SOL_SOCKET, 4, ints(42));
      off += encodeRights(buf, off, [43, 44], L, C);
      const parsed = parse(buf, off, L);
      expect(parsed).toEqual({ ...empty, fds: [43, 44], extraFds: [42], rightsMessages: 1 });
    });

    it('SCM_PIDFD carrying a negative errno (the kernel could not make the pidfd) yields no fd to close', () => {
      const buf = Buffer.alloc(64);
      const off = writeCmsg(buf, 0, L, C.SOL_SOCKET, C.SCM_PIDFD, ints(-3));
      const parsed = parseControl(buf, off, L, U, C);
      expect(parsed).toEqual({ ...empty });
    });

    it('unknown levels/types are counted and skipped; later messages are still read', () => {
      const buf = Buffer.alloc(256);
      let off = writeCmsg(buf, 0, L, SOL_IPV6, IPV6_PKTINFO, Buffer.alloc(20, 0x11));
      off += writeCmsg(buf, off, L, C.SOL_SOCKET, 99, ints(1, 2, 3));
      off += writeCmsg(buf, off, L, 0, C.SCM_RIGHTS, ints(77)); // SCM_RIGHTS's type at another level (0 = IPPROTO_IP)
      off += encodeRights(buf, off, [8, 9], L, C);
      const parsed = parse(buf, off, L);
      expect(parsed.unknownMessages).toBe(3);
      expect(parsed.fds).toEqual([8, 9]);
      expect(parsed.rightsMessages).toBe(1);
      expect(parsed.extraFds).toEqual([]);
      expect(parsed.malformed).toBe(false);
    });
  });

  describe('malformed input never throws and never reads out of bounds', () => {
    it('cmsg_len smaller than a header (0, 1, 8, size - 1) stops parsing as malformed (no endless loop)', () => {
      for (const len of [0, 1, 8, L.size - 1]) {
        const buf = Buffer.alloc(64);
        writeCmsg(buf, 0, L, C.SOL_SOCKET, C.SCM_RIGHTS, ints(3, 4), len);
        expect(parse(buf, 64, L), `cmsg_len ${len}`).toEqual({ ...empty, malformed: true });
      }
    });

    it('a header with no payload (cmsg_len = CMSG_LEN(0)) is a rights message with no fds', () => {
      const buf = Buffer.alloc(header);
      writeCmsg(buf, 0, L, C.SOL_SOCKET, C.SCM_RIGHTS, Buffer.alloc(0), header);
      expect(parse(buf, header, L)).toEqual({ ...empty, rightsMessages: 1 });
    });

    it('cmsg_len larger than the buffer, or than `length`, is malformed', () => {
      const buf = Buffer.alloc(cmsgSpace(8, L));
      encodeRights(buf, 0, [3, 4], L, C);
      // length cuts into the payload: the header claims more than there is.
      expect(parse(buf, cmsgLen(8, L) - 1, L)).toEqual({ ...empty, malformed: true });
      // cmsg_len beyond the Buffer itself, with a `length` that claims the same.
      writeCmsg(buf, 0, L, C.SOL_SOCKET, C.SCM_RIGHTS, ints(3, 4), 4096);
      expect(parse(buf, 4096, L)).toEqual({ ...empty, malformed: true });
      expect(parse(buf, buf.length, L)).toEqual({ ...empty, malformed: true });
    });

    it('a valid message then a bad header: the good fds are kept, malformed is set', () => {
      const buf = Buffer.alloc(cmsgSpace(4, L) + 32);
      const off = encodeRights(buf, 0, [21], L, C);
      writeCmsg(buf, off, L, C.SOL_SOCKET, C.SCM_RIGHTS, ints(22), 1000);
      expect(parse(buf, buf.length, L)).toEqual({ ...empty, fds: [21], rightsMessages: 1, malformed: true });
    });

    it('length shorter than one header: no messages (as CMSG_FIRSTHDR returns NULL), nothing read', () => {
      const buf = Buffer.alloc(cmsgSpace(4, L));
      encodeRights(buf, 0, [21], L, C);
      for (const length of [-100, -1, 0, 1, 8, L.size - 1]) {
        expect(parse(buf, length, L), `length ${length}`).toEqual(empty);
      }
      // A Buffer itself shorter than a header, with a `length` that lies about it.
      expect(parse(Buffer.alloc(10, 0xff), 1000, L)).toEqual(empty);
      expect(parse(Buffer.alloc(0), 64, L)).toEqual(empty);
    });

    it('`length` beyond the Buffer is clamped to the Buffer', () => {
      const buf = Buffer.alloc(cmsgSpace(8, L));
      encodeRights(buf, 0, [30, 31], L, C);
      expect(parse(buf, 1 << 20, L)).toEqual({ ...empty, fds: [30, 31], rightsMessages: 1 });
      // The Buffer is a view into a larger one: bytes past its end are never read.
      const big = Buffer.alloc(256);
      const off = encodeRights(big, 0, [1], L, C);
      encodeRights(big, off, [2], L, C);
      expect(parse(big.subarray(0, off), 256, L).fds).toEqual([1]);
    });

    it('a truncated payload of 6 bytes yields one fd; the 2 stray bytes are ignored', () => {
      const buf = Buffer.alloc(cmsgSpace(8, L));
      writeCmsg(buf, 0, L, C.SOL_SOCKET, C.SCM_RIGHTS, ints(55, 56).subarray(0, 6), cmsgLen(6, L));
      expect(parse(buf, buf.length, L)).toEqual({ ...empty, fds: [55], rightsMessages: 1 });
      expect(parse(buf, cmsgLen(6, L), L)).toEqual({ ...empty, fds: [55], rightsMessages: 1 });
    });

    it('an SCM_PIDFD message with less than an int of payload adds no extra fd', () => {
      const buf = Buffer.alloc(32);
      writeCmsg(buf, 0, L, C.SOL_SOCKET, C.SCM_PIDFD, Buffer.from([1, 2]), cmsgLen(2, L));
      const parsed = parse(buf, cmsgLen(2, L), L);
      expect(parsed.extraFds).toEqual([]);
      expect(parsed.fds).toEqual([]);
      expect(parsed.malformed).toBe(false);
    });

    it('the other half of a 16-byte header\'s first 8 bytes: glibc reads it as the high word of cmsg_len, musl as padding', () => {
      if (L.size !== 16) return expect(L.lenSize).toBe(4); // 12-byte headers have no such word
      const buf = Buffer.alloc(cmsgSpace(4, L));
      encodeRights(buf, 0, [9], L, C);
      // glibc: the high word of cmsg_len (then 2^32 + 20, too large); musl: its pad word.
      const other = L.lenSize === 8 ? lowWordOffset(0, 8, L.endianness) ^ 4 : L.len ^ 4;
      E.writeUInt32(buf, other, 1);
      expect(parse(buf, buf.length, L)).toEqual(
        L.lenSize === 8 ? { ...empty, malformed: true } : { ...empty, fds: [9], rightsMessages: 1 },
      );
    });

    it('a credentials message is read only where the platform has one (darwin, OpenBSD, NetBSD: unknown)', () => {
      const buf = Buffer.alloc(cmsgSpace(U.size, L));
      encodeCredentials(buf, 0, { pid: 5, uid: 6, gid: 7 }, L, U, C);
      expect(parse(buf, buf.length, L, null)).toEqual({ ...empty, unknownMessages: 1 });
    });
  });
});

// ---------------------------------------------------------------------------------------
// Fuzz: random and mutated buffers through parseControl.

/** mulberry32: small, seedable, good enough to explore byte patterns. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Reference walk, written independently of src/cmsg.ts from the documented contract (and with
 * exact BigInt lengths): a header must fit inside min(length, buffer); cmsg_len below the
 * header size or past the end is malformed and stops; the next header is at CMSG_ALIGN(len).
 */
function referenceParse(buf: Buffer, length: number, L: CmsgLayout, U: CredentialCodec, C: LayoutCase['C']): ParsedControl {
  const big = L.endianness === 'big';
  const i32 = (o: number): number => (big ? buf.readInt32BE(o) : buf.readInt32LE(o));
  const u32 = (o: number): number => (big ? buf.readUInt32BE(o) : buf.readUInt32LE(o));
  const out: ParsedControl = { fds: [], extraFds: [], rightsMessages: 0, unknownMessages: 0, malformed: false };
  const end = BigInt(Math.max(0, Math.min(length, buf.length)));
  const header = BigInt(L.size);
  const align = BigInt(L.align);
  let pos = 0n;
  while (pos + header <= end) {
    const p = Number(pos);
    const len = L.lenSize === 8 ? (big ? buf.readBigUInt64BE(p + L.len) : buf.readBigUInt64LE(p + L.len)) : BigInt(u32(p + L.len));
    if (len < header || pos + len > end) {
      out.malformed = true;
      break;
    }
    const level = i32(p + L.level);
    const type = i32(p + L.type);
    // CMSG_DATA: the header rounded up to the alignment (16 on BSD LP64 after a 12-byte header).
    const dataOffset = ((header + align - 1n) / align) * align;
    const data = p + Number(dataOffset);
    const payloadBig = len > dataOffset ? len - dataOffset : 0n;
    const count = Number(payloadBig / 4n);
    const payload = Number(payloadBig);
    if (level === C.SOL_SOCKET && type === C.SCM_RIGHTS) {
      out.rightsMessages++;
      for (let i = 0; i < count; i++) out.fds.push(i32(data + 4 * i));
    } else if (level === C.SOL_SOCKET && type === C.SCM_CREDENTIALS && payload >= U.size) {
      out.credentials = { pid: i32(data + U.pid), uid: u32(data + U.uid), gid: u32(data + U.gid) };
    } else if (level === C.SOL_SOCKET && type === C.SCM_PIDFD && payload >= 4) {
      const pidfd = i32(data);
      if (pidfd >= 0) out.extraFds.push(pidfd); // a negative errno means no pidfd was made
    } else {
      out.unknownMessages++;
    }
    pos += ((len + align - 1n) / align) * align;
  }
  return out;
}

interface Case {
  buf: Buffer;
  length: number;
  /** For unmutated encodings: the exact expected result. */
  expected?: ParsedControl;
  how: string;
}

function generate(rand: () => number, L: CmsgLayout, U: CredentialCodec, C: LayoutCase['C']): Case {
  const ints = (...values: number[]): Buffer => intsOf(L, ...values);
  const E = byteOrder(L.endianness);
  const int = (n: number) => Math.floor(rand() * n);
  const kind = int(10);
  if (kind === 0) {
    // Pure random bytes with a random claimed length.
    const buf = Buffer.alloc(int(160));
    for (let i = 0; i < buf.length; i++) buf[i] = int(256);
    return { buf, length: int(buf.length + 40) - 20, how: 'random' };
  }
  // A valid encoding of 1..4 messages.
  const expected: ParsedControl = { fds: [], extraFds: [], rightsMessages: 0, unknownMessages: 0, malformed: false };
  const buf = Buffer.alloc(8192, int(2) ? 0 : 0xaa); // room for 4 messages of 253 fds
  let off = 0;
  const messages = 1 + int(4);
  for (let m = 0; m < messages; m++) {
    const t = int(8);
    if (t <= 3) {
      const n = int(10) === 0 ? 253 : int(12);
      const fds = Array.from({ length: n }, () => int(2 ** 31));
      off += encodeRights(buf, off, fds, L, C);
      expected.fds.push(...fds);
      expected.rightsMessages++;
    } else if (t === 4) {
      const cred = { pid: int(2 ** 31), uid: int(2 ** 32), gid: int(2 ** 32) };
      off += encodeCredentials(buf, off, cred, L, U, C);
      expected.credentials = cred;
    } else if (t === 5) {
      const fd = int(2 ** 31);
      off += writeCmsg(buf, off, L, C.SOL_SOCKET, C.SCM_PIDFD, ints(fd));
      expected.extraFds.push(fd);
    } else {
      off += writeCmsg(buf, off, L, int(2) ? SOL_IPV6 : C.SOL_SOCKET, int(2) ? IPV6_PKTINFO : 100 + int(50), Buffer.alloc(int(24), int(256)));
      expected.unknownMessages++;
    }
  }
  const valid = buf.subarray(0, off);
  if (kind === 1) return { buf: Buffer.from(valid), length: off, expected, how: 'valid' };

  // Mutations of the valid encoding.
  const out = Buffer.from(valid);
  let length = off;
  const steps = 1 + int(3);
  const hows: string[] = [];
  for (let s = 0; s < steps; s++) {
    const m = int(6);
    if (m === 0 && out.length > 0) {
      const i = int(out.length);
      out[i] ^= 1 << int(8);
      hows.push(`flip bit @${i}`);
    } else if (m === 1 && out.length > 0) {
      const i = int(out.length);
      out[i] = int(256);
      hows.push(`byte @${i}`);
    } else if (m === 2 && out.length >= 16) {
      // Rewrite a cmsg_len-sized word at an 8-aligned offset (likely a header).
      const i = int(out.length >> 3) * 8;
      const choices = [0, 1, 15, 16, 17, 20, 24, length - i, length - i + 1, 2 ** 31, 2 ** 32 - 1, int(4096)];
      const v = choices[int(choices.length)] >>> 0;
      E.writeUInt32(out, i, v);
      if (int(4) === 0 && i + 8 <= out.length) E.writeUInt32(out, i + 4, int(3));
      hows.push(`len @${i} = ${v}`);
    } else if (m === 3) {
      length = int(length + 1);
      hows.push(`length ${length}`);
    } else if (m === 4) {
      length += 1 + int(64);
      hows.push(`length ${length} (past buffer)`);
    } else {
      length = length - 20 + int(20);
      hows.push(`length ${length}`);
    }
  }
  return { buf: out, length, how: `mutated: ${hows.join(', ')}` };
}

describe('parseControl fuzz', () => {
  it('100,000 random and mutated control buffers: no throw, fds only from inside the buffer, malformed or consistent', () => {
    const seed = process.env.FDPASS_FUZZ_SEED ? Number(process.env.FDPASS_FUZZ_SEED) : (Date.now() ^ (process.pid << 16)) >>> 0;
    const rand = prng(seed);
    const failures: string[] = [];
    const counts = { malformed: 0, valid: 0, fds: 0 };
    for (let iter = 0; iter < 100_000 && failures.length < 3; iter++) {
      const [name, L, C, U] = layouts[iter % layouts.length];
      const c = generate(rand, L, U, C);
      const where = () => `seed ${seed} (FDPASS_FUZZ_SEED=${seed} to replay), iteration ${iter}, ${name}, ${c.how}, length ${c.length}, buffer ${c.buf.toString('hex')}`;
      let got: ParsedControl;
      const before = Buffer.from(c.buf);
      try {
        got = parseControl(c.buf, c.length, L, U, C);
      } catch (err) {
        failures.push(`threw ${String(err)}: ${where()}`);
        continue;
      }
      const end = Math.max(0, Math.min(c.length, c.buf.length));
      const problems: string[] = [];
      if (!c.buf.equals(before)) problems.push('modified its input');
      // Each fd is one int of a message whose 16-byte header is inside the buffer too.
      const minBytes = got.fds.length * 4 + got.rightsMessages * L.size + got.extraFds.length * (L.size + 4) + got.unknownMessages * L.size;
      if (minBytes > end) problems.push(`${got.fds.length} fds, ${got.extraFds.length} extra fds in ${got.rightsMessages + got.extraFds.length + got.unknownMessages} messages cannot fit in ${end} bytes`);
      // Every fd is an int stored at a 4-aligned offset inside [0, end).
      const present = new Set<number>();
      for (let i = 0; i + 4 <= end; i += 4) present.add(L.endianness === 'big' ? c.buf.readInt32BE(i) : c.buf.readInt32LE(i));
      for (const fd of [...got.fds, ...got.extraFds]) if (!present.has(fd)) problems.push(`fd ${fd} is not in the buffer`);
      if (got.credentials && got.credentials.uid > 2 ** 32 - 1) problems.push('uid out of range');
      // Malformed or consistent: the same result as the reference walk of the contract.
      const ref = referenceParse(c.buf, c.length, L, U, C);
      if (JSON.stringify(got) !== JSON.stringify(ref)) problems.push(`differs from reference: got ${JSON.stringify(got)}, reference ${JSON.stringify(ref)}`);
      // Unmutated encodings round-trip exactly.
      if (c.expected && JSON.stringify(got) !== JSON.stringify(c.expected)) problems.push(`valid encoding did not round-trip: got ${JSON.stringify(got)}, expected ${JSON.stringify(c.expected)}`);
      if (problems.length) failures.push(`${problems.join('; ')}: ${where()}`);
      if (got.malformed) counts.malformed++;
      if (c.expected) counts.valid++;
      counts.fds += got.fds.length;
    }
    expect(failures, `fuzz seed ${seed}`).toEqual([]);
    // The generator really exercised both paths.
    expect(counts.malformed, `seed ${seed}`).toBeGreaterThan(1000);
    expect(counts.valid, `seed ${seed}`).toBeGreaterThan(1000);
    expect(counts.fds, `seed ${seed}`).toBeGreaterThan(100_000);
  });
});
