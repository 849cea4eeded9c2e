// What virt-api's webhooks decide, kind by kind, as functions of the request and a context of cached lookups:
// defaulting (mutating) and validation (validating), from the schema package. The context answers from informer
// caches, which keeps a review under a millisecond or so; the one exception is a reference the cache does not
// know, confirmed with a live read before it is refused (an instancetype created a moment before its VM may not
// have reached the cache yet).
import {
  instancetypeKind,
  preferenceKind,
  defaultVirtualMachine,
  defaultVirtualMachineInstance,
  notSupported,
  invalid,
  validateInstancetype,
  validatePreference,
  validateVirtualMachine,
  validateVirtualMachineInstance,
  validateVirtualMachineInstanceMigration,
  validateVirtualMachineInstanceReplicaSet,
  type ClusterConfig,
  type InstancetypeKind,
  type InstancetypeSpec,
  type PreferenceKind,
  type PreferenceSpec,
  type StatusCause,
} from '@kubevirt-ts/schema';
import { changedPaths, createPatch, isObject, jsonEqual, type JsonObject } from './json.ts';
import { allow, deny, type AdmissionRequest, type Verdict } from './review.ts';

/** KubeVirt's finalizer that keeps a VMI until its launcher pod is gone (reference §1.7). */
export const VMI_FINALIZER = 'kubevirt.io/foregroundDeleteVirtualMachine';
/** KubeVirt's finalizer of a migration object. */
export const MIGRATION_FINALIZER = 'kubevirt.io/migrationJobFinalize';
/** Label a migration gets with the name of its VMI, so controllers can select by it. */
export const MIGRATION_VMI_NAME_LABEL = 'kubevirt.io/vmi-name';
/** Labels under this prefix on a VMI are ours (node name, migration target, ...): users may not change them. */
export const RESERVED_LABEL_PREFIX = 'kubevirt.io/';
/** Labels that steer virt-handler or the controllers; only our service accounts may create a VMI with them. */
export const RESTRICTED_VMI_LABELS = [
  'kubevirt.io/nodeName',
  'kubevirt.io/migrationTargetNodeName',
  'kubevirt.io/outdatedLauncherImage',
] as const;

export type Lookup<T> =
  { state: 'found'; spec: T } | { state: 'missing' } | { state: 'unavailable'; reason: string };

/** Everything an admitter may consult besides the request. Implementations answer from memory. */
export interface AdmissionContext {
  config(): ClusterConfig;
  /** Whether `username` is one of kubevirt-ts's own service accounts (they own VMI status and hotplug). */
  isPrivileged(username: string): boolean;
  instancetype(kind: InstancetypeKind, namespace: string | undefined, name: string): Lookup<InstancetypeSpec>;
  preference(kind: PreferenceKind, namespace: string | undefined, name: string): Lookup<PreferenceSpec>;
  /** A live read of a reference the cache reported missing; absent in contexts without an API server. */
  confirm?(
    kind: InstancetypeKind | PreferenceKind,
    namespace: string | undefined,
    name: string,
  ): Promise<Lookup<InstancetypeSpec | PreferenceSpec>>;
  now(): Date;
}

export type Admitter = (request: AdmissionRequest, ctx: AdmissionContext) => Verdict | Promise<Verdict>;

function objectOf(value: unknown): JsonObject {
  return isObject(value) ? value : {};
}

function metadataOf(value: unknown): JsonObject {
  return objectOf(objectOf(value).metadata);
}

function specUnchanged(request: AdmissionRequest): boolean {
  return (
    request.operation === 'UPDATE' &&
    jsonEqual(objectOf(request.object).spec, objectOf(request.oldObject).spec)
  );
}

