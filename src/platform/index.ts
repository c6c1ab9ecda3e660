/**
 * The platform tables and the pure function that picks one: from (os, arch, libc, endianness)
 * and the test-only FDPASS_CAPABILITIES variable to a table, or to the reason there is none.
 * Nothing here touches the host except `hostPlatform()`, which reads it once.
 */
import { endianness as hostEndianness } from 'node:os';
import { bsdPlatforms } from './bsd.js';
import { linuxPlatforms } from './linux.js';
import type { Capabilities, Endianness, Platform, PlatformTable } from './types.js';

export type { Capabilities, ConstantName, Endianness, LinuxSyscalls, Os, Platform, PlatformConstants, PlatformLayouts, PlatformTable, SigpipeMechanism } from './types.js';

type Libc = 'glibc' | 'musl';

/** Every supported (os, arch[, libc]). */
const platforms: Record<string, PlatformTable> = { ...linuxPlatforms, ...bsdPlatforms };

export const supportedPlatforms: readonly string[] = Object.keys(platforms);

/**
 * FDPASS_CAPABILITIES=minimal (tests only): behave as a platform without atomic close-on-exec,
 * MSG_NOSIGNAL, SEQPACKET, credential messages and fchmod on sockets, sending one control message
 * per send — so the fallback code paths run on Linux. Unset (or 'native'): the platform's own.
 */
export const CAPABILITIES_ENV = 'FDPASS_CAPABILITIES';

const minimalCapabilities: Partial<Capabilities> = {
  atomicCloexec: false,
  // Linux has no SO_NOSIGPIPE: a closed peer is an EPIPE error only because Node ignores SIGPIPE.
  sigpipe: 'process_ignores',
  seqpacket: false,
  singleRightsMessage: true,
  messageVectors: false,
  closeRange: false,
  fchmodSocket: false,
  credentialMessages: null,
};

export function platformKey(os: string, arch: string, libc?: Libc): string {
  return os === 'linux' ? `${os}-${arch}-${libc ?? 'glibc'}` : `${os}-${arch}`;
}

export interface PlatformQuery {
  os: string;
  arch: string;
  /** Linux only. */
  libc?: Libc;
  /** The host's byte order; a table for the other order is refused. Default: the table's. */
  endianness?: Endianness;
  /** The value of FDPASS_CAPABILITIES. */
  capabilities?: string;
}

export type PlatformResult =
  | { platform: Platform; error?: undefined }
  | { platform?: undefined; error: { code: string; message: string } };

/** Pick the table for `query`: pure, so every key can be resolved on any machine. */
export function resolvePlatform(query: PlatformQuery): PlatformResult {
  const key = platformKey(query.os, query.arch, query.libc);
  if (query.os === 'win32') {
    return {
      error: {
        code: 'ERR_FDPASS_UNSUPPORTED_PLATFORM',
        message: `fdpass does not run on Windows (${key}): Windows has no SCM_RIGHTS — its AF_UNIX sockets carry bytes, never descriptors. ` +
          'Use DuplicateHandle() through a native addon, or run under WSL, where fdpass works as on Linux',
      },
    };
  }
  const entry = platforms[key];
  if (!entry) {
    return {
      error: {
        code: 'ERR_FDPASS_UNSUPPORTED_PLATFORM',
        message: `fdpass has no platform table for ${key} (supported: ${supportedPlatforms.join(', ')})`,
      },
    };
  }
  if (query.endianness !== undefined && query.endianness !== entry.endianness) {
    return {
      error: {
        code: 'ERR_FDPASS_UNSUPPORTED_PLATFORM',
        message: `fdpass's table for ${key} is ${entry.endianness}-endian, but this machine is ${query.endianness}-endian`,
      },
    };
  }
  const mode = query.capabilities ?? '';
  if (mode !== '' && mode !== 'native' && mode !== 'minimal') {
    return { error: { code: 'ERR_FDPASS_INVALID_ENV', message: `${CAPABILITIES_ENV}=${mode}: expected 'minimal' or 'native' (a test-only switch)` } };
  }
  const capabilities = mode === 'minimal' ? { ...entry.capabilities, ...minimalCapabilities } : entry.capabilities;
  return { platform: { name: key, ...entry, capabilities, capabilityMode: mode === 'minimal' ? 'minimal' : 'native' } };
}

/** Is the running Node linked against glibc? Node's report header names the glibc it runs on. */
function detectLibc(): Libc {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

let host: PlatformResult | undefined;

/** The table for this process (computed once). */
export function hostPlatform(): PlatformResult {
  host ??= resolvePlatform({
    os: process.platform,
    arch: process.arch,
    libc: process.platform === 'linux' ? detectLibc() : undefined,
    endianness: hostEndianness() === 'BE' ? 'big' : 'little',
    capabilities: process.env[CAPABILITIES_ENV],
  });
  return host;
}

/** The table for `key` with its own capabilities, or undefined. */
export function lookupPlatform(key: string): Platform | undefined {
  const entry = platforms[key];
  return entry && { name: key, ...entry, capabilityMode: 'native' };
}
