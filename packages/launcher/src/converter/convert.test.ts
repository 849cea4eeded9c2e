// Golden tests of the VMI → domain XML converter. Each produced XML is compared with testdata/<case>.xml and checked
// against libvirt's own schema with virt-xml-validate. UPDATE_GOLDEN=1 rewrites the golden files (review the diff).
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VirtualMachineInstance } from '../vmi.ts';
import { ConversionError, convertVMIToDomain, deviceName } from './convert.ts';
import type { ConverterContext } from './convert.ts';

const run = promisify(execFile);
const testdata = join(import.meta.dirname, 'testdata');

const baseContext: ConverterContext = {
  emulation: true,
  kvmAvailable: false,
  socketDir: '/var/run/kubevirt/sockets',
  privateDir: '/var/run/kubevirt-private',
  kernelBootDir: '/var/run/kubevirt/kernel-boot',
  disks: {},
};

type SpecInput = Omit<Partial<VirtualMachineInstance['spec']>, 'domain'> & {
  domain?: Partial<VirtualMachineInstance['spec']['domain']>;
};

function vmi(spec: SpecInput = {}): VirtualMachineInstance {
  const { domain, ...rest } = spec;
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'testvm', namespace: 'default', uid: '6e4b1c6e-8a54-4b9e-9a39-1f1b5b0e3c11' },
    spec: {
      domain: { memory: { guest: '256Mi' }, devices: {}, ...domain },
      ...rest,
    },
  };
}

