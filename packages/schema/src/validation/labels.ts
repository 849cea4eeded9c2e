// Kubernetes label selectors (meta/v1 LabelSelector): checking one and matching it against labels, as the
// replica set validation needs and the replica set controller will.
import type { LabelSelector } from '../types/k8s.ts';
import { invalid, notSupported, required, show, type FieldPath, type StatusCause } from './causes.ts';

const OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;

/** Causes for a malformed selector (unknown operator, values where none belong or missing where needed). */
export function validateLabelSelector(selector: LabelSelector, path: FieldPath): StatusCause[] {
  const causes: StatusCause[] = [];
  (selector.matchExpressions ?? []).forEach((expression, i) => {
    const p = path.child('matchExpressions').index(i);
    if (expression.key === '') causes.push(required(p.child('key'), 'Required value'));
    if (!(OPERATORS as readonly string[]).includes(expression.operator)) {
      causes.push(
        notSupported(
          p.child('operator'),
          `Unsupported value: ${show(expression.operator)}: supported values: ${OPERATORS.map((o) => show(o)).join(', ')}`,
        ),
      );
      return;
    }
    const values = expression.values ?? [];
    if ((expression.operator === 'In' || expression.operator === 'NotIn') && values.length === 0) {
      causes.push(required(p.child('values'), `operator ${expression.operator} needs at least one value`));
    }
    if ((expression.operator === 'Exists' || expression.operator === 'DoesNotExist') && values.length > 0) {
      causes.push(invalid(p.child('values'), `operator ${expression.operator} takes no values`));
    }
  });
  return causes;
}

/** Whether labels satisfy a (well-formed) selector; an empty selector matches everything, as in Kubernetes. */
export function labelSelectorMatches(
  selector: LabelSelector,
  labels: Readonly<Record<string, string>>,
): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, key);
    const label = labels[key];
    switch (operator) {
      case 'In':
        if (!has || !values.includes(label as string)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(label as string)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}