/** Refuses requests routed to the wrong webhook (a misconfigured webhook configuration) with a clear message. */
function expectKind(request: AdmissionRequest, group: string, kinds: readonly string[]): Verdict | undefined {
  if (request.kind.group === group && kinds.includes(request.kind.kind)) return undefined;
  return {
    allowed: false,
    code: 400,
    reason: 'BadRequest',
    message:
      `this webhook admits ${kinds.join(' and ')} of ${group}, but received ${request.kind.kind} of ` +
      `${request.kind.group || 'core'}; check the rules of the webhook configuration that called this path`,
  };
}

function withFinalizer(metadata: JsonObject, finalizer: string): void {
  const finalizers: unknown[] = Array.isArray(metadata.finalizers) ? (metadata.finalizers as unknown[]) : [];
  if (!finalizers.includes(finalizer)) metadata.finalizers = [...finalizers, finalizer];
}

// --- VirtualMachine -------------------------------------------------------------------------------------------

interface Referenced {
  instancetype?: InstancetypeSpec;
  preference?: PreferenceSpec;
  causes: StatusCause[];
  unavailable?: string;
}

async function confirmed<S>(
  found: Lookup<S>,
  ctx: AdmissionContext,
  kind: InstancetypeKind | PreferenceKind,
  namespace: string | undefined,
  name: string,
): Promise<Lookup<S>> {
  if (found.state !== 'missing' || ctx.confirm === undefined) return found;
  return (await ctx.confirm(kind, namespace, name)) as Lookup<S>;
}

/** Looks up the instancetype and preference a VM names; a missing one becomes a cause on its name field. */
async function resolveReferences(
  vm: unknown,
  namespace: string | undefined,
  ctx: AdmissionContext,
): Promise<Referenced> {
  const spec = objectOf(objectOf(vm).spec);
  const out: Referenced = { causes: [] };
  const it = spec.instancetype;
  if (isObject(it) && typeof it.name === 'string' && it.name !== '') {
    const kind = instancetypeKind({ kind: typeof it.kind === 'string' ? it.kind : undefined });
    if (kind !== undefined) {
      const found = await confirmed(
        ctx.instancetype(kind, namespace, it.name),
        ctx,
        kind,
        namespace,
        it.name,
      );
      if (found.state === 'found') out.instancetype = found.spec;
      else if (found.state === 'unavailable') out.unavailable = found.reason;
      else
        out.causes.push(
          invalid(
            'spec.instancetype.name',
            `${kind} ${JSON.stringify(it.name)} not found` +
              (kind === 'VirtualMachineInstancetype' ? ` in namespace ${JSON.stringify(namespace)}` : '') +
              '; create it first, or set spec.instancetype.kind to where it lives',
          ),
        );
    }
  }
  const pref = spec.preference;
  if (isObject(pref) && typeof pref.name === 'string' && pref.name !== '') {
    const kind = preferenceKind({ kind: typeof pref.kind === 'string' ? pref.kind : undefined });
    if (kind !== undefined) {
      const found = await confirmed(
        ctx.preference(kind, namespace, pref.name),
        ctx,
        kind,
        namespace,
        pref.name,
      );
      if (found.state === 'found') out.preference = found.spec;
      else if (found.state === 'unavailable') out.unavailable = found.reason;
      else
        out.causes.push(
          invalid(
            'spec.preference.name',
            `${kind} ${JSON.stringify(pref.name)} not found` +
              (kind === 'VirtualMachinePreference' ? ` in namespace ${JSON.stringify(namespace)}` : '') +
              '; create it first, or set spec.preference.kind to where it lives',
          ),
        );
    }
  }
  return out;
}

const unavailable = (reason: string): Verdict => ({
  allowed: false,
  code: 503,
  reason: 'ServiceUnavailable',
  message: `virt-api cannot check this object yet: ${reason}; retry in a few seconds`,
});