const cases: Record<string, { vmi: VirtualMachineInstance; ctx?: Partial<ConverterContext> }> = {
  'kernel-boot': {
    vmi: vmi({
      domain: {
        firmware: {
          kernelBoot: {
            kernelArgs: 'console=ttyS0',
            container: {
              image: 'kubevirt-ts/test-guest:kernel',
              kernelPath: '/boot/vmlinuz',
              initrdPath: '/boot/initrd.img',
            },
          },
        },
        devices: { panicDevices: [{ model: 'isa' }] },
      },
      terminationGracePeriodSeconds: 5,
    }),
  },
  'all-disks': {
    vmi: vmi({
      domain: {
        cpu: {
          sockets: 1,
          cores: 2,
          threads: 1,
          model: 'Skylake-Client',
          features: [{ name: 'vmx', policy: 'disable' }],
        },
        memory: { guest: '1Gi' },
        machine: { type: 'pc-q35-7.2' },
        firmware: {
          uuid: '0d4b9a3c-5e62-4f6a-8c84-2a2b1e8f0a77',
          serial: 'serial-1234',
          bootloader: { bios: { useSerial: true } },
        },
        clock: {
          timezone: 'Europe/Paris',
          timer: {
            hpet: { present: false },
            pit: { tickPolicy: 'delay' },
            rtc: { tickPolicy: 'catchup', track: 'guest' },
          },
        },
        features: { acpi: {}, apic: { endOfInterrupt: true }, smm: { enabled: true } },
        devices: {
          disks: [
            { name: 'rootdisk', disk: { bus: 'virtio' }, bootOrder: 1, cache: 'writethrough' },
            { name: 'scratch', disk: { bus: 'sata' }, io: 'native' },
            { name: 'data', disk: { bus: 'scsi' }, serial: 'DATA01' },
            { name: 'host', disk: { bus: 'virtio', readonly: true } },
            { name: 'cloudinitdisk', cdrom: { bus: 'sata' } },
          ],
          autoattachGraphicsDevice: false,
          autoattachMemBalloon: false,
          logSerialConsole: false,
          rng: {},
        },
      },
      volumes: [
        { name: 'rootdisk', containerDisk: { image: 'kubevirt-ts/test-guest:disk' } },
        { name: 'scratch', emptyDisk: { capacity: '1Gi' } },
        { name: 'data', persistentVolumeClaim: { claimName: 'data' } },
        { name: 'host', hostDisk: { path: '/srv/disk.img', type: 'Disk' } },
        { name: 'cloudinitdisk', cloudInitNoCloud: { userData: '#cloud-config\n' } },
      ],
    }),
    ctx: {
      disks: {
        rootdisk: {
          path: '/var/run/kubevirt-private/rootdisk.qcow2',
          format: 'qcow2',
          backingStore: {
            path: '/var/run/kubevirt/container-disks/rootdisk/disk/guest.qcow2',
            format: 'qcow2',
          },
        },
        scratch: { path: '/var/run/kubevirt-private/empty-disks/scratch.qcow2', format: 'qcow2' },
        data: { path: '/var/run/kubevirt-private/vmi-disks/data/disk.img', format: 'raw' },
        host: { path: '/srv/disk.img', format: 'raw' },
        cloudinitdisk: { path: '/var/run/kubevirt-private/cloud-init/noCloud.iso', format: 'raw' },
      },
    },
  },
  masquerade: {
    vmi: vmi({
      domain: {
        devices: {
          interfaces: [{ name: 'default', masquerade: {}, ports: [{ port: 80 }] }],
          autoattachGraphicsDevice: false,
        },
      },
      networks: [{ name: 'default', pod: {} }],
    }),
  },
  passt: {
    vmi: vmi({
      domain: {
        devices: {
          interfaces: [
            { name: 'default', passtBinding: {}, ports: [{ port: 80 }, { port: 53, protocol: 'UDP' }] },
          ],
          autoattachGraphicsDevice: false,
        },
      },
      networks: [{ name: 'default', pod: {} }],
    }),
  },
  'efi-kvm': {
    vmi: vmi({
      domain: {
        resources: { requests: { memory: '512Mi', cpu: '1500m' } },
        memory: undefined,
        firmware: { bootloader: { efi: {} } },
        cpu: { model: 'host-passthrough' },
        clock: { utc: { offsetSeconds: 3600 } },
        devices: { disks: [{ name: 'rootdisk' }] },
      },
      volumes: [{ name: 'rootdisk', persistentVolumeClaim: { claimName: 'root', readOnly: true } }],
    }),
    ctx: {
      emulation: false,
      kvmAvailable: true,
      ovmf: {
        code: '/usr/share/OVMF/OVMF_CODE_4M.fd',
        vars: '/usr/share/OVMF/OVMF_VARS_4M.fd',
        secureCode: '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd',
        secureVars: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd',
      },
      disks: {
        rootdisk: {
          path: '/var/run/kubevirt-private/vmi-disks/rootdisk/disk.img',
          format: 'raw',
          readonly: true,
        },
      },
    },
  },
};

// libvirt's validator comes with libvirt-clients (scripts/install-hypervisor.sh); CI always has it.
const probe = spawnSync('virt-xml-validate', ['--help']);
const hasValidator = !(probe.error && 'code' in probe.error && probe.error.code === 'ENOENT');
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'converter-'));
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('convertVMIToDomain golden files', () => {
  for (const [name, { vmi: input, ctx }] of Object.entries(cases)) {
    it(`${name} matches testdata/${name}.xml`, async () => {
      const { xml } = convertVMIToDomain(input, { ...baseContext, ...ctx });
      const golden = join(testdata, `${name}.xml`);
      if (process.env.UPDATE_GOLDEN === '1') await writeFile(golden, xml);
      expect(xml).toBe(await readFile(golden, 'utf8'));
    });
  }

  it.runIf(process.env.CI === 'true' || hasValidator)(
    'every produced domain is valid for libvirt (virt-xml-validate)',
    async () => {
      expect(hasValidator, 'virt-xml-validate is missing: run scripts/install-hypervisor.sh').toBe(true);
      for (const [name, { vmi: input, ctx }] of Object.entries(cases)) {
        const file = join(scratch, `${name}.xml`);
        await writeFile(file, convertVMIToDomain(input, { ...baseContext, ...ctx }).xml);
        const result = await run('virt-xml-validate', [file, 'domain']).then(
          (r) => ({ ok: true, out: r.stdout + r.stderr }),
          (e: { stdout: string; stderr: string }) => ({ ok: false, out: e.stdout + e.stderr }),
        );
        expect(result, `${name}: ${result.out}`).toMatchObject({ ok: true });
      }
    },
  );
});

