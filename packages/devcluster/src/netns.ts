// The cluster's network namespace: created with iproute2 (`ip netns`), holding a bridge with the control plane's
// address. No veth leads to the host and there is no default route, so nothing inside can send traffic outside
// the namespaces devcluster made. Nodes (devcluster part 2) get their own namespaces, named with the same prefix
// and joined to the bridge by veth pairs, so one reclaim finds them all.
import { DevclusterError, errorMessage } from './errors.ts';
import { NETWORK } from './layout.ts';
import { execFileAsync } from './processes.ts';

async function ip(args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync('ip', args);
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw new DevclusterError(
        'the `ip` command (iproute2) is not installed',
        'install it (Debian/Ubuntu: apt-get install iproute2)',
      );
    }
    throw new DevclusterError(`ip ${args.join(' ')} failed: ${(e.stderr ?? errorMessage(err)).trim()}`);
  }
}

/** Names from `ip netns list` (which prints `name (id: N)` for namespaces with an id). */
export function parseNetnsList(output: string): string[] {
  return output
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

export async function listNamespaces(): Promise<string[]> {
  return parseNetnsList(await ip(['netns', 'list']));
}

/** Namespaces devcluster owns: its own and those of its nodes. */
export async function ownedNamespaces(): Promise<string[]> {
  const prefix = NETWORK.namespacePrefix;
  return (await listNamespaces()).filter((name) => name === prefix || name.startsWith(`${prefix}-`));
}

export async function namespaceExists(name: string): Promise<boolean> {
  return (await listNamespaces()).includes(name);
}

/** Pids of every process whose network namespace is `name`. */
export async function namespacePids(name: string): Promise<number[]> {
  return (await ip(['netns', 'pids', name]))
    .split('\n')
    .map((line) => Number.parseInt(line.trim(), 10))
    .filter((pid) => Number.isInteger(pid) && pid > 0);
}

export async function deleteNamespace(name: string): Promise<void> {
  if (await namespaceExists(name)) await ip(['netns', 'delete', name]);
}

/** The control plane's namespace: loopback up, the bridge up with the control plane address. */
export async function createClusterNamespace(): Promise<void> {
  const ns = NETWORK.namespace;
  await ip(['netns', 'add', ns]);
  try {
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    await ip(['-n', ns, 'link', 'add', NETWORK.bridge, 'type', 'bridge']);
    await ip([
      '-n',
      ns,
      'addr',
      'add',
      `${NETWORK.controlPlaneAddress}/${NETWORK.prefixLength}`,
      'dev',
      NETWORK.bridge,
    ]);
    await ip(['-n', ns, 'link', 'set', NETWORK.bridge, 'up']);
  } catch (err) {
    await deleteNamespace(ns).catch(() => undefined);
    throw err;
  }
}

/** The argv prefix that runs a command inside the cluster's namespace. */
export function inNamespace(argv: readonly string[], name: string = NETWORK.namespace): string[] {
  return ['ip', 'netns', 'exec', name, ...argv];
}
