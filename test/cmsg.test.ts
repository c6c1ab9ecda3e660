/**
 * src/cmsg.ts: control-message encoding and parsing as pure Buffer code, on both Linux
 * LP64 layouts (glibc: 8-byte cmsg_len; musl: 4-byte cmsg_len + padding). No syscalls, no fds.
 */
import { describe, expect, it } from 'vitest';
import {
  cmsgAlign, cmsgLen, cmsgSpace, encodeCredentials, encodeRights, parseControl, readUint,
  type CmsgLayout, type ParsedControl, type UcredLayout,
} from '../src/cmsg.js';
import { linux64GlibcLayouts, linux64MuslLayouts, linuxConstants as C } from '../src/platform/linux.js';

const layouts = [
  ['glibc', linux64GlibcLayouts.cmsghdr, linux64GlibcLayouts.ucred],
  ['musl', linux64MuslLayouts.cmsghdr, linux64MuslLayouts.ucred],
] as const;

const SOL_IPV6 = 41;
const IPV6_PKTINFO = 50;

/** Write one control message by hand (for types encodeRights/encodeCredentials do not make). */
function writeCmsg(buf: Buffer, offset: number, L: CmsgLayout, level: number, type: number, payload: Buffer, len = cmsgLen(payload.length, L)): number {
  buf.writeUInt32LE(len >>> 0, offset + L.len);
  if (L.lenSize === 8) buf.writeUInt32LE(Math.floor(len / 2 ** 32), offset + L.len + 4);
  buf.writeInt32LE(level, offset + L.level);
  buf.writeInt32LE(type, offset + L.type);
  payload.copy(buf, offset + cmsgAlign(L.size, L));
  return cmsgSpace(payload.length, L);
}

function ints(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeInt32LE(v, i * 4));
  return b;
}

function parse(buf: Buffer, length: number, L: CmsgLayout, U: UcredLayout): ParsedControl {
  return parseControl(buf, length, L, U, C);
}

const empty = { fds: [], extraFds: [], rightsMessages: 0, unknownMessages: 0, malformed: false };

