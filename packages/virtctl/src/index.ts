// @kubevirt-ts/virtctl: the CLI as a library (tests and tools drive it in-process); the binary is main.ts.
export { ApiClient, UpgradeRefused, loadKubeConfig, type ConnectionFlags, type Response } from './client.ts';
export { helpText, parseCommandLine, programName, type Command, type Invocation } from './cli.ts';
export { PLAIN_STREAM_PROTOCOL, clientVersion, execute, subresourcePath, type Io } from './commands.ts';
export { ESCAPE_BYTE, attachConsole, closeProblem, splitAtEscape, type ConsoleIo } from './console.ts';
export {
  API_SERVICE,
  UsageError,
  VirtctlError,
  failure,
  statusOf,
  unreachable,
  type Action,
  type ApiStatus,
  type Kind,
} from './errors.ts';
export {
  buildService,
  expose,
  exposeKind,
  podNetworkPorts,
  type ExposeKind,
  type ExposeOptions,
} from './expose.ts';
export {
  forwardPorts,
  parsePort,
  parseTarget,
  pipeStdio,
  portForwardSubresource,
  tunnelFailure,
  tunnelOpener,
  type ForwardOptions,
  type ForwardedPort,
  type PortForwardTarget,
} from './portforward.ts';
export {
  parseSshTarget,
  proxyCommand,
  runLocalClient,
  scpArguments,
  shellQuote,
  sshArguments,
  sshHost,
  virtctlCommand,
  type ScpOptions,
  type SshFlags,
  type SshOptions,
} from './ssh.ts';
export { proxyVnc, type VncOptions } from './vnc.ts';
