/**
 * How a test starts a TypeScript fixture as a child process, cheaply.
 *
 * `node --import tsx fixture.ts` costs a child 1–3.5 s of start-up and ~0.7 s of CPU on a 2-core
 * CI machine (tsx's hooks and its esbuild service), against ~0.3 s for `node plain.mjs`; under qemu
 * 8–10 s of CPU against ~2.5 s. The suite starts ~110 fixture children per run, several times per
 * CI run. So under Node a fixture runs as one bundled ES module (scripts/runner/bundle.mjs: the
 * fixture and what it imports from this checkout, esbuild, `import.meta.url` as under tsx), built
 * once per content of src/ and test/, and shared by every test process through node_modules/.cache.
 * Bun and Deno run TypeScript themselves: they keep what they did.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const fixturesDir = join(repoRoot, 'test', 'fixtures') + sep;
const cacheDir = join(repoRoot, 'node_modules', '.cache', 'fdpass-fixtures');
const isNode = process.versions.bun === undefined && process.versions.deno === undefined;

/**
 * The node arguments (before the fixture's own) that run TypeScript module `file`: the bundle's
 * path under Node for a file in test/fixtures/, otherwise `--import tsx file` (Bun and Deno run
 * that as they always did).
 */
export function tsArgs(file: string | URL): string[] {
  const path = typeof file === 'string' ? file : fileURLToPath(file);
  if (isNode && path.startsWith(fixturesDir) && path.endsWith('.ts')) return [bundled(path)];
  return ['--import', 'tsx', path];
}

let key: string | undefined;

/** A hash of every source a bundle can contain (src/, test/ but the test files), of how it is built (bundle.mjs) and of package-lock.json (esbuild's version). */
function sourcesKey(): string {
  if (key !== undefined) return key;
  const hash = createHash('sha256').update(readFileSync(join(repoRoot, 'package-lock.json'))).update(readFileSync(join(repoRoot, 'scripts/runner/bundle.mjs')));
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.(ts|mts|cts|js|mjs|cjs|json)$/.test(name) && !name.endsWith('.test.ts')) hash.update(`${relative(repoRoot, path)}\0`).update(readFileSync(path)).update('\0');
    }
  };
  walk(join(repoRoot, 'src'));
  walk(join(repoRoot, 'test'));
  key = hash.digest('hex').slice(0, 16);
  return key;
}

/** The bundle of fixture `path`, built if this content has none yet. */
function bundled(path: string): string {
  const dir = join(cacheDir, sourcesKey());
  const out = join(dir, relative(fixturesDir, path).replace(/\.ts$/, '.mjs'));
  if (existsSync(out)) return out;
  if (!existsSync(dir)) pruneOtherKeys();
  mkdirSync(join(out, '..'), { recursive: true });
  // Test files build in parallel processes: each writes its own file, the rename is atomic.
  const temporary = `${out}.${process.pid}.tmp`;
  // In a process of its own (bundle.mjs): esbuild keeps its service process (pipes, sockets, an
  // epoll) open in the process that calls it, which the tests' descriptor checks would count.
  try {
    const build = spawnSync(process.execPath, [join(repoRoot, 'scripts/runner/bundle.mjs'), path, temporary], { cwd: repoRoot, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`esbuild could not bundle ${path} (${build.status ?? build.signal}): ${build.stderr}${build.error?.message ?? ''}`);
    renameSync(temporary, out);
  } finally {
    rmSync(temporary, { force: true });
  }
  return out;
}

/** Bundles of older sources (a checkout that changed) are removed once an hour has passed. */
function pruneOtherKeys(): void {
  if (!existsSync(cacheDir)) return;
  for (const name of readdirSync(cacheDir)) {
    const path = join(cacheDir, name);
    try {
      if (Date.now() - statSync(path).mtimeMs > 3_600_000) rmSync(path, { recursive: true, force: true });
    } catch {
      // Another test process removed it first.
    }
  }
}
