// Discovery and OpenAPI documents of the aggregated API subresources.kubevirt.io/v1, which virt-api serves behind
// the `v1.subresources.kubevirt.io` APIService. The aggregator marks the APIService Available once
// /apis/subresources.kubevirt.io/v1 answers 200; an unavailable APIService would block namespace deletion in the
// whole cluster, so these answer as soon as the server listens. The subresource endpoints themselves come with
// the subresource issue; the list below is KubeVirt's, so RBAC rules written for KubeVirt keep their meaning.

export const SUBRESOURCE_GROUP = 'subresources.kubevirt.io';
export const SUBRESOURCE_VERSION = 'v1';
export const SUBRESOURCE_GROUP_VERSION = `${SUBRESOURCE_GROUP}/${SUBRESOURCE_VERSION}`;
export const GROUP_PATH = `/apis/${SUBRESOURCE_GROUP}`;
export const VERSION_PATH = `/apis/${SUBRESOURCE_GROUP_VERSION}`;

interface APIResource {
  name: string;
  singularName: string;
  namespaced: boolean;
  kind: string;
  verbs: string[];
}

const vm = (sub: string, verbs: string[]): APIResource => ({
  name: `virtualmachines/${sub}`,
  singularName: '',
  namespaced: true,
  kind: 'VirtualMachine',
  verbs,
});
const vmi = (sub: string, verbs: string[]): APIResource => ({
  name: `virtualmachineinstances/${sub}`,
  singularName: '',
  namespaced: true,
  kind: 'VirtualMachineInstance',
  verbs,
});

/** The subresources KubeVirt's virt-api announces (reference §5.1), with the verbs RBAC rules grant on them. */
export const SUBRESOURCES: readonly APIResource[] = [
  { name: 'expand-vm-spec', singularName: '', namespaced: true, kind: 'VirtualMachine', verbs: ['update'] },
  vm('start', ['update']),
  vm('stop', ['update']),
  vm('restart', ['update']),
  vm('migrate', ['update']),
  vm('expand-spec', ['get']),
  vm('portforward', ['get']),
  vm('addvolume', ['update']),
  vm('removevolume', ['update']),
  vm('memorydump', ['update']),
  vm('removememorydump', ['update']),
  vm('evacuate/cancel', ['update']),
  vmi('console', ['get']),
  vmi('vnc', ['get']),
  vmi('vnc/screenshot', ['get']),
  vmi('portforward', ['get']),
  vmi('pause', ['update']),
  vmi('unpause', ['update']),
  vmi('freeze', ['update']),
  vmi('unfreeze', ['update']),
  vmi('reset', ['update']),
  vmi('softreboot', ['update']),
  vmi('guestosinfo', ['get']),
  vmi('userlist', ['get']),
  vmi('filesystemlist', ['get']),
  vmi('addvolume', ['update']),
  vmi('removevolume', ['update']),
  vmi('usbredir', ['get']),
  vmi('vsock', ['get']),
  vmi('evacuate/cancel', ['update']),
];

const groupVersion = { groupVersion: SUBRESOURCE_GROUP_VERSION, version: SUBRESOURCE_VERSION };

export function apiGroup() {
  return {
    kind: 'APIGroup',
    apiVersion: 'v1',
    name: SUBRESOURCE_GROUP,
    versions: [groupVersion],
    preferredVersion: groupVersion,
  };
}

export function apiGroupList() {
  const { kind: _kind, apiVersion: _apiVersion, ...group } = apiGroup();
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: [group] };
}

export function apiResourceList() {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: SUBRESOURCE_GROUP_VERSION,
    resources: SUBRESOURCES,
  };
}

/** `GET .../version`: the shape `virtctl version` reads (KubeVirt's version.Info). */
export function versionInfo(version: string) {
  return {
    gitVersion: `v${version}`,
    gitCommit: '',
    gitTreeState: '',
    buildDate: '',
    goVersion: `node ${process.version}`,
    compiler: 'tsc',
    platform: `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
  };
}

const pathItem = (summary: string) => ({
  get: {
    summary,
    operationId: summary.replaceAll(/\W+/g, '-'),
    responses: { '200': { description: 'OK' } },
  },
});

/** A minimal Swagger 2.0 document: enough for the aggregator to merge it into the cluster's /openapi/v2. */
export function openApiV2(version: string) {
  return {
    swagger: '2.0',
    info: { title: 'kubevirt-ts subresources', version: `v${version}` },
    paths: {
      [`${VERSION_PATH}/`]: pathItem('get the resources of subresources.kubevirt.io/v1'),
      [`${VERSION_PATH}/version`]: pathItem('get the version of virt-api'),
      [`${VERSION_PATH}/healthz`]: pathItem('check the health of virt-api'),
    },
  };
}

/** `/openapi/v3`: the index of per-group-version documents, as Kubernetes serves it. */
export function openApiV3Index(version: string) {
  return {
    paths: {
      [`apis/${SUBRESOURCE_GROUP_VERSION}`]: {
        serverRelativeURL: `/openapi/v3/apis/${SUBRESOURCE_GROUP_VERSION}?hash=${encodeURIComponent(version)}`,
      },
    },
  };
}

export function openApiV3GroupVersion(version: string) {
  return {
    openapi: '3.0.0',
    info: { title: 'kubevirt-ts subresources', version: `v${version}` },
    paths: openApiV2(version).paths,
  };
}
