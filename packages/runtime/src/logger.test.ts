import { describe, expect, it } from 'vitest';
import { createLogger, k8sRef, objectLogger, redactCensor, type LoggerOptions } from './logger.ts';

function capture(opts: Partial<LoggerOptions> = {}) {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    service: 'virt-test',
    version: '1.0.0',
    node: 'node-a',
    destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
    ...opts,
  });
  return { log, lines };
}

describe('createLogger', () => {
  it('writes JSON with service, version, node, an ISO time and the level label', () => {
    const { log, lines } = capture();
    log.info({ key: 'ns/vm' }, 'hello');
    expect(lines).toHaveLength(1);
    const line = lines[0];
    expect(line).toMatchObject({ service: 'virt-test', version: '1.0.0', node: 'node-a', level: 'info' });
    expect(line?.msg).toBe('hello');
    expect(line?.key).toBe('ns/vm');
    expect(String(line?.time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(line).not.toHaveProperty('pid');
    expect(line).not.toHaveProperty('hostname');
  });

  it('honours the level', () => {
    const { log, lines } = capture({ level: 'warn' });
    log.info('dropped');
    log.warn('kept');
    expect(lines.map((l) => l.msg)).toEqual(['kept']);
  });

  it('redacts tokens, authorization headers, Secret data and cloud-init user data', () => {
    const { log, lines } = capture();
    log.info({
      token: 't0',
      user: { token: 't1', name: 'admin' },
      req: { headers: { authorization: 'Bearer abc', accept: 'json' } },
      authorization: 'Bearer top',
      secret: { data: { password: 'cGFzcw==' }, metadata: { name: 's' } },
      vmi: {
        spec: {
          volumes: [
            { name: 'ci', cloudInitNoCloud: { userData: '#cloud-config\npassword: x', networkData: 'n' } },
          ],
        },
      },
      vm: {
        spec: { template: { spec: { volumes: [{ cloudInitConfigDrive: { userDataBase64: 'eA==' } }] } } },
      },
    });
    const line = lines[0];
    const at = (path: string): unknown =>
      path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], line);
    expect(at('token')).toBe(redactCensor);
    expect(at('user.token')).toBe(redactCensor);
    expect(at('user.name')).toBe('admin');
    expect(at('req.headers.authorization')).toBe(redactCensor);
    expect(at('req.headers.accept')).toBe('json');
    expect(at('authorization')).toBe(redactCensor);
    expect(at('secret.data')).toBe(redactCensor);
    expect(at('secret.metadata.name')).toBe('s');
    expect(at('vmi.spec.volumes.0.cloudInitNoCloud.userData')).toBe(redactCensor);
    expect(at('vmi.spec.volumes.0.cloudInitNoCloud.networkData')).toBe(redactCensor);
    expect(at('vmi.spec.volumes.0.name')).toBe('ci');
    expect(at('vm.spec.template.spec.volumes.0.cloudInitConfigDrive.userDataBase64')).toBe(redactCensor);
    expect(JSON.stringify(line)).not.toMatch(/Bearer|cGFzcw|cloud-config|eA==/);
  });

  it('serializes errors with message and stack', () => {
    const { log, lines } = capture();
    log.error({ err: new Error('boom') }, 'failed');
    expect(lines[0]?.err).toMatchObject({ type: 'Error', message: 'boom' });
    expect((lines[0]?.err as { stack: string }).stack).toContain('boom');
  });
});

describe('k8sRef and objectLogger', () => {
  const vmi = {
    kind: 'VirtualMachineInstance',
    metadata: { name: 'vm1', namespace: 'default', uid: 'u-1', annotations: { big: 'x'.repeat(100) } },
    spec: { domain: {} },
  };

  it('reduces an object to kind, namespace, name and uid', () => {
    expect(k8sRef(vmi)).toEqual({
      kind: 'VirtualMachineInstance',
      namespace: 'default',
      name: 'vm1',
      uid: 'u-1',
    });
    expect(k8sRef({ metadata: { name: 'node-1' } }, 'Node')).toEqual({ kind: 'Node', name: 'node-1' });
  });

  it('binds the reference to a child logger', () => {
    const { log, lines } = capture();
    objectLogger(log, vmi).info('reconciled');
    expect(lines[0]).toMatchObject({
      kind: 'VirtualMachineInstance',
      namespace: 'default',
      name: 'vm1',
      uid: 'u-1',
    });
    expect(lines[0]).not.toHaveProperty('spec');
    expect(lines[0]).not.toHaveProperty('metadata');
  });
});
