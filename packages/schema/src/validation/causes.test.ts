import { describe, expect, it } from 'vitest';
import { FieldPath, dedupe, formatCauses, invalid, required } from './causes.ts';

describe('FieldPath', () => {
  it("writes Kubernetes' notation", () => {
    const path = FieldPath.root('spec', 'template')
      .child('spec', 'domain')
      .child('devices', 'disks')
      .index(0)
      .child('name');
    expect(path.toString()).toBe('spec.template.spec.domain.devices.disks[0].name');
    expect(FieldPath.root('spec').child('nodeSelector').key('kubernetes.io/os').toString()).toBe(
      'spec.nodeSelector[kubernetes.io/os]',
    );
  });
});

describe('causes', () => {
  it('dedupe and format one per line', () => {
    const causes = [invalid('spec.a', 'bad'), invalid('spec.a', 'bad'), required('spec.b', 'Required value')];
    expect(dedupe(causes)).toHaveLength(2);
    expect(formatCauses(dedupe(causes))).toBe('spec.a: bad\nspec.b: Required value');
  });
});
