/** How much one receive and one batch may take: the defaults, the bounds, and the options that set them. */
import { integerOption } from './args.js';
import { C } from './libc.js';
import type { RecvBatchOptions, RecvBatchSyncOptions } from './socket.js';

export const DEFAULT_MAX_BYTES = 65536;
export const MAX_MAX_BYTES = 1 << 30;
export const MAX_FDS = C.SCM_MAX_FD;

/** `options.maxBytes` of a receive: 1 to 1 GiB, default 64 KiB. */
export function maxBytesOption(value: unknown): number {
  return integerOption(value, 'options.maxBytes', 1, MAX_MAX_BYTES, DEFAULT_MAX_BYTES);
}

/** `options.maxFds` of a receive: 0 to SCM_MAX_FD (the kernel's limit per message, also the default). */
export function maxFdsOption(value: unknown): number {
  return integerOption(value, 'options.maxFds', 0, MAX_FDS, MAX_FDS);
}

/** What one batch may hold (see RecvBatchOptions). */
export interface BatchLimits {
  readonly maxBytes: number;
  readonly maxFds: number;
  readonly maxMessages: number;
  readonly maxBatchBytes: number;
  readonly maxBatchFds: number;
}

export const DEFAULT_LIMITS: BatchLimits = Object.freeze({
  maxBytes: DEFAULT_MAX_BYTES,
  maxFds: MAX_FDS,
  maxMessages: 256,
  maxBatchBytes: 1 << 20,
  maxBatchFds: 256,
});

export function batchLimits(options: RecvBatchOptions | RecvBatchSyncOptions | undefined): BatchLimits {
  if (options === undefined) return DEFAULT_LIMITS;
  return {
    maxBytes: maxBytesOption(options.maxBytes),
    maxFds: maxFdsOption(options.maxFds),
    maxMessages: integerOption(options.maxMessages, 'options.maxMessages', 1, 65536, DEFAULT_LIMITS.maxMessages),
    maxBatchBytes: integerOption(options.maxBatchBytes, 'options.maxBatchBytes', 1, MAX_MAX_BYTES, DEFAULT_LIMITS.maxBatchBytes),
    maxBatchFds: integerOption(options.maxBatchFds, 'options.maxBatchFds', 1, 1 << 20, DEFAULT_LIMITS.maxBatchFds),
  };
}
