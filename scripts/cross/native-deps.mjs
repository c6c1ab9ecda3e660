// Unpack the linux-ARCH (glibc) builds of the native npm packages a project installed for its
// host: koffi's prebuild, esbuild's binary (tsx), rolldown's and lightningcss's bindings (vite,
// vitest). npm installed only the host's; each build goes beside the host's, where the package's
// own loader looks for it, so the host keeps working and the emulated node finds its own.
//
//   node native-deps.mjs NODE_MODULES ARCH CACHE_DIR
//
// Run by the host node (scripts/cross/run.sh). Tarballs come from the npm registry through
// `npm pack` (which checks their integrity) and are kept in CACHE_DIR. Prints one line per build
// it unpacked; nothing when all are in place.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const [nodeModules, arch, cache] = process.argv.slice(2);
if (!nodeModules || !arch || !cache) throw new Error('usage: native-deps.mjs NODE_MODULES ARCH CACHE_DIR');

// How packages name their Linux glibc builds: koffi-linux-arm, @esbuild/linux-arm64,
// @rolldown/binding-linux-arm64-gnu, lightningcss-linux-arm-gnueabihf.
const build = new RegExp(`linux-${arch}(-gnu|-gnueabihf)?$`);

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

/** [target dir, name, version] of every build that is missing or at another version. */
function missing(dir, found = []) {
  for (const pkgDir of packageDirs(dir)) {
    const pkg = readJson(join(pkgDir, 'package.json'));
    if (!pkg) continue;
    for (const [name, version] of Object.entries(pkg.optionalDependencies ?? {})) {
      if (!build.test(name)) continue;
      const target = join(dir, name);
      if (readJson(join(target, 'package.json'))?.version !== version) found.push([target, name, version]);
    }
    missing(join(pkgDir, 'node_modules'), found);
  }
  return found;
}

mkdirSync(cache, { recursive: true });
for (const [target, name, version] of missing(nodeModules)) {
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
