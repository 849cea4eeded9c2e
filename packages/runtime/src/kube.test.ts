import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ApiException, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  apiErrorCode,
  applyPatchOptions,
  describeApiError,
  isConflict,
  isGone,
  isNotFound,
  jsonPatchOptions,
  jsonPointer,
  loadKubeConfig,
  mergePatchOptions,
  objectKey,
  resourcePath,
  splitKey,
  type JsonPatchOperation,
} from './kube.ts';

let dir: string;

function kubeconfigFile(name: string, server: string, context = name): string {
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      `current-context: ${context}`,
      `clusters: [{name: ${name}, cluster: {server: "${server}"}}]`,
      `users: [{name: ${name}, user: {token: secret-${name}}}]`,
      `contexts: [{name: ${name}, context: {cluster: ${name}, user: ${name}}}]`,
    ].join('\n'),
  );
  return file;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kube-test-'));
});
afterEach(() => {
  vi.unstubAllEnvs();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('loadKubeConfig', () => {
  it('prefers the --kubeconfig path', () => {
    vi.stubEnv('KUBECONFIG', kubeconfigFile('env', 'https://env.invalid:6443'));
    const { kubeConfig, source } = loadKubeConfig({
      kubeconfig: kubeconfigFile('flag', 'https://flag.invalid:6443'),
    });
    expect(source).toBe('flag');
    expect(kubeConfig.getCurrentCluster()?.server).toBe('https://flag.invalid:6443');
  });

  it('says which --kubeconfig path is missing', () => {
    expect(() => loadKubeConfig({ kubeconfig: '/nonexistent/kc' })).toThrow(
      'kubeconfig /nonexistent/kc (from --kubeconfig) does not exist',
    );
  });

  it('merges the files listed in $KUBECONFIG', () => {
    const a = kubeconfigFile('a', 'https://a.invalid:6443');
    const b = kubeconfigFile('b', 'https://b.invalid:6443', 'a');
    vi.stubEnv('KUBECONFIG', [a, b].join(path.delimiter));
    const { kubeConfig, source } = loadKubeConfig();
    expect(source).toBe('env');
    expect(kubeConfig.getCurrentCluster()?.server).toBe('https://a.invalid:6443');
    expect(
      kubeConfig
        .getClusters()
        .map((c) => c.name)
        .sort(),
    ).toEqual(['a', 'b']);
  });

  it('names the $KUBECONFIG files that do not exist', () => {
    vi.stubEnv(
      'KUBECONFIG',
      [kubeconfigFile('a', 'https://a.invalid'), '/nonexistent/b'].join(path.delimiter),
    );
    expect(() => loadKubeConfig()).toThrow('KUBECONFIG names files that do not exist: /nonexistent/b');
  });

  it('uses the pod service account in a cluster', () => {
    vi.stubEnv('KUBECONFIG', '');
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '10.96.0.1');
    vi.stubEnv('KUBERNETES_SERVICE_PORT', '443');
    const sa = path.join(dir, 'var/run/secrets/kubernetes.io/serviceaccount');
    fs.mkdirSync(sa, { recursive: true });
    fs.writeFileSync(path.join(sa, 'token'), 'tok');
    fs.writeFileSync(path.join(sa, 'namespace'), 'kubevirt');
    const { kubeConfig, source } = loadKubeConfig({ inClusterPathPrefix: dir });
    expect(source).toBe('in-cluster');
    expect(kubeConfig.getCurrentCluster()?.server).toBe('https://10.96.0.1:443');
  });

  it('lists the options when there is no configuration at all', () => {
    vi.stubEnv('KUBECONFIG', '');
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '');
    vi.stubEnv('HOME', dir);
    expect(() => loadKubeConfig()).toThrow(
      /pass --kubeconfig PATH, set KUBECONFIG, .*or create .*\.kube\/config/,
    );
  });

  it('rejects a kubeconfig without a usable current context', () => {
    expect(() => loadKubeConfig({ kubeconfig: kubeconfigFile('x', 'https://x.invalid', 'missing') })).toThrow(
      /no current context with a cluster/,
    );
  });
});

