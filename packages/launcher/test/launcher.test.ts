// The launcher against a real libvirt daemon and QEMU (software emulation), each launcher in its own pod-like
// sandbox, booting the project's test guest. A notify server stands in for the handler's socket; the tests drive
// the launcher through launcher-sock exactly as the handler does.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestGuest } from '../../devcluster/src/guest/build.ts';
import { ensureCapabilityCache } from '../src/capabilities-cache.ts';
import { LauncherProcess, SerialConsole, qemuPids, testGuest, testVMI, vmiJson } from './harness.ts';

const BOOT_MS = 90_000;
let guest: TestGuest;

beforeAll(async () => {
  guest = await testGuest();
  await ensureCapabilityCache();
}, 300_000);

function pidOf(launcher: LauncherProcess, daemon: string): number | undefined {
  const line = launcher.logs.find(
    (l) => l.daemon === daemon && typeof l.pid === 'number' && String(l.msg).endsWith('is up'),
  );
  return line?.pid as number | undefined;
}

/**
 * One launcher for the describe block it is called in: started and ready before its tests, disposed of after.
 * Options and launcher are both read lazily: the test guest is built, and the launcher exists, only once the
 * beforeAll hooks have run.
 */
function launcherForBlock(
  name: string,
  options: () => Omit<Parameters<typeof LauncherProcess.start>[0], 'name'>,
): () => LauncherProcess {
  let launcher: LauncherProcess | undefined;
  beforeAll(async () => {
    launcher = await LauncherProcess.start({ name, ...options() });
    await launcher.ready();
  }, BOOT_MS);
  afterAll(async () => {
    await launcher?.dispose();
  });
  return () => {
    if (launcher === undefined) throw new Error(`launcher ${name} did not start`);
    return launcher;
  };
}

/** Syncs `vmi` into the launcher and waits on its serial console for each of `lines`, in order. */
async function syncAndWaitForConsole(
  launcher: LauncherProcess,
  vmi: Parameters<typeof vmiJson>[0],
  lines: string[],
): Promise<void> {
  expect(await launcher.connection.sync({ vmiJson: vmiJson(vmi) })).toEqual({ success: true, message: '' });
  const serial = await SerialConsole.open(join(launcher.dirs.sockets, 'serial0'));
  try {
    for (const line of lines) await serial.waitFor(line, BOOT_MS);
  } finally {
    serial.close();
  }
}

