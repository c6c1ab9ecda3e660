/**
 * fdpass — pass open file descriptors between processes over Unix domain sockets
 * (SCM_RIGHTS), from Node.js, with no native addon.
 */
export {
  UnixSocket,
  type Message, type Payload, type RecvOptions, type RecvSyncOptions, type RecvBatchOptions, type RecvBatchSyncOptions, type SendSyncOptions, type SignalOptions,
  type SocketType,
} from './socket.js';
export { socketPair, connect, connectSync, adopt, type ConnectOptions, type AddressOptions, type AdoptOptions } from './connect.js';
export { UnixServer, listen, adoptServer, type ListenOptions, type AdoptServerOptions } from './server.js';
export { Fd, describeFd, pipe, type FdDescription, type FdKind } from './fd.js';
export { FdPassError } from './errors.js';
export { fdOf, type FdLike } from './fdlike.js';
export type { Credentials, PeerCredentials } from './cmsg.js';
export type { SocketDescription, SocketFamily, SocketTypeName } from './sockopt.js';
export { platform } from './libc.js';
export {
  PidFd, peerPidFdOf, reopenFromProc, listProcessFds,
  type ProcessExit, type PidFdOpenOptions, type WaitExitOptions, type ProcessFdInfo, type ListFdsOptions,
} from './pidfd.js';
export {
  toNetSocket, toNetServer, toDgramSocket, toReadStream, toWriteStream, describeKind,
  type FdInput, type ToNetSocketOptions, type ToNetServerOptions, type ToDgramSocketOptions, type ToStreamOptions,
} from './node.js';
export type { SendOptions, HandOffOptions } from './socket.js';
export { spawnWithSocket, forkWithSocket, inheritedSocket, FDPASS_FD_ENV, FDPASS_TYPE_ENV, type SpawnWithSocketOptions, type ForkWithSocketOptions, type ChildWithSocket } from './spawn.js';
export * as multiprocessing from './protocols/multiprocessing.js';
export * as systemd from './protocols/systemd.js';
export * as oci from './protocols/console.js';
export { sendHandle, recvHandle, type HandleOptions } from './protocols/multiprocessing.js';
export { listenFds, listenServers, notify, ListenFd, type NotifyMessage } from './protocols/systemd.js';
export { receiveConsole, type ReceivedConsole } from './protocols/console.js';
export type { PeerInfo, Authorize } from './authorize.js';
export type { CredentialsOptions } from './socket.js';
export {
  USocket, USocket as UnixStream,
  type USocketOptions, type ReadWithFds, type WriteRequest,
} from './usocket/stream.js';
export { UServer, UServer as UnixStreamServer, type UServerListenOptions } from './usocket/server.js';
