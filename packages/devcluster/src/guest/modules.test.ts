import { describe, expect, it } from 'vitest';
import { orderModules } from './modules.ts';

describe('orderModules', () => {
  it('puts each module after its dependencies', () => {
    const deps = new Map<string, string[]>([
      ['virtio_pci', ['virtio_ring', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio']],
      ['virtio', []],
      ['virtio_ring', []],
      ['virtio_pci_modern_dev', []],
      ['virtio_pci_legacy_dev', []],
      ['sr_mod', ['scsi_mod', 'cdrom', 'scsi_common']],
      ['scsi_mod', ['scsi_common']],
      ['scsi_common', []],
      ['cdrom', []],
    ]);
    const order = orderModules(deps);
    expect(new Set(order)).toEqual(new Set(deps.keys()));
    for (const [name, list] of deps) {
      for (const dep of list) expect(order.indexOf(dep)).toBeLessThan(order.indexOf(name));
    }
  });

  it('names a missing dependency and the module that needs it', () => {
    expect(() => orderModules(new Map([['isofs', ['cdrom']]]))).toThrow(/cdrom is needed by isofs/);
  });

  it('reports a dependency cycle', () => {
    expect(() =>
      orderModules(
        new Map([
          ['a', ['b']],
          ['b', ['a']],
        ]),
      ),
    ).toThrow(/cycle: a -> b -> a/);
  });
});