describe('a launcher booting the test guest from kernel boot', () => {
  const uid = randomUUID();
  const marker = `kernel-boot-marker-${uid.slice(0, 8)}`;
  let launcher: LauncherProcess;
  let serial: SerialConsole;
  const vmi = () =>
    testVMI({
      name: 'kernelboot',
      uid,
      guest,
      boot: 'kernel',
      userData: `#cloud-config\nmarker: ${marker}\n`,
    });

  beforeAll(async () => {
    launcher = await LauncherProcess.start({ name: 'kernelboot', uid, kernelBoot: guest.kernelBootImage });
    await launcher.ready();
  }, BOOT_MS);

  afterAll(async () => {
    serial?.close();
    await launcher?.dispose();
  });

  it('renames launcher-init-sock to launcher-sock and answers Ping', async () => {
    expect((await launcher.connection.ping({})).success).toBe(true);
    expect(await launcher.domain()).toBeUndefined();
  });

  it('starts the domain on Sync, and a second Sync changes nothing', async () => {
    const first = await launcher.connection.sync({ vmiJson: vmiJson(vmi()) });
    expect(first).toEqual({ success: true, message: '' });
    const running = await launcher.waitForDomain((d) => d?.status.status === 'Running');
    expect(running).toMatchObject({
      metadata: { name: 'kernelboot', namespace: 'default', uid },
      spec: { name: 'default_kernelboot' },
    });
    const [qemu] = await qemuPids('default_kernelboot');
    expect((await launcher.connection.sync({ vmiJson: vmiJson(vmi()) })).success).toBe(true);
    expect(await qemuPids('default_kernelboot')).toEqual([qemu]);
  });

  it(
    'shows the cloud-init marker on the serial console socket and in the serial log',
    async () => {
      serial = await SerialConsole.open(join(launcher.dirs.sockets, 'serial0'));
      await serial.waitFor(marker, BOOT_MS);
      await expect.poll(() => launcher.serialLog(), { timeout: 10_000 }).toContain(marker);
    },
    BOOT_MS,
  );

  it(
    "returns the guest's OS from its guest agent",
    async () => {
      await serial.waitFor('kubevirt-ts-guest: ready', BOOT_MS);
      let info: Record<string, unknown> | undefined;
      await expect
        .poll(
          async () => {
            const r = await launcher.connection.getGuestInfo({});
            if (r.success) info = JSON.parse(r.guestInfoJson.toString()) as Record<string, unknown>;
            return r.success;
          },
          { timeout: 30_000, interval: 500 },
        )
        .toBe(true);
      expect(info).toMatchObject({
        hostname: 'kernelboot',
        os: {
          id: guest.os.id,
          prettyName: guest.os.prettyName,
          versionId: guest.os.versionId,
          kernelRelease: guest.kernelRelease,
        },
      });
    },
    BOOT_MS,
  );

  it('returns the domain statistics libvirt keeps', async () => {
    const r = await launcher.connection.getStats({});
    expect(r.success).toBe(true);
    const stats = JSON.parse(r.statsJson.toString()) as Record<string, unknown>;
    expect(stats).toMatchObject({ 'state.state': 1, 'vcpu.current': 1, 'balloon.maximum': 256 * 1024 });
    expect(stats['cpu.time']).toBeGreaterThan(0);
  });

  it('shows pause and unpause in GetDomain', async () => {
    expect((await launcher.connection.pause({ vmiJson: vmiJson(vmi()) })).success).toBe(true);
    expect((await launcher.domain())?.status).toMatchObject({ status: 'Paused', reason: 'User' });
    expect((await launcher.connection.unpause({ vmiJson: vmiJson(vmi()) })).success).toBe(true);
    expect((await launcher.domain())?.status).toMatchObject({ status: 'Running', reason: 'Unpaused' });
  });

  it(
    'restarts a libvirt daemon that died without touching the running QEMU',
    async () => {
      const qemuBefore = await qemuPids('default_kernelboot');
      const libvirtd = pidOf(launcher, 'libvirtd');
      expect(libvirtd).toBeDefined();
      process.kill(libvirtd as number, 'SIGKILL');
      await expect
        .poll(
          () =>
            launcher.logs.filter((l) => l.daemon === 'libvirtd' && String(l.msg).endsWith('is up')).length,
          { timeout: 30_000 },
        )
        .toBe(2);
      await expect
        .poll(() => launcher.logs.some((l) => l.msg === 'reconnected to libvirt'), { timeout: 30_000 })
        .toBe(true);
      expect((await launcher.domain())?.status.status).toBe('Running');
      expect(await qemuPids('default_kernelboot')).toEqual(qemuBefore);
    },
    BOOT_MS,
  );

  it(
    'ends an ACPI Shutdown with Shutoff/Shutdown, tells notify every state, and exits once deleted',
    async () => {
      const r = await launcher.connection.shutdown({ vmiJson: vmiJson(vmi()), gracePeriodSeconds: 30 });
      expect(r).toEqual({ success: true, message: '' });
      const off = await launcher.waitForDomain((d) => d?.status.status === 'Shutoff', 30_000);
      expect(off?.status).toMatchObject({ status: 'Shutoff', reason: 'Shutdown' });
      // The grace period's start is kept in the domain, so a restarted launcher keeps the deadline.
      expect(off?.spec.metadata.kubevirt.graceperiod).toMatchObject({
        deletionGracePeriodSeconds: 30,
        deletionTimestamp: expect.any(String) as unknown,
      });
      expect((await launcher.connection.delete({ vmiJson: vmiJson(vmi()) })).success).toBe(true);
      expect(await launcher.exited).toBe(0);
      const states =
        launcher.notify?.domains.map(
          (d) => `${d.type} ${d.domain.status.status}/${d.domain.status.reason}`,
        ) ?? [];
      expect(states[0]).toMatch(/^ADDED /);
      expect(states).toContain('MODIFIED Paused/User');
      expect(states).toContain('MODIFIED Shutoff/Shutdown');
      expect(states.at(-1)).toBe('DELETED Shutoff/Shutdown');
      expect(launcher.notify?.last()?.domain.metadata.deletionTimestamp).toEqual(
        expect.any(String) as unknown,
      );
    },
    BOOT_MS,
  );
});

