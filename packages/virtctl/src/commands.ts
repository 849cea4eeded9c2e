// What each virtctl command does: the subresources.kubevirt.io call (the same paths and bodies as KubeVirt's
// virtctl, so either client works against either server), or for `expose` the core Service (expose.ts), and what
// it prints.
import type { Readable, Writable } from 'node:stream';
import { createRequire } from 'node:module';
import type { WebSocket } from 'ws';
import { ApiClient, UpgradeRefused, type ConnectionFlags } from './client.ts';
import type { Command, Invocation } from './cli.ts';
import { helpText } from './cli.ts';
import { attachConsole } from './console.ts';
import { expose } from './expose.ts';
import { SUBRESOURCE_GROUP, VirtctlError, failure, statusOf, type Action } from './errors.ts';
import { forwardPorts, pipeStdio, tunnelOpener } from './portforward.ts';
import { runLocalClient, scpArguments, sshArguments, virtctlCommand } from './ssh.ts';
import { proxyVnc } from './vnc.ts';

export const PLAIN_STREAM_PROTOCOL = 'plain.kubevirt.io';
const GROUP_VERSION = `${SUBRESOURCE_GROUP}/v1`;

export interface Io {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: Writable;
  stderr: Writable;
}

export function clientVersion(): string {
  const pkg = createRequire(import.meta.url)('../package.json') as { version: string };
  return `v${pkg.version}`;
}

export function subresourcePath(
  namespace: string,
  resource: 'virtualmachines' | 'virtualmachineinstances',
  name: string,
  subresource: string,
): string {
  const e = encodeURIComponent;
  return `/apis/${GROUP_VERSION}/namespaces/${e(namespace)}/${resource}/${e(name)}/${subresource}`;
}

function action(
  client: ApiClient,
  what: string,
  kind: Action['kind'],
  name: string,
  subresource: string,
  verb: Action['verb'],
): Action {
  return {
    what,
    kind,
    namespace: client.namespace,
    name,
    verb,
    resource: kind === 'VirtualMachine' ? 'virtualmachines' : 'virtualmachineinstances',
    subresource,
  };
}

async function put(client: ApiClient, act: Action, body: Record<string, unknown>): Promise<void> {
  const res = await client.request(
    'PUT',
    subresourcePath(act.namespace, act.resource, act.name, act.subresource),
    body,
  );
  if (res.status < 200 || res.status >= 300) throw failure(act, res.status, res.body);
}

const dryRunBody = (dryRun: boolean) => (dryRun ? { dryRun: ['All'] } : {});

