import { describe, expect, it } from 'vitest';
import { failure, type Action } from './errors.ts';

const stop: Action = {
  what: 'stop',
  kind: 'VirtualMachine',
  namespace: 'ns1',
  name: 'vm1',
  verb: 'update',
  resource: 'virtualmachines',
  subresource: 'stop',
};
const consoleOf: Action = {
  what: 'open the console of',
  kind: 'VirtualMachineInstance',
  namespace: 'ns1',
  name: 'vm1',
  verb: 'get',
  resource: 'virtualmachineinstances',
  subresource: 'console',
};
const status = (code: number, reason: string, message: string, details?: Record<string, string>) =>
  JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message, details });

describe('failure', () => {
  it('forbidden: names the verb, the resource with its subresource, the group and the namespace', () => {
    const server =
      'virtualmachines.subresources.kubevirt.io "vm1" is forbidden: User "system:serviceaccount:ns1:viewer" ' +
      'cannot update resource "virtualmachines/stop" in API group "subresources.kubevirt.io" in the namespace "ns1"';
    const err = failure(stop, 403, status(403, 'Forbidden', server));
    expect(err.message).toBe(
      'forbidden: you may not stop VirtualMachine ns1/vm1: this needs verb "update" on "virtualmachines/stop" in ' +
        'API group "subresources.kubevirt.io" in namespace "ns1" (the kubevirt.io:edit or kubevirt.io:admin role ' +
        `has it; ask your cluster administrator)\n  the API server said: ${server}`,
    );
  });

  it('no such VM or VMI', () => {
    expect(
      failure(
        stop,
        404,
        status(404, 'NotFound', 'virtualmachine.kubevirt.io "vm1" not found', {
          name: 'vm1',
          kind: 'virtualmachine',
        }),
      ).message,
    ).toBe('VirtualMachine "vm1" not found in namespace "ns1"');
    expect(
      failure(
        consoleOf,
        404,
        status(404, 'NotFound', 'virtualmachineinstance.kubevirt.io "vm1" not found', {
          name: 'vm1',
          kind: 'virtualmachineinstance',
        }),
      ).message,
    ).toBe(
      'VirtualMachineInstance "vm1" not found in namespace "ns1" (is its VM running? start it with: virtctl start vm1)',
    );
  });

  it('the API not installed: the API server’s own 404', () => {
    expect(
      failure(stop, 404, status(404, 'NotFound', 'the server could not find the requested resource')).message,
    ).toBe(
      'the subresources.kubevirt.io API is not installed on this cluster (no APIService v1.subresources.kubevirt.io): ' +
        'install kubevirt-ts (helm install kubevirt-ts charts/kubevirt-ts), or check --context',
    );
    expect(failure(stop, 404, '404 page not found\n').message).toContain('is not installed on this cluster');
  });

  it('not running and other conflicts: the reason without the Kubernetes preamble', () => {
    const body = status(
      409,
      'Conflict',
      'Operation cannot be fulfilled on virtualmachine.kubevirt.io "vm1": VM is not running',
      {
        name: 'vm1',
        kind: 'virtualmachine',
      },
    );
    expect(failure(stop, 409, body).message).toBe('cannot stop VirtualMachine ns1/vm1: VM is not running');
    expect(failure(consoleOf, 400, status(400, 'BadRequest', 'VMI is not running')).message).toBe(
      'cannot open the console of VirtualMachineInstance ns1/vm1: VMI is not running',
    );
  });

  it('virt-api down, or its handler unreachable', () => {
    expect(failure(stop, 503, status(503, 'ServiceUnavailable', 'service unavailable')).message).toBe(
      'virt-api is not available (APIService v1.subresources.kubevirt.io is not Available): service unavailable; ' +
        'check the virt-api pods in the kubevirt-ts namespace',
    );
    expect(
      failure(consoleOf, 503, status(503, 'ServiceUnavailable', 'no running virt-handler on node n1 (...)'))
        .message,
    ).toBe(
      'cannot open the console of VirtualMachineInstance ns1/vm1: no running virt-handler on node n1 (...)',
    );
  });

  it('anything else with its code and reason', () => {
    expect(failure(stop, 500, status(500, 'InternalError', 'Internal error occurred: boom')).message).toBe(
      'cannot stop VirtualMachine ns1/vm1: HTTP 500 InternalError: Internal error occurred: boom',
    );
  });
});
