// A pod's filesystem view for a launcher run outside a pod (tests, the benchmark, making the capability cache):
// a private mount namespace with a fresh /run, its own /etc/libvirt, /var/lib/libvirt, /var/log/libvirt and
// /var/cache/libvirt, and the pod's volumes bind-mounted where DESIGN.md §4a puts them. Two launchers in two
// sandboxes share nothing, as two pods would not. Needs root (unshare -m, mount).

/** libvirt's folders that a launcher image gives each pod; in a sandbox they are bind mounts of `stateDir/...`. */
export const LIBVIRT_PRIVATE_DIRS = [
  '/etc/libvirt',
  '/var/lib/libvirt',
  '/var/log/libvirt',
  '/var/cache/libvirt',
] as const;

export interface SandboxBind {
  /** A host folder (not under /run, which the sandbox replaces). */
  source: string;
  /** Where the process sees it, e.g. /var/run/kubevirt/sockets. */
  target: string;
  readonly?: boolean;
}

export interface SandboxOptions {
  /** Host folder holding the sandbox's private libvirt folders (stateDir/etc/libvirt, …); kept for inspection. */
  stateDir: string;
  binds?: readonly SandboxBind[];
}

function quote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** The command (for spawn) that runs `argv` in a new sandbox. */
export function sandboxCommand(
  argv: readonly string[],
  options: SandboxOptions,
): { command: string; args: string[] } {
  const lines = [
    'set -eu',
    // A pod's /run is its own: libvirt's pid files and sockets, and the emptyDirs under /var/run (= /run).
    'mount -t tmpfs -o mode=0755 tmpfs /run',
    'mkdir -p /run/lock',
  ];
  for (const dir of LIBVIRT_PRIVATE_DIRS) {
    const source = `${options.stateDir}${dir}`;
    lines.push(`mkdir -p ${quote(source)} ${quote(dir)}`, `mount --bind ${quote(source)} ${quote(dir)}`);
  }
  for (const bind of options.binds ?? []) {
    const target = bind.target.replace(/^\/var\/run\//, '/run/');
    lines.push(`mkdir -p ${quote(target)}`, `mount --bind ${quote(bind.source)} ${quote(target)}`);
    if (bind.readonly) lines.push(`mount -o remount,bind,ro ${quote(target)}`);
  }
  lines.push('exec "$@"');
  return {
    command: 'unshare',
    args: ['--mount', '--propagation', 'private', '--', 'sh', '-c', lines.join('\n'), 'sandbox', ...argv],
  };
}
