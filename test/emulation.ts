/**
 * Runs under qemu user-mode emulation (scripts/cross/run.sh, docs/emulation.md).
 *
 * The script sets FDPASS_EMULATED to the emulated architecture (arm64, arm). Nothing here changes
 * a native run: without that variable `slowdown` is 1 and `emulationLimit` never skips.
 * No vitest import, so vitest.config.ts can use it too.
 */

/** The architecture qemu emulates for this process, or undefined on a native run. */
export const emulatedArch: string | undefined = process.env.FDPASS_EMULATED || undefined;

// A misplaced variable must not quietly turn native tests into skips.
if (emulatedArch !== undefined && emulatedArch !== process.arch) {
  throw new Error(`FDPASS_EMULATED=${emulatedArch} but this node runs on ${process.arch}: only scripts/cross/run.sh sets it`);
}

/**
 * The factor for timeouts (vitest's and the tests' own guards) under emulation. Measured on 2
 * x86-64 cores: JavaScript runs 10-15 times slower under qemu, starting a node 8 (arm64) to 20
 * (arm, Debian's node has no startup snapshot) times; the tests' timeouts are generous enough
 * natively that 6 suffices (docs/emulation.md). FDPASS_EMULATION_SLOWDOWN overrides it.
 */
export const slowdown: number = Number(process.env.FDPASS_EMULATION_SLOWDOWN) || (emulatedArch ? 6 : 1);

/** `ms` scaled for emulation (unchanged natively). */
export function scaled(ms: number): number {
  return Math.round(ms * slowdown);
}

/** The part of vitest's test context `emulationLimit` needs. */
interface SkippableContext {
  task: { name: string };
  skip(condition: boolean, note?: string): void;
}

/**
 * Skip the current test when it runs emulated on one of `arches` (default: every emulated
 * architecture), because qemu (or the emulated environment) cannot do what it checks. `reason`
 * says what and why; it is printed and recorded as the test's skip note. Call it first in the
 * test body: `it('…', (ctx) => { emulationLimit(ctx, 'qemu …'); … })`. Natively it does nothing.
 */
export function emulationLimit(ctx: SkippableContext, reason: string, arches?: readonly string[]): void {
  if (emulatedArch === undefined || (arches && !arches.includes(emulatedArch))) return;
  const note = `emulated ${emulatedArch}: ${reason}`;
  console.warn(`[skipped] ${ctx.task.name} (${note})`);
  ctx.skip(true, note);
}
