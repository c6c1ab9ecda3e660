/**
 * Runs on another architecture (scripts/cross/run.sh, docs/emulation.md): under qemu user-mode
 * emulation (arm64, arm, riscv64; ia32 where the kernel has no IA32 emulation), or as an i386
 * program on the x86-64 host's kernel (ia32, no emulator).
 *
 * The script sets FDPASS_EMULATED to that architecture. Nothing here changes a native run:
 * without that variable `slowdown` is 1 and `emulationLimit` never skips.
 * No vitest import, so vitest.config.ts can use it too.
 */

/** The architecture scripts/cross/run.sh runs this process as, or undefined on a native run. */
export const emulatedArch: string | undefined = process.env.FDPASS_EMULATED || undefined;

/**
 * This process runs under qemu-user (whose limits emulationLimit checks): run.sh says so in
 * FDPASS_EMULATOR (qemu, or none for ia32 on the host kernel's compat layer).
 */
export const underQemu: boolean = emulatedArch !== undefined && process.env.FDPASS_EMULATOR === 'qemu';

// A misplaced variable must not quietly turn native tests into skips.
if (emulatedArch !== undefined && emulatedArch !== process.arch) {
  throw new Error(`FDPASS_EMULATED=${emulatedArch} but this node runs on ${process.arch}: only scripts/cross/run.sh sets it`);
}
if (emulatedArch !== undefined && process.env.FDPASS_EMULATOR !== 'qemu' && process.env.FDPASS_EMULATOR !== 'none') {
  throw new Error(`FDPASS_EMULATED=${emulatedArch} without FDPASS_EMULATOR=qemu|none: only scripts/cross/run.sh sets them`);
}

/**
 * The factor for timeouts (vitest's and the tests' own guards) under emulation. Measured on 2
 * x86-64 cores: JavaScript runs 10-15 times slower under qemu, starting a node 8 (arm64) to 20
 * (arm, Debian's node has no startup snapshot) times; the tests' timeouts are generous enough
 * natively that 6 suffices (docs/emulation.md). ia32 runs at native speed, but Debian's node
 * starts slower (no snapshot) and vitest's transforms run as WebAssembly there: 2.
 * FDPASS_EMULATION_SLOWDOWN overrides it.
 */
export const slowdown: number = Number(process.env.FDPASS_EMULATION_SLOWDOWN) || (underQemu ? 6 : emulatedArch ? 2 : 1);

/** `ms` scaled for emulation (unchanged natively). */
export function scaled(ms: number): number {
  return Math.round(ms * slowdown);
}

/**
 * Where qemu (or the emulated environment) cannot do what a test checks: on an emulated run (on
 * one of `arches`, default every architecture run under qemu) `proof` runs instead — it must show the
 * limit itself (throw when it does not hold) — and this returns true, so the test returns early,
 * having checked that the limit is still there. Natively it returns false and runs nothing.
 * `if (emulationLimit('qemu …', () => …)) return;` first in the test body. A limit qemu lifts
 * makes its proof fail, so the test comes back instead of staying quietly reduced.
 */
export function emulationLimit(reason: string, proof: () => void, arches?: readonly string[]): boolean {
  if (!underQemu || (arches && !arches.includes(emulatedArch!))) return false;
  proof();
  console.warn(`[emulation limit] emulated ${emulatedArch}: ${reason} (checked; the rest of the test does not run)`);
  return true;
}
