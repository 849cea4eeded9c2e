// `virtctl ssh` and `virtctl scp`: the machine's own OpenSSH client (`ssh`, `scp`) reaches the guest through the API
// server, with this same virtctl's `port-forward --stdio` as its ProxyCommand, as KubeVirt's virtctl does in its
// local-client mode. Keys, agents, known hosts, ~/.ssh/config and every other ssh option work as they always do;
// virtctl only names the VM, builds the ProxyCommand and hands over ssh's exit code.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import type { ConnectionFlags } from './client.ts';
import { UsageError, VirtctlError } from './errors.ts';
import { parseTarget, type PortForwardTarget } from './portforward.ts';

/** The flags `ssh` and `scp` share (KubeVirt's names and short forms). */
export interface SshFlags {
  /** The guest user (`-l`, or `USER@` in the target); ssh's default (the local user) when absent. */
  user: string | undefined;
  /** `-i`: the private key; ssh's defaults and agent when absent. */
  identityFile: string | undefined;
  /** `-p`: the guest port the tunnel goes to (default 22). */
  port: number;
  /** `--local-ssh-opts`, each passed to the client as one argument, in order. */
  localSshOpts: string[];
  /** `--known-hosts`: the known_hosts file; ssh's own default when absent. */
  knownHosts: string | undefined;
}

export interface SshOptions extends SshFlags {
  target: PortForwardTarget;
  /** `-c`: the command to run in the guest instead of a login shell. */
  command: string | undefined;
}

export interface ScpOptions extends SshFlags {
  target: PortForwardTarget;
  /** Whether the copy goes from the local path to the guest (else from the guest to the local path). */
  toGuest: boolean;
  local: string;
  remotePath: string;
  recursive: boolean;
  preserve: boolean;
}

type Spec = {
  usage: string;
  summary: string;
  details: string;
  options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;
};

const SHARED_OPTIONS: Spec['options'] = {
  username: { type: 'string', short: 'l' },
  'identity-file': { type: 'string', short: 'i' },
  port: { type: 'string', short: 'p' },
  'local-ssh-opts': { type: 'string', short: 't', multiple: true },
  'known-hosts': { type: 'string' },
};

const SHARED_FLAGS =
  '  -l, --username USER        the guest user (default: USER@ in the target, else ssh’s default)\n' +
  '  -i, --identity-file FILE   the private key (default: ssh’s keys and agent)\n' +
  '  -p, --port PORT            the guest’s SSH port (default 22)\n' +
  '  -t, --local-ssh-opts OPT   one more argument for the local client, e.g.\n' +
  '                             --local-ssh-opts="-o StrictHostKeyChecking=no" (repeatable)\n' +
  '      --known-hosts FILE     the known_hosts file (default: ssh’s own)\n';

const TUNNEL =
  'The local OpenSSH client runs with "virtctl port-forward --stdio" as its ProxyCommand, so the connection goes\n' +
  'through the API server (verb "get" on virtualmachines/portforward or virtualmachineinstances/portforward) and\n' +
  'needs no route to the VM. TYPE is vm or vmi; the namespace comes from NAME.NAMESPACE, TYPE/NAME/NAMESPACE, -n,\n' +
  'or the context. Known hosts are recorded under the name vm.NAME.NAMESPACE (or vmi.…).\n\n';

export const SSH_COMMAND: Spec = {
  usage:
    'ssh [USER@]TYPE/NAME[.NAMESPACE] [-i FILE] [-l USER] [-p PORT] [-c COMMAND] [--local-ssh-opts=OPT]...',
  summary: 'Open an SSH connection to a virtual machine (the local ssh client, through the API server).',
  details:
    TUNNEL +
    'Flags:\n' +
    '  -c, --command COMMAND      run COMMAND in the guest instead of a login shell\n' +
    SHARED_FLAGS +
    '\nThe exit code is ssh’s: the command’s own, or 255 when the connection failed.\n\n' +
    'Examples:\n' +
    '  virtctl ssh -i ~/.ssh/id_ed25519 root@vm/web\n' +
    "  virtctl ssh root@vmi/web.team-a -c 'uptime'\n",
  options: { ...SHARED_OPTIONS, command: { type: 'string', short: 'c' } },
};