export const mutateVirtualMachine: Admitter = async (request, ctx) => {
  const wrong = expectKind(request, 'kubevirt.io', ['VirtualMachine']);
  if (wrong) return wrong;
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return allow();
  // A missing preference is the validating webhook's to report; defaulting just goes without it.
  const { preference } = await resolveReferences(request.object, request.namespace, ctx);
  const defaulted = defaultVirtualMachine(request.object, {
    config: ctx.config(),
    ...(preference === undefined ? {} : { preference }),
  });
  return allow(createPatch(request.object, defaulted));
};

export const validateVirtualMachineAdmitter: Admitter = async (request, ctx) => {
  const wrong = expectKind(request, 'kubevirt.io', ['VirtualMachine']);
  if (wrong) return wrong;
  // Status, finalizer and label updates go through even if the spec would no longer pass newer rules: a VM must
  // always be deletable and its controller must always be able to report.
  if ((request.operation !== 'CREATE' && request.operation !== 'UPDATE') || specUnchanged(request))
    return allow();
  const refs = await resolveReferences(request.object, request.namespace, ctx);
  if (refs.unavailable !== undefined) return unavailable(refs.unavailable);
  const causes = [
    ...refs.causes,
    ...validateVirtualMachine(request.object, {
      config: ctx.config(),
      ...(refs.instancetype === undefined ? {} : { instancetype: refs.instancetype }),
      ...(refs.preference === undefined ? {} : { preference: refs.preference }),
    }),
  ];
  return causes.length > 0 ? deny(causes) : allow();
};

// --- VirtualMachineInstance -----------------------------------------------------------------------------------

export const mutateVirtualMachineInstance: Admitter = (request, ctx) => {
  const wrong = expectKind(request, 'kubevirt.io', ['VirtualMachineInstance']);
  if (wrong) return wrong;
  const privileged = ctx.isPrivileged(request.userInfo.username);
  if (request.operation === 'CREATE') {
    const input = objectOf(request.object);
    // Only our controllers may say anything about a VMI's state; a user's status is dropped on create.
    const start = privileged ? input : { ...input, status: {} };
    const vmi = defaultVirtualMachineInstance(start, { config: ctx.config() });
    const status = objectOf(vmi.status);
    if (status.phase === undefined || status.phase === '') {
      status.phase = 'Pending';
      status.phaseTransitionTimestamps = [
        {
          phase: 'Pending',
          phaseTransitionTimestamp: ctx
            .now()
            .toISOString()
            .replace(/\.\d{3}Z$/, 'Z'),
        },
      ];
    }
    vmi.status = status;
    const metadata = { ...metadataOf(vmi) };
    withFinalizer(metadata, VMI_FINALIZER);
    vmi.metadata = metadata;
    return allow(createPatch(request.object, vmi));
  }
  if (request.operation === 'UPDATE' && !privileged) {
    // The VMI has no /status subresource (as in KubeVirt): status travels with the object, and only our service
    // accounts may change it. Anyone else's change to it is quietly put back, as KubeVirt's mutator does.
    const newStatus = objectOf(request.object).status;
    const oldStatus = objectOf(request.oldObject).status;
    if (!jsonEqual(newStatus, oldStatus)) {
      const restored: JsonObject = { ...objectOf(request.object) };
      if (oldStatus === undefined) delete restored.status;
      else restored.status = oldStatus;
      return allow(createPatch(request.object, restored));
    }
  }
  return allow();
};

function reservedLabelChanges(request: AdmissionRequest): StatusCause[] {
  const pick = (value: unknown): JsonObject => {
    const labels = objectOf(metadataOf(value).labels);
    return Object.fromEntries(Object.entries(labels).filter(([k]) => k.startsWith(RESERVED_LABEL_PREFIX)));
  };
  const before = pick(request.oldObject);
  const after = pick(request.object);
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys]
    .filter((k) => before[k] !== after[k])
    .sort()
    .map((k) =>
      notSupported(
        `metadata.labels[${k}]`,
        `Forbidden: labels under ${RESERVED_LABEL_PREFIX} on a VirtualMachineInstance are kept by kubevirt-ts and cannot be changed`,
      ),
    );
}

