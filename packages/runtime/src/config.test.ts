import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  ConfigError,
  flag,
  flagName,
  formatDuration,
  helpText,
  parseConfig,
  parseDuration,
  suggestFlag,
} from './config.ts';

const def = {
  name: 'virt-test',
  version: '1.2.3',
  description: 'A test service.',
  flags: {
    kubeconfig: flag.string({ description: 'Path to a kubeconfig', env: 'KUBECONFIG', valueName: 'path' }),
    healthPort: flag.port({ description: 'Health port', default: 8080, env: 'HEALTH_PORT' }),
    nodeName: flag.string({ description: 'This node', env: 'NODE_NAME', required: true }),
    useEmulation: flag.boolean({ description: 'Use software emulation' }),
    gracePeriodSeconds: flag.integer({ description: 'Grace period', min: 0, default: 30 }),
    shutdownTimeout: flag.duration({ description: 'Shutdown deadline', default: 25_000 }),
    logLevel: flag.oneOf(['info', 'debug'], { description: 'Log level', default: 'info' }),
  },
};

function parse(argv: string[], env: Record<string, string> = {}) {
  const result = parseConfig(def, argv, env);
  if (result.kind !== 'values') throw new Error(`expected values, got ${result.kind}`);
  return result.values;
}

function usageError(argv: string[], env: Record<string, string> = {}): string {
  try {
    parseConfig(def, argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(2);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('parseConfig', () => {
  it('applies defaults and types the values', () => {
    const v = parse(['--node-name', 'n1']);
    expect(v).toEqual({
      kubeconfig: undefined,
      healthPort: 8080,
      nodeName: 'n1',
      useEmulation: false,
      gracePeriodSeconds: 30,
      shutdownTimeout: 25_000,
      logLevel: 'info',
    });
  });

  it('types each value from its definition (checked by tsc)', () => {
    const v = parse(['--node-name', 'n1']);
    expectTypeOf(v.kubeconfig).toEqualTypeOf<string | undefined>();
    expectTypeOf(v.nodeName).toEqualTypeOf<string>();
    expectTypeOf(v.healthPort).toEqualTypeOf<number>();
    expectTypeOf(v.useEmulation).toEqualTypeOf<boolean>();
    expectTypeOf(v.logLevel).toEqualTypeOf<'info' | 'debug'>();
    expect(typeof v.healthPort).toBe('number');
  });

  it('takes values from --flag=value, --flag value, env, in that precedence', () => {
    const env = { HEALTH_PORT: '9000', NODE_NAME: 'from-env', KUBECONFIG: '/env/kc' };
    expect(parse([], env)).toMatchObject({ healthPort: 9000, nodeName: 'from-env', kubeconfig: '/env/kc' });
    expect(parse(['--health-port=9100', '--node-name', 'from-flag'], env)).toMatchObject({
      healthPort: 9100,
      nodeName: 'from-flag',
    });
  });

  it('parses booleans with and without values and the --no- form', () => {
    expect(parse(['--node-name=n', '--use-emulation']).useEmulation).toBe(true);
    expect(parse(['--node-name=n', '--use-emulation=false']).useEmulation).toBe(false);
    expect(parse(['--node-name=n', '--use-emulation', '--no-use-emulation']).useEmulation).toBe(false);
  });

  it('parses durations into milliseconds', () => {
    expect(parse(['--node-name=n', '--shutdown-timeout=1m30s']).shutdownTimeout).toBe(90_000);
  });

  it('names the flag and the expected form for a bad value', () => {
    expect(usageError(['--node-name=n', '--health-port=http'])).toBe(
      'invalid value "http" for --health-port: expected a TCP port number between 0 and 65535',
    );
    expect(usageError(['--node-name=n', '--grace-period-seconds=-1'])).toContain(
      'expected an integer of at least 0',
    );
    expect(usageError(['--node-name=n', '--log-level=loud'])).toContain('expected one of info, debug');
  });

  it('names the environment variable when the bad value came from there', () => {
    expect(usageError([], { NODE_NAME: 'n', HEALTH_PORT: '70000' })).toBe(
      'invalid value "70000" for environment variable HEALTH_PORT (for --health-port): expected a TCP port number between 0 and 65535',
    );
  });

  it('rejects unknown flags and suggests the nearest known one', () => {
    const msg = usageError(['--helth-port=1']);
    expect(msg).toContain('unknown flag --helth-port; did you mean --health-port?');
    expect(msg).toContain("Run 'virt-test --help'");
    expect(usageError(['--zzzzzzzzzzzz'])).toContain('unknown flag --zzzzzzzzzzzz.');
  });

  it('rejects positional arguments and missing values', () => {
    expect(usageError(['--node-name=n', 'extra'])).toContain('unexpected argument "extra"');
    expect(usageError(['--node-name'])).toContain('flag --node-name needs a value');
  });

  it('reports a missing required flag with its env alternative', () => {
    expect(usageError([])).toContain('missing required flag --node-name (or environment variable NODE_NAME)');
  });

  it('returns help and version text instead of values', () => {
    const help = parseConfig(def, ['--node-name=x', '--help'], {});
    expect(help.kind).toBe('help');
    expect(parseConfig(def, ['-h'], {}).kind).toBe('help');
    const version = parseConfig(def, ['--version'], {});
    expect(version).toEqual({ kind: 'version', text: 'virt-test 1.2.3\n' });
  });
});

describe('helpText', () => {
  it('lists every flag with its value name, default, env and requirement', () => {
    const text = helpText(def);
    expect(text).toMatch(/^Usage: virt-test \[flags\]\n\nA test service\.\n\nFlags:\n/);
    expect(text).toMatch(/--health-port <port>\s+Health port \(default 8080; env HEALTH_PORT\)/);
    expect(text).toMatch(/--node-name <string>\s+This node \(required; env NODE_NAME\)/);
    expect(text).toMatch(/--use-emulation\s+Use software emulation\n/);
    expect(text).toMatch(/--shutdown-timeout <duration>\s+Shutdown deadline \(default 25s\)/);
    expect(text).toMatch(/--log-level <info\|debug>/);
    expect(text).toContain('-h, --help');
    expect(text).toContain('--version');
  });
});

describe('helpers', () => {
  it('converts keys to flag names', () => {
    expect(flagName('gracePeriodSeconds')).toBe('grace-period-seconds');
  });

  it('round-trips durations', () => {
    for (const text of ['500ms', '30s', '1m30s', '2h', '1h1m1s1ms']) {
      expect(formatDuration(parseDuration(text))).toBe(text);
    }
    expect(parseDuration('1.5s')).toBe(1500);
    expect(() => parseDuration('10')).toThrow();
    expect(() => parseDuration('5 s')).toThrow();
    expect(() => parseDuration('3d')).toThrow();
  });

  it('suggests only plausible typos', () => {
    expect(suggestFlag('kubconfig', ['kubeconfig', 'namespace'])).toBe('kubeconfig');
    expect(suggestFlag('name', ['namespace', 'node-name'])).toBe('namespace');
    expect(suggestFlag('xyz', ['kubeconfig'])).toBeUndefined();
  });
});
