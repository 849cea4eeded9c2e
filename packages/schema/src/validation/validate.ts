// Validation of each kind, as the validating webhooks run it: the structural check of `.spec` against the schema
// definition (types, unknown and not-yet-supported fields), then, when the types are right, the semantic rules.
// Every function takes any JSON and never throws; it returns Kubernetes-style causes, empty when valid.
import type { TSchema } from 'typebox';
import { DEFAULT_CLUSTER_CONFIG, type ClusterConfig } from '../config.ts';
import { defaultVirtualMachineInstanceSpec } from '../defaults.ts';
import {
  checkPreferenceRequirements,
  expandTemplate,
  instancetypeKind,
  preferenceKind,
} from '../instancetype.ts';
import { KINDS, kindByName, kindInfo } from '../kinds.ts';
import { parseQuantity } from '../quantity.ts';
import type { InstancetypeSpec, PreferenceSpec } from '../types/instancetype.ts';
import type { KubeVirtSpec } from '../types/kubevirt.ts';
import type { VirtualMachineInstanceMigrationSpec } from '../types/migration.ts';
import type { VirtualMachineInstanceReplicaSetSpec } from '../types/replicaset.ts';
import type { VirtualMachineSpec, VirtualMachineInstanceTemplateSpec } from '../types/vm.ts';
import type { VirtualMachineInstanceSpec } from '../types/vmi.ts';
import { FieldPath, invalid, notSupported, required, show, type StatusCause } from './causes.ts';
import { labelSelectorMatches, validateLabelSelector } from './labels.ts';
import { checkStructure, isPlainObject, withoutNulls } from './structural.ts';
import { validateVirtualMachineInstanceSpecRules } from './vmi-spec.ts';

export interface ValidationOptions {
  /** The cluster configuration (clusterConfigFrom(kubevirtCR)); KubeVirt's defaults when absent. */
  config?: ClusterConfig;
}

export interface VirtualMachineValidationOptions extends ValidationOptions {
  /**
   * The spec of the instancetype the VM references, looked up by the caller. When the VM references one and this
   * is absent, the rules that depend on it (conflicts, memory) are skipped: reporting a missing instancetype is
   * the caller's job, since only it knows whether the lookup failed.
   */
  instancetype?: InstancetypeSpec;
  /** The spec of the preference the VM references (same contract as instancetype). */
  preference?: PreferenceSpec;
}

const TOP_LEVEL = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status']);

interface Prepared<S> {
  causes: StatusCause[];
  /** The typed spec, present only when its types checked out. */
  spec?: S;
}

/** Top-level shape and the structural check of `.spec`; common to every kind. */
function prepare<S>(object: unknown, specSchema: TSchema): Prepared<S> {
  if (!isPlainObject(object)) return { causes: [invalid('', `must be a JSON object, not ${show(object)}`)] };
  const clean = withoutNulls(object) as Record<string, unknown>;
  const causes: StatusCause[] = [];
  for (const key of Object.keys(clean)) {
    if (!TOP_LEVEL.has(key)) causes.push(invalid(key, `unknown field ${show(key)}`));
  }
  if (clean.spec === undefined) {
    causes.push(required('spec', 'Required value'));
    return { causes };
  }
  const structure = checkStructure(specSchema, clean.spec, FieldPath.root('spec'));
  causes.push(...structure.causes);
  return structure.typeErrors ? { causes } : { causes, spec: clean.spec as S };
}

function metadataOf(object: unknown): Record<string, unknown> {
  const metadata = isPlainObject(object) ? object.metadata : undefined;
  return isPlainObject(metadata) ? metadata : {};
}

/** Validates a VirtualMachineInstance as the VMI validating webhook sees it: defaulted already. */
export function validateVirtualMachineInstance(vmi: unknown, options: ValidationOptions = {}): StatusCause[] {
  const { causes, spec } = prepare<VirtualMachineInstanceSpec>(
    vmi,
    kindByName('VirtualMachineInstance').spec,
  );
  if (spec !== undefined) {
    causes.push(
      ...validateVirtualMachineInstanceSpecRules(spec, FieldPath.root('spec'), {
        config: options.config ?? DEFAULT_CLUSTER_CONFIG,
        requireMemory: true,
      }),
    );
  }
  return causes;
}

/**
 * Validates a template (VM or replica set) the way KubeVirt does: on a copy with the instancetype and preference
 * expanded and the VMI defaults applied, so the rules see the VMI the template will produce.
 */
