/** Buffers for received payloads: small ones cut from a shared pool, as Node's own allocUnsafe does. */
import { Buffer } from 'node:buffer';

/**
 * Node's own Buffer class (what Buffer.allocUnsafe returns instances of), where the runtime
 * exposes it as Buffer[Symbol.species] (Node 20 to 26); null elsewhere.
 */
const FastBuffer: (new (buffer: ArrayBuffer, byteOffset: number, length: number) => Buffer) | null = (() => {
  try {
    const F = (Buffer as unknown as Record<symbol, unknown>)[Symbol.species] as new (b: ArrayBuffer, o: number, n: number) => Buffer;
    return typeof F === 'function' && F !== Buffer && Buffer.isBuffer(new F(new ArrayBuffer(8), 0, 1)) ? F : null;
  } catch {
    return null;
  }
})();
const POOL_BYTES = 8192;
const POOLED_BYTES = 1024;
let pool = new ArrayBuffer(POOL_BYTES);
let poolOffset = 0;

/**
 * A Buffer for a received payload: for small ones a slice of a shared pool, as Buffer.allocUnsafe
 * makes them, without its argument checks (a copy of a few bytes costs less than those).
 */
export function payloadBuffer(n: number): Buffer {
  if (n > POOLED_BYTES || FastBuffer === null) return Buffer.allocUnsafe(n);
  if (poolOffset + n > POOL_BYTES) {
    pool = new ArrayBuffer(POOL_BYTES);
    poolOffset = 0;
  }
  const b = new FastBuffer(pool, poolOffset, n);
  poolOffset = (poolOffset + n + 7) & ~7;
  return b;
}
