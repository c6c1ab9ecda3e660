// Runs vitest test files under Bun's own test runner (`bun test` maps `vitest` imports to
// bun:test), one `bun test` process per file as vitest's forks pool does: the tests count
// /proc/self/fd and must not see another file's descriptors (docs/runtimes.md).
//
//   node scripts/runner/bun.mjs BUN [--workers N] [--json REPORT] FILE...
//
// Prints each file's output and "Tests: N passed, M failed"; REPORT gets the counts in the shape
// of vitest's JSON reporter (numPassedTests, numFailedTests, testResults[].status…), so .ci/run
// counts it as it counts vitest. A file whose process fails without a failing test (it did not
// load, it crashed, it hung past the file timeout) is a failed file. Exit status 1 when anything
// failed. Test timeout: vitest.config.ts's 30 s.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runEach } from './pool.mjs';

const TEST_TIMEOUT_MS = 30_000;
/** A whole file: far above the slowest file's ~20 s here, for a hang that no test timeout catches. */
const FILE_TIMEOUT_MS = 5 * 60_000;

const args = process.argv.slice(2);
const bun = args.shift();
let workers = 1;
let json = null;
const files = [];
while (args.length > 0) {
  const a = args.shift();
  if (a === '--workers') workers = Number(args.shift());
  else if (a === '--json') json = args.shift();
  else files.push(a);
}
if (!bun || files.length === 0 || !(workers >= 1)) {
  console.error('usage: node scripts/runner/bun.mjs BUN [--workers N] [--json REPORT] FILE...');
  process.exit(2);
}

const scratch = mkdtempSync(join(tmpdir(), 'fdpass-bun-'));
const results = await runEach(files, workers, (file, i) => runFile(file, join(scratch, `${i}.xml`)));
rmSync(scratch, { recursive: true, force: true });

let passed = 0;
let failed = 0;
let skipped = 0;
for (const r of results) {
  passed += r.passed;
  failed += r.failed;
  skipped += r.skipped;
}
const brokenFiles = results.filter((r) => r.broken).length;
const failedFiles = results.filter((r) => r.broken || r.failed > 0).length;
console.log(`\n Test Files: ${results.length - failedFiles} passed, ${failedFiles} failed`);
console.log(`      Tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}${brokenFiles ? ` (and ${brokenFiles} files that failed without a failing test)` : ''}`);
if (json) {
  writeFileSync(json, JSON.stringify({
    numPassedTests: passed,
    numFailedTests: failed,
    numPendingTests: skipped,
    numTodoTests: 0,
    testResults: results.map((r) => ({
      name: r.file,
      status: r.broken || r.failed > 0 ? 'failed' : 'passed',
      assertionResults: [
        ...Array.from({ length: r.passed }, () => ({ status: 'passed' })),
        ...Array.from({ length: r.failed }, (_, i) => ({ status: 'failed', fullName: r.failedNames[i] })),
      ],
    })),
  }));
}
process.exit(failed > 0 || brokenFiles > 0 ? 1 : 0);

/** One file in its own `bun test`: its counts from the JUnit report, and whether it failed without a failing test. */
function runFile(file, xml) {
  return new Promise((resolveRun) => {
    const child = spawn(bun, ['test', '--timeout', String(TEST_TIMEOUT_MS), '--reporter=junit', `--reporter-outfile=${xml}`, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const guard = setTimeout(() => {
      out += `\n(killed: the file ran longer than ${FILE_TIMEOUT_MS / 60_000} minutes)\n`;
      child.kill('SIGKILL');
    }, FILE_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      const counts = junitCounts(xml);
      const passed = counts ? counts.tests - counts.failures - counts.skipped : 0;
      const failed = counts ? counts.failures : 0;
      // bun exits 1 when a test fails; any other end without a failing test is a broken file.
      const broken = counts === null || counts.tests === 0 || (failed === 0 && (code !== 0 || signal !== null));
      process.stdout.write(`\n=== ${file}: ${passed} passed, ${failed} failed${broken ? `, FILE FAILED (exit ${signal ?? code})` : ''}\n${out}`);
      resolveRun({ file, passed, failed, skipped: counts?.skipped ?? 0, broken, failedNames: counts?.failedNames ?? [] });
    });
  });
}

/** The totals bun's JUnit reporter writes on <testsuites>, and the failed tests' names; null when there is no report. */
function junitCounts(xml) {
  let text;
  try {
    text = readFileSync(xml, 'utf8');
  } catch {
    return null;
  }
  const head = /<testsuites\b[^>]*>/.exec(text)?.[0];
  if (!head) return null;
  const attr = (name) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(head)?.[1] ?? NaN);
  const counts = { tests: attr('tests'), failures: attr('failures'), skipped: attr('skipped') };
  if (!Object.values(counts).every(Number.isFinite)) return null;
  const failedNames = [];
  for (const [, attrs, body] of text.matchAll(/<testcase\b([^>]*?)(?:\/>|>([\s\S]*?)<\/testcase>)/g)) {
    if (!body?.includes('<failure')) continue;
    const value = (name) => unescapeXml(new RegExp(`\\b${name}="([^"]*)"`).exec(attrs)?.[1] ?? '');
    failedNames.push([value('classname'), value('name')].filter(Boolean).join(' > '));
  }
  return { ...counts, failedNames };
}

function unescapeXml(text) {
  const entities = { lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' };
  return text.replace(/&(lt|gt|quot|apos|amp|#\d+|#x[0-9a-f]+);/gi, (_, e) =>
    e[0] === '#' ? String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1))) : entities[e]);
}
