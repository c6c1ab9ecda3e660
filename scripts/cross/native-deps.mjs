// Unpack the linux-ARCH (glibc) builds of the native npm packages a project installed for its
// host: koffi's prebuild, esbuild's binary (tsx), rolldown's and lightningcss's bindings (vite,
// vitest). npm installed only the host's; each build goes beside the host's, where the package's
// own loader looks for it, so the host keeps working and the emulated node finds its own.
// A package with Linux builds but none for ARCH gets its WebAssembly build instead when it has
// one (rolldown on ia32 and riscv64: @rolldown/binding-wasm32-wasi, which its loader falls back
// to), installed with its own dependencies nested inside it. On a 32-bit ARCH that build's
// initial shared memory is cut to 256 MiB: V8 there cannot allocate the 1 GiB it asks for.
//
//   node native-deps.mjs NODE_MODULES ARCH CACHE_DIR
//
// Run by the host node (scripts/cross/run.sh). Tarballs come from the npm registry through
// `npm pack` (which checks their integrity) and are kept in CACHE_DIR. Prints one line per build
// it unpacked; nothing when all are in place.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [nodeModules, arch, cache] = process.argv.slice(2);
if (!nodeModules || !arch || !cache) throw new Error('usage: native-deps.mjs NODE_MODULES ARCH CACHE_DIR');

// How packages name their Linux glibc builds: koffi-linux-arm, @esbuild/linux-arm64,
// @rolldown/binding-linux-arm64-gnu, lightningcss-linux-arm-gnueabihf.
const build = new RegExp(`linux-${arch}(-gnu|-gnueabihf)?$`);
const linuxBuild = /linux-[a-z0-9]+(-gnu|-gnueabihf)?$/;
const wasmBuild = /wasm32-wasi$/;
const bits32 = arch === 'ia32' || arch === 'arm';

function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Package directories directly inside one node_modules directory. */
function packageDirs(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => !name.startsWith('.'))
    .flatMap((name) => (name.startsWith('@') ? readdirSync(join(dir, name)).map((sub) => join(dir, name, sub)) : [join(dir, name)]));
}

/** The WebAssembly builds wanted (missing or not), for fitMemory. */
const wasmTargets = [];

/** [target dir, name, version, wasm] of every build that is missing or at another version. */
function missing(dir, found = []) {
  for (const pkgDir of packageDirs(dir)) {
    const pkg = readJson(join(pkgDir, 'package.json'));
    if (!pkg) continue;
    const builds = Object.entries(pkg.optionalDependencies ?? {});
    let wanted = builds.filter(([name]) => build.test(name));
    const wasm = wanted.length === 0 && builds.some(([name]) => linuxBuild.test(name));
    if (wasm) wanted = builds.filter(([name]) => wasmBuild.test(name));
    for (const [name, version] of wanted) {
      const target = join(dir, name);
      if (wasm) wasmTargets.push(target);
      if (readJson(join(target, 'package.json'))?.version !== version) found.push([target, name, version, wasm]);
    }
    missing(join(pkgDir, 'node_modules'), found);
  }
  return found;
}

/** A WebAssembly build and its dependencies (npm install into the cache), copied to `target`. */
function installWasm(target, name, version) {
  const prefix = join(cache, `wasm-${name.replace(/^@/, '').replace('/', '-')}-${version}`);
  if (!existsSync(join(prefix, '.complete'))) {
    rmSync(prefix, { recursive: true, force: true });
    mkdirSync(prefix, { recursive: true });
    // --force: the package declares cpu "wasm32", which is no host's.
    execFileSync('npm', ['install', '--silent', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--force', '--prefix', prefix, `${name}@${version}`], { stdio: ['ignore', 'ignore', 'inherit'] });
    writeFileSync(join(prefix, '.complete'), '');
  }
  const installed = join(prefix, 'node_modules');
  cpSync(join(installed, name), target, { recursive: true });
  for (const dep of packageDirs(installed)) {
    const depName = dep.slice(installed.length + 1);
    if (depName !== name) cpSync(dep, join(target, 'node_modules', depName), { recursive: true });
  }
}

/**
 * On a 32-bit ARCH, a WebAssembly build's initial shared memory cut to 4096 pages of 64 KiB
 * (256 MiB; it still grows on demand up to its maximum). Every run, whichever ARCH installed it:
 * the cut build works on 64-bit ARCHes too.
 */
function fitMemory(target) {
  for (const file of readdirSync(target).filter((f) => f.endsWith('.wasi.cjs'))) {
    const path = join(target, file);
    const text = readFileSync(path, 'utf8');
    const cut = text.replace(/(new WebAssembly\.Memory\(\{\s*initial:\s*)(\d+)/, (_, head, pages) => head + Math.min(Number(pages), 4096));
    if (cut !== text) writeFileSync(path, cut);
  }
}

mkdirSync(cache, { recursive: true });
for (const [target, name, version, wasm] of missing(nodeModules)) {
  if (wasm) {
    rmSync(target, { recursive: true, force: true });
    installWasm(target, name, version);
    console.log(`${name}@${version} (WebAssembly) -> ${target}`);
    continue;
  }
  // npm pack's file name: @scope/name@1.2.3 -> scope-name-1.2.3.tgz
  let tarball = join(cache, `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`);
  if (!existsSync(tarball)) {
    const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', cache, `${name}@${version}`], { encoding: 'utf8' });
    tarball = join(cache, out.trim().split('\n').pop());
  }
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', target, '--strip-components=1']);
  console.log(`${name}@${version} -> ${target}`);
}
if (bits32) for (const target of wasmTargets) if (existsSync(target)) fitMemory(target);
