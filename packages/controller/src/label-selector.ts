// Kubernetes label selectors (metav1.LabelSelector): matching a label set, and the string form that
// `status.labelSelector` carries for the scale subresource (what labels.Selector.String() prints). Compiling
// checks the operators, so a malformed selector is reported once instead of matching nothing silently.
import { labelSelectorMatches, type LabelSelector } from '@kubevirt-ts/schema';

// `Equals` is a matchLabels entry; it prints as key=value where an In expression prints as key in (value).
type Requirement = {
  key: string;
  operator: 'Equals' | 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values: string[];
};

export class LabelSelectorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LabelSelectorError';
  }
}

function requirements(selector: LabelSelector): Requirement[] {
  const out: Requirement[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    out.push({ key, operator: 'Equals', values: [value] });
  }
  for (const [i, e] of (selector.matchExpressions ?? []).entries()) {
    const values = [...(e.values ?? [])];
    switch (e.operator) {
      case 'In':
      case 'NotIn':
        if (values.length === 0) {
          throw new LabelSelectorError(
            `matchExpressions[${i}]: operator ${e.operator} needs at least one value`,
          );
        }
        out.push({ key: e.key, operator: e.operator, values });
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (values.length > 0) {
          throw new LabelSelectorError(`matchExpressions[${i}]: operator ${e.operator} takes no values`);
        }
        out.push({ key: e.key, operator: e.operator, values: [] });
        break;
      default:
        throw new LabelSelectorError(
          `matchExpressions[${i}]: operator ${JSON.stringify(e.operator)} is not one of In, NotIn, Exists, DoesNotExist`,
        );
    }
  }
  return out;
}

/** A compiled selector. An empty selector matches everything (as metav1.LabelSelectorAsSelector makes it). */
export interface Selector {
  matches(labels: Readonly<Record<string, string>> | undefined): boolean;
  /** The canonical string form, e.g. `app=web,tier in (a,b),!legacy`. */
  readonly text: string;
  readonly empty: boolean;
}

/** Compiles a selector; throws LabelSelectorError naming the bad expression. */
export function compileSelector(selector: LabelSelector): Selector {
  const reqs = requirements(selector).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const text = reqs
    .map((r) => {
      const values = [...r.values].sort();
      switch (r.operator) {
        case 'Equals':
          return `${r.key}=${values[0]}`;
        case 'In':
          return `${r.key} in (${values.join(',')})`;
        case 'NotIn':
          return `${r.key} notin (${values.join(',')})`;
        case 'Exists':
          return r.key;
        case 'DoesNotExist':
          return `!${r.key}`;
      }
      return '';
    })
    .join(',');
  return {
    text,
    empty: reqs.length === 0,
    matches: (labels) => labelSelectorMatches(selector, labels ?? {}),
  };
}
