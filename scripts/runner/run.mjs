// Runs vitest test files without vite, where vite cannot start: on linux-riscv64, vite 8's
// bundler (rolldown) has neither a native build nor a WebAssembly build that Node 20's V8 can
// compile there (docs/emulation.md). Each file runs in a process of its own, as vitest's forks
// pool does (the tests count /proc/self/fd, and call gc()), on vitest's own runner and matchers
// (@vitest/runner, @vitest/expect). Under Node each test file runs as one ES module (bundle.mjs),
// 'vitest' mapped to the stand-in: tsx's start-up cost each file's process 15-25 s under
// qemu-riscv64, a bundle's ~5 s.
//
//   node scripts/runner/run.mjs [--deno DENO] [--workers N] [--json REPORT] FILE...
//
// --deno DENO runs each file's process under that Deno binary instead (docs/runtimes.md, "The
// test suite under Deno"): `deno run -A` of this script, TypeScript run by Deno itself, 'vitest'
// mapped to the stand-in by deno-imports.json, DENO_COMPAT=1 (Node-style resolution of '.js'
// imports to '.ts' files, also for the fixtures the tests start), V8's gc() exposed.
//
// Prints each test as it ends and "Tests: N passed, M failed"; REPORT gets the counts in the
// shape of vitest's JSON reporter (numPassedTests, numFailedTests, testResults[].status…).
// Exit status 1 when anything failed. Timeouts are vitest.config.ts's: 30 s, scaled().
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bundle } from './bundle.mjs';
import { runEach } from './pool.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
/** A whole file under Deno: far above the slowest file's time, for a hang that no test timeout catches. */
const FILE_TIMEOUT_MS = 5 * 60_000;
const args = process.argv.slice(2);

if (args[0] === '--file') await runFile(args[1], args[2], args[3], args[4]);
else await main(args);

/**
 * In a test file's own process: run it, write what happened to `out` as JSON. Under Node,
 * `bundled` is the file's bundle and `emulation` test/emulation.ts's (bundleTests); under Deno both are
 * absent and Deno runs the TypeScript.
 */
async function runFile(file, out, bundled, emulation) {
  // Opened before any test runs: Deno's node:fs keeps its own table of the descriptors it opened,
  // and a test that closes one of them through libc (fdpass owning it) makes a later open that
  // reuses the number fail (docs/runtimes.md).
  const report = openSync(out, 'w');
  // libuv opens a reserve descriptor (/dev/null, for EMFILE) with the process's first stream and
  // keeps it: make stdout's stream now, before a test counts descriptors (vitest's own IPC does it
  // in its workers).
  void process.stdout;
  // What vitest reports as unhandled errors: they fail the file, and the other tests still run
  // (Deno, like Node without vitest, would end the process at the first).
  const unhandled = [];
  process.on('unhandledRejection', (e) => { unhandled.push(e); });
  process.on('uncaughtException', (e) => { unhandled.push(e); });
  const { startTests } = await import('@vitest/runner');
  const { scaled } = await import(pathToFileURL(emulation ?? join(root, 'test/emulation.ts')).href);
  const config = {
    root, setupFiles: [], name: undefined, passWithNoTests: false, testNamePattern: undefined, allowOnly: false,
    sequence: { seed: 0, hooks: 'stack', setupFiles: 'list' }, chaiConfig: undefined, maxConcurrency: 5,
    testTimeout: scaled(30_000), hookTimeout: scaled(30_000), retry: 0, includeTaskLocation: false,
    tags: [], tagsFilter: undefined, strictTags: false,
  };
  const runner = {
    config,
    importFile: (path) => import(pathToFileURL(bundled ?? path).href),
    onAfterRunTask: (test) => {
      const mark = { pass: '✓', fail: '×', skip: '↓', todo: '↓' }[test.result?.state] ?? '?';
      console.log(`     ${mark} ${nameOf(test)} ${Math.round(test.result?.duration ?? 0)}ms`);
    },
  };
  const [result] = await startTests([resolve(file)], runner);
  const tests = [];
  const walk = (task) => {
    if (task.type === 'test') tests.push({ name: nameOf(task), state: task.result?.state ?? task.mode, errors: errorsOf(task) });
    for (const child of task.tasks ?? []) walk(child);
  };
  walk(result);
  const errors = [...errorsOf(result), ...errorsOf({ result: { errors: unhandled } }).map((e) => `unhandled error: ${e}`)];
  writeSync(report, JSON.stringify({ tests, errors }));
  closeSync(report);
  // Like vitest's forks pool: the file's process ends when its tests do, handles or not.
  process.exit(0);
}

/** "suite > test", as vitest prints it. */
function nameOf(task) {
  return task.fullTestName ?? task.name;
}

function errorsOf(task) {
  // The message first: a timeout's stack starts with the runner's placeholder ("STACK_TRACE_ERROR").
  // Deno colours the file positions in its stacks: plain text here.
  return (task.result?.errors ?? []).map((e) => [e.message ?? String(e), ...(e.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l))].join('\n').replace(/\x1b\[[0-9;]*m/g, ''));
}

