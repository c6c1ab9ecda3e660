/**
 * Launchers that do not pass extra descriptors on. The tsx CLI starts node again with only
 * stdin, stdout, stderr and an IPC pipe; npx, npm exec and npm run pass only stdin, stdout and
 * stderr (pnpm, yarn and bunx likewise). A socket put at fd 3 of such a launcher never reaches
 * the program it runs, and fd 3 there is something else (often libuv's epoll instance).
 *
 * - `planLaunch`: what spawnWithSocket runs instead. `tsx file.ts …` (also `npx tsx`,
 *   `node_modules/.bin/tsx`, `node …/tsx/dist/cli.mjs`) becomes `node --import <tsx's loader>
 *   file.ts …`, which keeps them; any other package runner is refused with the explanation.
 * - `launcherHint`: in a child that found no socket, names the launcher that started it.
 */
import { accessSync, constants as fsConstants, existsSync, readFileSync, realpathSync } from 'node:fs';
import { basename, delimiter, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const TSX_CLI = /[\\/]tsx[\\/]dist[\\/]cli\.m?js$/;
const TSX_PREFLIGHT = /[\\/]tsx[\\/]dist[\\/]preflight\.cjs$/;
const NPM_CLI = /[\\/]np[mx]-cli\.js$|(?:^|[\\/])np[mx]$/;

/** Package runners, and the subcommands after which the program to run is named. */
const RUNNERS: Record<string, string[] | null> = {
  npx: null, pnpx: null, bunx: null, // the program comes first
  npm: ['exec', 'x'], pnpm: ['exec', 'dlx'], yarn: ['exec', 'dlx'],
};

/** Node options that take a separate value (`-r file`), so the value is not the script. */
const NODE_OPTIONS_WITH_VALUE = new Set([
  '-r', '--require', '--import', '--loader', '--experimental-loader', '-C', '--conditions', '--title',
  '--inspect-port', '--env-file', '--input-type', '--stack-size',
]);

const FIX = "run node with tsx's loader instead (`node --import tsx file.ts`): forkWithSocket('file.ts'), or spawnWithSocket(process.execPath, ['--import', 'tsx', 'file.ts'])";

export type LaunchPlan = { command: string; args: string[] } | { refuse: string } | null;

function commandName(command: string): string {
  return basename(command).replace(/\.(?:cmd|exe|ps1)$/i, '');
}

/** The file `command` runs: a path as given, or the first match on PATH. */
function locate(command: string, cwd: string, env: NodeJS.ProcessEnv): string | undefined {
  const candidates = command.includes('/') ? [resolve(cwd, command)] : (env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(resolve(cwd, dir), command));
  for (const file of candidates) {
    try {
      accessSync(file, fsConstants.X_OK);
      return realpathSync(file);
    } catch {
      // not here
    }
  }
  return undefined;
}

function isTsxCli(file: string, cwd: string): string | undefined {
  try {
    const real = realpathSync(resolve(cwd, file));
    return TSX_CLI.test(real) ? real : undefined;
  } catch {
    return undefined;
  }
}

/** tsx's ESM loader next to its CLI, as a file URL (independent of the child's cwd). */
function loaderOf(cli: string): string | undefined {
  const loader = join(dirname(cli), 'loader.mjs');
  return existsSync(loader) ? pathToFileURL(loader).href : undefined;
}

/** `tsx <script> args…` as `node [nodeOptions] --import <loader> <script> args…`, when it is that simple. */
function rewriteTsx(cli: string, tsxArgs: readonly string[], nodeOptions: readonly string[], how: string): LaunchPlan {
  const loader = loaderOf(cli);
  const script = tsxArgs[0];
  if (loader === undefined || script === undefined || script.startsWith('-') || script === 'watch') {
    return { refuse: `is ${how}: the tsx CLI starts node again with only stdin, stdout and stderr, so the socket would not reach the program; ${FIX}` };
  }
  return { command: process.execPath, args: [...nodeOptions, '--import', loader, ...tsxArgs] };
}

/** A local tsx (node_modules/tsx in `cwd` or above): what npx tsx would run first. */
function localTsx(cwd: string): string | undefined {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const cli = join(dir, 'node_modules', 'tsx', 'dist', 'cli.mjs');
    if (existsSync(cli)) return realpathSync(cli);
    if (dirname(dir) === dir) return undefined;
  }
}

