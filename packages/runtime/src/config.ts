// Service configuration from command-line flags and environment variables, described once as data so that
// parsing, validation, error messages and the `--help` text can never drift apart.
//
// Precedence: flag > environment variable > default. Every error names the flag (and the env variable when the
// value came from there) and the form that was expected, and unknown flags get a "did you mean" suggestion.

/** One flag: how to parse it, what it means, and where else its value may come from. */
export interface Flag<T, Defined extends boolean = boolean> {
  readonly description: string;
  /** Environment variable that supplies the value when the flag is absent. */
  readonly env?: string | undefined;
  readonly default?: T | undefined;
  readonly required?: boolean | undefined;
  /** Placeholder shown in the help text, e.g. `port` in `--health-port <port>`. */
  readonly valueName: string;
  /** The expected form, completing "expected …" in an error message. */
  readonly expected: string;
  /** A boolean flag takes no value (`--x`, `--x=false`, `--no-x`). */
  readonly boolean: boolean;
  /** Parses a raw string; throws an Error (its message is ignored) when the string is not of the expected form. */
  parse(this: void, raw: string): T;
  /** How a default value is shown in the help text. */
  format(this: void, value: T): string;
  /** Phantom marker: true when the parsed value can never be undefined (a default exists or the flag is required). */
  readonly __defined?: Defined;
}

export type FlagDefinitions = Record<string, Flag<unknown>>;

/** The parsed values: one property per flag key, `undefined` only for optional flags without a default. */
export type ConfigValues<F extends FlagDefinitions> = {
  [K in keyof F]: F[K] extends Flag<infer T, infer D> ? (D extends true ? T : T | undefined) : never;
};

/** What every flag builder accepts. */
export interface FlagOptions<T> {
  description: string;
  env?: string;
  default?: T;
  required?: boolean;
}

type DefinedBy<O> = O extends { default: unknown } ? true : O extends { required: true } ? true : false;

/** Thrown for a bad command line or environment; `exitCode` is 2, as for any usage error. */
export class ConfigError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function make<T, O extends FlagOptions<T>>(
  opts: O,
  spec: {
    valueName: string;
    expected: string;
    boolean?: boolean;
    parse: (raw: string) => T;
    format?: (v: T) => string;
  },
): Flag<T, DefinedBy<O>> {
  return {
    description: opts.description,
    env: opts.env,
    default: opts.default,
    required: opts.required,
    valueName: spec.valueName,
    expected: spec.expected,
    boolean: spec.boolean ?? false,
    parse: spec.parse,
    format: spec.format ?? ((v: T) => String(v)),
  };
}

function parseInteger(raw: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(raw.trim())) throw new Error('not an integer');
  const n = Number(raw.trim());
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new Error('out of range');
  return n;
}

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a Go-style duration (`500ms`, `30s`, `1m30s`, `2h`) into milliseconds. */
export function parseDuration(raw: string): number {
  const text = raw.trim();
  if (text === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * (durationUnits[m[2] ?? ''] ?? Number.NaN);
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== text.length || !Number.isFinite(total)) {
    throw new Error(`not a duration: ${raw}`);
  }
  return Math.round(total);
}

