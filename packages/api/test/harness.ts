// What the virt-api integration suites share: the services run as processes from source (as `devcluster exec`
// runs them, inside the cluster's network namespace, so the API server can call them), each with its own
// service account from devcluster, and the least RBAC they need for one test namespace.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  ApiException,
  KubernetesObjectApi,
  PatchStrategy,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { crdYaml, crds } from '@kubevirt-ts/schema';
import { applyCrds } from '@kubevirt-ts/devcluster/testing';

export const FIELD_MANAGER = 'kubevirt-ts-tests';
/** devcluster's identities for our services (DESIGN.md §4b). */
export const SERVICE_NAMESPACE = 'kubevirt';

export interface ServiceProcess {
  readonly name: string;
  readonly lines: Record<string, unknown>[];
  /** Resolves with the first log line matching `pred`; rejects if the process exits first. */
  waitForLine(
    pred: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

const mains = {
  'virt-api': fileURLToPath(new URL('../src/main.ts', import.meta.url)),
  'virt-controller': fileURLToPath(new URL('../../controller/src/main.ts', import.meta.url)),
};

/** Starts a service's main.ts with node and the source condition, collecting its JSON log lines. */
export function startService(name: keyof typeof mains, args: string[]): ServiceProcess {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--conditions=@kubevirt-ts/source', mains[name], ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, POD_NAMESPACE: '', POD_NAME: '' },
    },
  );
  const lines: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      exitCode = code;
      for (const w of waiters) w();
      resolve(code);
    }),
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      lines.push({ msg: line });
    }
    for (const w of waiters) w();
  });
  const describeExit = () =>
    `${name} exited with ${exitCode}; last log lines: ${JSON.stringify(lines.slice(-10))}; stderr: ${stderr}`;
  return {
    name,
    lines,
    waitForLine(pred, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `${name}: no matching log line within ${timeoutMs} ms: ${JSON.stringify(lines.slice(-10))}`,
            ),
          );
        }, timeoutMs);
        const check = () => {
          const hit = lines.find(pred);
          if (hit !== undefined || exitCode !== undefined) {
            clearTimeout(timer);
            waiters.delete(check);
            if (hit !== undefined) resolve(hit);
            else reject(new Error(describeExit()));
          }
        };
        waiters.add(check);
        check();
      });
    },
    async stop() {
      if (exitCode === undefined) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Server-side apply of any object, as the tests' field manager. */
export async function apply<T extends KubernetesObject>(kc: KubeConfig, obj: T): Promise<T> {
  const client = KubernetesObjectApi.makeApiClient(kc);
  return client.patch(obj, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
}

/** Deletes an object, ignoring "not found". */
export async function remove(kc: KubeConfig, obj: KubernetesObject): Promise<void> {
  try {
    await KubernetesObjectApi.makeApiClient(kc).delete(obj);
  } catch (err) {
    if (!(err instanceof ApiException && err.code === 404)) throw err;
  }
}

/** Applies every CRD of the schema package and waits until each is Established (devcluster's applyCrds). */
export async function installCrds(kc: KubeConfig): Promise<void> {
  await applyCrds(kc, {
    yaml: crdYaml(),
    names: crds().map((c) => c.metadata.name),
    fieldManager: FIELD_MANAGER,
  });
}

export interface RbacNames {
  /** The test namespace: certificates, leases and test objects live here. */
  namespace: string;
  secrets: string[];
  mutating: string;
  validating: string;
  apiService: string;
  /**
   * With the subresource endpoints: the Secret with virt-api's client certificate for virt-handler. virt-api then
   * also gets the chart's subresource rules, for this namespace: read VMs, VMIs and handler pods, patch VMs (and
   * their status) and VMIs, create SubjectAccessReviews.
   */
  handlerClientSecret?: string;
  /**
   * Who runs the certificate loop: devcluster's virt-controller account by default. A suite that must not have the
   * VM controllers act (the account may hold the chart's cluster-wide rights from another suite) names its own.
   */
  certificateAccount?: { name: string; namespace: string };
}

const sa = (name: string) => ({ kind: 'ServiceAccount', name, namespace: SERVICE_NAMESPACE });

/**
 * The permissions virt-controller's certificate loop and virt-api need for one test namespace, granted to
 * devcluster's service accounts: the same rules as the chart's, with the test's names. Cluster-scoped objects
 * carry the namespace in their name, so suites never share them.
 */
export function rbacObjects(n: RbacNames): KubernetesObject[] {
  const suffix = n.namespace;
  const role = (name: string, namespace: string, rules: unknown[]) => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name, namespace },
    rules,
  });
  const binding = (
    kind: 'RoleBinding' | 'ClusterRoleBinding',
    name: string,
    namespace: string | undefined,
    roleKind: string,
    roleName: string,
    subject: string,
  ) => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind,
    metadata: namespace === undefined ? { name } : { name, namespace },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: roleKind, name: roleName },
    subjects: [
      subject === 'virt-controller' && n.certificateAccount !== undefined
        ? { kind: 'ServiceAccount', ...n.certificateAccount }
        : sa(subject),
    ],
  });
  return [
    role('test-virt-controller', n.namespace, [
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create', 'get', 'update'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
      {
        apiGroups: [''],
        resources: ['secrets'],
        resourceNames: n.secrets,
        verbs: ['get', 'list', 'watch', 'update', 'patch'],
      },
      // Stands in for the VMI controller in the status test.
      {
        apiGroups: ['kubevirt.io'],
        resources: ['virtualmachineinstances'],
        verbs: ['get', 'list', 'update', 'patch'],
      },
    ]),
    binding(
      'RoleBinding',
      'test-virt-controller',
      n.namespace,
      'Role',
      'test-virt-controller',
      'virt-controller',
    ),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: `test-virt-controller-${suffix}` },
      rules: [
        {
          apiGroups: ['admissionregistration.k8s.io'],
          resources: ['mutatingwebhookconfigurations'],
          resourceNames: [n.mutating],
          verbs: ['get', 'list', 'watch', 'update', 'patch'],
        },
        {
          apiGroups: ['admissionregistration.k8s.io'],
          resources: ['validatingwebhookconfigurations'],
          resourceNames: [n.validating],
          verbs: ['get', 'list', 'watch', 'update', 'patch'],
        },
        {
          apiGroups: ['apiregistration.k8s.io'],
          resources: ['apiservices'],
          resourceNames: [n.apiService],
          verbs: ['get', 'list', 'watch', 'update', 'patch'],
        },
      ],
    },
    binding(
      'ClusterRoleBinding',
      `test-virt-controller-${suffix}`,
      undefined,
      'ClusterRole',
      `test-virt-controller-${suffix}`,
      'virt-controller',
    ),
    role('test-virt-api', n.namespace, [
      {
        apiGroups: [''],
        resources: ['secrets'],
        resourceNames: [
          ...n.secrets.slice(1, 2),
          ...(n.handlerClientSecret === undefined ? [] : [n.handlerClientSecret]),
        ],
        verbs: ['get', 'list', 'watch'],
      },
      { apiGroups: ['kubevirt.io'], resources: ['kubevirts'], verbs: ['get', 'list', 'watch'] },
      ...(n.handlerClientSecret === undefined
        ? []
        : [
            { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
            {
              apiGroups: ['kubevirt.io'],
              resources: ['virtualmachines', 'virtualmachineinstances'],
              verbs: ['get', 'list', 'watch', 'patch'],
            },
            { apiGroups: ['kubevirt.io'], resources: ['virtualmachines/status'], verbs: ['patch'] },
          ]),
    ]),
    binding('RoleBinding', 'test-virt-api', n.namespace, 'Role', 'test-virt-api', 'virt-api'),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: `test-virt-api-${suffix}` },
      rules: [
        {
          apiGroups: ['instancetype.kubevirt.io'],
          resources: [
            'virtualmachineinstancetypes',
            'virtualmachineclusterinstancetypes',
            'virtualmachinepreferences',
            'virtualmachineclusterpreferences',
          ],
          verbs: ['get', 'list', 'watch'],
        },
        ...(n.handlerClientSecret === undefined
          ? []
          : [
              { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
            ]),
      ],
    },
    binding(
      'ClusterRoleBinding',
      `test-virt-api-${suffix}`,
      undefined,
      'ClusterRole',
      `test-virt-api-${suffix}`,
      'virt-api',
    ),
    // The front-proxy CA is published in kube-system; this built-in Role reads exactly that ConfigMap.
    binding(
      'RoleBinding',
      `test-virt-api-auth-${suffix}`,
      'kube-system',
      'Role',
      'extension-apiserver-authentication-reader',
      'virt-api',
    ),
  ] as KubernetesObject[];
}

