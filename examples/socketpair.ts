/**
 * The basics, in one process: pass a file descriptor from one end of a socket pair to the
 * other, synchronously, and ask the kernel what arrived. Across processes it works the same
 * way (see demo.ts, server-client.ts, python-peer.ts).
 * In your own project, import from 'fdpass' instead of '../src/index.js'.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { socketPair } from '../src/index.js';

const pair = socketPair(); // 'seqpacket' by default: one send = one message
using a = pair[0], b = pair[1]; // `using`: both ends are closed when this scope ends

const fd = openSync(fileURLToPath(import.meta.url), 'r'); // this very file
const bytes = a.sendSync('here is a file', [fd]);
console.log(`sent ${bytes} bytes and fd ${fd}`);

const msg = b.recvSync()!; // null would mean end of stream (the peer closed)
using file = msg.fds[0]; // an Fd that we own: closed at scope end
console.log(`received ${JSON.stringify(msg.data.toString())} with ${msg.fds.length} fd: fd ${file.fd}`);
closeSync(fd); // the message carried the open file, not the number: each side closes its own
console.log('describe():', file.describe());

const head = Buffer.alloc(60);
readSync(file.fd, head, 0, head.length, 0);
console.log(`its first bytes: ${JSON.stringify(head.toString())}`);
