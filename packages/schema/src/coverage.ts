// Generates docs/api-coverage.md from the schema definitions: every spec field of every kind, supported or not
// yet. The definitions are the only list of supported fields; this renders it for people.
import type { TSchema } from 'typebox';
import { KINDS, type KindInfo } from './kinds.ts';
import { PASSTHROUGH, SAME_AS, UNSUPPORTED, UNSUPPORTED_VALUES } from './types/builders.ts';

type Node = Record<string, unknown>;

export type FieldSupport = 'supported' | 'not supported yet' | 'Kubernetes type';

export interface CoverageRow {
  path: string;
  support: FieldSupport;
  note: string;
}

function noteOf(node: Node): string {
  const notes: string[] = [];
  if (typeof node[UNSUPPORTED] === 'string' && node[UNSUPPORTED] !== '') notes.push(node[UNSUPPORTED]);
  const values = node[UNSUPPORTED_VALUES];
  if (Array.isArray(values) && values.length > 0) {
    notes.push(`values not supported yet: ${values.map((v) => `\`${String(v)}\``).join(', ')}`);
  }
  if (typeof node[SAME_AS] === 'string') notes.push(`fields as in the ${node[SAME_AS]} spec`);
  return notes.join('; ');
}

/** Every field under `schema` (a spec), depth first in definition order. */
export function coverageRows(schema: TSchema, base = 'spec'): CoverageRow[] {
  const rows: CoverageRow[] = [];
  const visit = (node: Node, path: string): void => {
    if (node.type === 'array' && node.items !== undefined) {
      visit(node.items as Node, `${path}[]`);
      return;
    }
    const properties = node.properties as Record<string, Node> | undefined;
    if (node.type !== 'object' || properties === undefined || typeof node[SAME_AS] === 'string') return;
    for (const [name, child] of Object.entries(properties)) {
      const childPath = `${path}.${name}`;
      if (child[UNSUPPORTED] !== undefined) {
        rows.push({ path: childPath, support: 'not supported yet', note: noteOf(child) });
        continue;
      }
      const items = child.type === 'array' ? (child.items as Node | undefined) : undefined;
      if (child[PASSTHROUGH] === true || items?.[PASSTHROUGH] === true) {
        rows.push({ path: childPath, support: 'Kubernetes type', note: noteOf(child) });
        continue;
      }
      rows.push({ path: childPath, support: 'supported', note: noteOf(child) });
      visit(child, childPath);
    }
  };
  visit(schema as Node, base);
  return rows;
}

const SYMBOL: Record<FieldSupport, string> = {
  supported: '✅ supported',
  'not supported yet': '⏳ not yet',
  'Kubernetes type': '↪ Kubernetes type',
};

/** The deviations from KubeVirt that are deliberate for now, each with the reason. */
export const DEVIATIONS: readonly string[] = [
  '`network.defaultNetworkInterface: passt` in the KubeVirt CR gives a VMI without interfaces a `passtBinding` ' +
    "interface; KubeVirt's defaulting knows only bridge, masquerade and the discontinued slirp there.",
  "`firmware.uuid` of a VM or VMI without one is derived from its name (KubeVirt's name-based UUID, the one its " +
    'VM controller gives older VMs) instead of being random, so defaulting stays a pure function; ' +
    '`firmware.serial` is not generated.',
  'CPU topology: when some of sockets/cores/threads are set, the missing ones are written as 1 (KubeVirt leaves ' +
    'them 0 and reads 0 as 1).',
  'A VMI gets `terminationGracePeriodSeconds: 30` written into its spec when it sets none (KubeVirt applies the ' +
    'same 30 seconds without writing it).',
  'Fields whose value is Go\'s zero value (`false`, `0`, `""`, `[]`) are accepted even where the field is not ' +
    'supported yet: KubeVirt treats them as unset, and exported manifests carry them.',
  'Embedded Kubernetes types (affinity, tolerations, topologySpreadConstraints, dnsConfig, label selectors, ' +
    'template metadata) are passed to the launcher pod as they are; the Kubernetes API validates them when the ' +
    'pod is created.',
  'Only `kubevirt.io/v1` is served (KubeVirt also serves the deprecated `v1alpha3`).',
  'Resources other than `cpu`, `memory` and `ephemeral-storage` in `domain.resources` are rejected as not ' +
    'supported yet (KubeVirt passes extended resources on to the pod), and so is a CD-ROM without a volume (an ' +
    'empty tray).',
  "A preference's `requirements.cpu.guest` is checked against all vCPUs (sockets × cores × threads); KubeVirt " +
    'compares it with the one dimension the preferred topology names.',
  'The launcher memory overhead sizes page tables from the memory request, else the guest memory (KubeVirt uses ' +
    "the request only); its per-process constants are KubeVirt's until kubevirt-ts measures its own.",
];

function kindGroups(): KindInfo[][] {
  const groups: KindInfo[][] = [];
  for (const info of KINDS) {
    const group = groups.find((g) => g[0]?.spec === info.spec);
    if (group === undefined) groups.push([info]);
    else group.push(info);
  }
  return groups;
}

/** The whole docs/api-coverage.md. */
export function apiCoverageMarkdown(): string {
  const lines: string[] = [
    '# API coverage',
    '',
    '<!-- Generated by `pnpm --filter @kubevirt-ts/schema coverage` from packages/schema/src/types; do not edit. -->',
    '',
    "Which fields of KubeVirt's API kubevirt-ts implements. A manifest written for KubeVirt behaves the same for every",
    'supported field; a field marked "not yet" is rejected by the validating webhook with its path and "not supported',
    'yet", and a field KubeVirt does not have is rejected as an unknown field. Status fields are written by the',
    'services and not listed.',
    '',
    "- ✅ supported: implemented with KubeVirt's meaning.",
    '- ⏳ not yet: KubeVirt has it; kubevirt-ts rejects it for now.',
    '- ↪ Kubernetes type: used as Kubernetes defines it (copied to the launcher pod or the VMI); kubevirt-ts does',
    '  not check the fields inside, the Kubernetes API does when it receives them.',
    '',
    '## Deliberate differences from KubeVirt',
    '',
    ...DEVIATIONS.map((d) => `- ${d}`),
    '',
  ];
  for (const group of kindGroups()) {
    const first = group[0] as KindInfo;
    const rows = coverageRows(first.spec);
    const supported = rows.filter((r) => r.support !== 'not supported yet').length;
    lines.push(`## ${group.map((k) => k.kind).join(', ')} (${first.apiVersion})`, '');
    lines.push(`${supported} of ${rows.length} fields supported or used as Kubernetes types.`, '');
    lines.push('| field | support | note |', '|---|---|---|');
    for (const row of rows) lines.push(`| \`${row.path}\` | ${SYMBOL[row.support]} | ${row.note} |`);
    lines.push('');
  }
  return lines.join('\n');
}
