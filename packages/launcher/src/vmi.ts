// The VMI as the launcher reads it: the schema package's type, with the identity the handler always sends made
// required, and KubeVirt's shape for the fields the schema keeps loose until they are supported (panic
// devices: the webhook rejects them today, but the launcher already converts them).
import type { VirtualMachineInstance as SchemaVMI } from '@kubevirt-ts/schema';

export type VirtualMachineInstance = SchemaVMI & {
  metadata: NonNullable<SchemaVMI['metadata']> & { name: string; namespace: string; uid: string };
};
export type VMIDisk = NonNullable<SchemaVMI['spec']['domain']['devices']['disks']>[number];
export type VMIVolume = NonNullable<SchemaVMI['spec']['volumes']>[number];
export type Quantity = string | number;

/** KubeVirt's spec.domain.devices.panicDevices[]. */
export interface VMIPanicDevice {
  model?: string;
}

// Quantities are parsed here rather than with the schema package's parseQuantity: importing the schema's runtime
// code costs every launcher about 25 MiB of memory for one small function.
const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const DECIMAL: Record<string, number> = { m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
const GRAMMAR = /^(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[mkMGTPE]|[eE][+-]?\d+)?$/;

/** A Kubernetes quantity in base units (bytes, cores), or undefined when it is not a valid quantity. */
export function parseQuantity(value: Quantity | undefined): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = GRAMMAR.exec(value);
  if (!match) return undefined;
  const number = Number(match[1]);
  const suffix = match[2] ?? '';
  if (suffix in BINARY) return number * (BINARY[suffix] as number);
  if (suffix in DECIMAL) return number * (DECIMAL[suffix] as number);
  return number * 10 ** Number(suffix.slice(1));
}
