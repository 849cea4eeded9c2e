// Kubeconfig files: rendered from data (pure) and written with owner-only permissions, since they hold keys.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { stringify } from 'yaml';

export type KubeconfigCredentials =
  { kind: 'client-certificate'; certPem: string; keyPem: string } | { kind: 'token'; token: string };

export interface KubeconfigSpec {
  /** Cluster and context name, e.g. `devcluster`. */
  name: string;
  user: string;
  server: string;
  caPem: string;
  credentials: KubeconfigCredentials;
  namespace?: string;
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/** A self-contained kubeconfig (certificates embedded), so it still works when copied elsewhere. */
export function renderKubeconfig(spec: KubeconfigSpec): string {
  const user =
    spec.credentials.kind === 'token'
      ? { token: spec.credentials.token }
      : {
          'client-certificate-data': b64(spec.credentials.certPem),
          'client-key-data': b64(spec.credentials.keyPem),
        };
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: spec.name, cluster: { server: spec.server, 'certificate-authority-data': b64(spec.caPem) } },
    ],
    users: [{ name: spec.user, user }],
    contexts: [
      {
        name: spec.name,
        context: {
          cluster: spec.name,
          user: spec.user,
          ...(spec.namespace ? { namespace: spec.namespace } : {}),
        },
      },
    ],
    'current-context': spec.name,
    preferences: {},
  });
}

export async function writeKubeconfig(path: string, spec: KubeconfigSpec): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp`;
  await writeFile(tmp, renderKubeconfig(spec), { mode: 0o600 });
  await rename(tmp, path);
}
