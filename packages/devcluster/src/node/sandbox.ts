// A container without a container engine: the shell script that builds one container's filesystem and starts its
// command, rendered from data (pure, so it is tested without root). It runs as PID 1 of fresh PID, mount and UTS
// namespaces (`unshare --pid --fork --mount --uts --propagation private`), inside the pod's network namespace:
// - the root is an overlay whose lower layer is the host's root file system and whose upper layer is the
//   container's own folder: the container sees the machine's files (that is its "image") but every write lands in
//   its private layer, so it never changes the host's files; other host file systems are bound read-only;
// - fresh /proc (its own PIDs), sysfs (its network namespace's devices), /tmp, /run, and a /dev with the usual
//   device nodes only (a privileged container gets the machine's /dev);
// - the image's private paths (e.g. the launcher's /var/lib/libvirt) as fresh tmpfs, seeded from the image entry;
// - the pod's volumes, device-plugin mounts and devices, /etc/hosts and the termination log bound at their paths
//   (parents first), read-only where asked;
// then it writes `started` on fd 3 (the agent waits for it) and execs the command chrooted, in its working dir.
import { lstatSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';
import type { ImageFile, PrivatePath } from './images.ts';

export interface SandboxMount {
  /** Host path (a folder, or a file when `file`). */
  source: string;
  /** Path inside the container. */
  target: string;
  readOnly: boolean;
  file: boolean;
}

export interface ContainerSandbox {
  /** The container's folder: upper/, work/ and rootfs/ live here. */
  dir: string;
  hostname: string;
  mounts: SandboxMount[];
  privatePaths: PrivatePath[];
  files: ImageFile[];
  /** Host file systems other than / (mount points), bound read-only so the container sees them as the host does. */
  hostSubmounts: string[];
  /**
   * Host folders that the container's fresh /tmp or /run would hide but its command needs, bound back read-only:
   * the repository our images run from may itself be a clone under /tmp.
   */
  keepHostPaths?: string[];
  workingDir: string;
  argv: string[];
  /** A small init as PID 1 that forwards SIGTERM/SIGINT and reaps orphans (what tini does in an image). */
  init: boolean;
  /** False for hostPID pods: then /proc is the host's. */
  pidNamespace: boolean;
  /** securityContext.privileged: the machine's whole /dev instead of the default devices. */
  privileged: boolean;
}

/** Device nodes of every container (as container runtimes give them), bound from the machine's /dev. */
export const DEFAULT_DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'] as const;

/** Absolute paths of the tools the script runs (it must not depend on the container's PATH). */
export interface SandboxTools {
  sh: string;
  mount: string;
  mkdir: string;
  cp: string;
  mv: string;
  ln: string;
  chroot: string;
  env: string;
  hostname: string;
  unshare: string;
  nsenter: string;
}

export function quote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * `path` with the host's symbolic links resolved, component by component, as they are inside the container (its
 * lower layer is the host's root): `/var/run/x` is `/run/x`. The script must mount at resolved paths, or the
 * kernel would follow an absolute link out of the container's root onto the host's. Components that do not exist
 * stay as written (mkdir -p creates them in the container's layer).
 */
export function resolveInRoot(path: string, lstat = lstatSync, readlink = readlinkSync): string {
  const pending = posix.normalize(path).split('/').filter(Boolean);
  const resolved: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = `/${[...resolved, part].join('/')}`;
    let isLink: boolean;
    try {
      isLink = lstat(candidate).isSymbolicLink();
    } catch {
      // Missing from here on: nothing below can be a link.
      resolved.push(part, ...pending);
      break;
    }
    if (!isLink) {
      resolved.push(part);
      continue;
    }
    if (++hops > 40) throw new Error(`too many symbolic links resolving ${path}`);
    const target = readlink(candidate).toString();
    const parts = target.split('/').filter(Boolean);
    if (target.startsWith('/')) resolved.length = 0;
    pending.unshift(...parts);
  }
  return `/${resolved.join('/')}`;
}

/** Mounts in the order a runtime applies them: parents before children, otherwise as listed. */
export function orderMounts(mounts: readonly SandboxMount[]): SandboxMount[] {
  const depth = (m: SandboxMount) => m.target.split('/').filter(Boolean).length;
  return mounts
    .map((m, i) => ({ m, i }))
    .sort((a, b) => depth(a.m) - depth(b.m) || a.i - b.i)
    .map(({ m }) => m);
}

/** The script that builds the container and execs its command (run as `sh -c SCRIPT`). */
export function renderContainerScript(
  box: ContainerSandbox,
  tools: SandboxTools,
  resolve: (path: string) => string = resolveInRoot,
): string {
  const { mount, mkdir, cp } = tools;
  const root = posix.join(box.dir, 'rootfs');
  const at = (path: string) => quote(posix.join(root, resolve(path)));
  const lines: string[] = [
    'set -eu',
    `${mkdir} -p ${quote(posix.join(box.dir, 'upper'))} ${quote(posix.join(box.dir, 'work'))} ${quote(root)}`,
    `${mount} -t overlay overlay -o ${quote(
      `lowerdir=/,upperdir=${posix.join(box.dir, 'upper')},workdir=${posix.join(box.dir, 'work')}`,
    )} ${quote(root)}`,
  ];
  for (const sub of box.hostSubmounts) {
    lines.push(
      `${mkdir} -p ${at(sub)}`,
      `${mount} --rbind ${quote(sub)} ${at(sub)}`,
      `${mount} -o remount,bind,ro ${at(sub)}`,
    );
  }
  lines.push(
    box.pidNamespace ? `${mount} -t proc proc ${at('/proc')}` : `${mount} --rbind /proc ${at('/proc')}`,
    `${mount} -t sysfs -o ro sysfs ${at('/sys')}`,
  );
  if (box.privileged) {
    // A privileged container sees every device of the machine.
    lines.push(
      `${mount} --rbind /dev ${at('/dev')}`,
      `${mount} -t tmpfs -o mode=1777 tmpfs ${at('/dev/shm')}`,
    );
  } else {
    // The devices every container gets; device plugins add theirs as bind mounts below. Paths in this fresh
    // tmpfs are not resolved against the host's /dev, whose links (/dev/fd → /proc/self/fd) would mislead.
    const dev = (name: string) => quote(posix.join(root, 'dev', name));
    lines.push(`${mount} -t tmpfs -o mode=0755,nosuid tmpfs ${dev('')}`);
    for (const name of DEFAULT_DEVICES) {
      lines.push(`: > ${dev(name)}`, `${mount} --bind /dev/${name} ${dev(name)}`);
    }
    lines.push(
      `${mkdir} -p ${dev('pts')} ${dev('shm')}`,
      `${mount} -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts ${dev('pts')}`,
      `${tools.ln} -s pts/ptmx ${dev('ptmx')}`,
      `${mount} -t tmpfs -o mode=1777 tmpfs ${dev('shm')}`,
      `${tools.ln} -s /proc/self/fd ${dev('fd')}`,
      `${tools.ln} -s /proc/self/fd/0 ${dev('stdin')}`,
      `${tools.ln} -s /proc/self/fd/1 ${dev('stdout')}`,
      `${tools.ln} -s /proc/self/fd/2 ${dev('stderr')}`,
    );
  }
  lines.push(
    `${mount} -t tmpfs -o mode=1777 tmpfs ${at('/tmp')}`,
    `${mount} -t tmpfs -o mode=0755 tmpfs ${at('/run')}`,
    `${mkdir} -p ${at('/run/lock')}`,
  );
  for (const keep of box.keepHostPaths ?? []) {
    lines.push(
      `${mkdir} -p ${at(keep)}`,
      `${mount} --rbind ${quote(keep)} ${at(keep)}`,
      `${mount} -o remount,bind,ro ${at(keep)}`,
    );
  }
  for (const p of box.privatePaths) {
    lines.push(`${mkdir} -p ${at(p.path)}`, `${mount} -t tmpfs -o mode=0755 tmpfs ${at(p.path)}`);
    for (const seed of p.seed ?? []) {
      const into = posix.join(p.path, seed.to ?? '');
      lines.push(`${mkdir} -p ${at(into)}`, `${cp} -a ${quote(`${seed.from}/.`)} ${at(into)}`);
    }
  }
  for (const f of box.files) {
    lines.push(`${mkdir} -p ${at(posix.dirname(f.path))}`, `${cp} ${quote(f.source)} ${at(f.path)}`);
  }
  for (const m of orderMounts(box.mounts)) {
    const target = at(m.target);
    if (m.file) {
      lines.push(`${mkdir} -p ${at(posix.dirname(m.target))}`, `[ -e ${target} ] || : > ${target}`);
    } else {
      lines.push(`${mkdir} -p ${target}`);
    }
    lines.push(`${mount} --bind ${quote(m.source)} ${target}`);
    if (m.readOnly) lines.push(`${mount} -o remount,bind,ro ${target}`);
  }
  lines.push(`${tools.hostname} ${quote(box.hostname)}`);
  const exec = [
    tools.chroot,
    quote(root),
    tools.env,
    `--chdir=${quote(box.workingDir)}`,
    '--',
    ...box.argv.map(quote),
  ].join(' ');
  // The agent counts the container as started once this line arrives; a failure before it is a start error.
  lines.push('echo started >&3', 'exec 3>&-');
  if (box.init) {
    // PID 1 gets only the signals it handles: forward them to the command, and wait (which also reaps orphans
    // re-parented to us) until the command itself has exited.
    lines.push(
      'set +e',
      `${exec} &`,
      '__devcluster_child=$!',
      "trap 'kill -TERM $__devcluster_child 2>/dev/null' TERM",
      "trap 'kill -INT $__devcluster_child 2>/dev/null' INT",
      'while :; do',
      '  wait $__devcluster_child',
      '  __devcluster_status=$?',
      '  kill -0 $__devcluster_child 2>/dev/null || exit $__devcluster_status',
      'done',
    );
  } else {
    lines.push(`exec ${exec}`);
  }
  return lines.join('\n');
}

export interface ShimPaths {
  /** The container's folder: the shim writes `pid` (the sandbox's outer process) and `exit` there. */
  dir: string;
  /** Network namespace to run in (`/run/netns/NAME`), or undefined for the agent's own (hostNetwork). */
  netnsPath: string | undefined;
  pidNamespace: boolean;
}

/**
 * The shim's script: runs detached from the agent (so containers outlive an agent restart), starts the sandbox in
 * the pod's namespaces, and records its exit code in `exit` (atomically), where a restarted agent finds it.
 */
export function renderShimScript(shim: ShimPaths, tools: SandboxTools, containerScript: string): string {
  const enter = shim.netnsPath ? [tools.nsenter, `--net=${quote(shim.netnsPath)}`] : [];
  const unshare = [
    tools.unshare,
    '--mount',
    '--uts',
    '--propagation',
    'private',
    ...(shim.pidNamespace ? ['--pid', '--fork', '--kill-child'] : []),
    '--',
    tools.sh,
    '-c',
    quote(containerScript),
    'container',
  ];
  const exitFile = posix.join(shim.dir, 'exit');
  return [
    `${[...enter, ...unshare].join(' ')} &`,
    '__devcluster_sandbox=$!',
    // Only the sandbox keeps the start pipe: the agent reads EOF once it is started or has failed.
    'exec 3>&-',
    `echo $__devcluster_sandbox > ${quote(posix.join(shim.dir, 'pid'))}`,
    'wait $__devcluster_sandbox',
    '__devcluster_status=$?',
    `echo $__devcluster_status > ${quote(`${exitFile}.tmp`)}`,
    `${tools.mv} ${quote(`${exitFile}.tmp`)} ${quote(exitFile)}`,
  ].join('\n');
}