function validateTemplate(
  template: VirtualMachineInstanceTemplateSpec,
  path: FieldPath,
  config: ClusterConfig,
  expansion: { instancetype?: InstancetypeSpec | undefined; preference?: PreferenceSpec | undefined },
): StatusCause[] {
  if (template.spec === undefined)
    return [required(path.child('spec'), 'Required value: the template needs a spec')];
  const spec = template.spec;
  const expanded = expandTemplate({ metadata: template.metadata, spec }, expansion, path);
  if (expanded.causes.length > 0) return expanded.causes;
  const name = typeof template.metadata?.name === 'string' ? template.metadata.name : undefined;
  const defaulted = defaultVirtualMachineInstanceSpec(expanded.template.spec, {
    config,
    ...(name === undefined ? {} : { name }),
  });
  const causes = validateVirtualMachineInstanceSpecRules(defaulted, path.child('spec'), {
    config,
    requireMemory: false,
  });
  if (expansion.preference !== undefined) {
    causes.push(
      ...checkPreferenceRequirements(
        expansion.preference,
        expansion.instancetype,
        defaulted,
        FieldPath.root('spec'),
      ),
    );
  }
  return causes;
}

/** Validates a VirtualMachine. Pass the referenced instancetype and preference specs when they exist. */
export function validateVirtualMachine(
  vm: unknown,
  options: VirtualMachineValidationOptions = {},
): StatusCause[] {
  const { causes, spec } = prepare<VirtualMachineSpec>(vm, kindByName('VirtualMachine').spec);
  if (spec === undefined) return causes;
  const config = options.config ?? DEFAULT_CLUSTER_CONFIG;
  const path = FieldPath.root('spec');
  if (spec.running !== undefined && spec.runStrategy !== undefined) {
    causes.push(
      invalid(
        path.child('running'),
        'running and runStrategy are mutually exclusive; keep runStrategy (running is deprecated)',
      ),
    );
  }
  if (spec.running === undefined && spec.runStrategy === undefined) {
    causes.push(
      required(path.child('runStrategy'), 'set runStrategy (Always, RerunOnFailure, Manual, Halted or Once)'),
    );
  }
  if (spec.instancetype !== undefined) {
    if ((spec.instancetype.name ?? '') === '')
      causes.push(
        required(path.child('instancetype', 'name'), 'Required value: the name of the instancetype'),
      );
    if (instancetypeKind(spec.instancetype) === undefined) {
      causes.push(
        notSupported(
          path.child('instancetype', 'kind'),
          `Unsupported value: ${show(spec.instancetype.kind)}: supported values: "VirtualMachineClusterInstancetype", "VirtualMachineInstancetype"`,
        ),
      );
    }
  }
  if (spec.preference !== undefined) {
    if ((spec.preference.name ?? '') === '')
      causes.push(required(path.child('preference', 'name'), 'Required value: the name of the preference'));
    if (preferenceKind(spec.preference) === undefined) {
      causes.push(
        notSupported(
          path.child('preference', 'kind'),
          `Unsupported value: ${show(spec.preference.kind)}: supported values: "VirtualMachineClusterPreference", "VirtualMachinePreference"`,
        ),
      );
    }
  }
  const vmName = metadataOf(vm).name;
  const template: VirtualMachineInstanceTemplateSpec = {
    ...spec.template,
    metadata: { ...spec.template.metadata, ...(typeof vmName === 'string' ? { name: vmName } : {}) },
  };
  causes.push(
    ...validateTemplate(template, path.child('template'), config, {
      instancetype: spec.instancetype === undefined ? undefined : options.instancetype,
      preference: spec.preference === undefined ? undefined : options.preference,
    }),
  );
  return causes;
}

/** Validates a VirtualMachineInstanceReplicaSet. */
export function validateVirtualMachineInstanceReplicaSet(
  rs: unknown,
  options: ValidationOptions = {},
): StatusCause[] {
  const { causes, spec } = prepare<VirtualMachineInstanceReplicaSetSpec>(
    rs,
    kindByName('VirtualMachineInstanceReplicaSet').spec,
  );
  if (spec === undefined) return causes;
  const path = FieldPath.root('spec');
  const selectorCauses = validateLabelSelector(spec.selector, path.child('selector'));
  causes.push(...selectorCauses);
  const labels = spec.template.metadata?.labels ?? {};
  if (selectorCauses.length === 0) {
    const empty =
      Object.keys(spec.selector.matchLabels ?? {}).length === 0 &&
      (spec.selector.matchExpressions ?? []).length === 0;
    if (empty)
      causes.push(
        required(
          path.child('selector'),
          'needs matchLabels or matchExpressions that select the template labels',
        ),
      );
    else if (!labelSelectorMatches(spec.selector, labels)) {
      causes.push(
        invalid(
          path.child('selector'),
          'does not match the labels of spec.template.metadata.labels; the replica set would never see its VMIs',
        ),
      );
    }
  }
  causes.push(
    ...validateTemplate(spec.template, path.child('template'), options.config ?? DEFAULT_CLUSTER_CONFIG, {}),
  );
  return causes;
}

