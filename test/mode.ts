/**
 * Which capability mode the suite runs in. FDPASS_CAPABILITIES=minimal (test only, see
 * docs/platforms.md) makes fdpass use its fallbacks; tests use these where the behaviour
 * legitimately differs: no SEQPACKET (so 'framed' is the message type), no credential messages.
 */
import { rmSync } from 'node:fs';
import { encodeUnixAddress } from '../src/address.js';
import { defaultMessageType } from '../src/connect.js';
import { createSocket } from '../src/create.js';
import { adopt, platform, socketPair } from '../src/index.js';
import { C, E, L, check, sys } from '../src/libc.js';
import { NOTIFY_MAX_BYTES, listenNotify, type NotifyMessage } from '../src/protocols/systemd.js';

export const MINIMAL = platform.capabilityMode === 'minimal';
/** The type fdpass picks itself for messages: 'seqpacket', or 'framed' where there is no SEQPACKET. */
export const MESSAGE_TYPE = defaultMessageType as 'seqpacket' | 'framed';
/** What the kernel reports for MESSAGE_TYPE (SO_TYPE). */
export const MESSAGE_KERNEL_TYPE: 'seqpacket' | 'stream' = MESSAGE_TYPE === 'framed' ? 'stream' : 'seqpacket';
/** Credential messages (passCredentials(), the credentials send option, listenNotify). */
export const CREDENTIAL_MESSAGES = platform.capabilities.credentialMessages !== null;
/**
 * A message type a peer that is not fdpass (Python, C) speaks without extra code: 'seqpacket',
 * or 'dgram' where there is no SEQPACKET (a socketpair keeps datagram boundaries on every platform).
 */
export const PEER_MESSAGE_TYPE: 'seqpacket' | 'dgram' = MESSAGE_TYPE === 'seqpacket' ? 'seqpacket' : 'dgram';
/** Fixtures read fd 3 as this type when set (a test that makes a pair of an explicit type). */
export const SOCKET_TYPE_ENV = 'FDPASS_TEST_SOCKET_TYPE';
/** Where a send to a closed peer raises SIGPIPE unless fdpass prevents it: stream sockets (Linux), so 'stream' and 'framed'. */
export function kernelStream(type: string): boolean {
  return type === 'stream' || type === 'framed';
}

/**
 * For a test of SEQPACKET-only kernel behaviour: where fdpass has no SEQPACKET, asking for it fails
 * at once with ERR_FDPASS_UNSUPPORTED — that is what such a test checks there. True: it did.
 */
export function seqpacketUnsupported(): boolean {
  if (MESSAGE_TYPE === 'seqpacket') return false;
  let code: string | undefined;
  try {
    socketPair('seqpacket');
  } catch (err) {
    code = (err as { code?: string }).code;
  }
  if (code !== 'ERR_FDPASS_UNSUPPORTED') throw new Error(`socketPair('seqpacket') without SEQPACKET: expected ERR_FDPASS_UNSUPPORTED, got ${code ?? 'a socket pair'}`);
  return true;
}

/** A notification as a test reads it: the sender's ids only where the platform has credential messages. */
export type ReceivedNotification = Omit<NotifyMessage, 'pid' | 'uid' | 'gid'> & { pid?: number; uid?: number; gid?: number };

/**
 * What tests read sd_notify messages with: listenNotify() — or, where the platform has no
 * credential messages (listenNotify() then fails with ERR_FDPASS_UNSUPPORTED), a bound datagram
 * socket read with recv(): the same bytes and fds, and no sender pid/uid/gid (the kernel sends none).
 */
export function notifyReceiver(target: string): {
  address: string;
  recv(options?: { signal?: AbortSignal }): Promise<ReceivedNotification>;
  close(): void;
  [Symbol.dispose](): void;
} {
  if (CREDENTIAL_MESSAGES) return listenNotify(target);
  let code: string | undefined;
  try {
    listenNotify(target).close();
  } catch (err) {
    code = (err as { code?: string }).code;
  }
  if (code !== 'ERR_FDPASS_UNSUPPORTED') throw new Error(`listenNotify() without credential messages: expected ERR_FDPASS_UNSUPPORTED, got ${code ?? 'a listener'}`);
  const address: { path: string } | { abstract: string } = target.startsWith('@') ? { abstract: target.slice(1) } : { path: target };
  const { sockaddr, length } = encodeUnixAddress(address, L.sockaddr_un, C, E);
  const fd = createSocket(C.AF_UNIX, C.SOCK_DGRAM, false);
  check('bind', sys.bind(fd, sockaddr, length) as number);
  const sock = adopt(fd);
  const close = (): void => {
    sock.close();
    if ('path' in address) rmSync(address.path, { force: true });
  };
  return {
    address: target,
    async recv(options) {
      const m = (await sock.recv({ maxBytes: NOTIFY_MAX_BYTES, signal: options?.signal }))!;
      const state = m.data.toString();
      return { state, fields: Object.fromEntries(state.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])), fds: m.fds };
    },
    close,
    [Symbol.dispose]: close,
  };
}
