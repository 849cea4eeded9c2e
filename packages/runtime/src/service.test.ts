import { afterEach, describe, expect, it } from 'vitest';
import { flag } from './config.ts';
import { packageVersion, startService, type Service, type ServiceOptions } from './service.ts';

class Exit extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`exit ${code}`);
    this.code = code;
  }
}

const flags = {
  nodeName: flag.string({ description: 'Node this handler manages', env: 'NODE_NAME', required: true }),
};

const running: Service<typeof flags>[] = [];

function options(
  argv: string[],
  out: { stdout: string; stderr: string; logs: string[] },
): ServiceOptions<typeof flags> {
  return {
    name: 'virt-test',
    version: '1.2.3',
    description: 'virt-test: a service under test.',
    flags,
    healthPort: 0,
    argv,
    env: {},
    installSignalHandlers: false,
    logDestination: { write: (s: string) => void out.logs.push(s) },
    exit: (code) => {
      throw new Exit(code);
    },
    stdout: (t) => void (out.stdout += t),
    stderr: (t) => void (out.stderr += t),
  };
}

afterEach(async () => {
  for (const svc of running.splice(0)) await svc.shutdown.shutdown('test over');
});

describe('startService', () => {
  it('prints help generated from service and common flags, then exits 0', async () => {
    const out = { stdout: '', stderr: '', logs: [] as string[] };
    await expect(startService(options(['--help'], out))).rejects.toEqual(new Exit(0));
    expect(out.stdout).toContain('Usage: virt-test [flags]');
    expect(out.stdout).toContain('virt-test: a service under test.');
    for (const f of ['--node-name <string>', '--log-level', '--health-port <port>', '--shutdown-timeout']) {
      expect(out.stdout).toContain(f);
    }
    expect(out.logs).toEqual([]);
  });

  it('rejects an unknown flag on stderr with exit code 2', async () => {
    const out = { stdout: '', stderr: '', logs: [] as string[] };
    await expect(startService(options(['--node-nme=x'], out))).rejects.toEqual(new Exit(2));
    expect(out.stderr).toBe(
      "virt-test: unknown flag --node-nme; did you mean --node-name? Run 'virt-test --help' to see every flag.\n",
    );
  });

  it('starts logger and health server, and fails readiness during shutdown', async () => {
    const out = { stdout: '', stderr: '', logs: [] as string[] };
    const svc = await startService(options(['--node-name=n1', '--health-bind-address=127.0.0.1'], out));
    running.push(svc);
    expect(svc.config).toMatchObject({ nodeName: 'n1', logLevel: 'info', shutdownTimeout: 25_000 });
    const base = `http://127.0.0.1:${svc.healthPort}`;
    expect((await fetch(`${base}/livez`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${base}/metrics`)).text()).toContain(
      'kubevirt_build_info{service="virt-test"',
    );
    const started = JSON.parse(out.logs[out.logs.length - 1] ?? '{}') as Record<string, unknown>;
    expect(started).toMatchObject({ service: 'virt-test', version: '1.2.3', msg: 'virt-test 1.2.3 started' });

    let readyDuringShutdown: number | undefined;
    svc.shutdown.register('probe', async () => {
      readyDuringShutdown = (await fetch(`${base}/readyz`)).status;
    });
    expect(await svc.shutdown.shutdown('test')).toBe(0);
    expect(readyDuringShutdown).toBe(503);
    await expect(fetch(`${base}/livez`)).rejects.toThrow();
  });

  it('exits 1 with a log line when the health port is taken', async () => {
    const out = { stdout: '', stderr: '', logs: [] as string[] };
    const first = await startService(options(['--node-name=n1', '--health-bind-address=127.0.0.1'], out));
    running.push(first);
    const argv = ['--node-name=n1', '--health-bind-address=127.0.0.1', `--health-port=${first.healthPort}`];
    await expect(startService(options(argv, out))).rejects.toEqual(new Exit(1));
    expect(out.logs.some((l) => l.includes('EADDRINUSE') && l.includes('"level":"fatal"'))).toBe(true);
  });
});

describe('packageVersion', () => {
  it('reads the version of the package a module belongs to', () => {
    expect(packageVersion(import.meta.url)).toMatch(/^\d+\.\d+\.\d+/);
  });
});