describe('a launcher booting the test guest from a containerDisk', () => {
  const uid = randomUUID();
  const marker = `container-disk-marker-${uid.slice(0, 8)}`;
  const launcher = launcherForBlock('diskboot', () => ({
    uid,
    gracePeriodSeconds: 20,
    containerDisks: { rootdisk: guest.containerDiskImage },
  }));

  it(
    'boots from a qcow2 overlay in the private dir over the image file, and shows the marker',
    async () => {
      const vmi = testVMI({
        name: 'diskboot',
        uid,
        guest,
        boot: 'containerDisk',
        userData: `#cloud-config\nmarker: ${marker}\n`,
        gracePeriodSeconds: 20,
      });
      await syncAndWaitForConsole(launcher(), vmi, [marker, 'kubevirt-ts-guest: ready']);
      const { execFileSync } = await import('node:child_process');
      const overlay = join(launcher().dirs.private, 'container-disks', 'rootdisk.qcow2');
      const info = JSON.parse(
        execFileSync('qemu-img', ['info', '-U', '--output=json', overlay], { encoding: 'utf8' }),
      ) as Record<string, string>;
      expect(info).toMatchObject({
        format: 'qcow2',
        'backing-filename': '/var/run/kubevirt/container-disks/rootdisk/disk/guest.qcow2',
      });
    },
    BOOT_MS,
  );

  it(
    'on SIGTERM shuts the guest down (Shutoff/Shutdown), sends the final event and exits 0',
    async () => {
      launcher().child.kill('SIGTERM');
      expect(await launcher().exited).toBe(0);
      const final = launcher().notify?.last();
      expect(final?.type).toBe('DELETED');
      expect(final?.domain.status).toMatchObject({ status: 'Shutoff', reason: 'Shutdown' });
      expect(final?.domain.spec.metadata.kubevirt.graceperiod.markedForGracefulShutdown).toBe(true);
      expect(await qemuPids('default_diskboot')).toEqual([]);
    },
    BOOT_MS,
  );
});