export const validateVirtualMachineInstanceAdmitter: Admitter = (request, ctx) => {
  const wrong = expectKind(request, 'kubevirt.io', ['VirtualMachineInstance']);
  if (wrong) return wrong;
  if (request.operation === 'CREATE') {
    const causes = validateVirtualMachineInstance(request.object, { config: ctx.config() });
    if (!ctx.isPrivileged(request.userInfo.username)) {
      const labels = objectOf(metadataOf(request.object).labels);
      for (const label of RESTRICTED_VMI_LABELS) {
        if (labels[label] !== undefined) {
          causes.push(
            notSupported(
              `metadata.labels[${label}]`,
              'Forbidden: this label is set by kubevirt-ts itself; remove it from the manifest',
            ),
          );
        }
      }
    }
    return causes.length > 0 ? deny(causes) : allow();
  }
  if (request.operation !== 'UPDATE' || ctx.isPrivileged(request.userInfo.username)) return allow();
  // A VMI is a running guest: its spec is fixed once created. Changes go to the VirtualMachine (the next VMI
  // gets them) or, for hotplug, through the subresource API, whose service account may edit the spec.
  const newSpec = objectOf(request.object).spec;
  const oldSpec = objectOf(request.oldObject).spec;
  const causes: StatusCause[] = changedPaths(oldSpec, newSpec, 'spec').map((field) =>
    notSupported(
      field,
      'Forbidden: the spec of a VirtualMachineInstance cannot be changed after it is created; change the ' +
        'VirtualMachine that owns it (its next VMI gets the change), or delete and recreate the VMI',
    ),
  );
  causes.push(...reservedLabelChanges(request));
  return causes.length > 0 ? deny(causes) : allow();
};

// --- VirtualMachineInstanceReplicaSet -------------------------------------------------------------------------

/** KubeVirt has no defaulting for replica sets (their VMIs are defaulted when created); the chart still routes
 * the kind here, so the answer is a plain allowance. */
export const mutateVirtualMachineInstanceReplicaSet: Admitter = (request) =>
  expectKind(request, 'kubevirt.io', ['VirtualMachineInstanceReplicaSet']) ?? allow();

export const validateVirtualMachineInstanceReplicaSetAdmitter: Admitter = (request, ctx) => {
  const wrong = expectKind(request, 'kubevirt.io', ['VirtualMachineInstanceReplicaSet']);
  if (wrong) return wrong;
  if ((request.operation !== 'CREATE' && request.operation !== 'UPDATE') || specUnchanged(request))
    return allow();
  const causes = validateVirtualMachineInstanceReplicaSet(request.object, { config: ctx.config() });
  return causes.length > 0 ? deny(causes) : allow();
};

// --- VirtualMachineInstanceMigration --------------------------------------------------------------------------

export const mutateVirtualMachineInstanceMigration: Admitter = (request) => {
  const wrong = expectKind(request, 'kubevirt.io', ['VirtualMachineInstanceMigration']);
  if (wrong) return wrong;
  if (request.operation !== 'CREATE') return allow();
  const vmim = { ...objectOf(request.object) };
  const metadata = { ...metadataOf(vmim) };
  withFinalizer(metadata, MIGRATION_FINALIZER);
  const vmiName = objectOf(vmim.spec).vmiName;
  if (typeof vmiName === 'string' && vmiName !== '') {
    metadata.labels = { ...objectOf(metadata.labels), [MIGRATION_VMI_NAME_LABEL]: vmiName };
  }
  vmim.metadata = metadata;
  return allow(createPatch(request.object, vmim));
};

