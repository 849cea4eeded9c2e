// Kubernetes core types that KubeVirt's API embeds (k8s.io/api/core/v1, k8s.io/apimachinery meta/v1). Those copied
// into the launcher pod are marked passthrough: typed here, validated by the Kubernetes API when the pod is created.
import Type, { type Static } from 'typebox';
import { arrayOf, enumOf, int, obj, opt, passthrough, str, stringMap } from './builders.ts';

/** metadata of a top-level object. The API server owns its validation; CRDs may not describe it (crd.ts). */
export const ObjectMeta = passthrough(
  Type.Object({
    name: opt(str()),
    generateName: opt(str()),
    namespace: opt(str()),
    uid: opt(str()),
    resourceVersion: opt(str()),
    generation: opt(int()),
    creationTimestamp: opt(str()),
    deletionTimestamp: opt(str()),
    deletionGracePeriodSeconds: opt(int()),
    labels: opt(stringMap()),
    annotations: opt(stringMap()),
    finalizers: opt(arrayOf(str())),
    ownerReferences: opt(
      arrayOf(
        Type.Object({
          apiVersion: str(),
          kind: str(),
          name: str(),
          uid: str(),
          controller: opt(Type.Boolean()),
          blockOwnerDeletion: opt(Type.Boolean()),
        }),
      ),
    ),
  }),
);
export type ObjectMeta = Static<typeof ObjectMeta>;

/** metadata of an embedded template (VM and VMIRS templates): labels and annotations are what matters. */
export const TemplateMeta = passthrough(
  Type.Object(
    {
      name: opt(str()),
      generateName: opt(str()),
      namespace: opt(str()),
      labels: opt(stringMap('Labels copied onto the VirtualMachineInstance created from this template.')),
      annotations: opt(
        stringMap('Annotations copied onto the VirtualMachineInstance created from this template.'),
      ),
    },
    { description: 'Metadata of the VirtualMachineInstance created from this template.' },
  ),
);
export type TemplateMeta = Static<typeof TemplateMeta>;

export const LocalObjectReference = obj({ name: str('Name of the object in the same namespace.') });
export type LocalObjectReference = Static<typeof LocalObjectReference>;

const LabelSelectorRequirement = Type.Object({
  key: str(),
  operator: str('In, NotIn, Exists or DoesNotExist.'),
  values: opt(arrayOf(str())),
});

export const LabelSelector = passthrough(
  Type.Object({
    matchLabels: opt(stringMap()),
    matchExpressions: opt(arrayOf(LabelSelectorRequirement)),
  }),
);
export type LabelSelector = Static<typeof LabelSelector>;

const NodeSelectorRequirement = Type.Object({
  key: str(),
  operator: str('In, NotIn, Exists, DoesNotExist, Gt or Lt.'),
  values: opt(arrayOf(str())),
});

const NodeSelectorTerm = Type.Object({
  matchExpressions: opt(arrayOf(NodeSelectorRequirement)),
  matchFields: opt(arrayOf(NodeSelectorRequirement)),
});

const PodAffinityTerm = Type.Object({
  labelSelector: opt(LabelSelector),
  namespaceSelector: opt(LabelSelector),
  namespaces: opt(arrayOf(str())),
  topologyKey: str(),
  matchLabelKeys: opt(arrayOf(str())),
  mismatchLabelKeys: opt(arrayOf(str())),
});

const WeightedPodAffinityTerm = Type.Object({ weight: int(), podAffinityTerm: PodAffinityTerm });

const PodAffinity = Type.Object({
  requiredDuringSchedulingIgnoredDuringExecution: opt(arrayOf(PodAffinityTerm)),
  preferredDuringSchedulingIgnoredDuringExecution: opt(arrayOf(WeightedPodAffinityTerm)),
});

export const Affinity = passthrough(
  Type.Object(
    {
      nodeAffinity: opt(
        Type.Object({
          requiredDuringSchedulingIgnoredDuringExecution: opt(
            Type.Object({ nodeSelectorTerms: arrayOf(NodeSelectorTerm) }),
          ),
          preferredDuringSchedulingIgnoredDuringExecution: opt(
            arrayOf(Type.Object({ weight: int(), preference: NodeSelectorTerm })),
          ),
        }),
      ),
      podAffinity: opt(PodAffinity),
      podAntiAffinity: opt(PodAffinity),
    },
    { description: "Scheduling constraints, copied onto the launcher pod (Kubernetes' Affinity)." },
  ),
);
export type Affinity = Static<typeof Affinity>;

export const Toleration = passthrough(
  Type.Object({
    key: opt(str()),
    operator: opt(str('Exists or Equal.')),
    value: opt(str()),
    effect: opt(str('NoSchedule, PreferNoSchedule or NoExecute.')),
    tolerationSeconds: opt(int()),
  }),
);
export type Toleration = Static<typeof Toleration>;

export const TopologySpreadConstraint = passthrough(
  Type.Object({
    maxSkew: int(),
    topologyKey: str(),
    whenUnsatisfiable: str('DoNotSchedule or ScheduleAnyway.'),
    labelSelector: opt(LabelSelector),
    minDomains: opt(int()),
    nodeAffinityPolicy: opt(str()),
    nodeTaintsPolicy: opt(str()),
    matchLabelKeys: opt(arrayOf(str())),
  }),
);
export type TopologySpreadConstraint = Static<typeof TopologySpreadConstraint>;

export const PodDNSConfig = passthrough(
  Type.Object(
    {
      nameservers: opt(arrayOf(str())),
      searches: opt(arrayOf(str())),
      options: opt(arrayOf(Type.Object({ name: opt(str()), value: opt(str()) }))),
    },
    { description: "DNS settings of the launcher pod (Kubernetes' PodDNSConfig)." },
  ),
);
export type PodDNSConfig = Static<typeof PodDNSConfig>;

export const DNSPolicy = enumOf(['ClusterFirstWithHostNet', 'ClusterFirst', 'Default', 'None'], {
  description: 'DNS policy of the launcher pod.',
});

export const PullPolicy = enumOf(['Always', 'IfNotPresent', 'Never']);
export type PullPolicy = Static<typeof PullPolicy>;

export const ConditionStatus = enumOf(['True', 'False', 'Unknown']);

/** The shape of every condition KubeVirt reports (VMI, VM, VMIM, VMIRS, KubeVirt). Types stay free strings: the
 * services add condition types over time and a status write must never be refused for that. */
export const Condition = Type.Object({
  type: str(),
  status: ConditionStatus,
  lastProbeTime: opt(Type.Union([Type.String(), Type.Null()])),
  lastTransitionTime: opt(Type.Union([Type.String(), Type.Null()])),
  reason: opt(str()),
  message: opt(str()),
});
export type Condition = Static<typeof Condition>;