describe('a launcher booting the test guest with the hardware KubeVirt describes', () => {
  const uid = randomUUID();
  const marker = `hardware-marker-${uid.slice(0, 8)}`;
  const launcher = launcherForBlock('hardware', () => ({
    uid,
    containerDisks: { rootdisk: guest.containerDiskImage },
  }));

  it(
    'boots from a scsi disk, with an RNG, a time zone clock and tuned timers, as libvirt and QEMU run them',
    async () => {
      const vmi = testVMI({
        name: 'hardware',
        uid,
        guest,
        boot: 'containerDisk',
        userData: `#cloud-config\nmarker: ${marker}\n`,
      });
      const devices = vmi.spec.domain.devices;
      devices.disks = devices.disks?.map((d) =>
        d.name === 'rootdisk' ? { ...d, disk: { bus: 'scsi' } } : d,
      );
      devices.rng = {};
      vmi.spec.domain.clock = {
        timezone: 'Europe/Paris',
        timer: {
          rtc: { tickPolicy: 'catchup', track: 'guest' },
          pit: { tickPolicy: 'delay' },
          hpet: { present: false },
        },
      };
      // SeaBIOS finds the bootloader on the virtio-scsi disk, and the guest comes up with the rest.
      await syncAndWaitForConsole(launcher(), vmi, [marker]);
      const { readFile } = await import('node:fs/promises');
      const qemu = (await qemuPids('default_hardware'))[0];
      expect(qemu).toBeDefined();
      const argv = (await readFile(`/proc/${String(qemu)}/cmdline`, 'utf8')).split('\0');
      const args = argv.join(' ');
      expect(args).toMatch(/virtio-scsi-pci/);
      expect(args).toMatch(/scsi-hd/);
      expect(args).toMatch(/virtio-rng-pci/);
      expect(args).toMatch(/rng-random.*\/dev\/urandom/);
      expect(args).toMatch(/-rtc base=localtime,clock=vm,driftfix=slew/);
      expect(args).toMatch(/-global kvm-pit\.lost_tick_policy=delay/);
      expect(args).toMatch(/-no-hpet/);
      // libvirt hands QEMU the guest's time zone through TZ, so the RTC's localtime is Paris time.
      const env = (await readFile(`/proc/${String(qemu)}/environ`, 'utf8')).split('\0');
      expect(env).toContain('TZ=Europe/Paris');
    },
    BOOT_MS,
  );
});

describe('two launchers side by side', () => {
  const panicking = { name: 'panicker', uid: randomUUID() };
  const killed = { name: 'killed', uid: randomUUID() };
  let a: LauncherProcess;
  let b: LauncherProcess;

  beforeAll(async () => {
    [a, b] = await Promise.all([
      LauncherProcess.start({ ...panicking, kernelBoot: guest.kernelBootImage }),
      LauncherProcess.start({ ...killed, kernelBoot: guest.kernelBootImage }),
    ]);
    await Promise.all([a.ready(), b.ready()]);
  }, BOOT_MS);

  afterAll(async () => {
    await Promise.all([a?.dispose(), b?.dispose()]);
  });

  it(
    'run their own daemons and guests without colliding',
    async () => {
      const [ra, rb] = await Promise.all([
        a.connection.sync({
          vmiJson: vmiJson(
            testVMI({
              ...panicking,
              guest,
              boot: 'kernel',
              panicDevice: true,
              userData: '#cloud-config\nmarker: guest-a\npanic_after: 3\n',
            }),
          ),
        }),
        b.connection.sync({
          vmiJson: vmiJson(
            testVMI({ ...killed, guest, boot: 'kernel', userData: '#cloud-config\nmarker: guest-b\n' }),
          ),
        }),
      ]);
      expect([ra.success, rb.success]).toEqual([true, true]);
      expect(pidOf(a, 'libvirtd')).not.toBe(pidOf(b, 'libvirtd'));
      const [sa, sb] = await Promise.all([
        SerialConsole.open(join(a.dirs.sockets, 'serial0')),
        SerialConsole.open(join(b.dirs.sockets, 'serial0')),
      ]);
      try {
        await Promise.all([sa.waitFor('guest-a', BOOT_MS), sb.waitFor('kubevirt-ts-guest: ready', BOOT_MS)]);
        expect(sb.text).toContain('guest-b');
        expect(sb.text).not.toContain('guest-a');
      } finally {
        sa.close();
        sb.close();
      }
    },
    BOOT_MS,
  );

  it(
    'reports a panicking guest as Crashed/Panicked, with a GuestPanicked event',
    async () => {
      const crashed = await a.waitForDomain((d) => d?.status.status === 'Crashed', 60_000);
      expect(crashed?.status).toMatchObject({ status: 'Crashed', reason: 'Panicked' });
      await expect
        .poll(() => a.notify?.events.map((e) => e.reason), { timeout: 10_000 })
        .toContain('GuestPanicked');
      expect(a.notify?.last()?.domain.status).toMatchObject({ status: 'Crashed', reason: 'Panicked' });
    },
    BOOT_MS,
  );

  it(
    'reports a killed QEMU as Shutoff/Crashed',
    async () => {
      await b.waitForDomain((d) => d?.status.status === 'Running');
      const [qemu] = await qemuPids('default_killed');
      expect(qemu).toBeDefined();
      process.kill(qemu as number, 'SIGKILL');
      const off = await b.waitForDomain((d) => d?.status.status === 'Shutoff', 30_000);
      expect(off?.status).toMatchObject({ status: 'Shutoff', reason: 'Crashed' });
      await expect.poll(() => b.notify?.last()?.domain.status.status, { timeout: 10_000 }).toBe('Shutoff');
    },
    BOOT_MS,
  );
});

