// KubeVirt's `vmi.kubevirt.io/id` label: virt-controller puts it on every launcher pod of a VMI, and `virtctl expose`
// selects the pod by it, so both must compute the same value from the VMI's (or its VM's) name.
import { createHash } from 'node:crypto';

export const VMI_ID_LABEL = 'vmi.kubevirt.io/id';

const DNS1035_LABEL_MAX = 63;

/** The label's value: the name, or when too long for a label its prefix and 8 hex digits of its SHA-1. */
export function vmiIdLabel(name: string): string {
  if (name.length <= DNS1035_LABEL_MAX) return name;
  const hash = createHash('sha1').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, DNS1035_LABEL_MAX - 8 - 1)}-${hash}`;
}
