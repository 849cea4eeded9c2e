// Kubernetes-style validation causes (metav1.StatusCause) and field paths in Kubernetes' notation
// (`spec.domain.devices.disks[0].name`, map keys in brackets: `spec.nodeSelector[kubernetes.io/os]`).

export type CauseType =
  'FieldValueInvalid' | 'FieldValueRequired' | 'FieldValueNotSupported' | 'FieldValueDuplicate';

export interface StatusCause {
  type: CauseType;
  /** Path of the offending field, e.g. `spec.template.spec.domain.devices.disks[0].name`. */
  field: string;
  /** What is wrong and, where useful, what to do; written to follow "<field>: ". */
  message: string;
}

/** A field path under construction; immutable, so a rule can hand children to helpers. */
export class FieldPath {
  readonly #text: string;

  private constructor(text: string) {
    this.#text = text;
  }

  static root(...names: string[]): FieldPath {
    return names.reduce((path, name) => path.child(name), new FieldPath(''));
  }

  static parse(text: string): FieldPath {
    return new FieldPath(text);
  }

  child(...names: string[]): FieldPath {
    let text = this.#text;
    for (const name of names) text = text === '' ? name : `${text}.${name}`;
    return new FieldPath(text);
  }

  index(i: number): FieldPath {
    return new FieldPath(`${this.#text}[${i}]`);
  }

  key(k: string): FieldPath {
    return new FieldPath(`${this.#text}[${k}]`);
  }

  toString(): string {
    return this.#text;
  }
}

export function invalid(field: FieldPath | string, message: string): StatusCause {
  return { type: 'FieldValueInvalid', field: String(field), message };
}

export function required(field: FieldPath | string, message: string): StatusCause {
  return { type: 'FieldValueRequired', field: String(field), message };
}

export function notSupported(field: FieldPath | string, message: string): StatusCause {
  return { type: 'FieldValueNotSupported', field: String(field), message };
}

export function duplicate(field: FieldPath | string, message: string): StatusCause {
  return { type: 'FieldValueDuplicate', field: String(field), message };
}

/** A value in a message: strings quoted, anything else as JSON. */
export function show(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

/** Removes repeated causes (same type, field and message), keeping the first. */
export function dedupe(causes: readonly StatusCause[]): StatusCause[] {
  const seen = new Set<string>();
  return causes.filter((c) => {
    const key = `${c.type}\u0000${c.field}\u0000${c.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** One line per cause, `field: message`, for Status messages and logs. */
export function formatCauses(causes: readonly StatusCause[]): string {
  return causes.map((c) => (c.field === '' ? c.message : `${c.field}: ${c.message}`)).join('\n');
}
