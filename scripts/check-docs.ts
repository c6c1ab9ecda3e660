/**
 * Checks README.md and docs/*.md (CI runs it: `npm run check:docs`):
 *
 * - Every ```ts / ```typescript / ```js code block type-checks against the package (strict). A
 *   block is a complete module unless the line before it is `<!-- fragment -->` or
 *   `<!-- fragment: declarations -->`: a fragment gets every export of fdpass and the usual
 *   Node modules imported, plus the declarations given (e.g. `declare const sock: UnixSocket;`).
 * - Links: README.md is also the npm page, where relative links do not work: it links into the
 *   repository with absolute URLs (REPO_URL/blob/main/…), and those must name files that exist.
 *   Relative links in docs/ must resolve; #anchors must name a heading of their file.
 * - docs/README.md links every other docs/*.md.
 * - The errors table in docs/api.md lists every ERR_FDPASS_… code the source throws, and no other.
 * - README.md: at most 250 lines, and it says `npm install fdpass`, `npm run demo`, `npm test`.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const repo = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { repository: { url: string } };
/** https://github.com/fdpass/fdpass, from package.json. */
const REPO_URL = pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
const BLOB = new RegExp(`^${REPO_URL.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/(?:blob|tree)/main/([^#?]*)(?:#(.*))?$`);
const README_MAX_LINES = 250;

let failures = 0;
function fail(message: string): void {
  failures++;
  console.log(`FAIL ${message}`);
}

