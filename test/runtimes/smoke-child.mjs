// Runtime smoke test: the child. Receives a path and its fd on the inherited socket, answers with
// what it read through the fd and with an fd of this script, then exits.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openSync, closeSync } from 'node:fs';
import { inheritedSocket } from 'fdpass';

const socket = inheritedSocket();
const msg = await socket.recv();
const text = readFileSync(`/proc/self/fd/${msg.fds[0].fd}`, 'utf8');
msg.fds[0].close();
const mine = openSync(fileURLToPath(import.meta.url), 'r');
await socket.send(text, [mine]);
closeSync(mine);
socket.close();
