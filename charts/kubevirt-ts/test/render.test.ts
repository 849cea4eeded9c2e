// Rendering tests of the chart with the real helm: the default output's shape and invariants, then one case per
// value in values.yaml showing that the value changes the output as documented. A value added to values.yaml
// without a case here fails the completeness test at the end.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { chartDir, find, findAll, namespace, notes, render, type K8sObject } from './helm.ts';

interface Container {
  name: string;
  image: string;
  imagePullPolicy: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  ports?: { name: string; containerPort: number }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string; mountPropagation?: string }[];
}
interface PodSpec {
  serviceAccountName: string;
  containers: Container[];
  volumes?: { name: string; hostPath?: { path: string; type: string } }[];
  nodeSelector?: Record<string, string>;
  tolerations?: unknown[];
  affinity?: unknown;
  imagePullSecrets?: { name: string }[];
  priorityClassName?: string;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
}
interface Workload extends K8sObject {
  spec: {
    replicas?: number;
    revisionHistoryLimit?: number;
    updateStrategy?: { type: string; rollingUpdate?: unknown };
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface Webhook {
  name: string;
  failurePolicy: string;
  sideEffects: string;
  timeoutSeconds: number;
  clientConfig: {
    service: { name: string; namespace: string; path: string; port: number };
    caBundle?: string;
  };
  rules: { apiGroups: string[]; apiVersions: string[]; resources: string[]; operations: string[] }[];
}
interface KubeVirtCR extends K8sObject {
  spec: {
    configuration: { developerConfiguration: Record<string, unknown>; [key: string]: unknown };
    workloads?: { nodePlacement: { nodeSelector?: Record<string, string>; tolerations?: unknown[] } };
  };
}

// healthPort: each service's own --health-port default (see packages/<service>/src/main.ts).
const components = {
  controller: {
    kind: 'Deployment',
    name: 'virt-controller',
    serviceAccount: 'virt-controller',
    healthPort: 8186,
  },
  api: { kind: 'Deployment', name: 'virt-api', serviceAccount: 'virt-api', healthPort: 8187 },
  handler: { kind: 'DaemonSet', name: 'virt-handler', serviceAccount: 'virt-handler', healthPort: 8188 },
} as const;
type Component = keyof typeof components;
const componentNames = Object.keys(components) as Component[];

const workload = (objects: K8sObject[], c: Component): Workload =>
  find(objects, components[c].kind, components[c].name) as Workload;
const podSpec = (objects: K8sObject[], c: Component): PodSpec => workload(objects, c).spec.template.spec;
function container(objects: K8sObject[], c: Component): Container {
  const spec = podSpec(objects, c);
  expect(spec.containers).toHaveLength(1);
  return spec.containers[0] as Container;
}
const env = (ct: Container, name: string): string | undefined => ct.env?.find((e) => e.name === name)?.value;
const kubevirtCR = (objects: K8sObject[]): KubeVirtCR => find(objects, 'KubeVirt', 'kubevirt') as KubeVirtCR;
const rules = (o: K8sObject): Rule[] => (o as K8sObject & { rules: Rule[] }).rules;
const webhooks = (o: K8sObject): Webhook[] => (o as K8sObject & { webhooks: Webhook[] }).webhooks;
const spec = <T>(o: K8sObject): T => (o as K8sObject & { spec: T }).spec;

const chartVersion = (parse(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as { version: string })
  .version;
const defaultValues = parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Record<string, unknown>;

/** The CRDs the chart installs (templates generated from packages/schema). */
const expectedCRDs = [
  'kubevirts.kubevirt.io',
  'virtualmachineclusterinstancetypes.instancetype.kubevirt.io',
  'virtualmachineclusterpreferences.instancetype.kubevirt.io',
  'virtualmachineinstancemigrations.kubevirt.io',
  'virtualmachineinstancereplicasets.kubevirt.io',
  'virtualmachineinstances.kubevirt.io',
  'virtualmachineinstancetypes.instancetype.kubevirt.io',
  'virtualmachinepreferences.instancetype.kubevirt.io',
  'virtualmachines.kubevirt.io',
];

// Rendered once, on first use (not in a hook, so that a missing helm fails each test instead of skipping it).
let defaultObjects: K8sObject[] | undefined;
function defaultRender(): K8sObject[] {
  defaultObjects ??= render();
  return defaultObjects;
}

describe('the default rendering', () => {
  it('renders every component of the stack under its fixed name', () => {
    const defaults = defaultRender();
    const names = defaults.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(names).toEqual(
      expect.arrayContaining([
        'Deployment/virt-controller',
        'Deployment/virt-api',
        'DaemonSet/virt-handler',
        'Service/virt-api',
        'ServiceAccount/virt-controller',
        'ServiceAccount/virt-api',
        'ServiceAccount/virt-handler',
        'MutatingWebhookConfiguration/virt-api-mutator',
        'ValidatingWebhookConfiguration/virt-api-validator',
        'APIService/v1.subresources.kubevirt.io',
        'PodDisruptionBudget/virt-controller',
        'PodDisruptionBudget/virt-api',
        'KubeVirt/kubevirt',
        'ClusterRole/kubevirt.io:admin',
        'ClusterRole/kubevirt.io:edit',
        'ClusterRole/kubevirt.io:view',
      ]),
    );
    expect(new Set(names).size).toBe(names.length);
    expect(findAll(defaults, 'NetworkPolicy')).toEqual([]);
  });

  it('puts namespaced objects in the release namespace and labels every object as part of the chart', () => {
    const defaults = defaultRender();
    for (const o of defaults) {
      expect(o.metadata.labels?.['app.kubernetes.io/part-of'], `${o.kind}/${o.metadata.name}`).toBe(
        'kubevirt-ts',
      );
      expect(o.metadata.labels?.['helm.sh/chart']).toBe(`kubevirt-ts-${chartVersion}`);
    }
    const namespaced = defaults.filter((o) => o.metadata.namespace !== undefined);
    expect(namespaced.length).toBeGreaterThan(10);
    const elsewhere = namespaced.filter((o) => o.metadata.namespace !== namespace);
    // Reading the aggregation layer's front-proxy CA is only grantable in kube-system.
    expect(elsewhere.map((o) => `${o.kind}/${o.metadata.name}@${o.metadata.namespace}`)).toEqual([
      'RoleBinding/virt-api-auth-reader@kube-system',
    ]);
  });

  it('runs the controller with two replicas and gives it the launcher image', () => {
    const defaults = defaultRender();
    expect(workload(defaults, 'controller').spec.replicas).toBe(2);
    const ct = container(defaults, 'controller');
    expect(env(ct, 'LAUNCHER_IMAGE')).toBe(
      `ghcr.io/kubevirt-ts/virt-launcher:${String(defaultTag('launcher'))}`,
    );
    expect(env(ct, 'LAUNCHER_IMAGE_PULL_POLICY')).toBe('IfNotPresent');
  });

  it('selects each workload pod by labels its template carries, and runs it as its own ServiceAccount', () => {
    const defaults = defaultRender();
    for (const c of componentNames) {
      const w = workload(defaults, c);
      for (const [k, v] of Object.entries(w.spec.selector.matchLabels)) {
        expect(w.spec.template.metadata.labels[k], `${c} ${k}`).toBe(v);
      }
      expect(w.spec.template.spec.serviceAccountName).toBe(components[c].serviceAccount);
      const ct = container(defaults, c);
      expect(ct.image).toBe(`ghcr.io/kubevirt-ts/virt-${c}:${String(defaultTag(c))}`);
      expect(ct.args?.[0]).toBe(`--health-port=${components[c].healthPort}`);
      expect(ct.ports?.find((p) => p.name === 'health')?.containerPort).toBe(components[c].healthPort);
      expect(env(ct, 'LOG_LEVEL')).toBe('info');
    }
  });

  it('points the Service at the api pods and their https port', () => {
    const defaults = defaultRender();
    const svc = spec<{ selector: Record<string, string>; ports: { port: number; targetPort: string }[] }>(
      find(defaults, 'Service', 'virt-api'),
    );
    expect(svc.selector).toEqual(workload(defaults, 'api').spec.selector.matchLabels);
    expect(svc.ports).toEqual([expect.objectContaining({ port: 443, targetPort: 'https' })]);
    expect(container(defaults, 'api').ports?.find((p) => p.name === 'https')?.containerPort).toBe(8443);
  });

  it('runs controller and api unprivileged and non-root', () => {
    const defaults = defaultRender();
    for (const c of ['controller', 'api'] as const) {
      expect(container(defaults, c).securityContext).toMatchObject({
        runAsNonRoot: true,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      expect(podSpec(defaults, c).volumes ?? []).toEqual([]);
    }
  });

  it("gives the handler its two kubelet folders, the node's /dev read-only, its state folder, the host's PIDs and only the pod-network capabilities", () => {
    const defaults = defaultRender();
    const pod = podSpec(defaults, 'handler');
    expect(pod.hostNetwork ?? false).toBe(false);
    // The pod network of a VMI is made in its launcher pod's network namespace, entered through /proc/<pid>/ns/net.
    expect(pod.hostPID).toBe(true);
    expect(pod.hostIPC ?? false).toBe(false);
    expect(pod.volumes?.map((v) => v.hostPath?.path)).toEqual([
      '/var/lib/kubelet/pods',
      '/var/lib/kubelet/device-plugins',
      '/dev',
      '/var/lib/kubevirt-ts/handler',
      '/dev/net/tun',
    ]);
    const ct = container(defaults, 'handler');
    expect(ct.volumeMounts).toEqual([
      { name: 'kubelet-pods', mountPath: '/pods', mountPropagation: 'HostToContainer' },
      { name: 'device-plugins', mountPath: '/var/lib/kubelet/device-plugins' },
      { name: 'host-dev', mountPath: '/host/dev', readOnly: true },
      { name: 'handler-state', mountPath: '/var/lib/kubevirt-ts/handler' },
      { name: 'tun-device', mountPath: '/dev/net/tun' },
    ]);
    expect(ct.args).toContain('--dev-dir=/host/dev');
    expect(ct.securityContext).toMatchObject({
      privileged: false,
      capabilities: { drop: ['ALL'], add: ['NET_ADMIN', 'SYS_ADMIN', 'SYS_PTRACE'] },
    });
    expect(ct.env?.find((e) => e.name === 'NODE_NAME')?.valueFrom).toEqual({
      fieldRef: { fieldPath: 'spec.nodeName' },
    });
    expect(pod.priorityClassName).toBe('system-node-critical');
  });

  it('keeps the handler state folder (its launcher checkpoints) on the node, so it survives a handler pod restart', () => {
    const pod = podSpec(defaultRender(), 'handler');
    const state = pod.volumes?.find((v) => v.name === 'handler-state');
    // A hostPath, not an emptyDir: an emptyDir dies with the pod and a restarted handler would forget its launchers.
    expect(state?.hostPath).toEqual({ path: '/var/lib/kubevirt-ts/handler', type: 'DirectoryOrCreate' });
    const ct = container(defaultRender(), 'handler');
    // The handler writes its checkpoints where --state-dir says, and that is where the node's folder is mounted.
    const stateDir = ct.args?.find((a) => a.startsWith('--state-dir='))?.slice('--state-dir='.length);
    expect(stateDir).toBe('/var/lib/kubevirt-ts/handler');
    expect(ct.volumeMounts?.find((m) => m.name === 'handler-state')).toEqual({
      name: 'handler-state',
      mountPath: stateDir,
    });
    // The root file system stays read-only: the state folder is the only place besides /pods it writes to.
    expect(ct.securityContext?.readOnlyRootFilesystem).toBe(true);
  });

  it('binds every role to an existing ServiceAccount, and every role it refers to exists', () => {
    const defaults = defaultRender();
    const accounts = new Set(
      findAll(defaults, 'ServiceAccount').map((o) => `${o.metadata.namespace}/${o.metadata.name}`),
    );
    const builtIn = new Set(['Role/extension-apiserver-authentication-reader']);
    for (const binding of [...findAll(defaults, 'ClusterRoleBinding'), ...findAll(defaults, 'RoleBinding')]) {
      const b = binding as K8sObject & {
        roleRef: { kind: string; name: string };
        subjects: { kind: string; name: string; namespace?: string }[];
      };
      const ref = `${b.roleRef.kind}/${b.roleRef.name}`;
      if (!builtIn.has(ref)) {
        const role = find(defaults, b.roleRef.kind, b.roleRef.name);
        if (b.roleRef.kind === 'Role') expect(role.metadata.namespace).toBe(b.metadata.namespace);
      }
      for (const s of b.subjects.filter((x) => x.kind === 'ServiceAccount')) {
        expect(accounts.has(`${s.namespace}/${s.name}`), `${binding.metadata.name} -> ${s.name}`).toBe(true);
      }
    }
  });

  it('grants no wildcard and no cluster-wide Secret access', () => {
    const defaults = defaultRender();
    for (const role of [...findAll(defaults, 'ClusterRole'), ...findAll(defaults, 'Role')]) {
      for (const rule of rules(role)) {
        const where = `${role.kind}/${role.metadata.name}`;
        expect([...rule.apiGroups, ...rule.resources, ...rule.verbs], where).not.toContain('*');
        if (role.kind === 'ClusterRole') expect(rule.resources, where).not.toContain('secrets');
      }
    }
    // Namespaced Secret reads are limited to the certificate Secrets, by name.
    for (const name of ['virt-api', 'virt-handler']) {
      const secretRules = rules(find(defaults, 'Role', name)).filter((r) => r.resources.includes('secrets'));
      expect(secretRules.length).toBeGreaterThan(0);
      for (const r of secretRules) expect(r.resourceNames?.length, name).toBeGreaterThan(0);
    }
  });

  it('lets the controller inject CA bundles into the chart own webhooks and APIService only', () => {
    const defaults = defaultRender();
    const injected = rules(find(defaults, 'ClusterRole', 'virt-controller')).filter((r) =>
      r.apiGroups.some((g) => g === 'admissionregistration.k8s.io' || g === 'apiregistration.k8s.io'),
    );
    expect(injected.flatMap((r) => r.resourceNames ?? []).sort()).toEqual([
      'v1.subresources.kubevirt.io',
      'virt-api-mutator',
      'virt-api-validator',
    ]);
  });

  it('points every webhook at virt-api, failing closed, with no CA bundle for Helm to fight over', () => {
    const defaults = defaultRender();
    const mutating = webhooks(find(defaults, 'MutatingWebhookConfiguration', 'virt-api-mutator'));
    const validating = webhooks(find(defaults, 'ValidatingWebhookConfiguration', 'virt-api-validator'));
    const all = [...mutating, ...validating];
    for (const w of all) {
      expect(w.failurePolicy, w.name).toBe('Fail');
      expect(w.sideEffects).toBe('None');
      expect(w.timeoutSeconds).toBe(10);
      expect(w.clientConfig.caBundle).toBeUndefined();
      expect(w.clientConfig.service).toMatchObject({ name: 'virt-api', namespace, port: 443 });
    }
    expect(new Set(all.map((w) => w.clientConfig.service.path)).size).toBe(all.length);
    const resources = (ws: Webhook[]) => ws.flatMap((w) => w.rules.flatMap((r) => r.resources)).sort();
    expect(resources(mutating)).toEqual([
      'virtualmachineinstancemigrations',
      'virtualmachineinstancereplicasets',
      'virtualmachineinstances',
      'virtualmachines',
    ]);
    expect(resources(validating)).toEqual([
      'virtualmachineclusterinstancetypes',
      'virtualmachineclusterpreferences',
      'virtualmachineinstancemigrations',
      'virtualmachineinstancereplicasets',
      'virtualmachineinstances',
      'virtualmachineinstancetypes',
      'virtualmachinepreferences',
      'virtualmachines',
    ]);
  });

  it('registers subresources.kubevirt.io/v1 at virt-api', () => {
    const defaults = defaultRender();
    expect(spec(find(defaults, 'APIService', 'v1.subresources.kubevirt.io'))).toMatchObject({
      group: 'subresources.kubevirt.io',
      version: 'v1',
      service: { name: 'virt-api', namespace, port: 443 },
    });
  });

  it('lets virt-api serve the subresources: authorize, change VMs, find handlers, present its client certificate', () => {
    const defaults = defaultRender();
    const cluster = rules(find(defaults, 'ClusterRole', 'virt-api'));
    const grants = (group: string, resource: string, verb: string) =>
      cluster.some(
        (r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb),
      );
    expect(grants('authorization.k8s.io', 'subjectaccessreviews', 'create')).toBe(true);
    expect(grants('kubevirt.io', 'virtualmachines', 'get')).toBe(true);
    expect(grants('kubevirt.io', 'virtualmachines', 'patch')).toBe(true);
    expect(grants('kubevirt.io', 'virtualmachines/status', 'patch')).toBe(true);
    expect(grants('kubevirt.io', 'virtualmachineinstances', 'patch')).toBe(true);
    const own = rules(find(defaults, 'Role', 'virt-api'));
    expect(own.some((r) => r.resources.includes('pods') && r.verbs.includes('list'))).toBe(true);
    expect(
      own.filter((r) => r.resources.includes('secrets')).flatMap((r) => r.resourceNames ?? []),
    ).toContain('kubevirt-virt-handler-certs');
  });

  it('creates the KubeVirt CR in a post-install/post-upgrade hook, with the default configuration', () => {
    const defaults = defaultRender();
    const cr = kubevirtCR(defaults);
    expect(cr.metadata.namespace).toBe(namespace);
    expect(cr.metadata.annotations?.['helm.sh/hook']).toBe('post-install,post-upgrade');
    expect(cr.spec.configuration).toEqual({
      developerConfiguration: { useEmulation: false, cpuAllocationRatio: 10, memoryOvercommit: 100 },
    });
    expect(cr.spec.workloads).toBeUndefined();
  });

  it('aggregates the user roles into admin, edit and view', () => {
    const defaults = defaultRender();
    const label = (name: string, to: string) =>
      find(defaults, 'ClusterRole', name).metadata.labels?.[`rbac.authorization.k8s.io/aggregate-to-${to}`];
    expect(label('kubevirt.io:admin', 'admin')).toBe('true');
    expect(label('kubevirt.io:edit', 'edit')).toBe('true');
    expect(label('kubevirt.io:view', 'view')).toBe('true');
    const verbs = (name: string) =>
      new Set(rules(find(defaults, 'ClusterRole', name)).flatMap((r) => r.verbs));
    expect([...verbs('kubevirt.io:view')].sort()).toEqual(['get', 'list', 'watch']);
    expect(verbs('kubevirt.io:admin').has('deletecollection')).toBe(true);
    expect(verbs('kubevirt.io:edit').has('deletecollection')).toBe(false);
    const resources = (name: string) =>
      rules(find(defaults, 'ClusterRole', name)).flatMap((r) => r.resources);
    const streams = [
      'virtualmachineinstances/console',
      'virtualmachineinstances/portforward',
      'virtualmachines/portforward',
    ];
    for (const role of ['kubevirt.io:admin', 'kubevirt.io:edit']) {
      expect(resources(role)).toEqual(expect.arrayContaining(['virtualmachines/start', ...streams]));
    }
    for (const stream of streams) expect(resources('kubevirt.io:view')).not.toContain(stream);
  });

  it('installs every CRD, kept on uninstall', () => {
    const defaults = defaultRender();
    const crds = findAll(defaults, 'CustomResourceDefinition');
    expect(crds.map((c) => c.metadata.name).sort()).toEqual(expectedCRDs);
    for (const crd of crds) {
      expect(crd.metadata.annotations?.['helm.sh/resource-policy'], crd.metadata.name).toBe('keep');
    }
  });
});

function defaultTag(c: Component | 'launcher'): unknown {
  return ((defaultValues[c] as Record<string, unknown>).image as Record<string, unknown>).tag;
}

/** One value of values.yaml, an override of it, and what the override must change in the output. */
interface Case {
  path: string;
  values: Record<string, unknown>;
  check: (objects: K8sObject[]) => void;
}

function componentCases(c: Component): Case[] {
  const tag = String(defaultTag(c));
  const cases: Case[] = [
    {
      path: `${c}.image.registry`,
      values: { [c]: { image: { registry: 'registry.example:5000' } } },
      check: (o) => expect(container(o, c).image).toBe(`registry.example:5000/kubevirt-ts/virt-${c}:${tag}`),
    },
    {
      path: `${c}.image.repository`,
      values: { [c]: { image: { repository: 'mirror/virt' } } },
      check: (o) => expect(container(o, c).image).toBe(`ghcr.io/mirror/virt:${tag}`),
    },
    {
      path: `${c}.image.tag`,
      values: { [c]: { image: { tag: '9.8.7-rc.1' } } },
      check: (o) => expect(container(o, c).image).toBe(`ghcr.io/kubevirt-ts/virt-${c}:9.8.7-rc.1`),
    },
    {
      path: `${c}.image.pullPolicy`,
      values: { [c]: { image: { pullPolicy: 'Always' } } },
      check: (o) => expect(container(o, c).imagePullPolicy).toBe('Always'),
    },
    {
      path: `${c}.resources`,
      values: { [c]: { resources: { requests: { cpu: '2', memory: '3Gi' } } } },
      check: (o) => expect(container(o, c).resources?.requests).toEqual({ cpu: '2', memory: '3Gi' }),
    },
    {
      path: `${c}.securityContext`,
      values: { [c]: { securityContext: { runAsUser: 4242, runAsGroup: 4343 } } },
      check: (o) =>
        expect(container(o, c).securityContext).toMatchObject({ runAsUser: 4242, runAsGroup: 4343 }),
    },
    {
      path: `${c}.nodeSelector`,
      values: { [c]: { nodeSelector: { 'node-role.example/infra': 'true' } } },
      check: (o) => expect(podSpec(o, c).nodeSelector).toEqual({ 'node-role.example/infra': 'true' }),
    },
    {
      path: `${c}.tolerations`,
      values: { [c]: { tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }] } },
      check: (o) =>
        expect(podSpec(o, c).tolerations).toEqual([
          { key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' },
        ]),
    },
    {
      path: `${c}.affinity`,
      values: {
        [c]: { affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } } },
      },
      check: (o) =>
        expect(podSpec(o, c).affinity).toEqual({
          podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] },
        }),
    },
    {
      path: `${c}.extraArgs`,
      values: { [c]: { extraArgs: ['--shutdown-timeout=40s'] } },
      check: (o) =>
        expect(container(o, c).args).toEqual([
          `--health-port=${components[c].healthPort}`,
          ...(c === 'handler' ? ['--dev-dir=/host/dev', '--state-dir=/var/lib/kubevirt-ts/handler'] : []),
          '--shutdown-timeout=40s',
        ]),
    },
    {
      path: `${c}.extraEnv`,
      values: { [c]: { extraEnv: [{ name: 'EXTRA', value: 'yes' }] } },
      check: (o) => expect(container(o, c).env?.at(-1)).toEqual({ name: 'EXTRA', value: 'yes' }),
    },
  ];
  if (c !== 'handler') {
    cases.push(
      {
        path: `${c}.replicaCount`,
        values: { [c]: { replicaCount: 1 } },
        check: (o) => {
          expect(workload(o, c).spec.replicas).toBe(1);
          // A budget over a single pod would block node drains.
          expect(findAll(o, 'PodDisruptionBudget').map((p) => p.metadata.name)).not.toContain(`virt-${c}`);
        },
      },
      {
        path: `${c}.podDisruptionBudget.enabled`,
        values: { [c]: { podDisruptionBudget: { enabled: false } } },
        check: (o) =>
          expect(findAll(o, 'PodDisruptionBudget').map((p) => p.metadata.name)).not.toContain(`virt-${c}`),
      },
      {
        path: `${c}.podDisruptionBudget.minAvailable`,
        values: { [c]: { replicaCount: 3, podDisruptionBudget: { minAvailable: 2 } } },
        check: (o) => {
          const pdb = spec<{ minAvailable: number; selector: { matchLabels: unknown } }>(
            find(o, 'PodDisruptionBudget', `virt-${c}`),
          );
          expect(pdb.minAvailable).toBe(2);
          expect(pdb.selector.matchLabels).toEqual(workload(o, c).spec.selector.matchLabels);
        },
      },
    );
  }
  return cases;
}