export const SCP_COMMAND: Spec = {
  usage: 'scp [-r] [--preserve] [-i FILE] [-l USER] [-p PORT] SOURCE DESTINATION',
  summary: 'Copy files to or from a virtual machine (the local scp client, through the API server).',
  details:
    TUNNEL +
    'One of SOURCE and DESTINATION is local, the other [USER@]TYPE/NAME[.NAMESPACE]:PATH in the guest.\n' +
    'OpenSSH’s scp speaks SFTP by default; for a guest without an SFTP server add --local-ssh-opts=-O.\n\n' +
    'Flags:\n' +
    '  -r, --recursive            copy directories recursively\n' +
    '      --preserve             keep modification times and modes\n' +
    SHARED_FLAGS +
    '\nExamples:\n' +
    '  virtctl scp ./app.tar root@vm/web:/tmp/\n' +
    '  virtctl scp -r root@vmi/web.team-a:/var/log ./logs\n',
  options: {
    ...SHARED_OPTIONS,
    recursive: { type: 'boolean', short: 'r' },
    preserve: { type: 'boolean' },
  },
};

/** `[USER@]TYPE/NAME[.NAMESPACE]` (or `TYPE/NAME/NAMESPACE`). */
export function parseSshTarget(arg: string): { user: string | undefined; target: PortForwardTarget } {
  const at = arg.lastIndexOf('@');
  if (at === -1) return { user: undefined, target: parseTarget(arg) };
  const user = arg.slice(0, at);
  if (user === '') throw new UsageError(`expected a user name before "@" in ${JSON.stringify(arg)}`);
  if (at === arg.length - 1) throw new UsageError(`expected TYPE/NAME after "@" in ${JSON.stringify(arg)}`);
  return { user, target: parseTarget(arg.slice(at + 1)) };
}

type Values = Record<string, string | boolean | string[] | undefined>;

function sharedFlags(values: Values, userInTarget: string | undefined): SshFlags {
  const text = (key: string): string | undefined => {
    const value = values[key];
    if (value === '') throw new UsageError(`--${key} must not be empty`);
    return typeof value === 'string' ? value : undefined;
  };
  const rawPort = text('port');
  let port = 22;
  if (rawPort !== undefined) {
    port = /^\d{1,5}$/.test(rawPort) ? Number(rawPort) : NaN;
    if (!(port >= 1 && port <= 65535)) {
      throw new UsageError(`--port must be a number from 1 to 65535, got ${JSON.stringify(rawPort)}`);
    }
  }
  const flagUser = text('username');
  if (flagUser !== undefined && userInTarget !== undefined && flagUser !== userInTarget) {
    throw new UsageError(
      `the user is given twice: ${JSON.stringify(userInTarget)} in the target and ${JSON.stringify(flagUser)} ` +
        'with --username; give one',
    );
  }
  const opts = values['local-ssh-opts'];
  return {
    user: userInTarget ?? flagUser,
    identityFile: text('identity-file'),
    port,
    localSshOpts: Array.isArray(opts) ? opts : [],
    knownHosts: text('known-hosts'),
  };
}

function checkNamespace(target: PortForwardTarget, connection: ConnectionFlags, arg: string): void {
  if (
    target.namespace !== undefined &&
    connection.namespace !== undefined &&
    target.namespace !== connection.namespace
  ) {
    throw new UsageError(
      `the namespace is given twice: ${JSON.stringify(target.namespace)} in ${JSON.stringify(arg)} and ` +
        `${JSON.stringify(connection.namespace)} with -n; give one`,
    );
  }
}