/** Formats milliseconds the way parseDuration reads them back (`90000` → `1m30s`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
    ['ms', 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out;
}

const truthy = new Set(['true', '1', 'yes', 'on']);
const falsy = new Set(['false', '0', 'no', 'off']);

/** Builders for flag definitions. The option object's shape decides whether the parsed value may be undefined. */
export const flag = {
  string<O extends FlagOptions<string>>(opts: O & { valueName?: string }): Flag<string, DefinedBy<O>> {
    return make(opts, {
      valueName: opts.valueName ?? 'string',
      expected: 'a non-empty string',
      parse(raw) {
        if (raw === '') throw new Error('empty');
        return raw;
      },
    });
  },
  integer<O extends FlagOptions<number>>(
    opts: O & { min?: number; max?: number; valueName?: string },
  ): Flag<number, DefinedBy<O>> {
    const min = opts.min ?? Number.MIN_SAFE_INTEGER;
    const max = opts.max ?? Number.MAX_SAFE_INTEGER;
    const range =
      opts.min !== undefined && opts.max !== undefined
        ? ` between ${min} and ${max}`
        : opts.min !== undefined
          ? ` of at least ${min}`
          : opts.max !== undefined
            ? ` of at most ${max}`
            : '';
    return make(opts, {
      valueName: opts.valueName ?? 'int',
      expected: `an integer${range}`,
      parse: (raw) => parseInteger(raw, min, max),
    });
  },
  /** A TCP port; 0 asks the kernel for a free one (useful in tests). */
  port<O extends FlagOptions<number>>(opts: O): Flag<number, DefinedBy<O>> {
    return make(opts, {
      valueName: 'port',
      expected: 'a TCP port number between 0 and 65535',
      parse: (raw) => parseInteger(raw, 0, 65535),
    });
  },
  boolean<O extends Omit<FlagOptions<boolean>, 'required'>>(opts: O): Flag<boolean, true> {
    return make(
      { ...opts, default: opts.default ?? false },
      {
        valueName: 'bool',
        expected: 'true or false',
        boolean: true,
        parse(raw) {
          const v = raw.trim().toLowerCase();
          if (truthy.has(v)) return true;
          if (falsy.has(v)) return false;
          throw new Error('not a boolean');
        },
      },
    );
  },
  /** A duration such as `30s` or `1m30s`; the parsed value is in milliseconds. */
  duration<O extends FlagOptions<number>>(opts: O): Flag<number, DefinedBy<O>> {
    return make(opts, {
      valueName: 'duration',
      expected: 'a duration such as 500ms, 30s, 1m30s or 2h',
      parse: parseDuration,
      format: formatDuration,
    });
  },
  oneOf<const V extends string, O extends FlagOptions<V>>(
    values: readonly V[],
    opts: O,
  ): Flag<V, DefinedBy<O>> {
    return make(opts, {
      valueName: values.join('|'),
      expected: `one of ${values.join(', ')}`,
      parse(raw) {
        const v = raw.trim() as V;
        if (!values.includes(v)) throw new Error('not allowed');
        return v;
      },
    });
  },
};

