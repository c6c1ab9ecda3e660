/**
 * What a consumer gets from `npm install fdpass`: packs this checkout (`npm pack`, which builds
 * dist/ through `prepack`), installs the tarball into a scratch project and checks that
 *
 * - the install prints nothing from fdpass (no lifecycle script of ours runs in a consumer);
 * - the published .d.ts type-check, strictly and with skipLibCheck off, for a TypeScript consumer
 *   with "module": "commonjs" (with and without esModuleInterop), node16, nodenext and bundler;
 * - every export, namespace member and public member of an exported class or interface has a
 *   doc comment in those .d.ts (what an editor shows on hover);
 * - plain node imports the installed package and passes a descriptor with it.
 *
 * Run: npx tsx scripts/check-package.ts   (exit status 0 when every check passed)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const repo = fileURLToPath(new URL('..', import.meta.url));
const tsc = join(repo, 'node_modules/typescript/bin/tsc');
const work = mkdtempSync(join(tmpdir(), 'fdpass-package-'));
let failures = 0;

function check(label: string, ok: boolean, detail = ''): void {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${label}${ok || detail === '' ? '' : `\n${detail.trimEnd().replace(/^/gm, '     ')}`}`);
  if (!ok) failures++;
}

function run(command: string, args: string[], cwd: string): { status: number | null; output: string } {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/** A consumer file that touches every part of the public types (classes, namespaces, option bags). */
const CONSUMER = `
import { socketPair, listen, connect, adopt, describeFd, Fd, FdPassError, PidFd, pipe, platform, systemd, multiprocessing, oci,
  toNetSocket, spawnWithSocket, inheritedSocket, type Message, type RecvOptions, type ListenOptions, type FdLike } from 'fdpass';

export async function use(): Promise<void> {
  const [a, b] = socketPair();
  const options: RecvOptions = { maxBytes: 16, maxFds: 1, signal: AbortSignal.timeout(1000) };
  const sent: number = await a.send('hello', [1 satisfies FdLike]);
  const msg: Message | null = await b.recv(options);
  if (msg !== null) for (const f of msg.fds) f.close();
  const server = listen({ path: '/tmp/x.sock', mode: 0o600 } satisfies ListenOptions);
  const conn = await connect('/tmp/x.sock');
  const kind: string = describeFd(conn.fd).kind;
  const [r, w] = pipe();
  const owned: Fd = r;
  const fds: systemd.ListenFd[] = systemd.listenFds();
  await multiprocessing.sendHandle(a, w);
  const pty: Promise<oci.ReceivedConsole> = oci.receiveConsole(server);
  void [sent, kind, owned, fds, pty, platform.name, PidFd, adopt, toNetSocket, spawnWithSocket, inheritedSocket];
  const err: unknown = undefined;
  if (err instanceof FdPassError) console.log(err.code, err.errno, err.syscall);
}
`;

/** Exported names (and public members of exported classes and interfaces) without a doc comment. */
function undocumentedNames(index: string): string[] {
  const program = ts.createProgram([index], {
    module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022,
    types: ['node'], typeRoots: [join(repo, 'node_modules/@types')],
  });
  const checker = program.getTypeChecker();
  const ours = (decl: ts.Declaration | undefined): boolean => !!decl && decl.getSourceFile().fileName.includes('/node_modules/fdpass/dist/');
  const documented = (symbol: ts.Symbol): boolean => ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim() !== '';
  const missing: string[] = [];
  const visit = (name: string, symbol: ts.Symbol): void => {
    const sym = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    if (sym.flags & ts.SymbolFlags.ValueModule && !(sym.flags & ts.SymbolFlags.Class)) {
      for (const member of checker.getExportsOfModule(sym)) visit(`${name}.${member.getName()}`, member);
      return;
    }
    if (!documented(symbol) && !documented(sym)) missing.push(name);
    if (!(sym.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Interface))) return;
    for (const member of checker.getDeclaredTypeOfSymbol(sym).getProperties()) {
      const decl = member.valueDeclaration ?? member.declarations?.[0];
      if (!ours(decl) || ts.getCombinedModifierFlags(decl!) & ts.ModifierFlags.Private || member.getName().startsWith('#')) continue;
      if (!documented(member)) missing.push(`${name}#${member.getName()}`);
    }
  };
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(index)!)!;
  for (const symbol of checker.getExportsOfModule(moduleSymbol)) visit(symbol.getName(), symbol);
  return missing;
}

interface Consumer {
  name: string;
  packageType: 'module' | 'commonjs';
  compilerOptions: Record<string, unknown>;
}