const markdownFiles = ['README.md', ...readdirSync(join(repo, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const text = new Map(markdownFiles.map((f) => [f, readFileSync(join(repo, f), 'utf8')]));

// ---------------------------------------------------------------------------------------------
// Headings and links

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to '-', repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const m = !fenced && /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = m[1].replace(/<[^>]+>/g, '').toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** [text](target) links outside code, with their line numbers. */
function linksOf(markdown: string): { target: string; line: number }[] {
  const out: { target: string; line: number }[] = [];
  let fenced = false;
  markdown.split('\n').forEach((line, i) => {
    if (/^\s*```/.test(line)) fenced = !fenced;
    if (fenced) return;
    const plain = line.replace(/`[^`]*`/g, '');
    for (const m of plain.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) out.push({ target: m[1], line: i + 1 });
    for (const m of plain.matchAll(/<a\s[^>]*href="([^"]+)"/g)) out.push({ target: m[1], line: i + 1 });
  });
  return out;
}

function checkTarget(from: string, line: number, path: string, anchor: string | undefined): void {
  const file = resolve(repo, path);
  if (!file.startsWith(repo) || !existsSync(file)) return fail(`${from}:${line}: links to ${path}, which does not exist`);
  if (anchor === undefined || anchor === '') return;
  if (statSync(file).isDirectory() || !file.endsWith('.md')) return fail(`${from}:${line}: #${anchor} in ${path}, which is not a Markdown file`);
  const rel = relative(repo, file);
  const anchors = anchorsOf(text.get(rel) ?? readFileSync(file, 'utf8'));
  if (!anchors.has(decodeURIComponent(anchor))) fail(`${from}:${line}: ${path} has no heading for #${anchor}`);
}

let linkCount = 0;
for (const [file, markdown] of text) {
  for (const { target, line } of linksOf(markdown)) {
    linkCount++;
    const [path, anchor] = target.split('#', 2) as [string, string | undefined];
    const blob = BLOB.exec(target);
    if (blob) checkTarget(file, line, blob[1] === '' ? '.' : blob[1], blob[2]);
    else if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // another site: not checked offline
    else if (file === 'README.md' && path !== '') fail(`README.md:${line}: relative link ${target} does not work on the npm page; use ${REPO_URL}/blob/main/${path}`);
    else checkTarget(file, line, path === '' ? file : join(dirname(file), path), anchor);
  }
}

// docs/README.md is the index of docs/.
const index = text.get('docs/README.md');
if (index === undefined) fail('docs/README.md (the index of docs/) is missing');
else {
  const linked = new Set(linksOf(index).map(({ target }) => join('docs', target.split('#')[0])));
  for (const f of markdownFiles) if (f.startsWith('docs/') && f !== 'docs/README.md' && !linked.has(f)) fail(`docs/README.md does not list ${f}`);
}

// ---------------------------------------------------------------------------------------------
// README.md for users

const readme = text.get('README.md')!;
const readmeLines = readme.replace(/\n$/, '').split('\n').length;
if (readmeLines > README_MAX_LINES) fail(`README.md has ${readmeLines} lines (at most ${README_MAX_LINES})`);
for (const needed of ['npm install fdpass', 'npm run demo', 'npm test']) if (!readme.includes(needed)) fail(`README.md does not mention \`${needed}\``);

// ---------------------------------------------------------------------------------------------
// The errors table

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}
const thrown = new Set(sourceFiles(join(repo, 'src')).flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/'(ERR_FDPASS_[A-Z_]+)'/g)].map((m) => m[1])));
const api = text.get('docs/api.md') ?? '';
const errorsSection = api.split(/^(?=## )/m).find((section) => section.startsWith('## Errors\n')) ?? '';
const listed = new Set([...errorsSection.matchAll(/^\| `(ERR_FDPASS_[A-Z_]+)`/gm)].map((m) => m[1]));
if (errorsSection === '') fail('docs/api.md has no "## Errors" section');
for (const code of thrown) if (!listed.has(code)) fail(`docs/api.md, Errors: ${code} is thrown by src/ but not listed`);
for (const code of listed) if (!thrown.has(code)) fail(`docs/api.md, Errors: ${code} is listed but src/ never throws it`);

// ---------------------------------------------------------------------------------------------
// Code blocks

/** What a fragment may use without importing it: [module, names] (a name 'default:x' or '*:x' imports that way). */
const FRAGMENT_IMPORTS: [string, string[]][] = [
  ['fdpass', ['*:fdpass', ...Object.keys(await import('../src/index.js'))]],
  ['fdpass', ['type:AddressOptions', 'type:Authorize', 'type:ChildWithSocket', 'type:ConnectOptions', 'type:Credentials', 'type:FdDescription', 'type:FdKind',
    'type:FdLike', 'type:ListenOptions', 'type:Message', 'type:PeerInfo', 'type:ProcessExit', 'type:RecvOptions', 'type:RecvSyncOptions', 'type:SendOptions',
    'type:SendSyncOptions', 'type:SocketType']],
  ['node:child_process', ['spawn', 'fork', 'type:ChildProcess']],
  ['node:fs', ['*:fs', 'openSync', 'closeSync', 'readFileSync', 'writeFileSync', 'writeSync', 'readSync']],
  ['node:http', ['*:http']],
  ['node:net', ['*:net']],
  ['node:dgram', ['*:dgram']],
  ['node:events', ['once']],
  ['node:path', ['join']],
];

/** The names a block imports itself (so the fragment prelude leaves them out). */
function importedNames(code: string): Set<string> {
  const names = new Set<string>();
  for (const m of code.matchAll(/^import\s+(?:type\s+)?([\s\S]*?)\s+from\s+['"][^'"]+['"]/gm)) {
    const clause = m[1];
    for (const n of clause.matchAll(/\*\s+as\s+(\w+)/g)) names.add(n[1]);
    const braces = /\{([\s\S]*)\}/.exec(clause);
    if (braces) for (const part of braces[1].split(',')) {
      const local = part.trim().replace(/^type\s+/, '').split(/\s+as\s+/).pop()?.trim();
      if (local) names.add(local);
    }
    const def = /^(\w+)/.exec(clause.trim());
    if (def && def[1] !== 'type') names.add(def[1]);
  }
  return names;
}

function fragmentPrelude(code: string): string[] {
  const taken = importedNames(code);
  const lines: string[] = [];
  for (const [module, names] of FRAGMENT_IMPORTS) {
    const named: string[] = [];
    for (const name of names) {
      const [kind, local] = name.includes(':') ? name.split(':') : ['', name];
      if (taken.has(local)) continue;
      if (kind === '*') lines.push(`import * as ${local} from '${module}';`);
      else if (kind === 'default') lines.push(`import ${local} from '${module}';`);
      else named.push(kind === 'type' ? `type ${local}` : local);
    }
    if (named.length > 0) lines.push(`import { ${named.join(', ')} } from '${module}';`);
  }
  return lines;
}

interface Block {
  file: string;
  /** Line of the block's first code line in the Markdown file. */
  line: number;
  lang: string;
  code: string;
  declarations: string | undefined;
}

const blocks: Block[] = [];
for (const [file, markdown] of text) {
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w+)\s*$/.exec(lines[i]);
    if (!open) {
      if (/^```\s*$/.test(lines[i])) fail(`${file}:${i + 1}: a code block without a language (use text, sh, ts, …)`);
      continue;
    }
    const end = lines.findIndex((l, j) => j > i && /^```\s*$/.test(l));
    if (end < 0) {
      fail(`${file}:${i + 1}: unclosed code block`);
      break;
    }
    const lang = open[1];
    if (['ts', 'typescript', 'js', 'javascript'].includes(lang)) {
      let k = i - 1;
      while (k >= 0 && lines[k].trim() === '') k--;
      const marker = k >= 0 ? /^<!--\s*fragment(?::\s*([\s\S]*?))?\s*-->$/.exec(lines[k].trim()) : null;
      blocks.push({ file, line: i + 2, lang, code: lines.slice(i + 1, end).join('\n'), declarations: marker ? marker[1] ?? '' : undefined });
    }
    i = end;
  }
}

const work = join(repo, 'node_modules/.cache/fdpass-doc-check');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
writeFileSync(join(work, 'package.json'), JSON.stringify({ type: 'module' }));
const sources = new Map<string, { block: Block; offset: number }>();
for (const block of blocks) {
  const js = block.lang === 'js' || block.lang === 'javascript';
  const name = join(work, `${block.file.replace(/[/.]/g, '_')}_${block.line}.${js ? 'mjs' : 'mts'}`);
  const head = block.declarations === undefined ? [] : [...fragmentPrelude(block.code), block.declarations];
  // `export {}` makes every block a module, so top-level await is allowed as in a .ts file run by tsx.
  writeFileSync(name, [...head, block.code, 'export {};', ''].join('\n'));
  sources.set(name, { block, offset: head.length });
}
const program = ts.createProgram([...sources.keys()], {
  target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
  lib: ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts'], strict: true, noEmit: true, skipLibCheck: true, types: ['node'],
  allowJs: true, checkJs: true, allowImportingTsExtensions: true, esModuleInterop: true,
  paths: { fdpass: [join(repo, 'src/index.ts')] },
  // Fragments import everything; only what a block itself leaves unused is its own business.
  noUnusedLocals: false,
});
for (const d of ts.getPreEmitDiagnostics(program)) {
  const where = d.file && sources.get(d.file.fileName);
  const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
  if (!where || d.start === undefined) {
    fail(`code blocks: ${message}`);
    continue;
  }
  const { line } = d.file!.getLineAndCharacterOfPosition(d.start);
  const inBlock = line - where.offset;
  fail(`${where.block.file}:${where.block.line + inBlock}: ${inBlock < 0 ? `in the fragment's declarations: ` : ''}${message}`);
}
rmSync(work, { recursive: true, force: true });

console.log(`docs: ${markdownFiles.length} files, ${blocks.length} code blocks type-checked (${blocks.filter((b) => b.declarations !== undefined).length} fragments), ${linkCount} links, ${listed.size} error codes, README ${readmeLines} lines`);
console.log(failures === 0 ? 'docs: all checks passed' : `docs: ${failures} problem(s)`);
process.exitCode = failures === 0 ? 0 : 1;