/** The arguments of `virtctl ssh`, checked (cli.ts has parsed the flags with SSH_COMMAND.options). */
export function sshOptions(values: Values, positionals: string[], connection: ConnectionFlags): SshOptions {
  if (positionals.length !== 1) {
    throw new UsageError(
      `"ssh" takes one target, got ${positionals.length === 0 ? 'none' : positionals.join(' ')} (quote a ` +
        `command and pass it with -c); usage: virtctl ${SSH_COMMAND.usage}`,
    );
  }
  const arg = positionals[0] ?? '';
  const { user, target } = parseSshTarget(arg);
  checkNamespace(target, connection, arg);
  const command = values.command;
  if (command === '') throw new UsageError('--command must not be empty');
  return { ...sharedFlags(values, user), target, command: typeof command === 'string' ? command : undefined };
}

/** A guest path of scp, `[USER@]TYPE/NAME[.NAMESPACE]:PATH`, or undefined for a local path. */
function remoteArgument(
  arg: string,
): { user: string | undefined; target: PortForwardTarget; path: string } | undefined {
  const colon = arg.indexOf(':');
  if (colon === -1) return undefined;
  const before = arg.slice(0, colon);
  const kind = /^(?:[^@/]+@)?([^/]+)\//.exec(before)?.[1]?.toLowerCase();
  const kinds = ['vm', 'vms', 'virtualmachine', 'virtualmachines'];
  const instanceKinds = ['vmi', 'vmis', 'virtualmachineinstance', 'virtualmachineinstances'];
  if (kind === undefined || ![...kinds, ...instanceKinds].includes(kind)) return undefined;
  return { ...parseSshTarget(before), path: arg.slice(colon + 1) };
}

/** The arguments of `virtctl scp`, checked. */
export function scpOptions(values: Values, positionals: string[], connection: ConnectionFlags): ScpOptions {
  if (positionals.length !== 2) {
    throw new UsageError(
      `"scp" takes a source and a destination, got ${positionals.length === 0 ? 'none' : positionals.join(' ')}; ` +
        `usage: virtctl ${SCP_COMMAND.usage}`,
    );
  }
  const [source = '', destination = ''] = positionals;
  const from = remoteArgument(source);
  const to = remoteArgument(destination);
  if ((from === undefined) === (to === undefined)) {
    throw new UsageError(
      `one of source and destination must be in the guest, as [USER@]TYPE/NAME[.NAMESPACE]:PATH, and the other ` +
        `local; got ${JSON.stringify(source)} and ${JSON.stringify(destination)}`,
    );
  }
  const remote = (from ?? to) as NonNullable<typeof from>;
  checkNamespace(remote.target, connection, from === undefined ? destination : source);
  return {
    ...sharedFlags(values, remote.user),
    target: remote.target,
    toGuest: to !== undefined,
    local: from === undefined ? source : destination,
    remotePath: remote.path,
    recursive: values.recursive === true,
    preserve: values.preserve === true,
  };
}

/** One word for `sh -c`: as is when it is plain, else in single quotes. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The command that runs this same virtctl: the Node binary, its flags (e.g. --conditions), and the script. */
export function virtctlCommand(): string[] {
  return [process.execPath, ...process.execArgv, process.argv[1] ?? 'virtctl'];
}

/**
 * ssh's ProxyCommand: `VIRTCTL port-forward --stdio=true TYPE/NAME.NAMESPACE PORT` with the connection flags given
 * to this virtctl. ssh runs it through the shell after expanding `%` tokens, so each word is shell-quoted and every
 * `%` doubled. A name with a dot uses the TYPE/NAME/NAMESPACE form, which is not ambiguous.
 */
export function proxyCommand(
  virtctl: string[],
  connection: ConnectionFlags,
  target: PortForwardTarget & { namespace: string },
  port: number,
): string {
  const where = target.name.includes('.')
    ? `${target.kind}/${target.name}/${target.namespace}`
    : `${target.kind}/${target.name}.${target.namespace}`;
  const words = [
    ...virtctl,
    'port-forward',
    '--stdio=true',
    where,
    String(port),
    ...(connection.kubeconfig === undefined ? [] : ['--kubeconfig', connection.kubeconfig]),
    ...(connection.context === undefined ? [] : ['--context', connection.context]),
  ];
  return words.map(shellQuote).join(' ').replaceAll('%', '%%');
}

