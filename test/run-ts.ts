/**
 * How a test starts a TypeScript fixture as a child process, cheaply.
 *
 * `node --import tsx fixture.ts` costs a child 1–3.5 s of start-up and ~0.7 s of CPU on a 2-core
 * CI machine (tsx's hooks and its esbuild service), against ~0.3 s for `node plain.mjs`; under qemu
 * 8–10 s of CPU against ~2.5 s. The suite starts ~110 fixture children per run, several times per
 * CI run. So under Node a fixture runs as one bundled ES module, built by esbuild (what tsx
 * compiles with) once per content of src/ and test/, and shared by every test process through
 * node_modules/.cache. Bun and Deno run TypeScript themselves: they keep what they did.
 *
 * The bundle is the fixture and everything it imports from src/ and test/ (packages such as koffi
 * stay imports, resolved from the repository's node_modules as before). `import.meta.url` in it is
 * the fixture's source URL: every module of a bundle that reads it sits beside the fixture in
 * test/fixtures/ (child-util, interop-util, readiness-idle's worker), except src/cli.ts, whose
 * is-main check is never true inside a fixture.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

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

/** A hash of every source a bundle can contain (src/, test/ but the test files), and of package-lock.json (esbuild's version). */
function sourcesKey(): string {
  if (key !== undefined) return key;
  const hash = createHash('sha256').update(readFileSync(join(repoRoot, 'package-lock.json')));
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
  const options = {
    entryPoints: [path],
    outfile: temporary,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    define: { 'import.meta.url': JSON.stringify(pathToFileURL(path).href) },
    logLevel: 'error',
    // Packages stay imports, and an ES module bundle has no `require`: give it one for what
    // esbuild turns into require() calls (node: builtins a CommonJS dependency asks for).
    banner: { js: "import { createRequire as __fdpassCreateRequire } from 'node:module'; const require = __fdpassCreateRequire(import.meta.url);" },
  };
  // In a process of its own: esbuild keeps a worker thread and its service process (pipes,
  // sockets, an epoll) for the life of the process that calls it, which the tests' descriptor
  // checks would count.
  try {
    const build = spawnSync(process.execPath, ['-e', "require('esbuild').buildSync(JSON.parse(process.argv[1]))", JSON.stringify(options)], {
      cwd: repoRoot,
      env: { ...process.env, ESBUILD_WORKER_THREADS: '0' },
      encoding: 'utf8',
    });
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
