import { describe, expect, it } from 'vitest';
import { sandboxCommand } from './sandbox.ts';

describe('sandboxCommand', () => {
  it('gives the process a private /run and libvirt folders, binds the pod volumes, and execs the command', () => {
    const { command, args } = sandboxCommand(['node', 'main.js', '--name=a b'], {
      stateDir: '/tmp/s',
      binds: [
        { source: "/tmp/it's", target: '/var/run/kubevirt/sockets' },
        { source: '/img', target: '/var/run/kubevirt/kernel-boot', readonly: true },
      ],
    });
    expect(command).toBe('unshare');
    expect(args.slice(0, 6)).toEqual(['--mount', '--propagation', 'private', '--', 'sh', '-c']);
    const script = args[6] as string;
    expect(script).toContain('mount -t tmpfs -o mode=0755 tmpfs /run');
    expect(script).toContain("mount --bind '/tmp/s/etc/libvirt' '/etc/libvirt'");
    expect(script).toContain("mount --bind '/tmp/s/var/cache/libvirt' '/var/cache/libvirt'");
    // /var/run is /run: the bind lands in the new /run, quoted safely.
    expect(script).toContain(`mount --bind '/tmp/it'\\''s' '/run/kubevirt/sockets'`);
    expect(script).toContain("mount -o remount,bind,ro '/run/kubevirt/kernel-boot'");
    expect(script.trim().endsWith('exec "$@"')).toBe(true);
    expect(args.slice(7)).toEqual(['sandbox', 'node', 'main.js', '--name=a b']);
  });
});
