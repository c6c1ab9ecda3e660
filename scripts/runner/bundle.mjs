// A TypeScript entry and everything it imports from this checkout as one ES module, for a process
// that starts without tsx (its start-up costs 1-3.5 s here, 8-25 s of CPU under qemu): esbuild,
// what tsx compiles with. Packages stay imports (the bundle must sit under the checkout, so that
// they resolve from its node_modules). `import.meta.url` in each module is that module's source
// URL, as under tsx. Used by run.mjs (the test files) and test/run-ts.ts (the fixtures).
//
//   node scripts/runner/bundle.mjs ENTRY OUTFILE
import { readFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

// Each module declares its own URL (on its first line, after a shebang: the line numbers stay),
// and `import.meta.url` is defined as that name, which binds to the module's own declaration.
const sourceUrls = {
  name: 'source import.meta.url',
  setup(build) {
    build.onLoad({ filter: /\.[cm]?[jt]s$/ }, async ({ path }) => {
      const source = await readFile(path, 'utf8');
      const at = source.startsWith('#!') ? source.indexOf('\n') + 1 : 0;
      const declaration = `const __sourceUrl = ${JSON.stringify(pathToFileURL(path).href)}; `;
      return { contents: source.slice(0, at) + declaration + source.slice(at), loader: /\.[cm]?ts$/.test(path) ? 'ts' : 'js' };
    });
  },
};

/** Bundle `entry` into `outfile`; `alias` maps specifiers to files (run.mjs: 'vitest' to its stand-in). Rejects with esbuild's errors. */
export async function bundle(entry, outfile, alias = {}) {
  const esbuild = await import('esbuild');
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    alias,
    define: { 'import.meta.url': '__sourceUrl' },
    plugins: [sourceUrls],
    // An ES module has no `require` for what esbuild turns into require() calls.
    banner: { js: "import { createRequire as __bundleCreateRequire } from 'node:module'; const require = __bundleCreateRequire(import.meta.url);" },
    logLevel: 'silent',
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    await bundle(process.argv[2], process.argv[3]);
  } catch (err) {
    console.error(err.message);
    process.exitCode = 1;
  }
  (await import('esbuild')).stop?.();
}