/** `healthPort` → `health-port`. */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Edit distance, for "did you mean" suggestions. */
function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        (prev[j] ?? 0) + 1,
        (cur[j - 1] ?? 0) + 1,
        (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/** The known flag closest to `name`, if any is close enough to be a plausible typo. */
export function suggestFlag(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const d = candidate.startsWith(name) || name.startsWith(candidate) ? 1 : levenshtein(name, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

export interface ConfigDefinition<F extends FlagDefinitions> {
  /** Program name as typed by users, e.g. `virt-controller`. */
  name: string;
  version?: string;
  description: string;
  flags: F;
}

export type ParseResult<F extends FlagDefinitions> =
  | { kind: 'values'; values: ConfigValues<F> }
  | { kind: 'help'; text: string }
  | { kind: 'version'; text: string };

/** The help text, generated from the definition. */
export function helpText<F extends FlagDefinitions>(def: ConfigDefinition<F>): string {
  const rows: [string, string][] = Object.entries(def.flags).map(([key, f]) => {
    const name = `--${flagName(key)}${f.boolean ? '' : ` <${f.valueName}>`}`;
    const notes: string[] = [];
    if (f.required) notes.push('required');
    if (f.default !== undefined && !(f.boolean && f.default === false)) {
      notes.push(`default ${f.format(f.default)}`);
    }
    if (f.env) notes.push(`env ${f.env}`);
    return [name, notes.length > 0 ? `${f.description} (${notes.join('; ')})` : f.description];
  });
  rows.push(['-h, --help', 'Show this help and exit']);
  if (def.version !== undefined) rows.push(['--version', 'Print the version and exit']);
  // Long flag names get their description on the next line, so one long name does not push every column right.
  const width = Math.min(Math.max(...rows.map(([n]) => n.length)), 34) + 2;
  const lines = rows.map(([n, d]) =>
    n.length + 2 > width ? `  ${n}\n  ${' '.repeat(width)}${d}` : `  ${n.padEnd(width)}${d}`,
  );
  return `Usage: ${def.name} [flags]\n\n${def.description}\n\nFlags:\n${lines.join('\n')}\n`;
}

function invalid(f: Flag<unknown>, flagText: string, raw: string, fromEnv: boolean): ConfigError {
  const where = fromEnv ? `environment variable ${f.env} (for ${flagText})` : flagText;
  return new ConfigError(`invalid value ${JSON.stringify(raw)} for ${where}: expected ${f.expected}`);
}

/**
 * Parses argv (without node and script paths) and env against the definition.
 * Returns the values, or the help/version text to print; throws ConfigError on any usage error.
 */
export function parseConfig<F extends FlagDefinitions>(
  def: ConfigDefinition<F>,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): ParseResult<F> {
  const byName = new Map<string, string>();
  for (const key of Object.keys(def.flags)) byName.set(flagName(key), key);
  const known = [...byName.keys(), 'help', ...(def.version !== undefined ? ['version'] : [])];
  const raw = new Map<string, string>();
  const hint = `Run '${def.name} --help' to see every flag.`;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '-h' || arg === '--help') return { kind: 'help', text: helpText(def) };
    if (arg === '--version' && def.version !== undefined) {
      return { kind: 'version', text: `${def.name} ${def.version}\n` };
    }
    if (!arg.startsWith('--') || arg === '--') {
      throw new ConfigError(
        `unexpected argument ${JSON.stringify(arg)}: ${def.name} takes only flags. ${hint}`,
      );
    }
    const eq = arg.indexOf('=');
    let name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    let value: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1);
    let key = byName.get(name);
    if (key === undefined && name.startsWith('no-') && value === undefined) {
      const positive = byName.get(name.slice(3));
      if (positive !== undefined && def.flags[positive]?.boolean) {
        key = positive;
        name = name.slice(3);
        value = 'false';
      }
    }
    if (key === undefined) {
      const suggestion = suggestFlag(name, known);
      throw new ConfigError(
        `unknown flag --${name}${suggestion ? `; did you mean --${suggestion}?` : '.'} ${hint}`,
      );
    }
    const f = def.flags[key];
    if (f === undefined) continue;
    if (value === undefined) {
      if (f.boolean) {
        value = 'true';
      } else {
        const next = argv[i + 1];
        if (next === undefined || next.startsWith('--')) {
          throw new ConfigError(`flag --${name} needs a value: expected ${f.expected}. ${hint}`);
        }
        value = next;
        i++;
      }
    }
    raw.set(key, value);
  }

  const values: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(def.flags)) {
    const flagText = `--${flagName(key)}`;
    const fromFlag = raw.get(key);
    const fromEnv = fromFlag === undefined && f.env !== undefined ? env[f.env] : undefined;
    const text = fromFlag ?? (fromEnv === '' ? undefined : fromEnv);
    if (text !== undefined) {
      try {
        values[key] = f.parse(text);
      } catch {
        throw invalid(f, flagText, text, fromFlag === undefined);
      }
    } else if (f.default !== undefined) {
      values[key] = f.default;
    } else if (f.required) {
      throw new ConfigError(
        `missing required flag ${flagText}${f.env ? ` (or environment variable ${f.env})` : ''}: expected ${f.expected}. ${hint}`,
      );
    } else {
      values[key] = undefined;
    }
  }
  return { kind: 'values', values: values as ConfigValues<F> };
}
