/**
 * Bad arguments, at every public entry: every function, constructor and method exported from
 * src/index.ts that takes a number-like argument (an fd, an fds array, a size, a count, a mode,
 * a timeout, a pid) refuses NaN, -1, 1.5, 2^31, 2^32, 2^40, '3', 3n, null and {} with Node's
 * ERR_OUT_OF_RANGE / ERR_INVALID_ARG_TYPE before any syscall: nothing is sent, created, spawned
 * or leaked. The list of such arguments is read from the package's types, so a new export that
 * takes one fails this test until it is covered here.
 */
import { existsSync, mkdtempSync, rmSync } from './fdfs.js';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fdpass from '../src/index.js';
import { catchError, denoLimit, type DenoLimit, expectNoFdLeak, repoRoot, scaled } from './helpers.js';
import { MESSAGE_TYPE, notifyReceiver } from './mode.js';

const {
  Fd, FdPassError, PidFd, UnixServer, UnixSocket, adopt, adoptServer, describeFd, fdOf, forkWithSocket, listProcessFds, listen,
  multiprocessing, peerPidFdOf, pipe, reopenFromProc, socketPair, spawnWithSocket, systemd, toDgramSocket, toNetServer,
  toNetSocket, toReadStream, toWriteStream,
} = fdpass;

const BAD: [label: string, value: unknown][] = [
  ['NaN', NaN], ['-1', -1], ['1.5', 1.5], ['2^31', 2 ** 31], ['2^32', 2 ** 32], ['2^40', 2 ** 40],
  ["'3'", '3'], ['3n', 3n], ['null', null], ['{}', {}],
];

function expectedCode(value: unknown): string {
  return typeof value === 'number' ? 'ERR_OUT_OF_RANGE' : 'ERR_INVALID_ARG_TYPE';
}

// ---------------------------------------------------------------------------------------------
// Which public entries take number-like arguments, read from the types with the TypeScript API.