describe('a launcher given bad input', () => {
  const uid = randomUUID();
  let launcher: LauncherProcess;

  beforeAll(async () => {
    launcher = await LauncherProcess.start({ name: 'badinput', uid });
    await launcher.ready();
  }, BOOT_MS);

  afterAll(async () => {
    await launcher?.dispose();
  });

  it('answers a Sync whose containerDisk is not mounted with the reason, reports a Warning event, and stays up', async () => {
    const vmi = testVMI({ name: 'badinput', uid, guest, boot: 'containerDisk' });
    const r = await launcher.connection.sync({ vmiJson: vmiJson(vmi) });
    expect(r.success).toBe(false);
    expect(r.message).toMatch(/volume rootdisk: the containerDisk image is not mounted/);
    await expect
      .poll(() => launcher.notify?.events, { timeout: 10_000 })
      .toContainEqual(
        expect.objectContaining({
          type: 'WARNING',
          reason: 'SyncFailed',
          message: expect.stringContaining('volume rootdisk') as unknown,
        }),
      );
    expect((await launcher.connection.ping({})).success).toBe(true);
  });

  it('refuses a VMI that is not its own', async () => {
    const other = testVMI({ name: 'someone-else', uid: randomUUID(), guest, boot: 'kernel' });
    const r = await launcher.connection.sync({ vmiJson: vmiJson(other) });
    expect(r).toMatchObject({
      success: false,
      message: expect.stringContaining(`this launcher runs VMI default/badinput (uid ${uid})`) as unknown,
    });
  });

  it('answers a hostDisk that does not exist, and a PVC disk larger than its volume', async () => {
    const vmi = testVMI({ name: 'badinput', uid, guest, boot: 'kernel' });
    vmi.spec.domain.devices.disks = [{ name: 'host', disk: { bus: 'virtio' } }];
    vmi.spec.volumes = [{ name: 'host', hostDisk: { path: '/nonexistent/disk.img', type: 'Disk' } }];
    const r = await launcher.connection.sync({ vmiJson: vmiJson(vmi) });
    expect(r).toMatchObject({
      success: false,
      message: expect.stringMatching(
        /volume host: hostDisk \/nonexistent\/disk.img does not exist/,
      ) as unknown,
    });

    const { mkdir, open, statfs } = await import('node:fs/promises');
    const pvc = join(launcher.dirs.private, 'vmi-disks', 'data');
    await mkdir(pvc, { recursive: true });
    const fs = await statfs(pvc);
    const image = await open(join(pvc, 'disk.img'), 'w');
    await image.truncate(fs.blocks * fs.bsize + 2 ** 30); // sparse: one GiB more than the volume holds
    await image.close();
    vmi.spec.domain.devices.disks = [{ name: 'data', disk: { bus: 'virtio' } }];
    vmi.spec.volumes = [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }];
    const big = await launcher.connection.sync({ vmiJson: vmiJson(vmi) });
    expect(big).toMatchObject({
      success: false,
      message: expect.stringMatching(
        /volume data: disk.img \(\d+ bytes\) is larger than its PVC data/,
      ) as unknown,
    });
  });
});
