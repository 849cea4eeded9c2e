// virtctl installed as the kubectl plugin `kubectl virt`, run by the real kubectl against the real API server
// (devcluster): kubectl finds it on PATH and hands it every argument; the connection flags work as kubectl's; the
// errors a user meets without the full stack are clear. (Start/stop/console through virt-api: packages/api/test.)
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiregistrationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { ClusterState } from '@kubevirt-ts/devcluster';
import { devclusterState, serviceAccountKubeconfig, useTestNamespace } from '@kubevirt-ts/devcluster/testing';
import { crdYaml } from '@kubevirt-ts/schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ns = useTestNamespace('virtctl');
const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

let kc: KubeConfig;
let state: ClusterState;
let tmp: string;
let binDir: string;
let nobody: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      {
        env: { ...process.env, PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ''}` },
        timeout: 60_000,
      },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end(input);
  });
}

const kubectl = (args: string[], input?: string) => run(path.join(state.binDir, 'kubectl'), args, input);

beforeAll(async () => {
  kc = ns.kc;
  state = await devclusterState();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'virtctl-it-'));
  binDir = path.join(tmp, 'bin');
  mkdirSync(binDir);
  // What `npm install -g` puts on PATH: an executable named kubectl-virt that runs virtctl's main.
  const shim = path.join(binDir, 'kubectl-virt');
  writeFileSync(
    shim,
    `#!${process.execPath} --conditions=@kubevirt-ts/source\nimport ${JSON.stringify(MAIN)};\n`,
  );
  chmodSync(shim, 0o755);

  const applied = await kubectl(
    ['apply', '--server-side', '--field-manager=kubevirt-ts-tests', '--force-conflicts', '-f', '-'],
    crdYaml(),
  );
  expect(applied.stderr).toBe('');
  // A user with no rights at all in the test namespace.
  nobody = await serviceAccountKubeconfig(kc, ns.name, 'nobody', path.join(tmp, 'nobody.kubeconfig'));
}, 180_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('kubectl virt', () => {
  it('is found by kubectl as a plugin and speaks as "kubectl virt"', async () => {
    const plugins = await kubectl(['plugin', 'list']);
    expect(plugins.stdout).toContain(path.join(binDir, 'kubectl-virt'));
    const help = await kubectl(['virt', 'help']);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toContain('kubectl virt COMMAND [ARGS] [FLAGS]');
    const usage = await kubectl(['virt', 'strat', 'vm1']);
    expect(usage).toMatchObject({
      code: 2,
      stderr: 'kubectl virt: unknown command "strat" (did you mean start?); run "kubectl virt help"\n',
    });
  });

  it('gets -n and --kubeconfig as kubectl does, and says when the VM does not exist', async () => {
    const missing = await kubectl(['virt', 'pause', 'vm', 'nope', '-n', ns.name]);
    expect(missing).toMatchObject({
      code: 1,
      stderr: `kubectl virt: VirtualMachine "nope" not found in namespace "${ns.name}"\n`,
    });
    // The namespace of the kubeconfig's context is the default, as for kubectl.
    const denied = await kubectl(['virt', 'stop', 'vm1', '--kubeconfig', nobody]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain(
      `kubectl virt: forbidden: you may not stop VirtualMachine ${ns.name}/vm1: this needs verb "update" on ` +
        `"virtualmachines/stop" in API group "subresources.kubevirt.io" in namespace "${ns.name}"`,
    );
    expect(denied.stderr).toContain(
      `User "system:serviceaccount:${ns.name}:nobody" cannot update resource "virtualmachines/stop"`,
    );
    const context = await kubectl(['virt', 'stop', 'vm1', '--kubeconfig', nobody, '--context', 'elsewhere']);
    expect(context).toMatchObject({
      code: 2,
      stderr: 'kubectl virt: context "elsewhere" is not in the kubeconfig (contexts: nobody)\n',
    });
  });

  it('tells whether the subresource API is installed', async () => {
    const registered = await kc
      .makeApiClient(ApiregistrationV1Api)
      .readAPIService({ name: 'v1.subresources.kubevirt.io' })
      .then(
        () => true,
        () => false,
      );
    const result = await kubectl(['virt', 'version']);
    expect(result.stdout).toMatch(/^Client Version: v\d+\.\d+\.\d+\n/);
    if (registered) {
      // Another suite or an installed chart registered it: the server answers, or says virt-api is down.
      expect(result.stderr).not.toContain('is not installed');
    } else {
      expect(result).toMatchObject({
        code: 1,
        stderr:
          'kubectl virt: the subresources.kubevirt.io API is not installed on this cluster (no APIService ' +
          'v1.subresources.kubevirt.io): install kubevirt-ts (helm install kubevirt-ts charts/kubevirt-ts), or check --context\n',
      });
    }
  });
});
