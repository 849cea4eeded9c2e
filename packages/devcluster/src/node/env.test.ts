import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { containerArgv, ContainerConfigError, envFor, expandReferences, parseQuantity } from './env.ts';

describe('expandReferences', () => {
  const vars = new Map([
    ['A', 'x'],
    ['B', '$(A)'],
  ]);
  it('expands defined names, keeps unknown and unclosed ones, and unescapes $$', () => {
    expect(expandReferences('$(A)-$(B)-$(C)', vars)).toBe('x-$(A)-$(C)');
    expect(expandReferences('$$(A) $$ $', vars)).toBe('$(A) $ $');
    expect(expandReferences('$(A', vars)).toBe('$(A');
  });
});

describe('parseQuantity', () => {
  it('reads decimal and binary suffixes', () => {
    expect(parseQuantity('500m')).toBe(0.5);
    expect(parseQuantity('128Mi')).toBe(128 * 2 ** 20);
    expect(parseQuantity('2')).toBe(2);
    expect(parseQuantity('1e3')).toBe(1000);
    expect(() => parseQuantity('lots')).toThrow(/not a quantity/);
  });
});

const pod: V1Pod = {
  metadata: { name: 'p', namespace: 'ns', uid: 'u', labels: { app: 'web' } },
  spec: { serviceAccountName: 'sa', containers: [{ name: 'c', resources: { limits: { memory: '64Mi' } } }] },
};
const ctx = {
  pod,
  nodeName: 'dc-node-1',
  hostIP: '172.30.1.1',
  podIP: '10.244.0.5',
  nodeAllocatable: { cpu: '4', memory: '8Gi' },
};

describe('envFor', () => {
  it('layers base, envFrom and env in the kubelet’s order, expanding earlier values', () => {
    const env = envFor(
      {
        name: 'c',
        envFrom: [{ configMapRef: { name: 'cm' }, prefix: 'CM_' }],
        env: [
          { name: 'PATH', value: '/extra:$(PATH)' },
          { name: 'WHO', value: '$(POD) on $(NODE)' },
          { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
          { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
          { name: 'MEM', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
          { name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
          { name: 'PW', valueFrom: { secretKeyRef: { name: 's', key: 'pw' } } },
        ],
      },
      { PATH: '/usr/bin' },
      {
        configMaps: new Map([['cm', { data: { k: 'v' } }]]),
        secrets: new Map([['s', { data: { pw: Buffer.from('hunter2').toString('base64') } }]]),
      },
      ctx,
    );
    expect(Object.fromEntries(env)).toEqual({
      PATH: '/extra:/usr/bin',
      CM_k: 'v',
      WHO: '$(POD) on $(NODE)',
      POD: 'p',
      NODE: 'dc-node-1',
      APP: 'web',
      MEM: '64',
      CPU: '4',
      PW: 'hunter2',
    });
  });

  it('fails a reference that must exist, and skips an optional one', () => {
    const sources = { configMaps: new Map(), secrets: new Map() };
    expect(() =>
      envFor(
        { name: 'c', env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'missing', key: 'k' } } }] },
        {},
        sources,
        ctx,
      ),
    ).toThrow(ContainerConfigError);
    expect(
      envFor({ name: 'c', envFrom: [{ secretRef: { name: 'missing', optional: true } }] }, {}, sources, ctx)
        .size,
    ).toBe(0);
  });
});

describe('containerArgv', () => {
  const image = { entrypoint: ['/entry'], cmd: ['default'] };
  const env = new Map([['X', '1']]);
  it('follows Kubernetes’ command/args over entrypoint/cmd rules', () => {
    expect(containerArgv({ name: 'c' }, image, env)).toEqual(['/entry', 'default']);
    expect(containerArgv({ name: 'c', args: ['a$(X)'] }, image, env)).toEqual(['/entry', 'a1']);
    expect(containerArgv({ name: 'c', command: ['sh'] }, image, env)).toEqual(['sh']);
    expect(containerArgv({ name: 'c', command: ['sh'], args: ['-c', 'x'] }, image, env)).toEqual([
      'sh',
      '-c',
      'x',
    ]);
  });
});