/** Whether a refused console/VNC upgrade means "not yet": the VMI is missing, starting, or its handler not up. */
function worthWaiting(err: UpgradeRefused): boolean {
  const status = statusOf(err.body);
  const message = status.message ?? '';
  if (err.status === 404) return /virtualmachineinstance/.test(status.details?.kind ?? '');
  if (err.status === 400 || err.status === 409) return /not running|phase is/i.test(message);
  return err.status === 503 && /virt-handler/.test(message);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Opens a console/VNC websocket, waiting up to `waitMs` for the VMI to run. */
async function openStream(client: ApiClient, act: Action, io: Io, waitMs: number): Promise<WebSocket> {
  const deadline = Date.now() + waitMs;
  let told = false;
  for (;;) {
    try {
      return await client.websocket(subresourcePath(act.namespace, act.resource, act.name, act.subresource), [
        PLAIN_STREAM_PROTOCOL,
      ]);
    } catch (err) {
      if (!(err instanceof UpgradeRefused)) throw err;
      if (!worthWaiting(err) || Date.now() >= deadline) throw failure(act, err.status, err.body);
      if (!told) {
        io.stderr.write(`Waiting for VirtualMachineInstance ${act.namespace}/${act.name} to be running...\n`);
        told = true;
      }
      await sleep(1_000);
    }
  }
}

/**
 * Runs one command; resolves when it is done (with the exit code of the local client that `ssh` and `scp` ran),
 * rejects with a VirtctlError or UsageError.
 */
export async function execute(
  invocation: Invocation,
  io: Io,
  makeClient: (flags: ConnectionFlags) => ApiClient = (flags) => ApiClient.fromFlags(flags),
): Promise<number | void> {
  const command: Command = invocation.command;
  if (command.name === 'help') {
    io.stdout.write(helpText(command.topic));
    return;
  }
  const client = makeClient(invocation.connection);
  const say = (line: string): void => {
    io.stdout.write(`${line}\n`);
  };
  switch (command.name) {
    case 'start': {
      if (command.dryRun) say('Dry Run execution');
      const act = action(client, 'start', 'VirtualMachine', command.target, 'start', 'update');
      await put(client, act, {
        kind: 'StartOptions',
        apiVersion: GROUP_VERSION,
        ...(command.paused ? { paused: true } : {}),
        ...dryRunBody(command.dryRun),
      });
      return say(`VM ${command.target} was scheduled to start`);
    }
    case 'stop': {
      if (command.dryRun) say('Dry Run execution');
      const act = action(
        client,
        command.gracePeriod === undefined ? 'stop' : 'force stop',
        'VirtualMachine',
        command.target,
        'stop',
        'update',
      );
      await put(client, act, {
        kind: 'StopOptions',
        apiVersion: GROUP_VERSION,
        ...(command.gracePeriod === undefined ? {} : { gracePeriod: command.gracePeriod }),
        ...dryRunBody(command.dryRun),
      });
      return say(`VM ${command.target} was scheduled to stop`);
    }
    case 'restart': {
      if (command.dryRun) say('Dry Run execution');
      const act = action(
        client,
        command.gracePeriod === undefined ? 'restart' : 'force restart',
        'VirtualMachine',
        command.target,
        'restart',
        'update',
      );
      await put(client, act, {
        kind: 'RestartOptions',
        apiVersion: GROUP_VERSION,
        ...(command.gracePeriod === undefined ? {} : { gracePeriodSeconds: command.gracePeriod }),
        ...dryRunBody(command.dryRun),
      });
      return say(`VM ${command.target} was scheduled to restart`);
    }
    case 'pause':
    case 'unpause': {
      if (command.dryRun) say('Dry Run execution');
      if (command.kind === 'vm') await requireVM(client, command.target, command.name);
      const act = action(
        client,
        command.name,
        'VirtualMachineInstance',
        command.target,
        command.name,
        'update',
      );
      try {
        await put(client, act, {
          kind: command.name === 'pause' ? 'PauseOptions' : 'UnpauseOptions',
          apiVersion: GROUP_VERSION,
          ...dryRunBody(command.dryRun),
        });
      } catch (err) {
        if (
          command.kind === 'vm' &&
          err instanceof VirtctlError &&
          /VirtualMachineInstance ".*" not found/.test(err.message)
        ) {
          throw new VirtctlError(
            `cannot ${command.name} VirtualMachine ${client.namespace}/${command.target}: it is not running ` +
              `(no VirtualMachineInstance); start it with: virtctl start ${command.target}`,
          );
        }
        throw err;
      }
      return say(`VMI ${command.target} was scheduled to ${command.name}`);
    }
    case 'softreboot': {
      const act = action(
        client,
        'soft reboot',
        'VirtualMachineInstance',
        command.target,
        'softreboot',
        'update',
      );
      await put(client, act, {});
      return say(`VMI ${command.target} was scheduled to softreboot`);
    }
    case 'guestosinfo': {
      const act = action(
        client,
        'read the guest OS info of',
        'VirtualMachineInstance',
        command.target,
        'guestosinfo',
        'get',
      );
      const res = await client.request(
        'GET',
        subresourcePath(act.namespace, act.resource, act.name, act.subresource),
      );
      if (res.status !== 200) throw failure(act, res.status, res.body);
      return say(JSON.stringify(JSON.parse(res.body), null, 2));
    }
    case 'console': {
      const act = action(
        client,
        'open the console of',
        'VirtualMachineInstance',
        command.target,
        'console',
        'get',
      );
      const ws = await openStream(client, act, io, command.timeoutMinutes * 60_000);
      return attachConsole(ws, io, command.target);
    }
    case 'vnc': {
      const act = action(client, 'open VNC to', 'VirtualMachineInstance', command.target, 'vnc', 'get');
      const ws = await openStream(client, act, io, 0);
      return proxyVnc(ws, {
        address: command.address,
        port: command.port,
        proxyOnly: command.proxyOnly,
        stdout: io.stdout,
        stderr: io.stderr,
      });
    }
    case 'expose':
      return say(await expose(client, command.kind, command.target, command.options));
    case 'port-forward': {
      const open = tunnelOpener(client, command.target);
      const [first] = command.ports;
      if (command.stdio && first !== undefined) return pipeStdio(await open(first), io);
      return forwardPorts({
        address: command.address,
        ports: command.ports,
        open,
        stdout: io.stdout,
        stderr: io.stderr,
      });
    }
    case 'ssh':
      return runLocalClient(
        'ssh',
        sshArguments(command.options, client.namespace, invocation.connection, virtctlCommand()),
        io,
      );
    case 'scp':
      return runLocalClient(
        'scp',
        scpArguments(command.options, client.namespace, invocation.connection, virtctlCommand()),
        io,
      );
    case 'version': {
      say(`Client Version: ${clientVersion()}`);
      const res = await client.request('GET', `/apis/${GROUP_VERSION}/version`);
      if (res.status !== 200) {
        const act = action(client, 'read the version of', 'VirtualMachine', 'virt-api', 'version', 'get');
        throw failure(act, res.status, res.body);
      }
      const info = JSON.parse(res.body) as { gitVersion?: string; platform?: string };
      return say(
        `Server Version: ${info.gitVersion ?? 'unknown'}${info.platform === undefined ? '' : ` (${info.platform})`}`,
      );
    }
  }
}

/** `pause vm NAME` first checks that the VM exists, as KubeVirt's virtctl does. */
async function requireVM(client: ApiClient, name: string, what: string): Promise<void> {
  const path = `/apis/kubevirt.io/v1/namespaces/${encodeURIComponent(client.namespace)}/virtualmachines/${encodeURIComponent(name)}`;
  const res = await client.request('GET', path);
  if (res.status === 200) return;
  const act: Action = {
    what: `read (to ${what})`,
    kind: 'VirtualMachine',
    namespace: client.namespace,
    name,
    verb: 'get',
    resource: 'virtualmachines',
    subresource: '',
  };
  if (res.status === 403) {
    throw new VirtctlError(
      `forbidden: you may not read VirtualMachine ${client.namespace}/${name}: this needs verb "get" on ` +
        `"virtualmachines" in API group "kubevirt.io"\n  the API server said: ${statusOf(res.body).message ?? ''}`,
    );
  }
  throw failure(act, res.status, res.body);
}
