import { describe, expect, it } from 'vitest';
import {
  orderMounts,
  quote,
  renderContainerScript,
  renderShimScript,
  resolveInRoot,
  type ContainerSandbox,
  type SandboxTools,
} from './sandbox.ts';

const tools: SandboxTools = {
  sh: '/bin/sh',
  mount: 'MOUNT',
  mkdir: 'MKDIR',
  cp: 'CP',
  mv: 'MV',
  ln: 'LN',
  chroot: 'CHROOT',
  env: 'ENV',
  hostname: 'HOSTNAME',
  unshare: 'UNSHARE',
  nsenter: 'NSENTER',
};

function fakeFs(links: Record<string, string>, existing: string[]) {
  const lstat = (p: string) => {
    if (p in links) return { isSymbolicLink: () => true };
    if (existing.includes(p)) return { isSymbolicLink: () => false };
    throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
  };
  const readlink = (p: string) => links[p] as string;
  return { lstat: lstat as never, readlink: readlink as never };
}

const box = (over: Partial<ContainerSandbox> = {}): ContainerSandbox => ({
  dir: '/nodes/n1/c/abc',
  hostname: 'web-1',
  mounts: [],
  privatePaths: [],
  files: [],
  hostSubmounts: [],
  workingDir: '/',
  argv: ['node', '-e', "console.log('hi')"],
  init: false,
  pidNamespace: true,
  privileged: false,
  ...over,
});

describe('resolveInRoot', () => {
  const fs = fakeFs({ '/var/run': '/run', '/lib': 'usr/lib', '/usr/lib/x': '../share/y' }, [
    '/var',
    '/run',
    '/usr',
    '/usr/lib',
    '/usr/share',
  ]);
  it('follows absolute and relative links component by component, as the container root has them', () => {
    expect(resolveInRoot('/var/run/kubevirt/sockets', fs.lstat, fs.readlink)).toBe('/run/kubevirt/sockets');
    expect(resolveInRoot('/lib/x/z', fs.lstat, fs.readlink)).toBe('/usr/share/y/z');
    expect(resolveInRoot('/data/a/../b', fs.lstat, fs.readlink)).toBe('/data/b');
  });
  it('stops at a loop', () => {
    const loop = fakeFs({ '/a': '/b', '/b': '/a' }, []);
    expect(() => resolveInRoot('/a/x', loop.lstat, loop.readlink)).toThrow(/too many symbolic links/);
  });
});

describe('orderMounts', () => {
  it('puts parents before children and keeps the given order otherwise', () => {
    const m = (target: string) => ({ source: '/s', target, readOnly: false, file: false });
    expect(orderMounts([m('/a/b/c'), m('/x'), m('/a'), m('/a/b')]).map((x) => x.target)).toEqual([
      '/x',
      '/a',
      '/a/b',
      '/a/b/c',
    ]);
  });
});