export const validateVirtualMachineInstanceMigrationAdmitter: Admitter = (request) => {
  const wrong = expectKind(request, 'kubevirt.io', ['VirtualMachineInstanceMigration']);
  if (wrong) return wrong;
  if (request.operation === 'CREATE') {
    const causes = validateVirtualMachineInstanceMigration(request.object);
    return causes.length > 0 ? deny(causes) : allow();
  }
  if (request.operation !== 'UPDATE') return allow();
  // A migration is a request: what it asks for cannot change once made (KubeVirt's migration-update-admitter).
  const causes = changedPaths(objectOf(request.oldObject).spec, objectOf(request.object).spec, 'spec').map(
    (f) =>
      notSupported(f, 'Forbidden: the spec of a migration cannot be changed; delete it and create a new one'),
  );
  return causes.length > 0 ? deny(causes) : allow();
};

// --- Instancetypes and preferences ----------------------------------------------------------------------------

export const validateInstancetypeAdmitter: Admitter = (request) => {
  const wrong = expectKind(request, 'instancetype.kubevirt.io', [
    'VirtualMachineInstancetype',
    'VirtualMachineClusterInstancetype',
  ]);
  if (wrong) return wrong;
  if ((request.operation !== 'CREATE' && request.operation !== 'UPDATE') || specUnchanged(request))
    return allow();
  const causes = validateInstancetype(request.object);
  return causes.length > 0 ? deny(causes) : allow();
};

export const validatePreferenceAdmitter: Admitter = (request) => {
  const wrong = expectKind(request, 'instancetype.kubevirt.io', [
    'VirtualMachinePreference',
    'VirtualMachineClusterPreference',
  ]);
  if (wrong) return wrong;
  if ((request.operation !== 'CREATE' && request.operation !== 'UPDATE') || specUnchanged(request))
    return allow();
  const causes = validatePreference(request.object);
  return causes.length > 0 ? deny(causes) : allow();
};

/** Webhook paths and their admitters. Our chart's paths first, then KubeVirt's own names for the same checks, so
 * webhook configurations written for KubeVirt's virt-api also work. */
export const ADMISSION_ROUTES: Readonly<Record<string, Admitter>> = {
  '/virtualmachines-mutate': mutateVirtualMachine,
  '/virtualmachineinstances-mutate': mutateVirtualMachineInstance,
  '/migrations-mutate': mutateVirtualMachineInstanceMigration,
  '/virtualmachinereplicasets-mutate': mutateVirtualMachineInstanceReplicaSet,
  '/virtualmachines-validate': validateVirtualMachineAdmitter,
  '/virtualmachineinstances-validate': validateVirtualMachineInstanceAdmitter,
  '/migrations-validate': validateVirtualMachineInstanceMigrationAdmitter,
  '/virtualmachinereplicasets-validate': validateVirtualMachineInstanceReplicaSetAdmitter,
  '/instancetypes-validate': validateInstancetypeAdmitter,
  '/clusterinstancetypes-validate': validateInstancetypeAdmitter,
  '/preferences-validate': validatePreferenceAdmitter,
  '/clusterpreferences-validate': validatePreferenceAdmitter,
  // KubeVirt's paths (pkg/virt-api/api.go).
  '/migration-mutate-create': mutateVirtualMachineInstanceMigration,
  '/virtualmachineinstances-validate-create': validateVirtualMachineInstanceAdmitter,
  '/virtualmachineinstances-validate-update': validateVirtualMachineInstanceAdmitter,
  '/virtualmachinereplicaset-validate': validateVirtualMachineInstanceReplicaSetAdmitter,
  '/migration-validate-create': validateVirtualMachineInstanceMigrationAdmitter,
  '/migration-validate-update': validateVirtualMachineInstanceMigrationAdmitter,
  '/virtualmachineinstancetypes-validate': validateInstancetypeAdmitter,
  '/virtualmachineclusterinstancetypes-validate': validateInstancetypeAdmitter,
  '/virtualmachinepreferences-validate': validatePreferenceAdmitter,
  '/virtualmachineclusterpreferences-validate': validatePreferenceAdmitter,
};