describe('convertVMIToDomain', () => {
  const convert = (input: VirtualMachineInstance, ctx: Partial<ConverterContext> = {}) =>
    convertVMIToDomain(input, { ...baseContext, ...ctx });

  it('names the domain <namespace>_<name> and takes the UUID from the firmware, else the VMI uid', () => {
    expect(convert(vmi()).name).toBe('default_testvm');
    expect(convert(vmi()).uuid).toBe('6e4b1c6e-8a54-4b9e-9a39-1f1b5b0e3c11');
    expect(convert(vmi({ domain: { firmware: { uuid: 'a-b' } } })).uuid).toBe('a-b');
  });

  it('gives a masquerade NIC the handler-made tap, the MAC from the spec or the UID, and vhost-net only with KVM', () => {
    const nic = (mac?: string, emulation = true) =>
      convert(
        vmi({
          domain: {
            devices: {
              interfaces: [
                { name: 'default', masquerade: {}, model: 'e1000', ...(mac ? { macAddress: mac } : {}) },
              ],
            },
          },
          networks: [{ name: 'default', pod: {} }],
        }),
        { emulation, kvmAvailable: !emulation },
      ).xml;
    expect(nic('02:AA:BB:CC:DD:EE')).toContain("<mac address='02:aa:bb:cc:dd:ee'/>");
    expect(nic()).toMatch(/<mac address='52:54:00(:[0-9a-f]{2}){3}'\/>/);
    expect(nic()).toContain("<target dev='tap0' managed='no'/>");
    expect(nic()).toContain("<model type='e1000'/>");
    expect(nic()).not.toContain('<driver');
  });

  it('uses KVM when emulation is off and /dev/kvm works, and refuses when neither is possible', () => {
    expect(convert(vmi(), { emulation: false, kvmAvailable: true }).xml).toMatch(/^<domain type='kvm'>/);
    expect(convert(vmi(), { emulation: true, kvmAvailable: true }).xml).toMatch(/^<domain type='qemu'>/);
    expect(() => convert(vmi(), { emulation: false, kvmAvailable: false })).toThrow(
      /kvm is not present.*useEmulation/,
    );
  });

  it('takes vCPUs from the topology, else from the CPU limit or request rounded up', () => {
    expect(convert(vmi({ domain: { cpu: { sockets: 2, cores: 2, threads: 2 } } })).xml).toContain(
      "<vcpu placement='static'>8</vcpu>",
    );
    expect(convert(vmi({ domain: { resources: { limits: { cpu: '2500m' } } } })).xml).toContain(
      "<vcpu placement='static'>3</vcpu>",
    );
  });

  it('boots EFI without Secure Boot from the plain OVMF build, with the VMI own copy of the variables', () => {
    const ovmf = {
      code: '/usr/share/OVMF/OVMF_CODE_4M.fd',
      vars: '/usr/share/OVMF/OVMF_VARS_4M.fd',
    };
    const { xml } = convert(vmi({ domain: { firmware: { bootloader: { efi: { secureBoot: false } } } } }), {
      ovmf,
    });
    expect(xml).toContain(
      "<loader readonly='yes' secure='no' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>",
    );
    expect(xml).toContain(
      "<nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/var/run/kubevirt-private/default_testvm_VARS.fd</nvram>",
    );
    expect(xml).not.toContain('<smm');
    // Secure Boot (the default) needs a secure-boot OVMF build, and says which setting avoids it.
    expect(() => convert(vmi({ domain: { firmware: { bootloader: { efi: {} } } } }), { ovmf })).toThrow(
      /efi\.secureBoot: OVMF has no secure-boot build here; set secureBoot: false/,
    );
  });

  it('converts every clock offset and timer KubeVirt has', () => {
    const clock = (c: NonNullable<VirtualMachineInstance['spec']['domain']['clock']>) =>
      /<clock[^>]*\/>|<clock[^]*?<\/clock>/.exec(convert(vmi({ domain: { clock: c } })).xml)?.[0];
    expect(clock({})).toBe("<clock offset='utc'/>");
    expect(clock({ utc: { offsetSeconds: 0 } })).toBe("<clock offset='utc'/>");
    expect(clock({ utc: { offsetSeconds: -1800 } })).toBe(
      "<clock offset='variable' adjustment='-1800' basis='utc'/>",
    );
    expect(
      clock({ timer: { kvm: { present: true }, hyperv: { present: false }, hpet: { tickPolicy: 'merge' } } }),
    ).toBe(
      "<clock offset='utc'>\n    <timer name='hpet' tickpolicy='merge'/>\n    <timer name='kvmclock' present='yes'/>\n" +
        "    <timer name='hypervclock' present='no'/>\n  </clock>",
    );
    expect(() => convert(vmi({ domain: { clock: { utc: {}, timezone: 'UTC' } } }))).toThrow(
      /spec\.domain\.clock: set either utc or timezone, not both/,
    );
  });

  it('puts scsi disks and CD-ROMs on one virtio-scsi controller, and adds none without them', () => {
    const { xml } = convert(
      vmi({
        domain: {
          devices: {
            disks: [
              { name: 'a', disk: { bus: 'scsi' } },
              { name: 'b', cdrom: { bus: 'scsi' } },
            ],
          },
        },
        volumes: [
          { name: 'a', emptyDisk: { capacity: '1Gi' } },
          { name: 'b', emptyDisk: { capacity: '1Gi' } },
        ],
      }),
      {
        disks: {
          a: { path: '/var/run/kubevirt-private/a.qcow2', format: 'qcow2' },
          b: { path: '/var/run/kubevirt-private/b.qcow2', format: 'qcow2' },
        },
      },
    );
    expect(xml).toContain("<target dev='sda' bus='scsi'/>");
    expect(xml).toContain("<target dev='sdb' bus='scsi'/>");
    expect(xml.match(/<controller type='scsi'[^>]*>/g)).toEqual([
      "<controller type='scsi' index='0' model='virtio-scsi'/>",
    ]);
    expect(convert(vmi()).xml).not.toContain("type='scsi'");
  });

  it('adds a virtio RNG fed from /dev/urandom only when the VMI asks for one', () => {
    expect(convert(vmi({ domain: { devices: { rng: {} } } })).xml).toMatch(
      /<rng model='virtio'>\s*<backend model='random'>\/dev\/urandom<\/backend>\s*<\/rng>/,
    );
    expect(convert(vmi()).xml).not.toContain('<rng');
  });

  it('connects a passtBinding NIC to the passt socket with QEMU arguments, not an <interface>', () => {
    const xml = (iface: Record<string, unknown>) =>
      convert(
        vmi({
          domain: { devices: { interfaces: [{ name: 'default', passtBinding: {}, ...iface }] } },
          networks: [{ name: 'default', pod: {} }],
        }),
      ).xml;
    const plain = xml({});
    expect(plain).toContain("<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>");
    expect(plain).not.toContain('<interface');
    expect(plain).toContain(
      "<qemu:arg value='stream,id=netpasst-default,server=off,addr.type=unix,addr.path=/var/run/kubevirt-private/passt/passt.sock'/>",
    );
    expect(plain).toMatch(
      /<qemu:arg value='\{&quot;driver&quot;:&quot;virtio-net-pci-non-transitional&quot;,&quot;netdev&quot;:&quot;netpasst-default&quot;,&quot;id&quot;:&quot;passt-default&quot;,&quot;mac&quot;:&quot;52:54:00(:[0-9a-f]{2}){3}&quot;,&quot;romfile&quot;:&quot;&quot;\}'\/>/,
    );
    const e1000 = xml({ model: 'e1000', macAddress: '02:AA:BB:CC:DD:EE' });
    expect(e1000).toContain('&quot;driver&quot;:&quot;e1000&quot;');
    expect(e1000).toContain('&quot;mac&quot;:&quot;02:aa:bb:cc:dd:ee&quot;');
    // A VMI without passt keeps its domain free of QEMU arguments (and of libvirt's custom-argv taint).
    expect(convert(vmi()).xml).not.toContain('qemu:');
  });

  it('names the field of each error', () => {
    const cases: [VirtualMachineInstance, RegExp][] = [
      [vmi({ domain: { memory: undefined } }), /spec\.domain\.memory\.guest: the guest has no memory/],
      [vmi({ domain: { memory: { guest: 'lots' } } }), /spec\.domain\.memory\.guest: lots is not/],
      [
        vmi({ domain: { devices: { interfaces: [{ name: 'default', masquerade: {} }] } } }),
        /spec\.domain\.devices\.interfaces\[0\]\.name: no network is named default/,
      ],
      [
        vmi({
          domain: { devices: { interfaces: [{ name: 'default', sriov: {} }] } },
          networks: [{ name: 'default', pod: {} }],
        }),
        /spec\.domain\.devices\.interfaces\[0\]: only the masquerade, bridge and passtBinding bindings/,
      ],
      [
        vmi({ domain: { cpu: { model: 'host-passthrough' } } }),
        /spec\.domain\.cpu\.model: host-passthrough needs KVM/,
      ],
      [vmi({ domain: { devices: { disks: [{ name: 'x' }] } } }), /disks\[0\]\.name: no volume is named x/],
      [
        vmi({ domain: { firmware: { bootloader: { efi: {} } } } }),
        /bootloader\.efi: EFI firmware \(OVMF\) is not installed/,
      ],
      [
        vmi({ domain: { firmware: { kernelBoot: { kernelArgs: 'x' } } } }),
        /kernelBoot\.container: kernel boot needs/,
      ],
      [vmi({ domain: { cpu: { cores: 0 } } }), /spec\.domain\.cpu\.cores: 0 is not a positive integer/],
    ];
    for (const [input, message] of cases) {
      expect(() => convert(input)).toThrow(ConversionError);
      expect(() => convert(input)).toThrow(message);
    }
    const cdrom = vmi({
      domain: { devices: { disks: [{ name: 'ci', cdrom: { bus: 'virtio' } }] } },
      volumes: [{ name: 'ci', cloudInitNoCloud: {} }],
    });
    expect(() => convert(cdrom, { disks: { ci: { path: '/x.iso', format: 'raw' } } })).toThrow(
      /disks\[0\]\.cdrom\.bus: a cdrom cannot sit on the virtio bus/,
    );
  });

  it('escapes text and attribute values', () => {
    const xml = convert(
      vmi({
        domain: {
          firmware: {
            kernelBoot: { kernelArgs: "a<b & c='d'", container: { image: 'i', kernelPath: '/k' } },
          },
        },
      }),
    ).xml;
    expect(xml).toContain("<cmdline>a&lt;b &amp; c='d'</cmdline>");
  });
});

describe('deviceName', () => {
  it('counts like libvirt: a..z, then aa, ab…', () => {
    expect([0, 1, 25, 26, 27, 701, 702].map((i) => deviceName('vd', i))).toEqual([
      'vda',
      'vdb',
      'vdz',
      'vdaa',
      'vdab',
      'vdzz',
      'vdaaa',
    ]);
  });
});
