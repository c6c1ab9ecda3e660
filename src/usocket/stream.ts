/**
 * USocket: a Duplex stream over a connected Unix stream socket whose bytes carry fds, with the
 * API of the `usocket` npm package (1.x) and no native addon. Built on UnixSocket's non-blocking
 * sendmsg/recvmsg steps and one Watcher for readiness.
 */
import { Duplex } from 'node:stream';
import { NO_FDS, toFdNumbers } from '../args.js';
import { adopt, connect as connectSocket, type ConnectOptions } from '../connect.js';
import { FdPassError, invalidArgType, outOfRange } from '../errors.js';
import type { FdLike } from '../fdlike.js';
import { C, closeQuietly } from '../libc.js';
import { Watcher } from '../poll.js';
import { SendOp } from '../send-op.js';
import { socketSteps, type UnixSocket } from '../socket.js';
import { AGAIN } from '../wait-queue.js';
import { FdQueue } from './fd-queue.js';

/** Bytes asked of each recvmsg (net.Socket reads 64 KiB at a time too). */
const READ_BYTES = 65536;
/** recvmsg calls per readiness event before other callbacks get a turn (libuv reads 32 times). */
const READS_PER_TURN = 32;
/**
 * A read this large is handed out as a view of the buffer it was received into (no copy; a new
 * buffer for the next read); a smaller one is copied out, so it does not pin 64 KiB.
 */
const VIEW_BYTES = 32768;
/** Buffered plain writes joined into one sendmsg, up to this many bytes. */
const JOIN_BYTES = 65536;

export interface USocketOptions {
  /** Path of the server to connect to; a leading NUL byte (`'\0name'`) means a Linux abstract name. */
  path?: string;
  /** A connected Unix stream socket to take over (this stream closes it). */
  fd?: number;
  /** Keep the writable side open after the peer ended (default true, as in usocket). */
  allowHalfOpen?: boolean;
}

/** What `read(size, count)` returns: the bytes (null when none were asked for or none are buffered) and the fds. */
export interface ReadWithFds {
  data: Buffer | null;
  /** Received descriptors, close-on-exec, owned by the caller from now on. */
  fds: number[];
}

/** `write({ data, fds, callback })`: bytes and the fds that ride with them. */
export interface WriteRequest {
  data?: Buffer | Uint8Array | string;
  fds?: readonly FdLike[];
  /**
   * Runs (with this request object) once all of the bytes, and so the fds, are in the kernel: the
   * fds may be closed from then on, not before.
   */
  callback?: (request: WriteRequest) => void;
}

type Done = (err?: Error | null) => void;

const NO_REQUESTS: WriteRequest[] = [];

/** The fds and callback of one write, which is the `seq`-th chunk handed to the Writable. */
interface ChunkMeta {
  seq: number;
  fds: number[];
  request: WriteRequest | null;
}

/** The chunk for writes of fds alone (no bytes). */
const NO_BYTES = Buffer.alloc(0);

/** One sendmsg's worth: bytes (several small writes joined), the fds riding with them, their callbacks. */
interface SendUnit {
  /** null: nothing to send, only callbacks to run in turn. */
  op: SendOp | null;
  requests: WriteRequest[];
}

/** What one `_write`/`_writev` call sends, unit after unit, before calling `done`. */
interface PendingWrite {
  units: SendUnit[];
  next: number;
  done: Done;
}

type State = 'new' | 'connecting' | 'connected' | 'closed';

function destroyedError(): Error {
  return Object.assign(new Error('Cannot call write after a stream was destroyed'), { code: 'ERR_STREAM_DESTROYED' });
}

/** A Node-style error thrown from user code inside a readiness callback must not vanish. */
function rethrow(err: unknown): void {
  process.nextTick(() => {
    throw err;
  });
}

function toData(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw invalidArgType('data', 'a Buffer, Uint8Array or string', value);
}

/** Node's Readable refuses to buffer more than 1 GiB at once (its largest highWaterMark). */
const MAX_READ_SIZE = 2 ** 30;