/**
 * virt-api's mutating and validating webhooks as the chart registers them, limited to one namespace (other suites
 * sharing the cluster never meet them) and pointing at the `virt-api` Service there.
 */
export function webhookConfigurations(
  namespace: string,
  mutatingName: string,
  validatingName: string,
): KubernetesObject[] {
  const common = (
    name: string,
    path: string,
    resources: string[],
    group = 'kubevirt.io',
    version = 'v1',
  ) => ({
    name,
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    failurePolicy: 'Fail',
    timeoutSeconds: 10,
    // Only this suite's namespace: other suites sharing the cluster never meet these webhooks.
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
    clientConfig: { service: { name: 'virt-api', namespace, path, port: 443 } },
    rules: [
      {
        apiGroups: [group],
        apiVersions: [version],
        resources,
        operations: ['CREATE', 'UPDATE'],
        scope: 'Namespaced',
      },
    ],
  });
  return [
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: mutatingName },
      webhooks: [
        {
          ...common('virtualmachines-mutator.kubevirt.io', '/virtualmachines-mutate', ['virtualmachines']),
          reinvocationPolicy: 'Never',
        },
        {
          ...common('virtualmachineinstances-mutator.kubevirt.io', '/virtualmachineinstances-mutate', [
            'virtualmachineinstances',
          ]),
          reinvocationPolicy: 'Never',
        },
      ],
    },
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: { name: validatingName },
      webhooks: [
        common('virtualmachines-validator.kubevirt.io', '/virtualmachines-validate', ['virtualmachines']),
        common('virtualmachineinstances-validator.kubevirt.io', '/virtualmachineinstances-validate', [
          'virtualmachineinstances',
        ]),
        common('replicasets-validator.kubevirt.io', '/virtualmachinereplicasets-validate', [
          'virtualmachineinstancereplicasets',
        ]),
        common(
          'instancetypes-validator.instancetype.kubevirt.io',
          '/instancetypes-validate',
          ['virtualmachineinstancetypes'],
          'instancetype.kubevirt.io',
          'v1beta1',
        ),
        common(
          'preferences-validator.instancetype.kubevirt.io',
          '/preferences-validate',
          ['virtualmachinepreferences'],
          'instancetype.kubevirt.io',
          'v1beta1',
        ),
      ],
    },
  ] as unknown as KubernetesObject[];
}
