// Helpers the node agent's side of the kubelet's device-plugin API v1beta1 needs. The contract itself (the
// .proto, its loader and message types) lives in @kubevirt-ts/proto/deviceplugin, shared with virt-handler's plugins.
import type { CallOptions } from '@grpc/grpc-js';
import type { Callback } from '@kubevirt-ts/proto/deviceplugin';

/** A deadline for one unary call, `ms` from now. */
export function deadline(ms: number): CallOptions {
  return { deadline: new Date(Date.now() + ms) };
}

/** Promise form of a unary call. */
export function unary<T>(call: (cb: Callback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    call((err, value) => (err ? reject(err) : resolve(value as T)));
  });
}

/**
 * A resource name a device plugin may register: `domain/name` with a DNS-subdomain domain that is not
 * kubernetes.io (those names belong to Kubernetes), as the kubelet checks.
 */
export function validResourceName(name: string): string | undefined {
  const slash = name.indexOf('/');
  if (slash <= 0) return `resource name ${JSON.stringify(name)} has no domain (expected domain/name)`;
  const domain = name.slice(0, slash);
  const local = name.slice(slash + 1);
  if (domain === 'kubernetes.io' || domain.endsWith('.kubernetes.io')) {
    return `resource name ${JSON.stringify(name)} is in the kubernetes.io domain, which extended resources may not use`;
  }
  if (
    !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(domain) ||
    domain.length > 253
  ) {
    return `resource name ${JSON.stringify(name)}: ${domain} is not a DNS subdomain`;
  }
  if (!/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(local) || local.length > 63) {
    return `resource name ${JSON.stringify(name)}: ${local} is not a valid name`;
  }
  return undefined;
}
