/**
 * describe(): what is this descriptor? Asked of the kernel (fstat, /proc/self/fd, fcntl,
 * getsockopt), so a process that receives fds never has to guess — unlike Python's
 * socket.fromfd, which needs the caller to already know family and type.
 * Shown for a file, a directory, a pipe, a TCP listener, a Unix socket and /dev/null.
 * In your own project, import from 'fdpass' instead of '../src/index.js'.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import koffi from 'koffi';
import { Fd, describeFd, fdOf, listen, platform, socketPair, type FdLike } from '../src/index.js';

/** An anonymous pipe via pipe2(2) (Node has no API for one; see demo.ts). */
function pipe(): [readEnd: Fd, writeEnd: Fd] {
  const pipe2 = koffi.load(platform.libcName).func('int pipe2(_Out_ int *fds, int flags)');
  const fds = [-1, -1];
  if (pipe2(fds, 0o2000000 /* O_CLOEXEC */) !== 0) throw new Error(`pipe2 failed, errno ${koffi.errno()}`);
  return [new Fd(fds[0]), new Fd(fds[1])];
}

function show(what: string, fd: FdLike): void {
  // describeFd() takes a number; Fd objects (e.g. received ones) have .describe().
  console.log(`${what}:\n  ${inspect(describeFd(fdOf(fd)), { breakLength: Infinity, depth: 3 })}`);
}

const dir = mkdtempSync(join(tmpdir(), 'fdpass-describe-'));
writeFileSync(join(dir, 'notes.txt'), 'twelve bytes');

using file = new Fd(openSync(join(dir, 'notes.txt'), 'a'));
show('a file opened for appending', file);

using directory = new Fd(openSync(dir, 'r'));
show('a directory', directory);

const [readEnd, writeEnd] = pipe();
using r = readEnd, w = writeEnd;
show('the read end of a pipe', r);
show('the write end of a pipe', w);

const tcp = net.createServer().listen(0, '127.0.0.1');
await once(tcp, 'listening');
show('a listening TCP socket (a net.Server)', tcp);
tcp.close();

using server = listen({ abstract: `fdpass-describe-${process.pid}` });
show('a listening Unix socket (abstract name)', server);
const pair = socketPair();
using a = pair[0], b = pair[1]; // both ends closed at the end of the script
show('one end of a socketPair()', a);

using devNull = new Fd(openSync('/dev/null', 'r+'));
show('/dev/null', devNull);

// A surprise describe() reveals: child_process's stdio 'pipe' is not a pipe at all.
const child = spawn('true', [], { stdio: ['pipe', 'ignore', 'ignore'] });
show("a child process's stdin, stdio 'pipe' (libuv makes it a Unix socketpair)", child.stdin!);
child.stdin!.destroy();
await once(child, 'exit');

rmSync(dir, { recursive: true, force: true });
