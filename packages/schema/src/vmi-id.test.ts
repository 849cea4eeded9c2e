import { describe, expect, it } from 'vitest';
import { VMI_ID_LABEL, vmiIdLabel } from './vmi-id.ts';

describe('vmiIdLabel', () => {
  it('is the name itself up to 63 characters', () => {
    expect(VMI_ID_LABEL).toBe('vmi.kubevirt.io/id');
    expect(vmiIdLabel('masq-vm')).toBe('masq-vm');
    expect(vmiIdLabel('x'.repeat(63))).toBe('x'.repeat(63));
  });

  it('cuts a longer name to 54 characters and adds 8 hex digits of its SHA-1, as KubeVirt does', () => {
    // sha1("vm-" + 70 × "x") starts with 90be72e1 (computed independently with Python's hashlib).
    expect(vmiIdLabel(`vm-${'x'.repeat(70)}`)).toBe(`vm-${'x'.repeat(51)}-90be72e1`);
  });
});