const consumers: Consumer[] = [
  { name: 'commonjs', packageType: 'commonjs', compilerOptions: { module: 'commonjs', esModuleInterop: false } },
  { name: 'commonjs + esModuleInterop', packageType: 'commonjs', compilerOptions: { module: 'commonjs', esModuleInterop: true } },
  { name: 'node16', packageType: 'module', compilerOptions: { module: 'node16', moduleResolution: 'node16' } },
  { name: 'nodenext', packageType: 'module', compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext' } },
  { name: 'bundler', packageType: 'module', compilerOptions: { module: 'esnext', moduleResolution: 'bundler' } },
];

try {
  // 1. Pack: prepack builds dist/.
  const pack = run('npm', ['pack', '--pack-destination', work], repo);
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
  check('npm pack builds and packs the package', pack.status === 0 && tarball !== undefined, pack.output);
  if (tarball === undefined) throw new Error('no tarball');
  const listing = execFileSync('tar', ['tzf', join(work, tarball)], { encoding: 'utf8' }).split('\n');
  const missing = ['package/dist/index.js', 'package/dist/index.d.ts', 'package/dist/cli.js', 'package/bin/fdpass.js', 'package/README.md'].filter((f) => !listing.includes(f));
  check('the tarball holds dist/ (JavaScript and .d.ts), the CLI and the README', missing.length === 0, `missing: ${missing.join(', ')}`);

  // 2. Install it as a consumer would.
  const app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  const install = run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(work, tarball)], app);
  check('npm install of the tarball succeeds', install.status === 0, install.output);
  const ours = install.output.split('\n').filter((line) => /fdpass/i.test(line));
  check('the install prints nothing from fdpass (no prepare/install script of ours runs)', ours.length === 0, ours.join('\n'));

  // 3. Type-check a consumer under each module setting, with our .d.ts checked too (skipLibCheck off).
  for (const c of consumers) {
    const dir = join(app, c.name.replace(/\W+/g, '-'));
    mkdirSync(dir);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: c.packageType }));
    writeFileSync(join(dir, 'index.ts'), CONSUMER);
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'es2022', lib: ['es2022', 'esnext.disposable'], strict: true, noEmit: true, skipLibCheck: false,
        types: ['node'], typeRoots: [join(repo, 'node_modules/@types')], ...c.compilerOptions,
      },
      files: ['index.ts'],
    }));
    const r = run(process.execPath, [tsc, '-p', dir], dir);
    check(`the published types check under "module": ${c.name}`, r.status === 0, r.output);
  }

  // 4. Hover docs: what an editor shows for each name a consumer can reach.
  const undocumented = undocumentedNames(join(app, 'node_modules/fdpass/dist/index.d.ts'));
  check('every export and public member has a doc comment in the published .d.ts', undocumented.length === 0, `no doc comment: ${undocumented.join(', ')}`);

  // 5. Plain node runs it.
  const smoke = run(process.execPath, ['--input-type=module', '-e', `
    import { socketPair } from 'fdpass';
    const [a, b] = socketPair();
    a.sendSync('hello', [1]);
    const msg = b.recvSync();
    if (msg?.data.toString() !== 'hello' || msg.fds.length !== 1) throw new Error('wrong message');
    for (const f of msg.fds) f.close();
    a.close(); b.close();
  `], app);
  check('node imports the installed package and passes an fd with it', smoke.status === 0, smoke.output);

  // 6. What the README says about install flags: koffi's binary comes from an optional dependency
  // (@koromix/koffi-<platform>); its install script only builds from source when that is absent.
  const flagged = (name: string, flags: string[]): { status: number | null; output: string } => {
    const dir = join(work, name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }));
    const r = run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...flags, join(work, tarball)], dir);
    if (r.status !== 0) return r;
    return run(process.execPath, ['--input-type=module', '-e', "const m = await import('fdpass'); m.socketPair().forEach((s) => s.close());"], dir);
  };
  const ignoreScripts = flagged('ignore-scripts', ['--ignore-scripts']);
  check('--ignore-scripts: works (the prebuilt koffi binary comes from an optional dependency)', ignoreScripts.status === 0, ignoreScripts.output);
  const neither = flagged('omit-optional-ignore-scripts', ['--omit=optional', '--ignore-scripts']);
  check('--omit=optional --ignore-scripts: import fails with koffi\'s "Cannot find the native Koffi module"', neither.status !== 0 && neither.output.includes('Cannot find the native Koffi module'), neither.output);
} catch (err) {
  check('the package check ran to the end', false, String((err as Error).stack ?? err));
} finally {
  rmSync(work, { recursive: true, force: true });
}
console.log(failures === 0 ? 'package: all checks passed' : `package: ${failures} check(s) failed`);
process.exitCode = failures === 0 ? 0 : 1;
