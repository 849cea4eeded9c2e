// Each volume type the node agent supports, seen from inside a container and, where the kubelet's layout matters
// to other components (DESIGN.md §4a), on the node's disk: emptyDir, hostPath (inside the node root), configMap,
// secret, downwardAPI, projected (token, ConfigMap, downward API), image volumes from the local image store, and
// PVCs bound to static hostPath PVs; plus the environment a container gets from the same sources.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Container, V1PodSpec } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATIC_STORAGE_CLASS } from '../src/node/setup.ts';
import { devclusterNodes, onNode, useTestNamespace, waitForPod, type TestNode } from '../src/testing.ts';

const ns = useTestNamespace('node-volumes');
let node: TestNode;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  [node] = (await devclusterNodes(ns.kc, 1)) as [TestNode];
});

afterAll(async () => {
  for (const cleanup of cleanups) await cleanup().catch(() => undefined);
});

function sh(name: string, script: string, extra: Partial<V1Container> = {}): V1Container {
  return { name, image: 'node:24', command: ['sh', '-c', script], ...extra };
}

/** Runs a pod to completion (restartPolicy Never) and returns its uid and the main container's log. */
async function run(
  name: string,
  spec: Partial<V1PodSpec> & Pick<V1PodSpec, 'containers'>,
  timeoutMs = 60_000,
): Promise<{ uid: string; log: string }> {
  const pod = await ns.core.createNamespacedPod({
    namespace: ns.name,
    body: {
      metadata: { name, labels: { test: name }, annotations: { note: 'from the test' } },
      spec: { ...onNode(node.name), restartPolicy: 'Never', ...spec },
    },
  });
  const done = await waitForPod(
    ns.core,
    ns.name,
    name,
    (p) => ['Succeeded', 'Failed'].includes(p.status?.phase ?? ''),
    { timeoutMs },
  );
  const log = await ns.core.readNamespacedPodLog({
    name,
    namespace: ns.name,
    container: spec.containers[0]?.name ?? '',
  });
  expect(done.status?.phase, log).toBe('Succeeded');
  return { uid: pod.metadata?.uid ?? '', log };
}