function isNode(command: string, cwd: string, env: NodeJS.ProcessEnv): boolean {
  if (commandName(command) === 'node' || command === process.execPath) return true;
  const file = locate(command, cwd, env);
  try {
    return file !== undefined && file === realpathSync(process.execPath);
  } catch {
    return false;
  }
}

/**
 * What spawnWithSocket must run instead of `command args` so that the child receives the socket:
 * a rewritten command, a refusal (the explanation), or null (run it as given).
 */
export function planLaunch(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): LaunchPlan {
  const name = commandName(command);
  if (name === 'tsx') {
    const cli = locate(command, cwd, env);
    if (cli === undefined || !TSX_CLI.test(cli)) return { refuse: `is the tsx CLI (${command}), which starts node again with only stdin, stdout and stderr, so the socket would not reach the program; ${FIX}` };
    return rewriteTsx(cli, args, [], `the tsx CLI (${command})`);
  }
  if (name in RUNNERS) {
    // `npm exec tsx`, `yarn dlx tsx`; otherwise the first word is the program (`yarn tsx`) or a
    // subcommand such as `run`, which passes fds on no better.
    let i = RUNNERS[name]?.includes(args[0] ?? '') ? 1 : 0;
    while (i < args.length && args[i].startsWith('-')) i++; // runner flags (-y, --yes, --)
    const program = args[i];
    const how = `${name} ${args.slice(0, i + 1).join(' ')}`;
    if (program === 'tsx') {
      const cli = localTsx(cwd);
      if (cli !== undefined) return rewriteTsx(cli, args.slice(i + 1), [], how);
      return { refuse: `is ${how}, and tsx is not installed in ${cwd} or above: ${name} would fetch it, and both ${name} and the tsx CLI pass only stdin, stdout and stderr on; install tsx and ${FIX}` };
    }
    return { refuse: `is ${how}: ${name} passes only stdin, stdout and stderr to the program it runs, so the socket would not arrive; spawn the program itself${program?.startsWith('tsx@') ? ` (${FIX})` : ''}` };
  }
  if (isNode(command, cwd, env)) {
    let i = 0;
    while (i < args.length && args[i].startsWith('-')) i += NODE_OPTIONS_WITH_VALUE.has(args[i]) ? 2 : 1;
    const cli = i < args.length ? isTsxCli(args[i], cwd) : undefined;
    if (cli !== undefined) return rewriteTsx(cli, args.slice(i + 1), args.slice(0, i), `node running the tsx CLI (${args[i]})`);
  }
  return null;
}

/** Which launcher started this process (read from the parent's command line), if one we know. */
function launcherOfThisProcess(): string | undefined {
  try {
    const cmdline = readFileSync(`/proc/${process.ppid}/cmdline`, 'utf8').split('\0');
    if (cmdline.some((arg) => TSX_CLI.test(arg))) return 'the tsx CLI';
    if (cmdline.some((arg) => NPM_CLI.test(arg))) return 'npm (npx, npm exec or npm run)';
  } catch {
    // the parent has gone, or /proc is not there
  }
  return process.execArgv.some((arg) => TSX_PREFLIGHT.test(arg)) ? 'the tsx CLI' : undefined;
}

/** For errors about an inherited fd that is not the socket: names the launcher that lost it, if any. */
export function launcherHint(fd: number): string {
  const launcher = launcherOfThisProcess();
  if (launcher === undefined) return '';
  return `. This process was started by ${launcher}, which passes only stdin, stdout and stderr to the program it starts, so fd ${fd} is not what the parent passed: start it with node itself (\`node --import tsx file.ts\`), e.g. forkWithSocket('file.ts') in the parent`;
}
