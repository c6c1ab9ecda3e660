// --import for the test files' processes: 'vitest' resolves to the stand-in (hooks.mjs).
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