describe('volumes', () => {
  it('emptyDir: shared by the pod’s containers, in the kubelet layout on the node', async () => {
    const { uid, log } = await run('empty-dir', {
      volumes: [{ name: 'shared', emptyDir: {} }],
      initContainers: [
        sh('writer', 'echo from-init > /shared/note', {
          volumeMounts: [{ name: 'shared', mountPath: '/shared' }],
        }),
      ],
      containers: [
        sh('reader', 'cat /var/run/shared/note', {
          volumeMounts: [{ name: 'shared', mountPath: '/var/run/shared' }],
        }),
      ],
    });
    expect(log).toBe('from-init\n');
    const onDisk = join(node.paths.pods, uid, 'volumes', 'kubernetes.io~empty-dir', 'shared', 'note');
    expect(readFileSync(onDisk, 'utf8')).toBe('from-init\n');
  });

  it('hostPath: inside the node root, never the machine’s own folder', async () => {
    const path = `/var/lib/devcluster-test/${ns.name}`;
    const { log } = await run('host-path', {
      volumes: [{ name: 'host', hostPath: { path, type: 'DirectoryOrCreate' } }],
      containers: [
        sh('main', 'echo written > /data/file && cat /data/file', {
          volumeMounts: [{ name: 'host', mountPath: '/data' }],
        }),
      ],
    });
    expect(log).toBe('written\n');
    expect(readFileSync(join(node.paths.root, path, 'file'), 'utf8')).toBe('written\n');
    expect(existsSync(path)).toBe(false);
  });

  it('configMap and secret: files with items and modes, and env from keys, fields and resources', async () => {
    await ns.core.createNamespacedConfigMap({
      namespace: ns.name,
      body: { metadata: { name: 'settings' }, data: { greeting: 'hello', other: 'x' } },
    });
    await ns.core.createNamespacedSecret({
      namespace: ns.name,
      body: { metadata: { name: 'creds' }, stringData: { password: 's3cret' } },
    });
    const script = [
      'cat /config/sub/greeting.txt; echo',
      'ls /config/sub',
      'cat /secret/password; echo',
      'stat -L -c %a /secret/password',
      'echo "env $GREETING $PASSWORD $POD $NODE $CPU $COMBINED"',
      'touch /secret/new 2>/dev/null || echo secret-is-read-only',
    ].join('; ');
    const { log } = await run('cm-secret', {
      volumes: [
        {
          name: 'config',
          configMap: { name: 'settings', items: [{ key: 'greeting', path: 'sub/greeting.txt' }] },
        },
        { name: 'secret', secret: { secretName: 'creds', defaultMode: 0o400 } },
      ],
      containers: [
        sh('main', script, {
          volumeMounts: [
            { name: 'config', mountPath: '/config' },
            { name: 'secret', mountPath: '/secret' },
          ],
          resources: { limits: { cpu: '2' } },
          env: [
            { name: 'GREETING', valueFrom: { configMapKeyRef: { name: 'settings', key: 'greeting' } } },
            { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } },
            { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
            { name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1m' } } },
            { name: 'COMBINED', value: '$(POD)@$(NODE)' },
          ],
        }),
      ],
    });
    expect(log).toBe(
      [
        'hello',
        'greeting.txt',
        's3cret',
        '400',
        `env hello s3cret cm-secret ${node.name} 2000 cm-secret@${node.name}`,
        'secret-is-read-only',
        '',
      ].join('\n'),
    );
  });

  it('downwardAPI and projected: labels, annotations, a token bound to the pod, the cluster CA', async () => {
    const script = [
      'cat /info/labels; echo',
      'cat /info/annotations; echo',
      'cat /projected/name; echo',
      'test -s /projected/ca.crt && echo has-ca',
      "node -e \"const t=require('fs').readFileSync('/projected/token','utf8'); const c=JSON.parse(Buffer.from(t.split('.')[1],'base64url')); console.log(c.aud.join(','), c['kubernetes.io'].pod.name)\"",
    ].join('; ');
    const { log } = await run('downward', {
      volumes: [
        {
          name: 'info',
          downwardAPI: {
            items: [
              { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
              { path: 'annotations', fieldRef: { fieldPath: "metadata.annotations['note']" } },
            ],
          },
        },
        {
          name: 'projected',
          projected: {
            sources: [
              {
                serviceAccountToken: { path: 'token', audience: 'example-audience', expirationSeconds: 3600 },
              },
              { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
              { downwardAPI: { items: [{ path: 'name', fieldRef: { fieldPath: 'metadata.name' } }] } },
            ],
          },
        },
      ],
      containers: [
        sh('main', script, {
          volumeMounts: [
            { name: 'info', mountPath: '/info' },
            { name: 'projected', mountPath: '/projected' },
          ],
        }),
      ],
    });
    expect(log).toBe(
      ['test="downward"', 'from the test', 'downward', 'has-ca', 'example-audience downward', ''].join('\n'),
    );
  });

  it('image: the test guest from the local image store, read-only', async () => {
    const { log } = await run(
      'image',
      {
        volumes: [
          {
            name: 'guest',
            image: { reference: 'registry.kubevirt-ts.dev/test-guest:latest', pullPolicy: 'IfNotPresent' },
          },
        ],
        containers: [
          sh('main', 'ls /guest/disk /guest/boot; touch /guest/x 2>/dev/null || echo image-is-read-only', {
            volumeMounts: [{ name: 'guest', mountPath: '/guest' }],
          }),
        ],
      },
      // The first use builds the test guest (Debian kernel + busybox) into the store.
      300_000,
    );
    expect(log).toBe(
      [
        '/guest/boot:',
        'initrd.img',
        'vmlinuz',
        '',
        '/guest/disk:',
        'disk.qcow2',
        'image-is-read-only',
        '',
      ].join('\n'),
    );
  });

  it('persistentVolumeClaim: bound by the PV controller to a static hostPath PV, data in the node root', async () => {
    const pvName = `pv-${ns.name}`;
    const path = `/var/lib/devcluster-test/pv-${ns.name}`;
    await ns.core.createPersistentVolume({
      body: {
        metadata: { name: pvName },
        spec: {
          storageClassName: STATIC_STORAGE_CLASS,
          capacity: { storage: '1Gi' },
          accessModes: ['ReadWriteOnce'],
          persistentVolumeReclaimPolicy: 'Retain',
          hostPath: { path, type: 'DirectoryOrCreate' },
        },
      },
    });
    cleanups.push(() => ns.core.deletePersistentVolume({ name: pvName }));
    await ns.core.createNamespacedPersistentVolumeClaim({
      namespace: ns.name,
      body: {
        metadata: { name: 'data' },
        spec: {
          storageClassName: STATIC_STORAGE_CLASS,
          accessModes: ['ReadWriteOnce'],
          resources: { requests: { storage: '1Gi' } },
        },
      },
    });
    const { log } = await run('pvc', {
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }],
      containers: [
        sh('main', 'echo persisted > /data/disk.img && cat /data/disk.img', {
          volumeMounts: [{ name: 'data', mountPath: '/data' }],
        }),
      ],
    });
    expect(log).toBe('persisted\n');
    const pvc = await ns.core.readNamespacedPersistentVolumeClaim({ name: 'data', namespace: ns.name });
    expect(pvc.status?.phase).toBe('Bound');
    expect(pvc.spec?.volumeName).toBe(pvName);
    expect(statSync(join(node.paths.root, path, 'disk.img')).isFile()).toBe(true);
  });
});
