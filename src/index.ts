/**
 * fdpass — pass open file descriptors between processes over Unix domain sockets
 * (SCM_RIGHTS), from Node.js, with no native addon.
 */
export {
  UnixSocket, UnixServer, socketPair, listen, connect, connectSync, adopt, adoptServer,
  type Message, type Payload, type RecvOptions, type RecvSyncOptions, type SendSyncOptions, type SignalOptions,
  type SocketType, type ListenOptions, type ConnectOptions, type AddressOptions,
} from './socket.js';
export { Fd, describeFd, pipe, type FdDescription, type FdKind } from './fd.js';
export { FdPassError } from './errors.js';
export { fdOf, type FdLike } from './node.js';
export type { Credentials } from './cmsg.js';
export type { SocketDescription, SocketFamily, SocketTypeName } from './sockopt.js';
export { platform } from './libc.js';