/** Validates a VirtualMachineInstanceMigration (the checks that need the VMI are the webhook's). */
export function validateVirtualMachineInstanceMigration(
  vmim: unknown,
  _options: ValidationOptions = {},
): StatusCause[] {
  const { causes, spec } = prepare<VirtualMachineInstanceMigrationSpec>(
    vmim,
    kindByName('VirtualMachineInstanceMigration').spec,
  );
  if (spec !== undefined && spec.vmiName.trim() === '') {
    causes.push(
      required('spec.vmiName', 'Required value: the name of the VirtualMachineInstance to migrate'),
    );
  }
  return causes;
}

function validateInstancetypeSpec(spec: InstancetypeSpec): StatusCause[] {
  const causes: StatusCause[] = [];
  const guest = parseQuantity(spec.memory.guest);
  if (guest !== undefined && guest < 1024 * 1024) {
    causes.push(
      invalid('spec.memory.guest', `Invalid value: ${show(spec.memory.guest)}: the guest needs at least 1Mi`),
    );
  }
  return causes;
}

/** Validates a VirtualMachineInstancetype or VirtualMachineClusterInstancetype. */
export function validateInstancetype(instancetype: unknown, _options: ValidationOptions = {}): StatusCause[] {
  const { causes, spec } = prepare<InstancetypeSpec>(
    instancetype,
    kindByName('VirtualMachineInstancetype').spec,
  );
  if (spec !== undefined) causes.push(...validateInstancetypeSpec(spec));
  return causes;
}

/** Validates a VirtualMachinePreference or VirtualMachineClusterPreference. */
export function validatePreference(preference: unknown, _options: ValidationOptions = {}): StatusCause[] {
  const { causes, spec } = prepare<PreferenceSpec>(preference, kindByName('VirtualMachinePreference').spec);
  if (spec !== undefined) {
    const guest = spec.requirements?.memory?.guest;
    if (guest !== undefined && (parseQuantity(guest) ?? 0) < 0) {
      causes.push(
        invalid('spec.requirements.memory.guest', `Invalid value: ${show(guest)}: must not be negative`),
      );
    }
  }
  return causes;
}

/**
 * Validates the KubeVirt configuration CR. It has no admission webhook (DESIGN.md §4b): the controller runs
 * this and reports the causes in the CR's status conditions.
 */
export function validateKubeVirt(kubevirt: unknown, _options: ValidationOptions = {}): StatusCause[] {
  const { causes, spec } = prepare<KubeVirtSpec>(kubevirt, kindByName('KubeVirt').spec);
  if (spec === undefined) return causes;
  const configuration = spec.configuration;
  const ratio = configuration?.additionalGuestMemoryOverheadRatio;
  if (ratio !== undefined && ratio !== '') {
    const value = Number(ratio);
    if (!/^\d+(\.\d+)?$/.test(ratio) || value < 1) {
      causes.push(
        invalid(
          'spec.configuration.additionalGuestMemoryOverheadRatio',
          `Invalid value: ${show(ratio)}: must be a decimal number of at least 1, such as "1.5"`,
        ),
      );
    }
  }
  const cpuRequest = configuration?.cpuRequest;
  if (cpuRequest !== undefined && (parseQuantity(cpuRequest) ?? 0) < 0) {
    causes.push(
      invalid('spec.configuration.cpuRequest', `Invalid value: ${show(cpuRequest)}: must not be negative`),
    );
  }
  return causes;
}

/**
 * Validates any object of a kind this package owns, chosen by apiVersion and kind; an object of another kind
 * gets one cause saying so. VM validation through here gets no instancetype or preference.
 */
export function validate(object: unknown, options: VirtualMachineValidationOptions = {}): StatusCause[] {
  const apiVersion = isPlainObject(object) ? object.apiVersion : undefined;
  const kind = isPlainObject(object) ? object.kind : undefined;
  const info = kindInfo(apiVersion, kind);
  if (info === undefined) {
    return [
      notSupported(
        'kind',
        `Unsupported value: ${show(kind)} of ${show(apiVersion)}: not a kind of kubevirt-ts`,
      ),
    ];
  }
  switch (info.kind) {
    case 'VirtualMachine':
      return validateVirtualMachine(object, options);
    case 'VirtualMachineInstance':
      return validateVirtualMachineInstance(object, options);
    case 'VirtualMachineInstanceReplicaSet':
      return validateVirtualMachineInstanceReplicaSet(object, options);
    case 'VirtualMachineInstanceMigration':
      return validateVirtualMachineInstanceMigration(object, options);
    case 'VirtualMachineInstancetype':
    case 'VirtualMachineClusterInstancetype':
      return validateInstancetype(object, options);
    case 'VirtualMachinePreference':
    case 'VirtualMachineClusterPreference':
      return validatePreference(object, options);
    case 'KubeVirt':
      return validateKubeVirt(object, options);
  }
}

/**
 * Compiles the validators of every kind now instead of on the first review (about 20 ms in all), so a webhook
 * can do it before reporting ready.
 */
export function precompileValidators(): void {
  for (const info of KINDS) checkStructure(info.spec, {}, FieldPath.root('spec'));
}
