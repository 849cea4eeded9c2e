import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { API_COVERAGE_PATH, formattedApiCoverage } from '../scripts/write-api-coverage.ts';
import { apiCoverageMarkdown, coverageRows } from './coverage.ts';
import { VirtualMachineSpec } from './types/vm.ts';
import { VirtualMachineInstanceSpec } from './types/vmi.ts';

describe('api coverage', () => {
  it('lists every VMI spec field with its support', () => {
    const rows = new Map(coverageRows(VirtualMachineInstanceSpec).map((r) => [r.path, r]));
    expect(rows.get('spec.domain.devices.disks[].disk.bus')).toMatchObject({
      support: 'supported',
      note: expect.stringMatching(/usb/) as string,
    });
    expect(rows.get('spec.domain.devices.disks[].disk.bus')?.note).not.toMatch(/scsi/);
    // What the launcher converts into domain XML is supported, down to the leaves.
    for (const path of [
      'spec.domain.clock',
      'spec.domain.clock.timezone',
      'spec.domain.clock.timer.rtc.track',
      'spec.domain.devices.rng',
      'spec.domain.firmware.bootloader.efi',
      'spec.domain.firmware.bootloader.efi.secureBoot',
    ]) {
      expect(rows.get(path)?.support, path).toBe('supported');
    }
    // EFI variables live in the launcher pod, so keeping them across restarts is not supported yet.
    expect(rows.get('spec.domain.firmware.bootloader.efi.persistent')?.support).toBe('not supported yet');
    expect(rows.get('spec.domain.cpu.numa')?.support).toBe('not supported yet');
    expect(rows.get('spec.domain.devices.interfaces[].passtBinding')?.support).toBe('supported');
    expect(rows.get('spec.domain.devices.interfaces[].sriov')).toMatchObject({
      support: 'not supported yet',
      note: expect.stringMatching(/networking/) as string,
    });
    expect(rows.get('spec.affinity')?.support).toBe('Kubernetes type');
    expect(rows.get('spec.tolerations')?.support).toBe('Kubernetes type');
    expect(rows.has('spec.tolerations[].key')).toBe(false);
    expect(rows.get('spec.volumes[].containerDisk.image')?.support).toBe('supported');
    // Nothing below a field that is not supported is listed.
    expect([...rows.keys()].some((p) => p.startsWith('spec.domain.cpu.numa.'))).toBe(false);
  });

  it('refers a template spec to the VMI spec instead of repeating it', () => {
    const rows = coverageRows(VirtualMachineSpec);
    expect(rows.find((r) => r.path === 'spec.template.spec')?.note).toMatch(/VirtualMachineInstance spec/);
    expect(rows.some((r) => r.path.startsWith('spec.template.spec.domain'))).toBe(false);
  });

  it('covers every kind and the deliberate differences', () => {
    const doc = apiCoverageMarkdown();
    for (const heading of [
      '## VirtualMachine (',
      '## VirtualMachineInstance (',
      '## VirtualMachineInstancetype, VirtualMachineClusterInstancetype',
      '## KubeVirt (',
    ]) {
      expect(doc).toContain(heading);
    }
    expect(doc).toMatch(/`firmware.uuid` of a VM or VMI without one is derived from its name/);
    expect(doc).not.toMatch(/Default network/);
  });

  it('is committed as generated (run `pnpm --filter @kubevirt-ts/schema coverage` after changing a schema)', async () => {
    const committed = await readFile(API_COVERAGE_PATH, 'utf8');
    expect(committed).toBe(await formattedApiCoverage());
  });
});