function checkCount(value: unknown, name: string, max: number): void {
  if (value === null || value === undefined) return;
  if (typeof value !== 'number') throw invalidArgType(name, 'a non-negative integer or null', value);
  if (!Number.isInteger(value) || value < 0 || value > max) throw outOfRange(name, `an integer from 0 to ${max}`, value);
}

let attachAccepted: (stream: USocket, socket: UnixSocket) => void;

/**
 * A Duplex stream on a Unix stream socket that carries fds with its bytes (`usocket`'s USocket).
 * Reading: the usual Readable API, plus `read(size, count)` → `{ data, fds }`. Writing: bytes,
 * an array of fds, or `{ data, fds, callback }`.
 */
export class USocket extends Duplex {
  /** The socket's descriptor once connected (as in usocket). */
  fd: number | undefined;
  #state: State = 'new';
  #socket: UnixSocket | null = null;
  #watcher: Watcher | null = null;
  #referenced = true;
  readonly #fds = new FdQueue();
  /** Bytes pushed into the Readable so far: with `readableLength`, where reading stands in the stream. */
  #pushed = 0;
  /** The Readable asked for data (`_read`) and has not had enough yet. */
  #readRequested = false;
  #eof = false;
  /** Where the next recvmsg puts its bytes. */
  #readBuffer: Buffer | null = null;
  /**
   * The Writable passes only bytes to `_write`: the fds and callbacks of writes still in its
   * buffer wait here, in order, each tagged with its chunk's sequence number. Chunks reach
   * `_write` in the order they were written, so counting them finds each one's entry.
   */
  #metas: ChunkMeta[] = [];
  #metaHead = 0;
  /** Chunks handed to the Writable, and chunks it has passed to `_write`/`_writev`. */
  #written = 0;
  #processed = 0;
  #pending: PendingWrite | null = null;
  /** `#pending` hit EAGAIN: wait for writability. */
  #waitingWritable = false;
  /** fds written without bytes: they go with the first byte of the next write (a stream cannot send them alone). */
  #carriedFds: number[] = [];
  #carriedRequests: WriteRequest[] = [];
  /** `_final` waiting for the connection. */
  #finalDone: Done | null = null;

  static {
    attachAccepted = (stream, socket) => stream.#attach(socket);
  }

  /**
   * `new USocket()`, `new USocket(path)`, `new USocket({ path | fd, allowHalfOpen }, onConnected)`:
   * with a path or fd it connects at once.
   */
  constructor(options?: string | USocketOptions | null, onConnected?: () => void) {
    const opts: USocketOptions = options !== null && typeof options === 'object' ? options : { path: options ?? undefined };
    super({ allowHalfOpen: opts.allowHalfOpen ?? true });
    if (opts.fd !== undefined || opts.path !== undefined) this.connect(opts, onConnected);
  }