describe('renderContainerScript', () => {
  const identity = (p: string) => p;
  it('builds an overlay root, binds volumes (read-only where asked) and execs the command chrooted', () => {
    const script = renderContainerScript(
      box({
        mounts: [
          {
            source: '/pods/u/volumes/kubernetes.io~secret/s',
            target: '/etc/secret',
            readOnly: true,
            file: false,
          },
          { source: '/pods/u/etc-hosts', target: '/etc/hosts', readOnly: false, file: true },
        ],
      }),
      tools,
      identity,
    );
    expect(script).toContain(
      "MOUNT -t overlay overlay -o 'lowerdir=/,upperdir=/nodes/n1/c/abc/upper,workdir=/nodes/n1/c/abc/work' '/nodes/n1/c/abc/rootfs'",
    );
    expect(script).toContain(
      "MOUNT --bind '/pods/u/volumes/kubernetes.io~secret/s' '/nodes/n1/c/abc/rootfs/etc/secret'",
    );
    expect(script).toContain("MOUNT -o remount,bind,ro '/nodes/n1/c/abc/rootfs/etc/secret'");
    expect(script).toContain(
      "[ -e '/nodes/n1/c/abc/rootfs/etc/hosts' ] || : > '/nodes/n1/c/abc/rootfs/etc/hosts'",
    );
    expect(script).toContain("MOUNT -t proc proc '/nodes/n1/c/abc/rootfs/proc'");
    expect(script).toContain("HOSTNAME 'web-1'");
    expect(script.indexOf('echo started >&3')).toBeLessThan(script.indexOf('exec CHROOT'));
    expect(script.split('\n').at(-1)).toBe(
      `exec CHROOT '/nodes/n1/c/abc/rootfs' ENV --chdir='/' -- 'node' '-e' ${quote("console.log('hi')")}`,
    );
  });

  it('gives the usual device nodes unless privileged, which gets the machine’s /dev', () => {
    const plain = renderContainerScript(box(), tools, identity);
    expect(plain).toContain("MOUNT --bind /dev/null '/nodes/n1/c/abc/rootfs/dev/null'");
    expect(plain).not.toContain('--rbind /dev ');
    const privileged = renderContainerScript(box({ privileged: true }), tools, identity);
    expect(privileged).toContain("MOUNT --rbind /dev '/nodes/n1/c/abc/rootfs/dev'");
  });

  it('seeds private paths into fresh tmpfs and copies image files into the container’s layer', () => {
    const script = renderContainerScript(
      box({
        privatePaths: [
          { path: '/var/cache/libvirt', seed: [{ from: '/cache/caps', to: 'qemu/capabilities' }] },
        ],
        files: [{ path: '/etc/libvirt/qemu.conf', source: '/repo/qemu.conf' }],
      }),
      tools,
      identity,
    );
    expect(script).toContain("MOUNT -t tmpfs -o mode=0755 tmpfs '/nodes/n1/c/abc/rootfs/var/cache/libvirt'");
    expect(script).toContain(
      "CP -a '/cache/caps/.' '/nodes/n1/c/abc/rootfs/var/cache/libvirt/qemu/capabilities'",
    );
    expect(script).toContain("CP '/repo/qemu.conf' '/nodes/n1/c/abc/rootfs/etc/libvirt/qemu.conf'");
  });

  it('with an init, forwards SIGTERM to the command and exits with its status', () => {
    const script = renderContainerScript(box({ init: true }), tools, identity);
    expect(script).toContain("trap 'kill -TERM $__devcluster_child 2>/dev/null' TERM");
    expect(script).not.toContain('exec CHROOT');
  });
});

describe('renderShimScript', () => {
  it('enters the pod network namespace, unshares PID/mount/UTS and records the exit code atomically', () => {
    const shim = renderShimScript(
      { dir: '/c/abc', netnsPath: '/run/netns/kvts-dc-n1-x', pidNamespace: true },
      tools,
      'true',
    );
    expect(shim.split('\n')[0]).toBe(
      "NSENTER --net='/run/netns/kvts-dc-n1-x' UNSHARE --mount --uts --propagation private --pid --fork --kill-child -- /bin/sh -c 'true' container &",
    );
    expect(shim).toContain("echo $__devcluster_status > '/c/abc/exit.tmp'");
    expect(shim).toContain("MV '/c/abc/exit.tmp' '/c/abc/exit'");
    const hostNetwork = renderShimScript(
      { dir: '/c/abc', netnsPath: undefined, pidNamespace: false },
      tools,
      'true',
    );
    expect(hostNetwork).not.toContain('NSENTER');
    expect(hostNetwork).not.toContain('--pid');
  });
});

describe('host paths a fresh /tmp would hide', () => {
  it('binds them back read-only after /tmp and /run are mounted', () => {
    const without = renderContainerScript(box(), tools, (p) => p);
    expect(without).not.toContain('/tmp/ci/repo');
    const script = renderContainerScript(box({ keepHostPaths: ['/tmp/ci/repo'] }), tools, (p) => p);
    const lines = script.split('\n');
    const tmpfsTmp = lines.findIndex((l) => l.includes('tmpfs') && /rootfs\/tmp'?$/.test(l));
    const bind = lines.findIndex((l) => l.includes('--rbind') && l.includes('/tmp/ci/repo'));
    expect(tmpfsTmp).toBeGreaterThanOrEqual(0);
    expect(bind).toBeGreaterThan(tmpfsTmp);
    expect(lines[bind + 1]).toMatch(/remount,bind,ro .*rootfs\/tmp\/ci\/repo/);
  });
});