/** `Owner.method(param.prop)` for each parameter (or option property declared in src/) that can hold a number or an fd. */
function numericArguments(): string[] {
  const index = join(repoRoot, 'src/index.ts');
  const program = ts.createProgram([index], {
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true, skipLibCheck: true, types: ['node'], lib: ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts'],
  });
  const checker = program.getTypeChecker();
  const srcDir = join(repoRoot, 'src');
  const inSrc = (decl: ts.Declaration | undefined): boolean => !!decl && decl.getSourceFile().fileName.startsWith(srcDir);
  const found = new Set<string>();

  const numberLike = (type: ts.Type): boolean => {
    if (type.isUnion()) return type.types.some(numberLike);
    if (type.flags & (ts.TypeFlags.NumberLike | ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return true;
    const name = type.getSymbol()?.getName() ?? type.aliasSymbol?.getName();
    if (name === 'Fd' || name === 'FdLike' || name === 'FdInput') return true;
    if (checker.isArrayType(type)) return numberLike(checker.getTypeArguments(type as ts.TypeReference)[0]);
    return false;
  };
  /** Object types declared in src/ that are options bags (interfaces and type literals, not classes or functions). */
  const optionObjects = (type: ts.Type): ts.Type[] => {
    if (type.isUnion() || type.isIntersection()) return type.types.flatMap(optionObjects);
    const sym = type.getSymbol();
    if (!sym || !(type.flags & ts.TypeFlags.Object) || sym.flags & ts.SymbolFlags.Class) return [];
    if (checker.getSignaturesOfType(type, ts.SignatureKind.Call).length > 0) return [];
    return sym.declarations?.some(inSrc) || type.getProperties().some((p) => inSrc(p.declarations?.[0])) ? [type] : [];
  };
  const visitValue = (owner: string, type: ts.Type, path: string, depth: number): void => {
    if (numberLike(type)) {
      found.add(`${owner}(${path})`);
      return; // an FdLike's `{ fd }` member is the same argument
    }
    if (depth > 2) return;
    for (const obj of optionObjects(type)) {
      for (const prop of obj.getProperties()) {
        const decl = prop.valueDeclaration ?? prop.declarations?.[0];
        if (!inSrc(decl)) continue;
        visitValue(owner, checker.getTypeOfSymbol(prop), `${path}.${prop.getName()}`, depth + 1);
      }
    }
  };
  const isPrivate = (decl: ts.Declaration | undefined): boolean =>
    !!decl && (!!(ts.getCombinedModifierFlags(decl) & ts.ModifierFlags.Private) || (ts.isClassElement(decl) && !!decl.name && ts.isPrivateIdentifier(decl.name)));
  const visitSignatures = (owner: string, signatures: readonly ts.Signature[]): void => {
    for (const sig of signatures) {
      if (isPrivate(sig.getDeclaration())) continue;
      for (const param of sig.getParameters()) visitValue(owner, checker.getTypeOfSymbol(param), param.getName(), 0);
    }
  };
  /** A member declared by this class itself (not inherited, not private). */
  const ownMember = (prop: ts.Symbol, classDecl: ts.Declaration): boolean => {
    const decl = prop.valueDeclaration;
    return inSrc(decl) && decl!.parent === classDecl && !isPrivate(decl);
  };
  const visitExport = (name: string, symbol: ts.Symbol): void => {
    const sym = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    const decl = sym.valueDeclaration;
    if (sym.flags & ts.SymbolFlags.ValueModule && !(sym.flags & ts.SymbolFlags.Class)) {
      for (const member of checker.getExportsOfModule(sym)) visitExport(`${name}.${member.getName()}`, member);
      return;
    }
    if (!decl) return; // types only
    const staticType = checker.getTypeOfSymbol(sym);
    if (sym.flags & ts.SymbolFlags.Class) {
      visitSignatures(`new ${name}`, staticType.getConstructSignatures());
      for (const prop of staticType.getProperties()) {
        if (prop.getName() === 'prototype' || !ownMember(prop, decl)) continue;
        visitSignatures(`${name}.${prop.getName()}`, checker.getTypeOfSymbol(prop).getCallSignatures());
      }
      for (const prop of checker.getDeclaredTypeOfSymbol(sym).getProperties()) {
        if (!ownMember(prop, decl)) continue;
        visitSignatures(`${name}#${prop.getName()}`, checker.getTypeOfSymbol(prop).getCallSignatures());
      }
      return;
    }
    visitSignatures(name, staticType.getCallSignatures());
  };
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(index)!)!;
  for (const symbol of checker.getExportsOfModule(moduleSymbol)) visitExport(symbol.getName(), symbol);
  return [...found].sort();
}

// ---------------------------------------------------------------------------------------------
// One case per argument: how to call the entry with a bad value there, and what else to check.

let dir: string;
let a: fdpass.UnixSocket;
let b: fdpass.UnixSocket;
/** A raw stream pair for multiprocessing (CPython reads a byte stream; it refuses 'framed' sockets). */
let mpA: fdpass.UnixSocket;
let mpB: fdpass.UnixSocket;
let server: fdpass.UnixServer;
let tcp: net.Server;
let notifyListener: ReturnType<typeof notifyReceiver>;
let readEnd: fdpass.Fd;
let writeEnd: fdpass.Fd;
let self: fdpass.PidFd;
/** A connected USocket and the plain socket at its other end. */
let stream: fdpass.USocket;
let streamPeer: fdpass.UnixSocket;

interface Case {
  call(bad: unknown): unknown;
  /** Codes that differ from the default for some values (Node's own, where the value goes to Node). */
  codes?: Record<string, string>;
  /** What Deno lacks that the case needs (its TCP descriptor comes from a net.Server). */
  denoLimit?: DenoLimit;
  /** Values that are valid here (a uid may be 2^31). */
  valid?: string[];
  /** Run before every bad call: gives a blocking call something to return, so a value it wrongly accepts fails the test instead of hanging it. */
  before?(): void;
  /** Checked after every bad call: nothing reached a peer, nothing was created. */
  after?(): Promise<void> | void;
}

/** A message waiting for `b`: recv/recvSync return it at once if they accept the bad value. */
const bait = {
  before: () => void a.sendSync('bait'),
  after: () => {
    const left = b.recvSync({ timeoutMs: 0 }); // the bait, still queued
    expect(left?.data.toString()).toBe('bait');
  },
};

/** A connection waiting for `server`: acceptSync returns it at once if it accepts the bad value. */
let waitingClient: fdpass.UnixSocket | undefined;
const connectionBait = {
  before: () => void (waitingClient = fdpass.connectSync(server.path!)),
  after: () => {
    server.acceptSync({ timeoutMs: 0 }).close();
    waitingClient?.close();
  },
};

/** A message waiting for `mpB`, as `bait` is for `b`. */
const streamBait = {
  before: () => void mpA.sendSync('bait'),
  after: () => {
    const left = mpB.recvSync({ timeoutMs: 0 });
    expect(left?.data.toString()).toBe('bait');
  },
};

function nothingSentOnStream(): void {
  const err = catchError(() => mpB.recvSync({ timeoutMs: 0 }));
  expect(err.code, 'the peer must receive nothing').toBe('ETIMEDOUT');
}

function nothingSent(): void {
  const err = catchError(() => b.recvSync({ timeoutMs: 0 }));
  expect(err.code, 'the peer must receive nothing').toBe('ETIMEDOUT');
}

async function nothingNotified(): Promise<void> {
  const err = await notifyListener.recv({ signal: AbortSignal.timeout(20) }).then(() => null, (e: Error) => e);
  expect(err?.name, 'the notify socket must receive nothing').toBe('AbortError');
}

function nothingStreamed(): void {
  const err = catchError(() => streamPeer.recvSync({ timeoutMs: 0 }));
  expect(err.code, 'the stream peer must receive nothing').toBe('ETIMEDOUT');
  expect(stream.writableLength, 'nothing queued either').toBe(0);
}

function noFile(name: string): () => void {
  return () => expect(existsSync(join(dir, name)), `${name} must not be created`).toBe(false);
}

const fixture = fileURLToPath(new URL('./fixtures/child-eof.ts', import.meta.url));
const tcpFd = (): fdpass.Fd => Fd.dup(tcp);

const cases: Record<string, Case> = {
  'new Fd(fd)': { call: (v) => new Fd(v as number) },
  'Fd.dup(value)': { call: (v) => Fd.dup(v as number) },
  'fdOf(value)': { call: (v) => fdOf(v as number) },
  'describeFd(fd)': { call: (v) => describeFd(v as number) },
  'new UnixSocket(fd)': { call: (v) => new UnixSocket(v as number, MESSAGE_TYPE) },
  'new UnixServer(fd)': { call: (v) => new UnixServer(v as number, MESSAGE_TYPE, {}) },
  'adopt(fd)': { call: (v) => adopt(v as number) },
  'adoptServer(fd)': { call: (v) => adoptServer(v as number) },

  'UnixSocket#sendSync(fds)': { call: (v) => a.sendSync('x', [readEnd, v as number]), after: nothingSent },
  'UnixSocket#sendSync(options.timeoutMs)': { call: (v) => a.sendSync('x', [readEnd], { timeoutMs: v as number }), after: nothingSent },
  'UnixSocket#sendSync(options.credentials.pid)': { call: (v) => a.sendSync('x', [], { credentials: { pid: v as number, uid: 0, gid: 0 } }), after: nothingSent },
  'UnixSocket#sendSync(options.credentials.uid)': { call: (v) => a.sendSync('x', [], { credentials: { pid: process.pid, uid: v as number, gid: 0 } }), valid: ['2^31'], after: nothingSent },
  'UnixSocket#sendSync(options.credentials.gid)': { call: (v) => a.sendSync('x', [], { credentials: { pid: process.pid, uid: 0, gid: v as number } }), valid: ['2^31'], after: nothingSent },
  'UnixSocket#send(fds)': { call: (v) => a.send('x', [readEnd, v as number]), after: nothingSent },
  'UnixSocket#send(options.credentials.pid)': { call: (v) => a.send('x', [], { credentials: { pid: v as number, uid: 0, gid: 0 } }), after: nothingSent },
  'UnixSocket#send(options.credentials.uid)': { call: (v) => a.send('x', [], { credentials: { pid: process.pid, uid: v as number, gid: 0 } }), valid: ['2^31'], after: nothingSent },
  'UnixSocket#send(options.credentials.gid)': { call: (v) => a.send('x', [], { credentials: { pid: process.pid, uid: 0, gid: v as number } }), valid: ['2^31'], after: nothingSent },
  'UnixSocket#recvSync(options.maxBytes)': { call: (v) => b.recvSync({ maxBytes: v as number }), ...bait },
  'UnixSocket#recvSync(options.maxFds)': { call: (v) => b.recvSync({ maxFds: v as number }), ...bait },
  'UnixSocket#recvSync(options.timeoutMs)': { call: (v) => b.recvSync({ timeoutMs: v as number }), ...bait },
  'UnixSocket#recv(options.maxBytes)': { call: (v) => b.recv({ maxBytes: v as number }), ...bait },
  'UnixSocket#recv(options.maxFds)': { call: (v) => b.recv({ maxFds: v as number }), ...bait },
  'UnixSocket#recvBatch(options.maxBytes)': { call: (v) => b.recvBatch({ maxBytes: v as number }), ...bait },
  'UnixSocket#recvBatch(options.maxFds)': { call: (v) => b.recvBatch({ maxFds: v as number }), ...bait },
  'UnixSocket#recvBatch(options.maxMessages)': { call: (v) => b.recvBatch({ maxMessages: v as number }), ...bait },
  'UnixSocket#recvBatch(options.maxBatchBytes)': { call: (v) => b.recvBatch({ maxBatchBytes: v as number }), ...bait },
  'UnixSocket#recvBatch(options.maxBatchFds)': { call: (v) => b.recvBatch({ maxBatchFds: v as number }), ...bait },
  'UnixSocket#recvBatchSync(options.maxBytes)': { call: (v) => b.recvBatchSync({ maxBytes: v as number }), ...bait },
  'UnixSocket#recvBatchSync(options.maxFds)': { call: (v) => b.recvBatchSync({ maxFds: v as number }), ...bait },
  'UnixSocket#recvBatchSync(options.maxMessages)': { call: (v) => b.recvBatchSync({ maxMessages: v as number }), ...bait },
  'UnixSocket#recvBatchSync(options.maxBatchBytes)': { call: (v) => b.recvBatchSync({ maxBatchBytes: v as number }), ...bait },
  'UnixSocket#recvBatchSync(options.maxBatchFds)': { call: (v) => b.recvBatchSync({ maxBatchFds: v as number }), ...bait },
  'UnixSocket#recvBatchSync(options.timeoutMs)': { call: (v) => b.recvBatchSync({ timeoutMs: v as number }), ...bait },
  // batches() checks its options when called, before anything is iterated.
  'UnixSocket#batches(options.maxBytes)': { call: (v) => b.batches({ maxBytes: v as number }), ...bait },
  'UnixSocket#batches(options.maxFds)': { call: (v) => b.batches({ maxFds: v as number }), ...bait },
  'UnixSocket#batches(options.maxMessages)': { call: (v) => b.batches({ maxMessages: v as number }), ...bait },
  'UnixSocket#batches(options.maxBatchBytes)': { call: (v) => b.batches({ maxBatchBytes: v as number }), ...bait },
  'UnixSocket#batches(options.maxBatchFds)': { call: (v) => b.batches({ maxBatchFds: v as number }), ...bait },

  'listen(target.mode)': { call: (v) => listen({ path: join(dir, 'mode.sock'), mode: v as number }), after: noFile('mode.sock') },
  'listen(target.backlog)': { call: (v) => listen({ path: join(dir, 'backlog.sock'), backlog: v as number }), after: noFile('backlog.sock') },
  'UnixServer#acceptSync(options.timeoutMs)': { call: (v) => server.acceptSync({ timeoutMs: v as number }), ...connectionBait },

  'PidFd.open(pid)': { call: (v) => PidFd.open(v as number) },
  'PidFd.adopt(fd)': { call: (v) => PidFd.adopt(v as number) },
  'PidFd#getFd(targetFd)': { call: (v) => self.getFd(v as number) },
  // A string is a signal name, as in process.kill: Node's code for an unknown one.
  'PidFd#sendSignal(signal)': { call: (v) => self.sendSignal(v as number), codes: { "'3'": 'ERR_UNKNOWN_SIGNAL' } },
  'peerPidFdOf(fd)': { call: (v) => peerPidFdOf(v as number) },
  'reopenFromProc(pid)': { call: (v) => reopenFromProc(v as number, 0) },
  'reopenFromProc(fd)': { call: (v) => reopenFromProc(process.pid, v as number) },
  // A string is fs.openSync's flags ('r', 'a+'): Node's own code for an unknown one.
  'reopenFromProc(flags)': { call: (v) => reopenFromProc(process.pid, readEnd.fd, v as number), codes: { "'3'": 'ERR_INVALID_ARG_VALUE' } },
  'listProcessFds(pid)': { call: (v) => listProcessFds(v as number) },

  'toNetSocket(fd)': { call: (v) => toNetSocket(v as number) },
  'toNetServer(fd)': { call: (v) => toNetServer(v as number) },
  'toNetServer(server.backlog)': {
    call: (v) => {
      using fd = tcpFd();
      return toNetServer(fd, { backlog: v as number });
    },
    denoLimit: 'net-no-fd',
  },
  'toNetServer(options.backlog)': {
    call: (v) => {
      using fd = tcpFd();
      return toNetServer(fd, net.createServer(), { backlog: v as number });
    },
    denoLimit: 'net-no-fd',
  },
  'toDgramSocket(fd)': { call: (v) => toDgramSocket(v as number) },
  'toDgramSocket(options.recvBufferSize)': { call: (v) => toDgramSocket(readEnd, { recvBufferSize: v as number }) },
  'toDgramSocket(options.sendBufferSize)': { call: (v) => toDgramSocket(readEnd, { sendBufferSize: v as number }) },
  'toReadStream(fd)': { call: (v) => toReadStream(v as number) },
  'toReadStream(options.highWaterMark)': { call: (v) => toReadStream(readEnd, { highWaterMark: v as number }) },
  'toWriteStream(fd)': { call: (v) => toWriteStream(v as number) },
  'toWriteStream(options.highWaterMark)': { call: (v) => toWriteStream(writeEnd, { highWaterMark: v as number }) },

  'spawnWithSocket(options.fd)': { call: (v) => spawnWithSocket('false', [], { fd: v as number }) },
  'forkWithSocket(options.fd)': { call: (v) => forkWithSocket(fixture, [], { fd: v as number }) },

  'multiprocessing.sendFds(fds)': { call: (v) => multiprocessing.sendFds(mpA, [readEnd, v as number]), after: nothingSentOnStream },
  'multiprocessing.sendHandle(handle)': { call: (v) => multiprocessing.sendHandle(mpA, v as number), after: nothingSentOnStream },
  'multiprocessing.sendHandle(destinationPid)': { call: (v) => multiprocessing.sendHandle(mpA, readEnd, v as number), after: nothingSentOnStream },
  'multiprocessing.recvFds(size)': { call: (v) => multiprocessing.recvFds(mpB, v as number), ...streamBait },
  'systemd.notify(fds)': { call: (v) => systemd.notify('READY=1', [readEnd, v as number], { socket: notifyListener.address }), after: nothingNotified },
  'systemd.storeFds(fds)': { call: (v) => systemd.storeFds([readEnd, v as number], 'x', { socket: notifyListener.address }), after: nothingNotified },
  'systemd.notifyBarrier(options.timeoutMs)': { call: (v) => systemd.notifyBarrier({ timeoutMs: v as number, socket: notifyListener.address }), after: nothingNotified },
  'systemd.listenNotify(target.mode)': { call: (v) => systemd.listenNotify({ path: join(dir, 'notify-mode.sock'), mode: v as number }), after: noFile('notify-mode.sock') },
  'new systemd.ListenFd(fd)': { call: (v) => new systemd.ListenFd(v as number, 'x') },

  'USocket#connect(target.fd)': { call: (v) => new fdpass.USocket().connect({ fd: v as number }) },
  'new USocket(options.fd)': { call: (v) => new fdpass.USocket({ fd: v as number }) },
  // null is usocket's "all": all buffered bytes, or the fds that came with them.
  'USocket#read(size)': { call: (v) => stream.read(v as number, 0), valid: ['null'] },
  'USocket#read(count)': { call: (v) => stream.read(0, v as number), valid: ['null'] },
  'USocket#unshift(fdsOrEncoding)': {
    call: (v) => stream.unshift(Buffer.from('x'), [readEnd, v as number]),
    after: () => expect(stream.readableLength, 'nothing put back').toBe(0),
  },
  'USocket#write(chunk)': { call: (v) => stream.write([readEnd, v as number]), after: nothingStreamed },
  'USocket#end(chunk)': { call: (v) => stream.end({ data: 'x', fds: [readEnd, v as number] }), after: nothingStreamed },
  'UServer#listen(backlog)': { call: (v) => new fdpass.UServer().listen(join(dir, 'us-backlog.sock'), v as number), after: noFile('us-backlog.sock') },
  'UServer#listen(target.backlog)': { call: (v) => new fdpass.UServer().listen({ path: join(dir, 'us-backlog2.sock'), backlog: v as number }), after: noFile('us-backlog2.sock') },
  'UServer#listen(target.mode)': { call: (v) => new fdpass.UServer().listen({ path: join(dir, 'us-mode.sock'), mode: v as number }), after: noFile('us-mode.sock') },
};
// The same functions under their top-level names.
cases['sendHandle(handle)'] = cases['multiprocessing.sendHandle(handle)'];
cases['sendHandle(destinationPid)'] = cases['multiprocessing.sendHandle(destinationPid)'];
cases['notify(fds)'] = cases['systemd.notify(fds)'];
cases['new ListenFd(fd)'] = cases['new systemd.ListenFd(fd)'];
for (const key of Object.keys(cases)) {
  if (key.startsWith('USocket#') || key === 'new USocket(options.fd)') cases[key.replace('USocket', 'UnixStream')] = cases[key];
  if (key.startsWith('UServer#')) cases[key.replace('UServer#', 'UnixStreamServer#')] = cases[key];
}

/** Number-typed arguments that are not descriptors, sizes, counts, modes or timeouts a caller passes in. */
const notArguments: Record<string, string> = {
  'new FdPassError(details.errno)': 'an errno to report, stored as given',
  'FdPassError.fromErrno(errno)': 'an errno to report, stored as given',
  'new FdPassError(details.cause)': 'any value, kept as the error\'s cause',
  'describeKind(d.fd)': 'formats an FdDescription that describeFd() made; no syscall',
  'describeKind(d.size)': 'formats an FdDescription that describeFd() made; no syscall',
  'describeKind(d.socket.family)': 'formats an FdDescription that describeFd() made; no syscall',
  'describeKind(d.socket.type)': 'formats an FdDescription that describeFd() made; no syscall',
  'describeKind(d.socket.protocol)': 'formats an FdDescription that describeFd() made; no syscall',
  'describeKind(d.socket.localPort)': 'formats an FdDescription that describeFd() made; no syscall',
  'new UnixServer(created.dev)': 'internal: listen() passes the stat() of the file it created',
  'new UnixServer(created.ino)': 'internal: listen() passes the stat() of the file it created',
  'new systemd.NotifyListener(created.dev)': 'internal: listenNotify() passes the stat() of the file it created',
  'new systemd.NotifyListener(created.ino)': 'internal: listenNotify() passes the stat() of the file it created',
  // The stream's Readable/Writable arguments, which Node's own stream code checks.
  'USocket#unshift(chunk)': 'bytes put back (a Buffer or string), checked by Readable#unshift',
  'USocket#end(cb)': 'a callback, as Writable#end',
  'USocket#end(encoding)': 'an encoding name (or the callback), as Writable#end',
};
for (const key of Object.keys(notArguments)) if (key.startsWith('USocket#')) notArguments[key.replace('USocket#', 'UnixStream#')] = notArguments[key];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fdpass-args-'));
  [a, b] = socketPair(MESSAGE_TYPE);
  [mpA, mpB] = socketPair('stream');
  server = listen(join(dir, 'server.sock'));
  tcp = net.createServer();
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  notifyListener = notifyReceiver(join(dir, 'notify.sock'));
  [readEnd, writeEnd] = pipe();
  self = PidFd.open(process.pid);
  const [mine, theirs] = socketPair('stream');
  streamPeer = theirs;
  stream = new fdpass.USocket({ fd: mine.release() });
  await new Promise((r) => stream.once('connected', r));
});

