// Authorization of subresource requests, delegated to the API server: a SubjectAccessReview for the user the
// front proxy named and the subresource the path names (verb `update` on `virtualmachines/stop`, `get` on
// `virtualmachineinstances/console`, ...), so RBAC alone decides, with the rules of the chart's kubevirt.io:admin,
// edit and view roles. kube-apiserver has asked the same question before proxying; asking again keeps virt-api
// safe from anyone else who holds a front-proxy certificate, as every aggregated API server does.
import { AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { describeApiError, type Logger } from '@kubevirt-ts/runtime';
import { SUBRESOURCE_GROUP, SUBRESOURCE_VERSION } from '../discovery.ts';
import { SubresourceError, internalError } from './errors.ts';

export interface AccessRequest {
  user: string;
  groups: string[];
  extra: Record<string, string[]>;
  namespace: string;
  verb: string;
  /** `virtualmachines` or `virtualmachineinstances`. */
  resource: string;
  /** `start`, `console`, ... */
  subresource: string;
  name: string;
}

export type AccessDecision = { allowed: true } | { allowed: false; reason: string };

export interface Authorizer {
  authorize(request: AccessRequest): Promise<AccessDecision>;
}

/** The 403 the API server itself would answer, naming the user, verb, resource and namespace. */
export function accessDenied(request: AccessRequest, reason: string): SubresourceError {
  const resource = `${request.resource}/${request.subresource}`;
  const message =
    `${request.resource}.${SUBRESOURCE_GROUP} ${JSON.stringify(request.name)} is forbidden: ` +
    `User ${JSON.stringify(request.user)} cannot ${request.verb} resource ${JSON.stringify(resource)} ` +
    `in API group ${JSON.stringify(SUBRESOURCE_GROUP)} in the namespace ${JSON.stringify(request.namespace)}` +
    (reason === '' ? '' : `: ${reason}`);
  return new SubresourceError(403, 'Forbidden', message, {
    name: request.name,
    group: SUBRESOURCE_GROUP,
    kind: request.resource,
  });
}

export class SubjectAccessReviewAuthorizer implements Authorizer {
  readonly #api: AuthorizationV1Api;
  readonly #log: Logger;

  constructor(kubeConfig: KubeConfig, log: Logger) {
    this.#api = kubeConfig.makeApiClient(AuthorizationV1Api);
    this.#log = log.child({ component: 'authorization' });
  }

  async authorize(request: AccessRequest): Promise<AccessDecision> {
    let review;
    try {
      review = await this.#api.createSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: request.user,
            groups: request.groups,
            extra: request.extra,
            resourceAttributes: {
              namespace: request.namespace,
              verb: request.verb,
              group: SUBRESOURCE_GROUP,
              version: SUBRESOURCE_VERSION,
              resource: request.resource,
              subresource: request.subresource,
              name: request.name,
            },
          },
        },
      });
    } catch (err) {
      this.#log.error({ error: describeApiError(err) }, 'SubjectAccessReview failed');
      throw internalError(
        `cannot check access with a SubjectAccessReview (${describeApiError(err)}); virt-api's service ` +
          'account needs "create" on subjectaccessreviews.authorization.k8s.io',
      );
    }
    const status = review.status;
    if (status?.allowed === true && status.denied !== true) return { allowed: true };
    return { allowed: false, reason: status?.reason ?? status?.evaluationError ?? '' };
  }
}
