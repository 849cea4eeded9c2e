// Kubernetes resource quantities ("128Mi", "500m", "1e3", 2): parsing and formatting, as
// k8s.io/apimachinery/pkg/api/resource defines them. Values come back as JavaScript numbers, which hold every
// byte count up to 8 PiB exactly; that is plenty for guest memory and disk sizes.

const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const DECIMAL: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

const GRAMMAR =
  /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?(?:\d+(?:\.\d*)?|\.\d+))?$/;

/**
 * The value of a quantity in base units (bytes, cores), or undefined when it is not a valid quantity. An integer
 * is taken as is; a string must follow Kubernetes' grammar (no spaces, one suffix).
 */
export function parseQuantity(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = GRAMMAR.exec(value);
  if (match === null) return undefined;
  const number = Number(match[1]);
  const suffix = match[2] ?? '';
  let result: number;
  if (suffix in BINARY) result = number * (BINARY[suffix] as number);
  else if (suffix in DECIMAL) result = number * (DECIMAL[suffix] as number);
  else result = number * 10 ** Number(suffix.slice(1));
  return Number.isFinite(result) ? result : undefined;
}

/** True when value is a quantity Kubernetes would accept. */
export function isQuantity(value: unknown): boolean {
  return parseQuantity(value) !== undefined;
}

/**
 * Kubernetes rounds a quantity up to an integer when it asks for Value() (so "500m" CPUs is 1 when counting
 * sockets). Undefined for an invalid quantity.
 */
export function quantityCeil(value: unknown): number | undefined {
  const parsed = parseQuantity(value);
  return parsed === undefined ? undefined : Math.ceil(parsed - 1e-9);
}

/**
 * Formats a byte count the way Kubernetes prints binary quantities: the largest binary suffix that divides it
 * exactly, else plain bytes ("128Mi", "1536Mi", "1000").
 */
export function formatBytes(bytes: number): string {
  const value = Math.ceil(bytes);
  for (const [suffix, factor] of Object.entries(BINARY).reverse()) {
    if (value >= factor && value % factor === 0) return `${value / factor}${suffix}`;
  }
  return String(value);
}

/** Formats a CPU amount in cores as Kubernetes does: whole cores as an integer, else millicores ("100m"). */
export function formatCpu(cores: number): string {
  const millis = Math.ceil(cores * 1000 - 1e-6);
  return millis % 1000 === 0 ? String(millis / 1000) : `${millis}m`;
}