/** The parent: files in child processes, `workers` at a time; the summary and the report. */
async function main(argv) {
  let workers = 1;
  let json;
  let deno;
  const files = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--workers') workers = Number(argv[++i]);
    else if (argv[i] === '--json') json = argv[++i];
    else if (argv[i] === '--deno') deno = argv[++i];
    else files.push(argv[i]);
  }
  if (files.length === 0 || !(workers >= 1) || deno === '') throw new Error('usage: run.mjs [--deno DENO] [--workers N] [--json REPORT] FILE...');
  const scratch = mkdtempSync(join(tmpdir(), 'fdpass-runner-'));
  const started = Date.now();
  // Bundles import packages from the checkout's node_modules: they live under it.
  mkdirSync(join(root, 'node_modules/.cache'), { recursive: true });
  const bundles = deno ? undefined : mkdtempSync(join(root, 'node_modules/.cache/fdpass-runner-'));
  try {
    const bundled = bundles && (await bundleTests(files, bundles));
    const results = await runEach(files, workers, (file, index) => runChild(file, join(scratch, `${index}.json`), deno, bundled));
    report(results, started, json);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    if (bundles) rmSync(bundles, { recursive: true, force: true });
  }
}

/**
 * Each test file, and test/emulation.ts, as one ES module in `dir` (bundle.mjs), 'vitest' the
 * stand-in (vitest.mjs). A file that does not build fails alone, as a file that does not load
 * fails under vitest.
 */
async function bundleTests(files, dir) {
  const vitest = fileURLToPath(new URL('./vitest.mjs', import.meta.url));
  const outputs = new Map();
  const failures = new Map();
  await Promise.all(['test/emulation.ts', ...files].map(async (file, index) => {
    const outfile = join(dir, `${index}.mjs`);
    try {
      await bundle(resolve(root, file), outfile, { vitest });
      outputs.set(file, outfile);
    } catch (err) {
      failures.set(file, `the file did not build: ${err.message}`);
    }
  }));
  (await import('esbuild')).stop?.();
  if (failures.has('test/emulation.ts')) throw new Error(failures.get('test/emulation.ts'));
  return { emulation: outputs.get('test/emulation.ts'), of: (file) => outputs.get(file), failure: (file) => failures.get(file) };
}

/** The summary on stdout, and the JSON report. */
function report(results, started, json) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const failures = [];
  const testResults = results.map(({ file, report, output, code }) => {
    const tests = report?.tests ?? [];
    const fileErrors = report ? report.errors : [`the file's process ended (code ${code}) without a report:\n${output}`];
    for (const t of tests) {
      if (t.state === 'pass') passed++;
      else if (t.state === 'fail') { failed++; failures.push(`${file} > ${t.name}\n${t.errors.join('\n')}`); }
      else skipped++;
    }
    if (fileErrors.length) failures.push(`${file}\n${fileErrors.join('\n')}`);
    const bad = fileErrors.length > 0 || tests.some((t) => t.state === 'fail');
    return { name: file, status: bad ? 'failed' : 'passed', assertionResults: tests.map((t) => ({ fullName: t.name, status: t.state === 'pass' ? 'passed' : t.state === 'fail' ? 'failed' : 'pending' })) };
  });
  for (const f of failures) console.log(`\nFAIL ${f}`);
  const brokenFiles = testResults.filter((f) => f.status === 'failed' && !f.assertionResults.some((t) => t.status === 'failed')).length;
  const failedFiles = testResults.filter((f) => f.status === 'failed').length;
  console.log(`\nTest files: ${testResults.length - failedFiles} passed, ${failedFiles} failed`);
  console.log(`Tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''} (${Math.round((Date.now() - started) / 1000)} s)`);
  if (json) writeFileSync(json, JSON.stringify({ numPassedTests: passed, numFailedTests: failed, numPendingTests: skipped, numTodoTests: 0, testResults }));
  process.exitCode = failed || brokenFiles ? 1 : 0;
}

/**
 * One file in its own process (vitest.config.ts's execArgv: --expose-gc), on Node or on `deno`.
 * Under Deno, a file that runs past FILE_TIMEOUT_MS (a hang no test timeout catches) is killed.
 */
function runChild(file, out, deno, bundled) {
  const started = Date.now();
  const self = fileURLToPath(import.meta.url);
  const [command, args, env] = deno
    ? [deno, ['run', '-A', '--v8-flags=--expose-gc', '--import-map', fileURLToPath(new URL('./deno-imports.json', import.meta.url)), self, '--file', file, out], { ...process.env, DENO_COMPAT: '1', DENO_NO_UPDATE_CHECK: '1' }]
    : [process.execPath, ['--expose-gc', self, '--file', file, out, bundled.of(file), bundled.emulation], process.env];
  const buildFailure = bundled?.failure(file);
  if (buildFailure !== undefined) {
    console.log(` ❯ ${relative(root, resolve(root, file))} (0 tests)\n${buildFailure}`);
    return Promise.resolve({ file, report: { tests: [], errors: [buildFailure] }, output: buildFailure, code: null });
  }
  return new Promise((done) => {
    const child = spawn(command, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    const guard = deno && setTimeout(() => {
      output += `\n(killed: the file ran longer than ${FILE_TIMEOUT_MS / 60_000} minutes)\n`;
      child.kill('SIGKILL');
    }, FILE_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      code ??= signal;
      let report;
      try {
        report = JSON.parse(readFileSync(out, 'utf8'));
      } catch {
        report = undefined;
      }
      const mark = report && !report.errors.length && !report.tests.some((t) => t.state === 'fail') ? '✓' : '❯';
      console.log(` ${mark} ${relative(root, resolve(root, file))} (${report?.tests.length ?? 0} tests) ${Date.now() - started}ms\n${output.trimEnd()}`);
      done({ file, report, output, code });
    });
  });
}
