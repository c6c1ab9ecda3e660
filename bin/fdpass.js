#!/usr/bin/env node
// The `fdpass` command. Runs the compiled CLI in ../dist, which the published package ships
// (`npm pack` builds it through `prepack`). In a checkout, run `npm run build` first, or
// `npx tsx src/cli.ts …` instead.
let cli;
try {
  cli = await import('../dist/cli.js');
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('dist')) throw err;
  process.stderr.write('fdpass: dist/cli.js is missing: run `npm run build` first (or use `npx tsx src/cli.ts`)\n');
  process.exit(1);
}
process.exitCode = await cli.main(process.argv.slice(2));