  /**
   * Connect to `path` (`'\0name'` for an abstract name), or take over `{ fd }`. Emits
   * 'connected' (and calls `onConnected`) once connected, or 'error' then 'close'.
   */
  connect(target: string | USocketOptions, onConnected?: () => void): this {
    if (this.#state !== 'new') throw new FdPassError('ERR_SOCKET_CONNECTED', 'connect on already connected USocket');
    const opts: USocketOptions = typeof target === 'string' ? { path: target } : target;
    if (opts === null || typeof opts !== 'object') throw invalidArgType('options', 'a path string or an object { path } or { fd }', target);
    if (typeof opts.fd !== 'number' && typeof opts.path !== 'string') {
      throw invalidArgType('options.path', 'a string (or options.fd a number)', opts.path);
    }
    if (onConnected !== undefined) {
      if (typeof onConnected !== 'function') throw invalidArgType('callback', 'a function', onConnected);
      this.once('connected', onConnected);
    }
    this.#state = 'connecting';
    if (typeof opts.fd === 'number') {
      let socket: UnixSocket;
      try {
        socket = adopt(opts.fd, { type: 'stream' }); // raw bytes, even where fdpass's default for a stream is 'framed'
        if (socket.type !== 'stream') {
          socket.release();
          throw new FdPassError('ERR_FDPASS_WRONG_KIND', `fd ${opts.fd} is a ${socket.type} socket; USocket needs a stream socket`);
        }
      } catch (err) {
        if (err instanceof TypeError || err instanceof RangeError) throw err;
        process.nextTick(() => this.destroy(err as Error));
        return this;
      }
      this.#attach(socket);
      process.nextTick(() => this.#connected());
      return this;
    }
    const path = opts.path!;
    const address: ConnectOptions = path.startsWith('\0') ? { abstract: path.slice(1), type: 'stream' } : { path, type: 'stream' };
    // Errors (a refused connection, a path too long for sockaddr_un) arrive as 'error', as in usocket.
    connectSocket(address).then(
      (socket) => process.nextTick(() => {
        if (this.destroyed) return socket.close();
        this.#attach(socket);
        this.#connected();
      }),
      (err: Error) => process.nextTick(() => this.destroy(err)),
    );
    return this;
  }

  /** Let this stream's pending reads and writes keep the process alive (the default). */
  ref(): this {
    this.#referenced = true;
    this.#watcher?.ref();
    return this;
  }

  /** This stream no longer keeps the process alive by itself. */
  unref(): this {
    this.#referenced = false;
    this.#watcher?.unref();
    return this;
  }

  /**
   * `read([size])` is the Readable's. `read(size, count)` returns `{ data, fds }`, or null while
   * `size` bytes or `count` fds are not there yet (nothing is taken then). `size` null: all
   * buffered bytes. `count` null: the fds that arrived with the bytes read so far (those that
   * came with later bytes stay queued, so a reader of whole messages gets each message's own
   * fds); `count` 0: none.
   */
  override read(size?: number): any;
  override read(size: number | null | undefined, count: number | null): ReadWithFds | null;
  override read(size?: number | null, count?: number | null): any {
    if (this.#readRequested) this.#updateInterest(); // a 'readable' listener may have been added after pause()
    if (count === undefined) return super.read(size as number);
    checkCount(size, 'size', MAX_READ_SIZE);
    checkCount(count, 'count', 0x7fffffff);
    if (this.destroyed) return null;
    const queue = this.#fds;
    if (count !== null && queue.length < count) {
      // Keep the Readable going (more bytes may bring the fds; at the end, 'end' must still come).
      if (this.#eof || this.readableLength < this.readableHighWaterMark) super.read(0);
      return null;
    }
    const data = super.read(size as number) as Buffer | null;
    if (size && data === null) return null;
    const fds = queue.take(count ?? queue.countBefore(this.#consumed()));
    const result: ReadWithFds = { data, fds };
    return result;
  }

  /**
   * `unshift(buffer[, fds])`: put bytes back, and fds in front of the queue (as arriving with
   * the first byte put back). `unshift(chunk, encoding)` is the Readable's.
   */
  override unshift(chunk: any, fdsOrEncoding?: readonly FdLike[] | BufferEncoding): void {
    if (!Array.isArray(fdsOrEncoding)) return super.unshift(chunk, fdsOrEncoding as BufferEncoding | undefined);
    const fds = toFdNumbers(fdsOrEncoding);
    if (chunk) super.unshift(chunk);
    if (this.destroyed) {
      // Handed back to a stream that can no longer give them out.
      for (const fd of fds) closeQuietly(fd);
      return;
    }
    // Due again once the bytes put back with them have been read.
    this.#fds.unshift(fds, this.#consumed() + (chunk ? (chunk as { length: number }).length : 0) - 1);
  }

  /**
   * `write(buffer | string[, encoding][, cb])`, `write(arrayOfFds[, cb])`, or
   * `write({ data, fds, callback }[, cb])`. Returns false when the caller should wait for
   * 'drain'. Passed fds must stay open until the write's callback has run.
   */
  override write(chunk: any, encoding?: BufferEncoding | Done, cb?: Done): boolean {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (typeof chunk !== 'string' && !Buffer.isBuffer(chunk)) chunk = this.#tag(chunk);
    const seq = this.#written++;
    try {
      return super.write(chunk, encoding as BufferEncoding, cb);
    } catch (err) {
      this.#unwrite(seq); // refused (a bad encoding): not in the Writable's buffer
      throw err;
    }
  }

  /** `end()`, with any chunk `write` takes; the socket is shut down for writing once all is sent. */
  override end(chunk?: any, encoding?: any, cb?: any): this {
    if (typeof chunk === 'function') {
      cb = chunk;
      chunk = undefined;
    } else if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (chunk !== undefined && chunk !== null) {
      if (typeof chunk !== 'string' && !Buffer.isBuffer(chunk)) chunk = this.#tag(chunk);
      const seq = this.#written++;
      try {
        super.end(chunk, encoding, cb);
      } catch (err) {
        this.#unwrite(seq);
        throw err;
      }
    } else super.end(cb);
    // Read on, so the peer's end of stream is seen and the stream can close (as usocket does).
    if (this.#state === 'connecting' || this.#state === 'connected') this.read(0);
    return this;
  }

  override pause(): this {
    super.pause();
    this.#updateInterest();
    return this;
  }

  override resume(): this {
    super.resume();
    this.#updateInterest();
    return this;
  }

  override _read(): void {
    this.#readRequested = true;
    if (this.#socket !== null) this.#readSome();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, done: Done): void {
    // The common cases without the batching machinery: bytes, with or without fds of their own.
    if (chunk.length > 0 && this.#carriedFds.length === 0) {
      const meta = this.#nextMeta();
      let requests = NO_REQUESTS;
      let fds = NO_FDS;
      if (meta !== null) {
        fds = meta.fds;
        if (meta.request?.callback) requests = [meta.request];
      }
      this.#startWrite({ units: [{ op: new SendOp(chunk, fds, undefined, undefined), requests }], next: 0, done });
      return;
    }
    this._writev([{ chunk, encoding }], done);
  }

  /** The fds and callback of the chunk `_write` has now, if it has any. */
  #nextMeta(): ChunkMeta | null {
    const seq = this.#processed++;
    const metas = this.#metas;
    if (this.#metaHead === metas.length || metas[this.#metaHead].seq !== seq) return null;
    const meta = metas[this.#metaHead++];
    if (this.#metaHead === metas.length) {
      this.#metas = [];
      this.#metaHead = 0;
    } else if (this.#metaHead > 1024 && this.#metaHead * 2 > metas.length) {
      this.#metas = metas.slice(this.#metaHead);
      this.#metaHead = 0;
    }
    return meta;
  }

  /** The write numbered `seq` did not enter the Writable after all. */
  #unwrite(seq: number): void {
    if (this.#processed > seq) return;
    this.#written = seq;
    const metas = this.#metas;
    if (metas.length > this.#metaHead && metas[metas.length - 1].seq === seq) metas.pop();
  }

  /**
   * Several buffered writes at once: runs of plain bytes are joined (up to JOIN_BYTES) into one
   * sendmsg; a write with fds is always a sendmsg of its own, so its fds ride with its bytes.
   */
  override _writev(chunks: { chunk: Buffer; encoding: BufferEncoding }[], done: Done): void {
    const units: SendUnit[] = [];
    let run: Buffer[] = [];
    let runBytes = 0;
    let runRequests: WriteRequest[] = [];
    const endRun = (): void => {
      if (run.length === 0) return;
      units.push({ op: new SendOp(run.length === 1 ? run[0] : Buffer.concat(run, runBytes), NO_FDS, undefined, undefined), requests: runRequests });
      run = [];
      runBytes = 0;
      runRequests = [];
    };
    for (const { chunk } of chunks) {
      const meta = this.#nextMeta();
      let fds = NO_FDS;
      let request: WriteRequest | null = null;
      if (meta !== null) {
        fds = meta.fds;
        if (meta.request?.callback) request = meta.request;
      }
      if (chunk.length === 0) {
        if (fds.length > 0) {
          // Linux drops fds sent with no byte on a stream: they ride with the next bytes written.
          for (const fd of fds) this.#carriedFds.push(fd);
          if (request) this.#carriedRequests.push(request);
        } else if (request) {
          // Nothing to send: its callback runs once what was written before it has gone.
          if (run.length > 0) runRequests.push(request);
          else units.push({ op: null, requests: [request] });
        }
        continue;
      }
      if (fds.length > 0 || this.#carriedFds.length > 0) {
        endRun();
        const all = this.#carriedFds.length > 0 ? [...this.#carriedFds, ...fds] : fds;
        const requests = this.#carriedRequests;
        if (request) requests.push(request);
        this.#carriedFds = [];
        this.#carriedRequests = [];
        if (all.length > C.SCM_MAX_FD) {
          done(outOfRange('fds.length', `at most ${C.SCM_MAX_FD} fds with one write, counting fds written before it without bytes`, all.length));
          return;
        }
        units.push({ op: new SendOp(chunk, all, undefined, undefined), requests });
        continue;
      }
      if (runBytes + chunk.length > JOIN_BYTES) endRun();
      run.push(chunk);
      runBytes += chunk.length;
      if (request) runRequests.push(request);
    }
    endRun();
    this.#startWrite({ units, next: 0, done });
  }

  #startWrite(pending: PendingWrite): void {
    this.#pending = pending;
    if (this.#socket !== null) this.#continueWrite();
    else if (this.#state !== 'connecting') {
      this.#pending = null;
      pending.done(new FdPassError('ERR_FDPASS_NOT_CONNECTED', 'USocket not connected'));
    }
  }

  override _final(done: Done): void {
    if (this.#socket === null) {
      if (this.#state === 'connecting') this.#finalDone = done;
      else done();
      return;
    }
    if (this.#carriedFds.length > 0) {
      done(new FdPassError('ERR_FDPASS_NO_BYTES', `${this.#carriedFds.length} fds were written with no bytes after them: a stream socket can pass fds only with at least one byte`));
      return;
    }
    try {
      this.#socket.shutdown('write');
    } catch (err) {
      done(err as Error);
      return;
    }
    done();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#state = 'closed';
    this.#watcher?.close(); // the uv handle must go before the fd
    this.#watcher = null;
    this.#socket?.close();
    this.#socket = null;
    this.#fds.closeAll();
    this.#metas = [];
    this.#metaHead = 0;
    this.#carriedFds = [];
    this.#carriedRequests = [];
    const pending = this.#pending;
    this.#pending = null;
    this.#waitingWritable = false;
    const finalDone = this.#finalDone;
    this.#finalDone = null;
    cb(err);
    pending?.done(err ?? destroyedError());
    finalDone?.(err ?? destroyedError());
  }

  #attach(socket: UnixSocket): void {
    this.#socket = socket;
    this.fd = socket.fd;
    this.#state = 'connected';
    this.#watcher = new Watcher(socket.fd, (readable, writable) => this.#onReady(readable, writable));
    if (!this.#referenced) this.#watcher.unref();
  }

  #connected(): void {
    if (this.destroyed) return;
    this.emit('connected');
    if (this.#pending !== null) this.#continueWrite();
    else if (this.#finalDone !== null) {
      const done = this.#finalDone;
      this.#finalDone = null;
      this._final(done);
    }
    if (this.#readRequested) this.#readSome();
  }

  /** Where reading stands: bytes pushed minus bytes still buffered (unknowable once decoded to text). */
  #consumed(): number {
    return this.readableEncoding !== null ? Infinity : this.#pushed - this.readableLength;
  }

  #wantsRead(): boolean {
    return (
      this.#readRequested &&
      !this.#eof &&
      this.#socket !== null &&
      // Paused (pause() without a 'readable' listener): stop reading the kernel, so a paused
      // stream does not keep the process alive.
      !(this.readableFlowing === false && this.listenerCount('readable') === 0)
    );
  }

  #updateInterest(): void {
    const watcher = this.#watcher;
    if (watcher === null) return;
    try {
      watcher.want(this.#wantsRead(), this.#waitingWritable);
    } catch (err) {
      this.destroy(err as Error);
    }
  }

  #onReady(readable: boolean, writable: boolean): void {
    // User code runs in here ('data', write callbacks): its exceptions must surface, not vanish in the FFI callback.
    try {
      if (writable && this.#pending !== null) this.#continueWrite();
      if (readable) this.#readSome();
      else this.#updateInterest();
    } catch (err) {
      rethrow(err);
    }
  }

  #readSome(): void {
    const socket = this.#socket!;
    for (let i = 0; i < READS_PER_TURN && this.#wantsRead(); i++) {
      let msg;
      const into = (this.#readBuffer ??= Buffer.allocUnsafe(READ_BYTES));
      try {
        msg = socketSteps.recv(socket, READ_BYTES, C.SCM_MAX_FD, into);
      } catch (err) {
        this.destroy(err as Error);
        return;
      }
      if (msg === AGAIN) break;
      if (msg === null) {
        this.#onEnd();
        return;
      }
      const received = msg.fds;
      if (received.length > 0) {
        const fds = received.map((f) => f.release());
        this.#fds.push(fds, this.#pushed + msg.data.length - 1);
        this.emit('fds', fds);
      }
      let data = msg.data;
      if (data.length >= VIEW_BYTES) this.#readBuffer = null;
      else {
        data = Buffer.allocUnsafe(data.length);
        msg.data.copy(data);
      }
      this.#pushed += data.length;
      this.#readRequested = this.push(data);
    }
    this.#updateInterest();
  }

  #onEnd(): void {
    this.#eof = true;
    this.#readRequested = false;
    this.#updateInterest();
    this.push(null);
    // Nothing left to consume: let 'end' (and so auto-destroy) come without another read call.
    if (this.readableLength === 0) super.read(0);
  }

  /** Send units until one would block (then wait for writability) or all went (then `done`). */
  #continueWrite(): void {
    const pending = this.#pending!;
    const socket = this.#socket!;
    while (pending.next < pending.units.length) {
      const unit = pending.units[pending.next];
      let finished = true;
      try {
        if (unit.op !== null) finished = socketSteps.send(socket, unit.op);
      } catch (err) {
        this.#pending = null;
        this.#setWaitingWritable(false);
        pending.done(err as Error);
        return;
      }
      if (!finished) {
        this.#setWaitingWritable(true);
        return;
      }
      pending.next++;
      for (const r of unit.requests) r.callback!(r);
      if (this.#pending !== pending) return; // a callback destroyed the stream
    }
    this.#pending = null;
    this.#setWaitingWritable(false);
    pending.done();
  }

  #setWaitingWritable(on: boolean): void {
    if (this.#waitingWritable === on) return;
    this.#waitingWritable = on;
    this.#updateInterest();
  }

  /** The bytes to hand to the Writable for an fds array or `{ data, fds, callback }`; its fds and callback wait in `#metas`. */
  #tag(chunk: unknown): Buffer {
    let data: Buffer;
    let fds: number[];
    let request: WriteRequest | null = null;
    if (Array.isArray(chunk)) {
      fds = toFdNumbers(chunk);
      data = NO_BYTES;
    } else if (chunk instanceof Uint8Array) {
      return toData(chunk); // a plain Uint8Array: bytes only
    } else if (chunk !== null && typeof chunk === 'object') {
      request = chunk as WriteRequest;
      if (request.callback !== undefined && typeof request.callback !== 'function') throw invalidArgType('callback', 'a function', request.callback);
      if (request.data === undefined && request.fds === undefined) throw invalidArgType('chunk', 'an object with data and/or fds', chunk);
      data = request.data === undefined || request.data === null ? NO_BYTES : toData(request.data);
      if (request.fds !== undefined && !Array.isArray(request.fds)) throw invalidArgType('fds', 'an array of fds', request.fds);
      fds = toFdNumbers(request.fds);
    } else {
      throw invalidArgType('chunk', 'a Buffer, a string, an array of fds or an object { data, fds, callback }', chunk);
    }
    // Tagged with the number the caller gives this chunk next (`#written`).
    if (fds.length > 0 || request?.callback !== undefined) this.#metas.push({ seq: this.#written, fds, request });
    return data;
  }
}

/** @internal a USocket on a connection UServer accepted (no 'connected' event, as in usocket). */
export function acceptedUSocket(socket: UnixSocket): USocket {
  const stream = new USocket();
  attachAccepted(stream, socket);
  return stream;
}