/** The host name ssh sees (and records in known_hosts): `vm.NAME.NAMESPACE` or `vmi.NAME.NAMESPACE`. */
export function sshHost(target: PortForwardTarget & { namespace: string }): string {
  return `${target.kind}.${target.name}.${target.namespace}`;
}

/** An ssh_config value: in double quotes when it has spaces. */
function configValue(value: string): string {
  return /\s/.test(value) ? `"${value}"` : value;
}

function clientOptions(flags: SshFlags, proxy: string): string[] {
  return [
    '-o',
    `ProxyCommand=${proxy}`,
    ...(flags.knownHosts === undefined ? [] : ['-o', `UserKnownHostsFile=${configValue(flags.knownHosts)}`]),
    ...flags.localSshOpts,
    ...(flags.identityFile === undefined ? [] : ['-i', flags.identityFile]),
  ];
}

function resolved(target: PortForwardTarget, namespace: string): PortForwardTarget & { namespace: string } {
  return { ...target, namespace: target.namespace ?? namespace };
}

/** The arguments of the local `ssh` for `virtctl ssh`; `namespace` applies when the target names none. */
export function sshArguments(
  options: SshOptions,
  namespace: string,
  connection: ConnectionFlags,
  virtctl: string[],
): string[] {
  const target = resolved(options.target, namespace);
  const host = sshHost(target);
  return [
    ...clientOptions(options, proxyCommand(virtctl, connection, target, options.port)),
    options.user === undefined ? host : `${options.user}@${host}`,
    ...(options.command === undefined ? [] : [options.command]),
  ];
}

/** The arguments of the local `scp` for `virtctl scp`. */
export function scpArguments(
  options: ScpOptions,
  namespace: string,
  connection: ConnectionFlags,
  virtctl: string[],
): string[] {
  const target = resolved(options.target, namespace);
  const host = sshHost(target);
  const remote = `${options.user === undefined ? '' : `${options.user}@`}${host}:${options.remotePath}`;
  return [
    ...clientOptions(options, proxyCommand(virtctl, connection, target, options.port)),
    ...(options.recursive ? ['-r'] : []),
    ...(options.preserve ? ['-p'] : []),
    '--',
    ...(options.toGuest ? [options.local, remote] : [remote, options.local]),
  ];
}

export interface ClientIo {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

/**
 * Runs the local client (`ssh` or `scp`) and resolves with its exit code (128 + the signal's number when a
 * signal ended it, as a shell reports it). The process's own terminal streams are handed over as they are, so an
 * interactive session gets the terminal; other streams are piped. Ctrl+C goes to the client, not to virtctl.
 */
export async function runLocalClient(program: string, args: string[], io: ClientIo): Promise<number> {
  const own = [io.stdin === process.stdin, io.stdout === process.stdout, io.stderr === process.stderr];
  const child = spawn(program, args, { stdio: own.map((o) => (o ? 'inherit' : 'pipe')) });
  if (!own[0] && child.stdin) io.stdin.pipe(child.stdin);
  if (!own[1] && child.stdout) child.stdout.pipe(io.stdout, { end: false });
  if (!own[2] && child.stderr) child.stderr.pipe(io.stderr, { end: false });
  const ignore = (): void => undefined;
  process.on('SIGINT', ignore);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          err.code === 'ENOENT'
            ? new VirtctlError(
                `the local "${program}" client is not installed or not on PATH; install OpenSSH's client ` +
                  '(Debian and Ubuntu: openssh-client)',
              )
            : new VirtctlError(`could not run the local "${program}": ${err.message}`),
        );
      });
      child.once('close', (code, signal) => {
        resolve(code ?? 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0)));
      });
    });
  } finally {
    process.off('SIGINT', ignore);
    if (!own[0]) io.stdin.unpipe();
  }
}