const cases: Case[] = [
  ...componentNames.flatMap(componentCases),
  {
    path: 'global.imageRegistry',
    values: { global: { imageRegistry: 'mirror.example' } },
    check: (o) => {
      for (const c of componentNames)
        expect(container(o, c).image).toMatch(/^mirror\.example\/kubevirt-ts\/virt-/);
      expect(env(container(o, 'controller'), 'LAUNCHER_IMAGE')).toMatch(
        /^mirror\.example\/kubevirt-ts\/virt-launcher:/,
      );
    },
  },
  {
    path: 'global.imagePullSecrets',
    values: { global: { imagePullSecrets: [{ name: 'pull-secret' }] } },
    check: (o) => {
      for (const c of componentNames)
        expect(podSpec(o, c).imagePullSecrets).toEqual([{ name: 'pull-secret' }]);
    },
  },
  {
    path: 'global.commonLabels',
    values: { global: { commonLabels: { team: 'virt' } } },
    check: (o) => {
      for (const obj of o) expect(obj.metadata.labels?.team, `${obj.kind}/${obj.metadata.name}`).toBe('virt');
    },
  },
  {
    path: 'global.logLevel',
    values: { global: { logLevel: 'debug' } },
    check: (o) => {
      for (const c of componentNames) expect(env(container(o, c), 'LOG_LEVEL')).toBe('debug');
    },
  },
  {
    path: 'global.revisionHistoryLimit',
    values: { global: { revisionHistoryLimit: 3 } },
    check: (o) => {
      for (const c of componentNames) expect(workload(o, c).spec.revisionHistoryLimit).toBe(3);
    },
  },
  {
    path: 'global.priorityClassName',
    values: { global: { priorityClassName: 'infra-high' } },
    check: (o) => {
      expect(podSpec(o, 'controller').priorityClassName).toBe('infra-high');
      expect(podSpec(o, 'api').priorityClassName).toBe('infra-high');
      expect(podSpec(o, 'handler').priorityClassName).toBe('system-node-critical');
    },
  },
  {
    path: 'useEmulation',
    values: { useEmulation: true },
    check: (o) => expect(kubevirtCR(o).spec.configuration.developerConfiguration.useEmulation).toBe(true),
  },
  {
    path: 'crds.enabled',
    values: { crds: { enabled: false } },
    check: (o) => expect(findAll(o, 'CustomResourceDefinition')).toEqual([]),
  },
  {
    path: 'crds.keep',
    values: { crds: { keep: false } },
    check: (o) => {
      const crds = findAll(o, 'CustomResourceDefinition');
      expect(crds.length).toBe(expectedCRDs.length);
      for (const crd of crds) expect(crd.metadata.annotations?.['helm.sh/resource-policy']).toBeUndefined();
    },
  },
  {
    path: 'kubevirt.create',
    values: { kubevirt: { create: false } },
    check: (o) => expect(findAll(o, 'KubeVirt')).toEqual([]),
  },
  {
    path: 'kubevirt.name',
    values: { kubevirt: { name: 'cluster-config' } },
    check: (o) => expect(findAll(o, 'KubeVirt').map((k) => k.metadata.name)).toEqual(['cluster-config']),
  },
  {
    path: 'kubevirt.featureGates',
    values: { kubevirt: { featureGates: ['HostDisk', 'Snapshot'] } },
    check: (o) =>
      expect(kubevirtCR(o).spec.configuration.developerConfiguration.featureGates).toEqual([
        'HostDisk',
        'Snapshot',
      ]),
  },
  {
    path: 'kubevirt.cpuAllocationRatio',
    values: { kubevirt: { cpuAllocationRatio: 4 } },
    check: (o) => expect(kubevirtCR(o).spec.configuration.developerConfiguration.cpuAllocationRatio).toBe(4),
  },
  {
    path: 'kubevirt.memoryOvercommit',
    values: { kubevirt: { memoryOvercommit: 150 } },
    check: (o) => expect(kubevirtCR(o).spec.configuration.developerConfiguration.memoryOvercommit).toBe(150),
  },
  {
    path: 'kubevirt.extraConfiguration',
    values: {
      kubevirt: {
        extraConfiguration: { machineType: 'q35', developerConfiguration: { memoryOvercommit: 120 } },
      },
    },
    check: (o) =>
      expect(kubevirtCR(o).spec.configuration).toEqual({
        machineType: 'q35',
        developerConfiguration: { useEmulation: false, cpuAllocationRatio: 10, memoryOvercommit: 120 },
      }),
  },
  {
    path: 'networkPolicy.enabled',
    values: { networkPolicy: { enabled: true } },
    check: (o) => {
      const policies = findAll(o, 'NetworkPolicy');
      expect(policies.map((p) => p.metadata.name).sort()).toEqual([
        'virt-api',
        'virt-controller',
        'virt-handler',
      ]);
      for (const c of componentNames) {
        const p = spec<{ podSelector: { matchLabels: unknown } }>(find(o, 'NetworkPolicy', `virt-${c}`));
        expect(p.podSelector.matchLabels).toEqual(workload(o, c).spec.selector.matchLabels);
      }
      // The handler's gRPC port admits virt-api's pods only.
      const handler = spec<{
        ingress: { ports: { port: string }[]; from?: { podSelector: { matchLabels: unknown } }[] }[];
      }>(find(o, 'NetworkPolicy', 'virt-handler'));
      const grpc = handler.ingress.find((r) => r.ports.some((p) => p.port === 'grpc'));
      expect(grpc?.from).toEqual([
        { podSelector: { matchLabels: workload(o, 'api').spec.selector.matchLabels } },
      ]);
    },
  },
  {
    path: 'networkPolicy.metricsFrom',
    values: {
      networkPolicy: {
        enabled: true,
        metricsFrom: [{ namespaceSelector: { matchLabels: { monitoring: 'true' } } }],
      },
    },
    check: (o) => {
      const controller = spec<{ ingress: { from?: unknown[] }[] }>(
        find(o, 'NetworkPolicy', 'virt-controller'),
      );
      expect(controller.ingress).toEqual([
        {
          ports: [{ port: 'health', protocol: 'TCP' }],
          from: [{ namespaceSelector: { matchLabels: { monitoring: 'true' } } }],
        },
      ]);
    },
  },
  {
    path: 'api.webhookTimeoutSeconds',
    values: { api: { webhookTimeoutSeconds: 5 } },
    check: (o) => {
      const all = [
        ...webhooks(find(o, 'MutatingWebhookConfiguration', 'virt-api-mutator')),
        ...webhooks(find(o, 'ValidatingWebhookConfiguration', 'virt-api-validator')),
      ];
      expect(new Set(all.map((w) => w.timeoutSeconds))).toEqual(new Set([5]));
    },
  },
  {
    path: 'handler.priorityClassName',
    values: { handler: { priorityClassName: 'vm-nodes' } },
    check: (o) => expect(podSpec(o, 'handler').priorityClassName).toBe('vm-nodes'),
  },
  {
    path: 'handler.updateStrategy',
    values: { handler: { updateStrategy: { type: 'OnDelete' } } },
    check: (o) => expect(workload(o, 'handler').spec.updateStrategy).toEqual({ type: 'OnDelete' }),
  },
  {
    path: 'launcher.image.registry',
    values: { launcher: { image: { registry: 'registry.example:5000' } } },
    check: (o) =>
      expect(env(container(o, 'controller'), 'LAUNCHER_IMAGE')).toBe(
        `registry.example:5000/kubevirt-ts/virt-launcher:${String(defaultTag('launcher'))}`,
      ),
  },
  {
    path: 'launcher.image.repository',
    values: { launcher: { image: { repository: 'mirror/launcher' } } },
    check: (o) =>
      expect(env(container(o, 'controller'), 'LAUNCHER_IMAGE')).toBe(
        `ghcr.io/mirror/launcher:${String(defaultTag('launcher'))}`,
      ),
  },
  {
    path: 'launcher.image.tag',
    values: { launcher: { image: { tag: '1.2.3' } } },
    check: (o) =>
      expect(env(container(o, 'controller'), 'LAUNCHER_IMAGE')).toBe(
        'ghcr.io/kubevirt-ts/virt-launcher:1.2.3',
      ),
  },
  {
    path: 'launcher.image.pullPolicy',
    values: { launcher: { image: { pullPolicy: 'Always' } } },
    check: (o) => expect(env(container(o, 'controller'), 'LAUNCHER_IMAGE_PULL_POLICY')).toBe('Always'),
  },
  {
    path: 'launcher.nodeSelector',
    values: { launcher: { nodeSelector: { 'kubevirt.io/schedulable': 'true' } } },
    check: (o) =>
      expect(kubevirtCR(o).spec.workloads).toEqual({
        nodePlacement: { nodeSelector: { 'kubevirt.io/schedulable': 'true' } },
      }),
  },
  {
    path: 'launcher.tolerations',
    values: { launcher: { tolerations: [{ key: 'vms', operator: 'Exists' }] } },
    check: (o) =>
      expect(kubevirtCR(o).spec.workloads).toEqual({
        nodePlacement: { tolerations: [{ key: 'vms', operator: 'Exists' }] },
      }),
  },
];

