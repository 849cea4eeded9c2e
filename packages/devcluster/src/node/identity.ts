// A node's credentials, issued by the cluster CA as a kubelet's are: a client certificate for
// `system:node:<name>` in group `system:nodes` (so the API server's Node authorizer and the NodeRestriction
// admission plugin treat the agent exactly like a kubelet), a kubeconfig using it, and the serving certificate of
// the node's kubelet API (the node's address and name).
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeKubeconfig } from '../kubeconfig.ts';
import { issueCertificate, readClusterCa } from '../pki.ts';
import type { NodeIdentity, NodePaths } from './layout.ts';

async function writeSecret(path: string, data: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(`${path}.tmp`, data, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}

/** Issues the node's certificates from the CA in `pkiDir` and writes its kubeconfig (inside the namespaces). */
export async function writeNodeCredentials(
  pkiDir: string,
  node: NodeIdentity,
  paths: NodePaths,
  apiserverUrl: string,
): Promise<void> {
  const ca = await readClusterCa(pkiDir);
  const caPem = ca.certPem;
  const client = await issueCertificate(ca, {
    commonName: `system:node:${node.name}`,
    organizations: ['system:nodes'],
    usage: 'client',
  });
  const serving = await issueCertificate(ca, {
    commonName: `system:node:${node.name}`,
    organizations: ['system:nodes'],
    usage: 'server',
    dnsNames: [node.name],
    ips: [node.address],
  });
  await writeKubeconfig(paths.kubeconfig, {
    name: 'devcluster',
    user: `system:node:${node.name}`,
    server: apiserverUrl,
    caPem,
    credentials: { kind: 'client-certificate', certPem: client.certPem, keyPem: client.keyPem },
  });
  const pem = (text: string) => (text.endsWith('\n') ? text : `${text}\n`);
  await writeSecret(paths.serving.cert, `${pem(serving.certPem)}${pem(caPem)}`);
  await writeSecret(paths.serving.key, serving.keyPem);
}