describe.each(layouts)('cmsg (%s layout)', (_name, L, U) => {
  describe('encodeRights / parseControl round trips', () => {
    for (const n of [0, 1, 3, 253]) {
      it(`${n} fds`, () => {
        const fds = Array.from({ length: n }, (_, i) => (i * 7919 + 3) % 0x7fffffff);
        if (n === 3) fds.splice(0, 3, 0, 2 ** 31 - 1, 65536);
        const space = cmsgSpace(n * 4, L);
        const buf = Buffer.alloc(space + 8, 0xaa); // garbage around it must be overwritten/ignored
        expect(encodeRights(buf, 0, fds, L, C)).toBe(space);
        // Header as C would write it.
        expect(readUint(buf, L.len, L.lenSize)).toBe(16 + n * 4);
        if (L.lenSize === 4) expect(buf.readUInt32LE(4)).toBe(0); // musl's padding word is zeroed
        expect(buf.readInt32LE(L.level)).toBe(C.SOL_SOCKET);
        expect(buf.readInt32LE(L.type)).toBe(C.SCM_RIGHTS);
        // Alignment padding after the fds is zeroed; bytes beyond the space are not touched.
        expect([...buf.subarray(16 + n * 4, space)].every((b) => b === 0)).toBe(true);
        expect([...buf.subarray(space)].every((b) => b === 0xaa)).toBe(true);
        expect(parse(buf, space, L, U)).toEqual({ ...empty, fds, rightsMessages: 1 });
        // msg_controllen may also be the unpadded CMSG_LEN (what some peers send).
        expect(parse(buf, cmsgLen(n * 4, L), L, U).fds).toEqual(fds);
      });
    }

    it('encodes at an offset, and two rights messages are both read in order', () => {
      const first = [10, 11];
      const second = [12, 13, 14];
      const buf = Buffer.alloc(cmsgSpace(8, L) + cmsgSpace(12, L));
      const a = encodeRights(buf, 0, first, L, C);
      const b = encodeRights(buf, a, second, L, C);
      expect(a + b).toBe(buf.length);
      expect(parse(buf, buf.length, L, U)).toEqual({ ...empty, fds: [...first, ...second], rightsMessages: 2 });
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
        expect(readUint(buf, L.len, L.lenSize)).toBe(cmsgLen(12, L));
        expect(buf.readInt32LE(L.type)).toBe(C.SCM_CREDENTIALS);
        expect(parse(buf, space, L, U)).toEqual({ ...empty, credentials: cred });
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
        expect(parse(buf, size, L, U)).toEqual({ ...empty, fds, rightsMessages: 1, credentials: cred });
      }
    });

    it('a credentials message too short for a ucred is not read as credentials', () => {
      const buf = Buffer.alloc(64);
      writeCmsg(buf, 0, L, C.SOL_SOCKET, C.SCM_CREDENTIALS, ints(99, 98)); // 8 of 12 bytes
      const parsed = parse(buf, cmsgSpace(8, L), L, U);
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
      const parsed = parse(buf, off, L, U);
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
      const parsed = parse(buf, off, L, U);
      expect(parsed.unknownMessages).toBe(3);
      expect(parsed.fds).toEqual([8, 9]);
      expect(parsed.rightsMessages).toBe(1);
      expect(parsed.extraFds).toEqual([]);
      expect(parsed.malformed).toBe(false);
    });
  });

  describe('malformed input never throws and never reads out of bounds', () => {
    it('cmsg_len smaller than a header (0, 1, 8, 15) stops parsing as malformed (no endless loop)', () => {
      for (const len of [0, 1, 8, 15]) {
        const buf = Buffer.alloc(64);
        writeCmsg(buf, 0, L, C.SOL_SOCKET, C.SCM_RIGHTS, ints(3, 4), len);
        expect(parse(buf, 64, L, U), `cmsg_len ${len}`).toEqual({ ...empty, malformed: true });
      }
    });

    it('a header with no payload (cmsg_len = 16) is a rights message with no fds', () => {
      const buf = Buffer.alloc(16);
      writeCmsg(buf, 0, L, C.SOL_SOCKET, C.SCM_RIGHTS, Buffer.alloc(0), 16);
      expect(parse(buf, 16, L, U)).toEqual({ ...empty, rightsMessages: 1 });
    });

    it('cmsg_len larger than the buffer, or than `length`, is malformed', () => {
      const buf = Buffer.alloc(cmsgSpace(8, L));
      encodeRights(buf, 0, [3, 4], L, C);
      // length cuts into the payload: the header claims more than there is.
      expect(parse(buf, cmsgLen(8, L) - 1, L, U)).toEqual({ ...empty, malformed: true });
      // cmsg_len beyond the Buffer itself, with a `length` that claims the same.
      writeCmsg(buf, 0, L, C.SOL_SOCKET, C.SCM_RIGHTS, ints(3, 4), 4096);
      expect(parse(buf, 4096, L, U)).toEqual({ ...empty, malformed: true });
      expect(parse(buf, buf.length, L, U)).toEqual({ ...empty, malformed: true });
    });

    it('a valid message then a bad header: the good fds are kept, malformed is set', () => {
      const buf = Buffer.alloc(cmsgSpace(4, L) + 32);
      const off = encodeRights(buf, 0, [21], L, C);
      writeCmsg(buf, off, L, C.SOL_SOCKET, C.SCM_RIGHTS, ints(22), 1000);
      expect(parse(buf, buf.length, L, U)).toEqual({ ...empty, fds: [21], rightsMessages: 1, malformed: true });
    });

    it('length shorter than one header: no messages (as CMSG_FIRSTHDR returns NULL), nothing read', () => {
      const buf = Buffer.alloc(cmsgSpace(4, L));
      encodeRights(buf, 0, [21], L, C);
      for (const length of [-100, -1, 0, 1, 8, 15]) {
        expect(parse(buf, length, L, U), `length ${length}`).toEqual(empty);
      }
      // A Buffer itself shorter than a header, with a `length` that lies about it.
      expect(parse(Buffer.alloc(10, 0xff), 1000, L, U)).toEqual(empty);
      expect(parse(Buffer.alloc(0), 64, L, U)).toEqual(empty);
    });

    it('`length` beyond the Buffer is clamped to the Buffer', () => {
      const buf = Buffer.alloc(cmsgSpace(8, L));
      encodeRights(buf, 0, [30, 31], L, C);
      expect(parse(buf, 1 << 20, L, U)).toEqual({ ...empty, fds: [30, 31], rightsMessages: 1 });
      // The Buffer is a view into a larger one: bytes past its end are never read.
      const big = Buffer.alloc(256);
      const off = encodeRights(big, 0, [1], L, C);
      encodeRights(big, off, [2], L, C);
      expect(parse(big.subarray(0, off), 256, L, U).fds).toEqual([1]);
    });

    it('a truncated payload of 6 bytes yields one fd; the 2 stray bytes are ignored', () => {
      const buf = Buffer.alloc(cmsgSpace(8, L));
      writeCmsg(buf, 0, L, C.SOL_SOCKET, C.SCM_RIGHTS, ints(55, 56).subarray(0, 6), cmsgLen(6, L));
      expect(parse(buf, buf.length, L, U)).toEqual({ ...empty, fds: [55], rightsMessages: 1 });
      expect(parse(buf, cmsgLen(6, L), L, U)).toEqual({ ...empty, fds: [55], rightsMessages: 1 });
    });

    it('an SCM_PIDFD message with less than an int of payload adds no extra fd', () => {
      const buf = Buffer.alloc(32);
      writeCmsg(buf, 0, L, C.SOL_SOCKET, C.SCM_PIDFD, Buffer.from([1, 2]), cmsgLen(2, L));
      const parsed = parse(buf, cmsgLen(2, L), L, U);
      expect(parsed.extraFds).toEqual([]);
      expect(parsed.fds).toEqual([]);
      expect(parsed.malformed).toBe(false);
    });

    it('the word after a 4-byte cmsg_len: glibc reads it as the high half, musl as padding', () => {
      const buf = Buffer.alloc(cmsgSpace(4, L));
      encodeRights(buf, 0, [9], L, C);
      buf.writeUInt32LE(1, 4); // glibc: cmsg_len = 2^32 + 20 (too large); musl: padding
      expect(parse(buf, buf.length, L, U)).toEqual(
        L.lenSize === 8 ? { ...empty, malformed: true } : { ...empty, fds: [9], rightsMessages: 1 },
      );
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
function referenceParse(buf: Buffer, length: number, L: CmsgLayout, U: UcredLayout): ParsedControl {
  const out: ParsedControl = { fds: [], extraFds: [], rightsMessages: 0, unknownMessages: 0, malformed: false };
  const end = BigInt(Math.max(0, Math.min(length, buf.length)));
  const header = BigInt(L.size);
  const align = BigInt(L.align);
  let pos = 0n;
  while (pos + header <= end) {
    const p = Number(pos);
    const len = L.lenSize === 8 ? buf.readBigUInt64LE(p + L.len) : BigInt(buf.readUInt32LE(p + L.len));
    if (len < header || pos + len > end) {
      out.malformed = true;
      break;
    }
    const level = buf.readInt32LE(p + L.level);
    const type = buf.readInt32LE(p + L.type);
    const data = p + L.size;
    const count = Number((len - header) / 4n);
    const payload = Number(len - header);
    if (level === C.SOL_SOCKET && type === C.SCM_RIGHTS) {
      out.rightsMessages++;
      for (let i = 0; i < count; i++) out.fds.push(buf.readInt32LE(data + 4 * i));
    } else if (level === C.SOL_SOCKET && type === C.SCM_CREDENTIALS && payload >= U.size) {
      out.credentials = { pid: buf.readInt32LE(data + U.pid), uid: buf.readUInt32LE(data + U.uid), gid: buf.readUInt32LE(data + U.gid) };
    } else if (level === C.SOL_SOCKET && type === C.SCM_PIDFD && payload >= 4) {
      const pidfd = buf.readInt32LE(data);
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

function generate(rand: () => number, L: CmsgLayout, U: UcredLayout): Case {
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
      out.writeUInt32LE(v, i);
      if (int(4) === 0 && i + 8 <= out.length) out.writeUInt32LE(int(3), i + 4);
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
      const [name, L, U] = layouts[iter & 1];
      const c = generate(rand, L, U);
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
      for (let i = 0; i + 4 <= end; i += 4) present.add(c.buf.readInt32LE(i));
      for (const fd of [...got.fds, ...got.extraFds]) if (!present.has(fd)) problems.push(`fd ${fd} is not in the buffer`);
      if (got.credentials && got.credentials.uid > 2 ** 32 - 1) problems.push('uid out of range');
      // Malformed or consistent: the same result as the reference walk of the contract.
      const ref = referenceParse(c.buf, c.length, L, U);
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
