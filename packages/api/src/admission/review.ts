// AdmissionReview (admission.k8s.io/v1) in and out: reading a review the API server posted, and answering it with
// an allowance (plus a JSON patch) or a refusal whose Status carries one cause per problem. A refusal is a 422
// `Invalid` Status with `details.causes`, the shape kubectl prints as "The VirtualMachine "x" is invalid:" followed
// by one "* field: message" line per cause; the message itself lists the same lines for every other client.
import type { JsonPatchOperation } from '@kubevirt-ts/runtime';
import type { StatusCause } from '@kubevirt-ts/schema';
import { isObject } from './json.ts';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

export interface UserInfo {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/** The part of admission.k8s.io/v1 AdmissionRequest the webhooks use. */
export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  resource: GroupVersionResource;
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: Operation;
  userInfo: UserInfo;
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
}

export interface Status {
  apiVersion: 'v1';
  kind: 'Status';
  status: 'Failure';
  code: number;
  reason: string;
  message: string;
  details?: { name?: string; group?: string; kind?: string; causes?: StatusCause[] };
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: Status;
  patch?: string;
  patchType?: 'JSONPatch';
  warnings?: string[];
}

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

/** What an admitter decides; the server turns it into an AdmissionResponse. */
export type Verdict =
  | { allowed: true; patch?: JsonPatchOperation[]; warnings?: string[] }
  | { allowed: false; causes: StatusCause[] }
  | { allowed: false; code: number; reason: string; message: string };

export const allow = (patch?: JsonPatchOperation[]): Verdict =>
  patch !== undefined && patch.length > 0 ? { allowed: true, patch } : { allowed: true };

export const deny = (causes: StatusCause[]): Verdict => ({ allowed: false, causes });

/** A review the server cannot read: answered with HTTP 400 and this message. */
export class BadReviewError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadReviewError';
  }
}

const OPERATIONS = new Set<string>(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);

function gvk(value: unknown, field: string): GroupVersionKind {
  if (!isObject(value) || typeof value.version !== 'string' || typeof value.kind !== 'string') {
    throw new BadReviewError(`request.${field} must be an object with version and kind`);
  }
  return {
    group: typeof value.group === 'string' ? value.group : '',
    version: value.version,
    kind: value.kind,
  };
}

function gvr(value: unknown, field: string): GroupVersionResource {
  if (!isObject(value) || typeof value.version !== 'string' || typeof value.resource !== 'string') {
    throw new BadReviewError(`request.${field} must be an object with version and resource`);
  }
  return {
    group: typeof value.group === 'string' ? value.group : '',
    version: value.version,
    resource: value.resource,
  };
}

/** Reads an AdmissionReview body. Throws BadReviewError naming the first thing that is wrong. */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (!isObject(body)) throw new BadReviewError('the body must be a JSON object (an AdmissionReview)');
  if (body.apiVersion !== ADMISSION_API_VERSION || body.kind !== 'AdmissionReview') {
    throw new BadReviewError(
      `expected an AdmissionReview of ${ADMISSION_API_VERSION}, got kind ${JSON.stringify(body.kind)} of ` +
        `${JSON.stringify(body.apiVersion)}; set admissionReviewVersions: ["v1"] in the webhook configuration`,
    );
  }
  const r = body.request;
  if (!isObject(r)) throw new BadReviewError('the AdmissionReview has no request');
  if (typeof r.uid !== 'string' || r.uid === '')
    throw new BadReviewError('request.uid must be a non-empty string');
  if (typeof r.operation !== 'string' || !OPERATIONS.has(r.operation)) {
    throw new BadReviewError(
      `request.operation ${JSON.stringify(r.operation)} is not an admission operation`,
    );
  }
  const user = isObject(r.userInfo) ? r.userInfo : {};
  const request: AdmissionRequest = {
    uid: r.uid,
    kind: gvk(r.kind, 'kind'),
    resource: gvr(r.resource, 'resource'),
    operation: r.operation as Operation,
    userInfo: {
      username: typeof user.username === 'string' ? user.username : '',
      ...(Array.isArray(user.groups)
        ? { groups: user.groups.filter((g): g is string => typeof g === 'string') }
        : {}),
    },
  };
  if (typeof r.subResource === 'string' && r.subResource !== '') request.subResource = r.subResource;
  if (typeof r.name === 'string' && r.name !== '') request.name = r.name;
  if (typeof r.namespace === 'string' && r.namespace !== '') request.namespace = r.namespace;
  if (r.object !== undefined && r.object !== null) request.object = r.object;
  if (r.oldObject !== undefined && r.oldObject !== null) request.oldObject = r.oldObject;
  if (r.dryRun === true) request.dryRun = true;
  return request;
}

/** The object's name for messages: its name, else its generateName prefix, else the request's name. */
export function objectName(request: AdmissionRequest): string {
  const metadata =
    isObject(request.object) && isObject(request.object.metadata) ? request.object.metadata : {};
  if (typeof metadata.name === 'string' && metadata.name !== '') return metadata.name;
  if (typeof metadata.generateName === 'string' && metadata.generateName !== '') return metadata.generateName;
  return request.name ?? '';
}

/** One line per cause, as kubectl prints them: `* field: message`. */
export function formatCauseLines(causes: readonly StatusCause[]): string {
  return causes.map((c) => `* ${c.field === '' ? c.message : `${c.field}: ${c.message}`}`).join('\n');
}

/** The Status of a refusal for these causes. */
export function invalidStatus(request: AdmissionRequest, causes: readonly StatusCause[]): Status {
  const name = objectName(request);
  const kind = request.kind.kind;
  const count = causes.length === 1 ? 'a problem' : `${causes.length} problems`;
  return {
    apiVersion: 'v1',
    kind: 'Status',
    status: 'Failure',
    code: 422,
    reason: 'Invalid',
    message: `${kind} ${JSON.stringify(name)} is invalid (${count}):\n${formatCauseLines(causes)}`,
    details: { name, group: request.kind.group, kind, causes: [...causes] },
  };
}

export function toResponse(request: AdmissionRequest, verdict: Verdict): AdmissionReviewResponse {
  const response: AdmissionResponse = { uid: request.uid, allowed: verdict.allowed };
  if (verdict.allowed) {
    if (verdict.patch !== undefined && verdict.patch.length > 0) {
      response.patchType = 'JSONPatch';
      response.patch = Buffer.from(JSON.stringify(verdict.patch)).toString('base64');
    }
    if (verdict.warnings !== undefined && verdict.warnings.length > 0) response.warnings = verdict.warnings;
  } else if ('causes' in verdict) {
    response.status = invalidStatus(request, verdict.causes);
  } else {
    response.status = {
      apiVersion: 'v1',
      kind: 'Status',
      status: 'Failure',
      code: verdict.code,
      reason: verdict.reason,
      message: verdict.message,
    };
  }
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}
