/**
 * The test-file runners count what passes and what fails as vitest does — a failing assertion, a
 * resolved promise expected to reject, a timeout, a file that cannot load, a file without tests,
 * a process that dies before it reports, an unhandled error — and report it in the shape of
 * vitest's JSON report, which .ci/run counts:
 * - scripts/runner/run.mjs: vitest's runner and matchers without vite (linux-riscv64, where vite
 *   cannot start: docs/emulation.md), and with --deno under Deno (docs/runtimes.md);
 * - scripts/runner/bun.mjs: Bun's own `bun test`, one process per file.
 * Bun and Deno come from .ci/run (FDPASS_BUN, FDPASS_DENO); elsewhere those cases run only when
 * the variable is set, and in CI its absence is a failure (natively: not on another architecture).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { emulatedArch, repoRoot } from './helpers.js';

interface Report {
  numPassedTests: number;
  numFailedTests: number;
  testResults: { name: string; status: string; assertionResults: { fullName?: string; status: string }[] }[];
}

/** Run `runner` (script and its arguments) on the named fixtures: its exit status, output and report by file. */
function runFixtures(runner: string[], names: string[]): { status: number | null; stdout: string; report: Report; byFile: Record<string, Report['testResults'][number]> } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fdpass-runner-test-'));
  try {
    const report = path.join(dir, 'report.json');
    const files = names.map((name) => `./test/fixtures/runner/${name}.check.ts`);
    const run = spawnSync(process.execPath, [...runner, '--workers', '2', '--json', report, ...files], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    let r: Report;
    try {
      r = JSON.parse(readFileSync(report, 'utf8')) as Report;
    } catch {
      throw new Error(`no report (exit ${run.status}):\n${run.stdout}${run.stderr}`);
    }
    return { status: run.status, stdout: run.stdout + run.stderr, report: r, byFile: Object.fromEntries(r.testResults.map((f) => [path.basename(f.name), f])) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ALL = ['passing', 'failing', 'broken', 'empty', 'crash', 'unhandled'];

/** What run.mjs reports for ALL, on Node or under Deno. */
function expectStandInReport(out: ReturnType<typeof runFixtures>): void {
  const { status, stdout, report: r, byFile } = out;
  expect(status, stdout).toBe(1);
  expect({ passed: r.numPassedTests, failed: r.numFailedTests }).toEqual({ passed: 6, failed: 3 });
  expect(byFile['passing.check.ts']).toMatchObject({ status: 'passed', assertionResults: [{ status: 'passed' }, { status: 'passed' }, { status: 'passed' }] });
  expect(byFile['unhandled.check.ts']).toMatchObject({ status: 'failed', assertionResults: [{ status: 'passed' }, { status: 'passed' }] });
  expect(byFile['failing.check.ts'].status).toBe('failed');
  expect(byFile['failing.check.ts'].assertionResults.map((t) => `${t.fullName}: ${t.status}`)).toEqual([
    'a suite > passes: passed',
    'a suite > fails an equality: failed',
    'a suite > fails when a promise resolves that should reject: failed',
    'a suite > times out: failed',
  ]);
  for (const name of ['broken.check.ts', 'empty.check.ts', 'crash.check.ts']) expect(byFile[name]).toMatchObject({ status: 'failed', assertionResults: [] });
  expect(stdout).toContain('Test timed out in 300ms');
  expect(stdout).toContain('no-such-module');
  expect(stdout).toContain("the file's process ended (code 3) without a report");
  expect(stdout).toContain('unhandled error: nobody handles this');
  expect(stdout).toContain('Tests: 6 passed, 3 failed');
}

const bun = process.env.FDPASS_BUN;
const deno = process.env.FDPASS_DENO;
const inCi = process.env.CI === 'true';
// Under scripts/cross/run.sh the Bun and Deno at hand are the host's (x86-64), not the
// architecture under test: their runners are checked natively.
const runtimesApply = emulatedArch === undefined;

describe('scripts/runner/run.mjs', () => {
  it('reports passes, failures, timeouts and files that do not load, in the shape of vitest’s JSON report', () => {
    const out = runFixtures(['scripts/runner/run.mjs'], ALL);
    expectStandInReport(out);
    expect(out.stdout).toContain('No test suite found in file');
  });

  it.skipIf(!runtimesApply || (!deno && !inCi))('--deno: each file under Deno, counted as under Node', () => {
    expect(deno, 'FDPASS_DENO: the Deno binary (.ci/run sets it)').toBeTruthy();
    expectStandInReport(runFixtures(['scripts/runner/run.mjs', '--deno', deno!], ALL));
  });
});

describe('scripts/runner/bun.mjs', () => {
  it.skipIf(!runtimesApply || (!bun && !inCi))('counts a file’s tests from bun test’s JUnit report; a file that fails without a failing test is a failed file', () => {
    expect(bun, 'FDPASS_BUN: the Bun binary (.ci/run sets it)').toBeTruthy();
    const { status, stdout, report: r, byFile } = runFixtures(['scripts/runner/bun.mjs', bun!], ['passing', 'failing', 'broken', 'empty', 'crash']);
    expect(status, stdout).toBe(1);
    expect({ passed: r.numPassedTests, failed: r.numFailedTests }).toEqual({ passed: 4, failed: 3 });
    expect(byFile['passing.check.ts']).toMatchObject({ status: 'passed', assertionResults: [{ status: 'passed' }, { status: 'passed' }, { status: 'passed' }] });
    expect(byFile['failing.check.ts'].status).toBe('failed');
    expect(byFile['failing.check.ts'].assertionResults.map((t) => t.status).sort()).toEqual(['failed', 'failed', 'failed', 'passed']);
    // The failed ones by name (from the JUnit report), for .ci/run's summary.
    expect(byFile['failing.check.ts'].assertionResults.filter((t) => t.status === 'failed').map((t) => t.fullName).sort()).toEqual([
      'a suite > fails an equality',
      'a suite > fails when a promise resolves that should reject',
      'a suite > times out',
    ]);
    for (const name of ['broken.check.ts', 'empty.check.ts', 'crash.check.ts']) expect(byFile[name]).toMatchObject({ status: 'failed', assertionResults: [] });
    expect(stdout).toContain('Tests: 4 passed, 3 failed (and 3 files that failed without a failing test)');
  });
});