afterAll(async () => {
  for (const x of [a, b, mpA, mpB, server, notifyListener, readEnd, writeEnd, self, streamPeer]) x?.close();
  stream?.destroy();
  await new Promise((r) => tcp?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('bad numbers at every public entry', () => {
  it('every number-typed argument of every export is covered (a new one fails here until it has a case)', () => {
    const found = numericArguments();
    const uncovered = found.filter((key) => !(key in cases) && !(key in notArguments));
    expect(uncovered, 'add a case to test/arguments.test.ts').toEqual([]);
    // And the table names nothing that does not exist (a renamed parameter must be renamed here).
    expect([...Object.keys(cases), ...Object.keys(notArguments)].filter((key) => !found.includes(key))).toEqual([]);
    expect(found.length).toBeGreaterThan(50);
  }, scaled(60_000));

  for (const [key, c] of Object.entries(cases)) {
    it(key, async () => {
      if (c.denoLimit && (await denoLimit(c.denoLimit))) return;
      await expectNoFdLeak(async () => {
        for (const [label, value] of BAD) {
          if (c.valid?.includes(label)) continue;
          let err: (Error & { code?: string }) | undefined;
          c.before?.();
          try {
            const result = c.call(value);
            if (result instanceof Promise) await result;
          } catch (e) {
            err = e as Error & { code?: string };
          }
          const want = c.codes?.[label] ?? expectedCode(value);
          expect(err, `${key} with ${label} must throw ${want}`).toBeDefined();
          expect({ value: label, code: err!.code, name: err!.name }, err!.message).toMatchObject({ value: label, code: want, name: want === 'ERR_OUT_OF_RANGE' ? 'RangeError' : 'TypeError' });
          expect(err).not.toBeInstanceOf(FdPassError);
          await c.after?.();
        }
      });
    });
  }
});

describe('the bugs this guards against', () => {
  it('an fd of 2^32 + 1 is refused, not truncated into fd 1 (the receiver used to get stdout)', () => {
    for (const fd of [2 ** 32 + 1, 2 ** 40, 2 ** 32]) {
      expect(() => a.sendSync('x', [fd])).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
      nothingSent();
    }
    a.sendSync('ok', [1]);
    const m = b.recvSync({ timeoutMs: 1000 })!;
    expect(m.fds.map((f) => f.describe().kind).length).toBe(1);
    for (const f of m.fds) f.close();
  });

  it("describeFd('1') is a TypeError with ERR_INVALID_ARG_TYPE (it used to reach koffi: 'Unexpected String value')", () => {
    const err = catchError(() => describeFd('1' as unknown as number));
    expect(err).toBeInstanceOf(TypeError);
    expect(err.code).toBe('ERR_INVALID_ARG_TYPE');
    expect(err.message).toContain('"fd"');
  });

  it("recv({ maxBytes: '10' }) says the type is wrong, not that it is out of range", async () => {
    const err = await b.recv({ maxBytes: '10' as unknown as number }).then(() => undefined, (e: Error & { code?: string }) => e);
    expect(err?.code).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('timeoutMs: Infinity waits forever like an omitted timeoutMs; -1 is refused everywhere', async () => {
    a.sendSync('m');
    expect(b.recvSync({ timeoutMs: Infinity })!.data.toString()).toBe('m');
    // With bait queued, a -1 that were accepted would return at once instead of hanging the test.
    bait.before();
    connectionBait.before();
    for (const call of [() => b.recvSync({ timeoutMs: -1 }), () => a.sendSync('x', [], { timeoutMs: -1 }), () => server.acceptSync({ timeoutMs: -1 })]) {
      expect(call).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    }
    bait.after();
    connectionBait.after();
    const barrier = await systemd.notifyBarrier({ timeoutMs: -1, socket: notifyListener.address }).then(() => undefined, (e: Error & { code?: string }) => e);
    expect(barrier?.code).toBe('ERR_OUT_OF_RANGE');
    nothingSent();
  });
});
