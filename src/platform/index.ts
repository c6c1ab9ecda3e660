import { linuxConstants, linux64GlibcLayouts, linux64MuslLayouts } from './linux.js';
import type { Platform } from './types.js';

export type { Platform, PlatformConstants, PlatformLayouts } from './types.js';

type Libc = 'glibc' | 'musl';

/** Every supported (os, arch, libc); anything else fails with ERR_FDPASS_UNSUPPORTED_PLATFORM. */
const platforms: Record<string, Omit<Platform, 'name'>> = {
  'linux-x64-glibc': { os: 'linux', libcName: 'libc.so.6', constants: linuxConstants, layouts: linux64GlibcLayouts },
  'linux-arm64-glibc': { os: 'linux', libcName: 'libc.so.6', constants: linuxConstants, layouts: linux64GlibcLayouts },
  'linux-x64-musl': { os: 'linux', libcName: null, constants: linuxConstants, layouts: linux64MuslLayouts },
  'linux-arm64-musl': { os: 'linux', libcName: null, constants: linuxConstants, layouts: linux64MuslLayouts },
};

export const supportedPlatforms: readonly string[] = Object.keys(platforms);

function detectLibc(): Libc {
  // Node's report header names the glibc it runs on; musl builds have no such field.
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

export function platformKey(os: string = process.platform, arch: string = process.arch, libc?: Libc): string {
  return os === 'linux' ? `${os}-${arch}-${libc ?? detectLibc()}` : `${os}-${arch}`;
}

/** The table for this process, or undefined where fdpass has none yet. */
export function lookupPlatform(key: string = platformKey()): Platform | undefined {
  const entry = platforms[key];
  return entry && { name: key, ...entry };
}
