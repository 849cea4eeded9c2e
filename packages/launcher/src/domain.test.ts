import { describe, expect, it } from 'vitest';
import { guestAgentInfo, metadataXml, parseMetadataXml } from './domain.ts';

describe('kubevirt.io domain metadata', () => {
  it('round-trips the grace period, including as libvirt returns it with a namespace prefix', () => {
    const meta = {
      uid: 'u-1',
      graceperiod: {
        deletionGracePeriodSeconds: 30,
        deletionTimestamp: '2026-01-01T00:00:00.000Z',
        markedForGracefulShutdown: true,
      },
    };
    expect(parseMetadataXml(metadataXml(meta))).toEqual(meta);
    const prefixed = metadataXml(meta).replaceAll('<', '<kubevirt:').replaceAll('<kubevirt:/', '</kubevirt:');
    expect(parseMetadataXml(prefixed)).toEqual(meta);
    expect(
      parseMetadataXml(metadataXml({ uid: 'u', graceperiod: { deletionGracePeriodSeconds: 5 } })),
    ).toEqual({
      uid: 'u',
      graceperiod: {
        deletionGracePeriodSeconds: 5,
        deletionTimestamp: undefined,
        markedForGracefulShutdown: undefined,
      },
    });
    expect(parseMetadataXml('<other/>')).toBeUndefined();
  });
});

describe('guestAgentInfo', () => {
  it("maps libvirt's guest info to KubeVirt's guest-agent info", () => {
    const info = guestAgentInfo({
      hostname: 'vm1',
      'os.id': 'debian',
      'os.name': 'Debian GNU/Linux',
      'os.pretty-name': 'Debian GNU/Linux 12',
      'os.version-id': '12',
      'os.kernel-release': '6.1.0',
      'timezone.name': 'UTC',
      'timezone.offset': 0,
      'user.count': 1,
      'user.0.name': 'root',
      'user.0.login-time': 1700000000000,
      'fs.count': 1,
      'fs.0.name': 'vda1',
      'fs.0.mountpoint': '/',
      'fs.0.fstype': 'ext4',
      'fs.0.total-bytes': 100,
      'fs.0.used-bytes': 40,
      'if.count': 2,
      'if.0.name': 'lo',
      'if.0.hwaddr': '00:00:00:00:00:00',
      'if.1.name': 'eth0',
      'if.1.hwaddr': '52:54:00:aa:bb:cc',
      'if.1.addr.count': 2,
      'if.1.addr.0.type': 'ipv4',
      'if.1.addr.0.addr': '10.0.2.2',
      'if.1.addr.0.prefix': 24,
      'if.1.addr.1.type': 'ipv6',
      'if.1.addr.1.addr': 'fe80::5054:ff:feaa:bbcc',
      'if.1.addr.1.prefix': 64,
    });
    expect(info).toMatchObject({
      hostname: 'vm1',
      os: {
        id: 'debian',
        name: 'Debian GNU/Linux',
        prettyName: 'Debian GNU/Linux 12',
        versionId: '12',
        kernelRelease: '6.1.0',
      },
      timezone: 'UTC, 0',
      userList: [{ userName: 'root', loginTime: 1700000000000 }],
      fsInfo: {
        disks: [
          { diskName: 'vda1', mountPoint: '/', fileSystemType: 'ext4', totalBytes: 100, usedBytes: 40 },
        ],
      },
      // Loopback is left out; the first address is the primary one.
      interfaces: [
        {
          interfaceName: 'eth0',
          mac: '52:54:00:aa:bb:cc',
          ip: '10.0.2.2',
          ips: ['10.0.2.2', 'fe80::5054:ff:feaa:bbcc'],
        },
      ],
    });
  });
});
