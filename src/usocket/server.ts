/** UServer: `usocket`'s server, emitting 'connection' with a USocket for each accepted stream connection. */
import { EventEmitter } from 'node:events';
import { integerOption } from '../args.js';
import { FdPassError, invalidArgType } from '../errors.js';
import { listen, type ListenOptions, type UnixServer } from '../server.js';
import { acceptedUSocket, USocket } from './stream.js';

export interface UServerListenOptions {
  /** Path to listen on; a leading NUL byte (`'\0name'`) means a Linux abstract name. */
  path: string;
  /** listen(2) backlog (default 16, as in usocket). */
  backlog?: number;
  /** Permissions of the socket file (default 0o600: only this user can connect). */
  mode?: number;
}

function rethrow(err: unknown): void {
  process.nextTick(() => {
    throw err;
  });
}

/** Listens on a Unix stream socket; each connection arrives as a USocket ('connection'). */
export class UServer extends EventEmitter {
  /** pause() was called (and resume() not since). */
  paused = false;
  listening = false;
  /** The listening descriptor, once listening. */
  fd: number | undefined;
  #server: UnixServer | null = null;
  /** Aborts the pending accept on pause() and close(). */
  #accepting: AbortController | null = null;
  #referenced = true;

  /**
   * `listen(path[, backlog][, cb])` or `listen({ path, backlog, mode }[, cb])`. `cb` is added as
   * a 'listening' listener. A stale socket file is replaced; a live one fails with EADDRINUSE.
   */
  listen(target: string | UServerListenOptions, backlog?: number | (() => void), onListening?: () => void): this {
    if (this.#server !== null || this.listening) throw new FdPassError('ERR_SERVER_ALREADY_LISTEN', 'listen on already listened UServer');
    let path: unknown;
    let mode: number | undefined;
    if (target !== null && typeof target === 'object') {
      path = target.path;
      mode = target.mode;
      if (typeof backlog === 'function') onListening = backlog;
      backlog = target.backlog;
    } else {
      path = target;
      if (typeof backlog === 'function') {
        onListening = backlog;
        backlog = undefined;
      }
    }
    if (typeof path !== 'string') throw invalidArgType('path', 'a string', path);
    const backlogValue = integerOption(backlog, 'backlog', 0, 0x7fffffff, 16);
    if (onListening !== undefined) {
      if (typeof onListening !== 'function') throw invalidArgType('callback', 'a function', onListening);
      this.once('listening', onListening);
    }
    const options: ListenOptions = path.startsWith('\0')
      ? { abstract: path.slice(1), type: 'stream', backlog: backlogValue }
      : { path, type: 'stream', backlog: backlogValue, mode };
    let server: UnixServer;
    try {
      server = listen(options);
    } catch (err) {
      if (err instanceof TypeError || err instanceof RangeError) throw err;
      process.nextTick(() => this.emit('error', err));
      return this;
    }
    if (!this.#referenced) server.unref();
    this.#server = server;
    this.fd = server.fd;
    process.nextTick(() => {
      if (this.#server !== server) return; // closed meanwhile
      this.listening = true;
      this.emit('listening');
      if (!this.paused && this.#server === server) this.#startAccepting(server);
    });
    return this;
  }

  /** Stop accepting: no 'connection' until resume(). A paused server does not keep the process alive. */
  pause(): this {
    this.paused = true;
    this.#accepting?.abort();
    this.#accepting = null;
    return this;
  }

  resume(): this {
    this.paused = false;
    if (this.listening && this.#server !== null && this.#accepting === null) this.#startAccepting(this.#server);
    return this;
  }

  /**
   * Stop listening and remove the socket file (if this server created it). Accepted connections
   * stay open. Emits 'close' (usocket emits nothing).
   */
  close(onClose?: () => void): this {
    if (onClose !== undefined) this.once('close', onClose);
    const server = this.#server;
    if (server === null) return this;
    this.#accepting?.abort();
    this.#accepting = null;
    this.#server = null;
    this.listening = false;
    server.close();
    process.nextTick(() => this.emit('close'));
    return this;
  }

  /** Let a listening server keep the process alive (the default). */
  ref(): this {
    this.#referenced = true;
    this.#server?.ref();
    return this;
  }

  unref(): this {
    this.#referenced = false;
    this.#server?.unref();
    return this;
  }

  #startAccepting(server: UnixServer): void {
    const controller = new AbortController();
    this.#accepting = controller;
    const next = (): void => {
      server.accept({ signal: controller.signal }).then(
        (conn) => {
          // Accepted before a pause() or close() could stop it: it is still a connection to hand out.
          let stream: USocket;
          try {
            stream = acceptedUSocket(conn);
          } catch (err) {
            conn.close();
            this.#fail(server, err);
            return;
          }
          try {
            this.emit('connection', stream);
          } catch (err) {
            rethrow(err);
          }
          if (!controller.signal.aborted && this.#server === server) next();
        },
        (err: Error & { code?: string }) => {
          if (controller.signal.aborted || err.code === 'ERR_FDPASS_CLOSED') return;
          this.#fail(server, err);
        },
      );
    };
    next();
  }

  /** accept failed (EMFILE, …): like usocket, stop listening and report it. */
  #fail(server: UnixServer, err: unknown): void {
    if (this.#server !== server) return;
    this.#accepting?.abort();
    this.#accepting = null;
    this.#server = null;
    this.listening = false;
    server.close();
    try {
      this.emit('error', err);
    } catch (e) {
      rethrow(e);
    }
  }
}
