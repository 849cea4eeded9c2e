// Identities for our services run from source (DESIGN.md §4b): a ServiceAccount per service in the `kubevirt`
// namespace, a token minted through the TokenRequest API (as the kubelet does for pods), and a kubeconfig that uses
// it. The chart will own these accounts' RBAC; devcluster only creates the accounts so the tokens can exist.
import { join } from 'node:path';
import { ApiException, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { writeKubeconfig } from './kubeconfig.ts';
import { SERVICE_ACCOUNTS, SERVICE_NAMESPACE } from './layout.ts';

/** A week: long enough for a kept devcluster; `devcluster up` on a running cluster mints fresh ones. */
export const SERVICE_TOKEN_SECONDS = 7 * 24 * 60 * 60;

const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'devcluster' };

async function ignoreConflict(create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (err) {
    if (!(err instanceof ApiException && err.code === 409)) throw err;
  }
}

export interface ServiceKubeconfigs {
  /** Per service account: kubeconfig for use inside the cluster's namespace. */
  inside: Record<string, string>;
  /** Per service account: kubeconfig for use on the host, through the forwarder. */
  host: Record<string, string>;
}

export function serviceKubeconfigPaths(dir: string): ServiceKubeconfigs {
  const inside: Record<string, string> = {};
  const host: Record<string, string> = {};
  for (const name of SERVICE_ACCOUNTS) {
    inside[name] = join(dir, `sa-${name}.kubeconfig`);
    host[name] = join(dir, `sa-${name}-host.kubeconfig`);
  }
  return { inside, host };
}

export async function ensureServiceAccountKubeconfigs(
  admin: KubeConfig,
  options: { dir: string; caPem: string; insideServer: string; hostServer: string },
): Promise<ServiceKubeconfigs> {
  const core = admin.makeApiClient(CoreV1Api);
  await ignoreConflict(() =>
    core.createNamespace({ body: { metadata: { name: SERVICE_NAMESPACE, labels: MANAGED_BY } } }),
  );
  const paths = serviceKubeconfigPaths(options.dir);
  for (const name of SERVICE_ACCOUNTS) {
    await ignoreConflict(() =>
      core.createNamespacedServiceAccount({
        namespace: SERVICE_NAMESPACE,
        body: { metadata: { name, labels: MANAGED_BY } },
      }),
    );
    const tokenRequest = await core.createNamespacedServiceAccountToken({
      name,
      namespace: SERVICE_NAMESPACE,
      body: { spec: { audiences: [], expirationSeconds: SERVICE_TOKEN_SECONDS } },
    });
    const token = tokenRequest.status?.token;
    if (!token) throw new Error(`TokenRequest for ${SERVICE_NAMESPACE}/${name} returned no token`);
    const user = `system:serviceaccount:${SERVICE_NAMESPACE}:${name}`;
    const common = {
      name: 'devcluster',
      user,
      caPem: options.caPem,
      credentials: { kind: 'token' as const, token },
      namespace: SERVICE_NAMESPACE,
    };
    await writeKubeconfig(paths.inside[name] ?? '', { ...common, server: options.insideServer });
    await writeKubeconfig(paths.host[name] ?? '', { ...common, server: options.hostServer });
  }
  return paths;
}
