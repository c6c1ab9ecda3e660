// CommonJS consumers: `require('fdpass')` (an ES module without top-level await, loaded through
// require(esm): Node 20.19+ / 22.12+, Bun, Deno) must give the same API and work.
const { socketPair, FdPassError } = require('fdpass');
const [a, b] = socketPair();
a.sendSync('from commonjs', [0]);
const msg = b.recvSync({ timeoutMs: 5000 });
const ok = msg && msg.data.toString() === 'from commonjs' && msg.fds.length === 1 && typeof FdPassError === 'function';
for (const f of msg ? msg.fds : []) f.close();
a.close();
b.close();
console.log(ok ? 'ok - require(\'fdpass\') from CommonJS' : 'not ok - require(\'fdpass\') from CommonJS');
process.exitCode = ok ? 0 : 1;
