// module.register hooks for scripts/runner/run.mjs: the specifier 'vitest' resolves to vitest.mjs.
const stand_in = new URL('./vitest.mjs', import.meta.url).href;

export async function resolve(specifier, context, next) {
  if (specifier === 'vitest') return { url: stand_in, shortCircuit: true };
  return next(specifier, context);
}