describe('each value changes the output as documented', () => {
  it.each(cases.map((c) => [c.path, c] as const))('%s', (_path, c) => {
    const objects = render(c.values);
    expect(objects).not.toEqual(defaultRender());
    c.check(objects);
  });
});

describe('NOTES.txt', () => {
  it('tells how to turn on emulation when it is off, and says so when it is on', () => {
    expect(notes()).toContain('--set useEmulation=true');
    const on = notes({ useEmulation: true });
    expect(on).toContain('Software emulation is on');
    expect(on).not.toContain('--set useEmulation=true');
  });
});

/** Objects whose content is passed through as a whole (Kubernetes types or free-form maps): one case covers them. */
const wholeValues = new Set([
  'resources',
  'securityContext',
  'nodeSelector',
  'tolerations',
  'affinity',
  'extraArgs',
  'extraEnv',
  'commonLabels',
  'imagePullSecrets',
  'featureGates',
  'extraConfiguration',
  'metricsFrom',
  'updateStrategy',
]);

function leafPaths(value: unknown, prefix: string[] = []): string[] {
  const last = prefix.at(-1);
  if (
    value === null ||
    typeof value !== 'object' ||
    Array.isArray(value) ||
    (last !== undefined && wholeValues.has(last))
  ) {
    return [prefix.join('.')];
  }
  return Object.entries(value).flatMap(([k, v]) => leafPaths(v, [...prefix, k]));
}

describe('coverage of values.yaml', () => {
  it('has a rendering case for every value', () => {
    expect(cases.map((c) => c.path).sort()).toEqual(leafPaths(defaultValues).sort());
  });
});
