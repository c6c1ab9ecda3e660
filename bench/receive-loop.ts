/**
 * The receive path in one process, without wake-ups: each round queues 120 one-byte, one-fd
 * messages on a SEQPACKET pair (sendSync), then receives and closes them with `mode`:
 *   raw    recvmsg + close through koffi with hand-built structs, until EAGAIN (no library)
 *   batch  `socket.batches()`, then close each fd
 *   iter   `socket[Symbol.asyncIterator]()` as `for await (const msg of socket)` drives it
 * Prints ns per message (3 passes). For instructions per message, count two run lengths under
 * callgrind and take the difference (deterministic, unlike time on a shared VM):
 *   BENCH_MODE=iter BENCH_ROUNDS=300 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
 *     node --single-threaded --import tsx bench/receive-loop.ts   # and again with 1300
 * (the difference of the two totals / (1000 × 120 × 3); the sendSync fill is in every mode).
 * Linux x64/arm64 layouts for the raw mode (bench only).
 */
import { openSync } from 'node:fs';
import { socketPair } from '../src/index.js';
import { FIRST_FD, MSG_CONTROLLEN, RAW_CONTROL_BYTES, RAW_RECV_FLAGS, close, rawReceiver, recvmsg } from './raw-koffi.js';

const PER_ROUND = 120;
const rounds = Number(process.env.BENCH_ROUNDS ?? 3000);
const mode = process.env.BENCH_MODE ?? 'iter';
const devNull = openSync('/dev/null', 'r');
const oneByte = Buffer.from('x');
const [a, b] = socketPair('seqpacket');

function fill(): void {
  for (let i = 0; i < PER_ROUND; i++) a.sendSync(oneByte, [devNull]);
}

const { msgAddress, msg32, ctl32 } = rawReceiver();

async function raw(): Promise<void> {
  for (;;) {
    msg32[MSG_CONTROLLEN] = RAW_CONTROL_BYTES;
    if (recvmsg(b.fd, msgAddress, RAW_RECV_FLAGS) < 0) break; // EAGAIN ends the round
    close(ctl32[FIRST_FD]);
  }
}

const messages = b[Symbol.asyncIterator]();
async function iter(): Promise<void> {
  for (let i = 0; i < PER_ROUND; i++) {
    const r = await messages.next();
    r.value!.fds[0].close();
  }
}

const batches = b.batches();
async function batch(): Promise<void> {
  for (let i = 0; i < PER_ROUND; ) {
    const r = await batches.next();
    for (const m of r.value!) {
      m.fds[0].close();
      i++;
    }
  }
}

const receive = { raw, batch, iter }[mode];
if (receive === undefined) throw new Error(`BENCH_MODE must be raw, batch or iter, not ${mode}`);
for (let pass = 0; pass < 3; pass++) {
  let ns = 0n;
  for (let r = 0; r < rounds; r++) {
    fill();
    const t0 = process.hrtime.bigint();
    await receive();
    ns += process.hrtime.bigint() - t0;
  }
  console.log(`${mode}: ${(Number(ns) / (rounds * PER_ROUND)).toFixed(0)} ns per message`);
}
a.close();
b.close();
