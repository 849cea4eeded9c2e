// Command-line flags of the certificate loop. The defaults are the names the Helm chart gives the Secrets, the
// webhook configurations, the APIService and the virt-api Service, so a chart install needs no extra flags.
import { flag, type ConfigValues } from '@kubevirt-ts/runtime';
import { DEFAULT_POLICIES, policyProblems, type CertificatePolicies } from './policy.ts';

const list = (raw: string): string[] =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

export const certificateFlags = {
  caSecret: flag.string({
    description: 'Secret (in --namespace) holding the CA that signs every kubevirt-ts certificate',
    default: 'kubevirt-ca',
  }),
  apiCertSecret: flag.string({
    description: "Secret (in --namespace) with virt-api's serving and client certificate",
    default: 'kubevirt-virt-api-certs',
  }),
  handlerServerCertSecret: flag.string({
    description: "Secret (in --namespace) with virt-handler's serving certificate",
    default: 'kubevirt-virt-handler-server-certs',
  }),
  handlerClientCertSecret: flag.string({
    description: 'Secret (in --namespace) with the client certificate virt-api presents to virt-handler',
    default: 'kubevirt-virt-handler-certs',
  }),
  apiServiceName: flag.string({
    description: "Name of virt-api's Service; its DNS names go into virt-api's certificate",
    default: 'virt-api',
  }),
  clusterDomain: flag.string({
    description: 'DNS domain of the cluster, for the fully qualified Service name in certificates',
    default: 'cluster.local',
  }),
  mutatingWebhookConfigurations: flag.string({
    description: 'Comma-separated MutatingWebhookConfigurations whose webhooks get the CA bundle',
    default: 'virt-api-mutator',
    valueName: 'names',
  }),
  validatingWebhookConfigurations: flag.string({
    description: 'Comma-separated ValidatingWebhookConfigurations whose webhooks get the CA bundle',
    default: 'virt-api-validator',
    valueName: 'names',
  }),
  apiServices: flag.string({
    description: 'Comma-separated APIServices that get the CA bundle',
    default: 'v1.subresources.kubevirt.io',
    valueName: 'names',
  }),
  caDuration: flag.duration({
    description: 'Lifetime of a new CA',
    default: DEFAULT_POLICIES.ca.durationMs,
  }),
  caRenewBefore: flag.duration({
    description: 'Rotate the CA this long before it expires',
    default: DEFAULT_POLICIES.ca.renewBeforeMs,
  }),
  certDuration: flag.duration({
    description: 'Lifetime of a new virt-api or virt-handler certificate',
    default: DEFAULT_POLICIES.leaf.durationMs,
  }),
  certRenewBefore: flag.duration({
    description: 'Renew a certificate this long before it expires',
    default: DEFAULT_POLICIES.leaf.renewBeforeMs,
  }),
};

export type CertificateFlagValues = ConfigValues<typeof certificateFlags>;

/** The loop's settings from parsed flags; throws an Error listing every inconsistent duration. */
export function certificateSettings(v: CertificateFlagValues) {
  const policies: CertificatePolicies = {
    ca: { durationMs: v.caDuration, renewBeforeMs: v.caRenewBefore },
    leaf: { durationMs: v.certDuration, renewBeforeMs: v.certRenewBefore },
  };
  const problems = policyProblems(policies);
  if (problems.length > 0) throw new Error(`certificate flags: ${problems.join('; ')}`);
  return {
    caSecretName: v.caSecret,
    apiSecretName: v.apiCertSecret,
    handlerServerSecretName: v.handlerServerCertSecret,
    handlerClientSecretName: v.handlerClientCertSecret,
    apiServiceName: v.apiServiceName,
    clusterDomain: v.clusterDomain,
    mutatingWebhookConfigurations: list(v.mutatingWebhookConfigurations),
    validatingWebhookConfigurations: list(v.validatingWebhookConfigurations),
    apiServices: list(v.apiServices),
    policies,
  };
}