describe('keys and paths', () => {
  it('keys namespaced and cluster-scoped objects like client-go', () => {
    expect(objectKey({ metadata: { namespace: 'ns', name: 'vm' } })).toBe('ns/vm');
    expect(objectKey({ metadata: { name: 'node-1' } })).toBe('node-1');
    expect(splitKey('ns/vm')).toEqual({ namespace: 'ns', name: 'vm' });
    expect(splitKey('node-1')).toEqual({ name: 'node-1' });
  });

  it('builds collection paths for core and grouped resources', () => {
    expect(resourcePath({ version: 'v1', plural: 'pods', namespace: 'ns' })).toBe(
      '/api/v1/namespaces/ns/pods',
    );
    expect(resourcePath({ version: 'v1', plural: 'nodes' })).toBe('/api/v1/nodes');
    expect(resourcePath({ group: 'kubevirt.io', version: 'v1', plural: 'virtualmachineinstances' })).toBe(
      '/apis/kubevirt.io/v1/virtualmachineinstances',
    );
  });

  it('escapes JSON pointer segments', () => {
    expect(jsonPointer('metadata', 'labels', 'kubevirt.io/created-by')).toBe(
      '/metadata/labels/kubevirt.io~1created-by',
    );
    expect(jsonPointer('a~b', 0)).toBe('/a~0b/0');
  });
});

describe('patch content types', () => {
  let server: http.Server;
  let seen: { method?: string; url?: string; contentType?: string; body: string }[];
  let kc: KubeConfig;

  beforeEach(async () => {
    seen = [];
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, contentType: req.headers['content-type'], body });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns' } }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    kc = new KubeConfig();
    // client-node 2.x refuses plain http unless TLS verification is declared off; this server speaks only http.
    kc.loadFromOptions({
      clusters: [
        {
          name: 'c',
          server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
          skipTLSVerify: true,
        },
      ],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
  });
  afterEach(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends the merge, JSON and apply patch content types it is asked for', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    await core.patchNamespacedPod(
      { name: 'p', namespace: 'ns', body: { metadata: { labels: { a: 'b' } } } },
      mergePatchOptions(),
    );
    const ops: JsonPatchOperation[] = [
      { op: 'test', path: '/metadata/resourceVersion', value: '7' },
      { op: 'remove', path: jsonPointer('metadata', 'labels', 'a') },
    ];
    await core.patchNamespacedPod({ name: 'p', namespace: 'ns', body: ops }, jsonPatchOptions());
    const custom = kc.makeApiClient(CustomObjectsApi);
    await custom.patchNamespacedCustomObject(
      {
        group: 'kubevirt.io',
        version: 'v1',
        namespace: 'ns',
        plural: 'virtualmachines',
        name: 'vm',
        body: { spec: { runStrategy: 'Halted' } },
        fieldManager: 'virt-controller',
        force: true,
      },
      applyPatchOptions(),
    );
    expect(seen.map((s) => [s.method, s.contentType])).toEqual([
      ['PATCH', 'application/merge-patch+json'],
      ['PATCH', 'application/json-patch+json'],
      ['PATCH', 'application/apply-patch+yaml'],
    ]);
    expect(JSON.parse(seen[1]?.body ?? '')).toEqual(ops);
    expect(seen[2]?.url).toContain('/apis/kubevirt.io/v1/namespaces/ns/virtualmachines/vm?');
    expect(seen[2]?.url).toContain('fieldManager=virt-controller');
  });
});

describe('API errors', () => {
  it('reads the status code of ApiExceptions and watch errors', () => {
    const notFound = new ApiException(
      404,
      'not found',
      { reason: 'NotFound', message: 'pods "x" not found' },
      {},
    );
    expect(apiErrorCode(notFound)).toBe(404);
    expect(isNotFound(notFound)).toBe(true);
    expect(isConflict(new ApiException(409, 'conflict', {}, {}))).toBe(true);
    expect(isGone(Object.assign(new Error('Gone'), { statusCode: 410 }))).toBe(true);
    expect(apiErrorCode(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBeUndefined();
    expect(apiErrorCode('text')).toBeUndefined();
  });

  it('describes an error with status, reason and the server message', () => {
    const err = new ApiException(
      422,
      'HTTP-Code: 422',
      JSON.stringify({ kind: 'Status', reason: 'Invalid', message: 'spec.domain: Required value' }),
      {},
    );
    expect(describeApiError(err)).toBe('HTTP 422: Invalid: spec.domain: Required value');
    expect(describeApiError(new Error('connect ECONNREFUSED 127.0.0.1:6443'))).toBe(
      'connect ECONNREFUSED 127.0.0.1:6443',
    );
  });
});

describe('apiErrorCode and aborts', () => {
  it('does not read an AbortError as an HTTP status', () => {
    const abort = new DOMException('This operation was aborted', 'AbortError');
    expect(apiErrorCode(abort)).toBeUndefined();
    expect(apiErrorCode({ code: 404 })).toBe(404);
  });
});
