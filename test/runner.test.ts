/**
 * scripts/runner/run.mjs — vitest's runner and matchers without vite, for linux-riscv64 where
 * vite cannot start (docs/emulation.md) — counts what passes and what fails as vitest does: a
 * failing assertion, a resolved promise expected to reject, a timeout, a file that cannot load,
 * a file without tests, a process that dies before it reports.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './helpers.js';

interface Report {
  numPassedTests: number;
  numFailedTests: number;
  testResults: { name: string; status: string; assertionResults: { title: string; status: string }[] }[];
}

describe('scripts/runner/run.mjs', () => {
  it('reports passes, failures, timeouts and files that do not load, in the shape of vitest’s JSON report', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fdpass-runner-test-'));
    try {
      const report = path.join(dir, 'report.json');
      const files = ['passing', 'failing', 'broken', 'empty', 'crash', 'unhandled'].map((name) => `test/fixtures/runner/${name}.check.ts`);
      const run = spawnSync(process.execPath, ['scripts/runner/run.mjs', '--workers', '2', '--json', report, ...files], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
      expect(run.status, run.stdout + run.stderr).toBe(1);
      const r = JSON.parse(readFileSync(report, 'utf8')) as Report;
      expect({ passed: r.numPassedTests, failed: r.numFailedTests }).toEqual({ passed: 6, failed: 3 });
      const byFile = Object.fromEntries(r.testResults.map((f) => [path.basename(f.name), f]));
      expect(byFile['passing.check.ts'].status).toBe('passed');
      expect(byFile['unhandled.check.ts']).toMatchObject({ status: 'failed', assertionResults: [{ status: 'passed' }, { status: 'passed' }] });
      expect(byFile['passing.check.ts'].assertionResults.map((t) => t.status)).toEqual(['passed', 'passed', 'passed']);
      expect(byFile['failing.check.ts'].status).toBe('failed');
      expect(byFile['failing.check.ts'].assertionResults.map((t) => `${t.title}: ${t.status}`)).toEqual([
        'a suite > passes: passed',
        'a suite > fails an equality: failed',
        'a suite > fails when a promise resolves that should reject: failed',
        'a suite > times out: failed',
      ]);
      for (const name of ['broken.check.ts', 'empty.check.ts', 'crash.check.ts']) expect(byFile[name]).toMatchObject({ status: 'failed', assertionResults: [] });
      expect(run.stdout).toContain('Test timed out in 300ms');
      expect(run.stdout).toContain('no-such-module');
      expect(run.stdout).toContain('No test suite found in file');
      expect(run.stdout).toContain("the file's process ended (code 3) without a report");
      expect(run.stdout).toContain('unhandled error: nobody handles this');
      expect(run.stdout).toContain('Tests: 6 passed, 3 failed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The Bun step of .ci/run sets FDPASS_BUN (scripts/runtime.sh bun VERSION); elsewhere this runs
// only when it is set, and in CI its absence is a failure.
const bun = process.env.FDPASS_BUN;
describe('scripts/runner/bun.mjs', () => {
  it.skipIf(!bun && process.env.CI !== 'true')('counts a file’s tests from bun test’s JUnit report; a file that fails without a failing test is a failed file', () => {
    expect(bun, 'FDPASS_BUN: the Bun binary (.ci/run sets it)').toBeTruthy();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fdpass-runner-test-'));
    try {
      const report = path.join(dir, 'report.json');
      const files = ['passing', 'failing', 'broken', 'empty', 'crash'].map((name) => `./test/fixtures/runner/${name}.check.ts`);
      const run = spawnSync(process.execPath, ['scripts/runner/bun.mjs', bun!, '--workers', '2', '--json', report, ...files], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
      expect(run.status, run.stdout + run.stderr).toBe(1);
      const r = JSON.parse(readFileSync(report, 'utf8')) as Report;
      expect({ passed: r.numPassedTests, failed: r.numFailedTests }).toEqual({ passed: 4, failed: 3 });
      const byFile = Object.fromEntries(r.testResults.map((f) => [path.basename(f.name), f]));
      expect(byFile['passing.check.ts']).toMatchObject({ status: 'passed', assertionResults: [{ status: 'passed' }, { status: 'passed' }, { status: 'passed' }] });
      expect(byFile['failing.check.ts'].status).toBe('failed');
      expect(byFile['failing.check.ts'].assertionResults.map((t) => t.status).sort()).toEqual(['failed', 'failed', 'failed', 'passed']);
      for (const name of ['broken.check.ts', 'empty.check.ts', 'crash.check.ts']) expect(byFile[name]).toMatchObject({ status: 'failed', assertionResults: [] });
      expect(run.stdout).toContain('Tests: 4 passed, 3 failed (and 3 files that failed without a failing test)');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Set FDPASS_DENO (scripts/runtime.sh deno VERSION) to check run.mjs's --deno mode.
const deno = process.env.FDPASS_DENO;
describe('scripts/runner/run.mjs --deno', () => {
  it.skipIf(!deno)('runs each file under Deno and counts as it does under Node', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fdpass-runner-test-'));
    try {
      const report = path.join(dir, 'report.json');
      const files = ['passing', 'failing', 'broken', 'empty', 'crash', 'unhandled'].map((name) => `test/fixtures/runner/${name}.check.ts`);
      const run = spawnSync(process.execPath, ['scripts/runner/run.mjs', '--deno', deno!, '--workers', '2', '--json', report, ...files], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
      expect(run.status, run.stdout + run.stderr).toBe(1);
      const r = JSON.parse(readFileSync(report, 'utf8')) as Report;
      expect({ passed: r.numPassedTests, failed: r.numFailedTests }).toEqual({ passed: 6, failed: 3 });
      const byFile = Object.fromEntries(r.testResults.map((f) => [path.basename(f.name), f]));
      expect(byFile['passing.check.ts']).toMatchObject({ status: 'passed', assertionResults: [{ status: 'passed' }, { status: 'passed' }, { status: 'passed' }] });
      expect(byFile['failing.check.ts'].assertionResults.map((t) => t.status)).toEqual(['passed', 'failed', 'failed', 'failed']);
      expect(byFile['unhandled.check.ts']).toMatchObject({ status: 'failed', assertionResults: [{ status: 'passed' }, { status: 'passed' }] });
      for (const name of ['broken.check.ts', 'empty.check.ts', 'crash.check.ts']) expect(byFile[name]).toMatchObject({ status: 'failed', assertionResults: [] });
      expect(run.stdout).toContain('Test timed out in 300ms');
      expect(run.stdout).toContain('no-such-module');
      expect(run.stdout).toContain("the file's process ended (code 3) without a report");
      expect(run.stdout).toContain('unhandled error: nobody handles this');
      expect(run.stdout).toContain('Tests: 6 passed, 3 failed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
