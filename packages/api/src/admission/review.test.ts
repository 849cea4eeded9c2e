// Reading AdmissionReviews and writing responses: the wire format the API server expects.
import { describe, expect, it } from 'vitest';
import {
  BadReviewError,
  formatCauseLines,
  parseAdmissionReview,
  toResponse,
  type AdmissionRequest,
} from './review.ts';

const body = (request: Record<string, unknown>) => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: 'abc',
    kind: { group: 'kubevirt.io', version: 'v1', kind: 'VirtualMachine' },
    resource: { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachines' },
    operation: 'CREATE',
    userInfo: { username: 'alice', groups: ['system:authenticated'] },
    namespace: 'ns',
    object: { metadata: { generateName: 'vm-' } },
    oldObject: null,
    ...request,
  },
});

describe('parseAdmissionReview', () => {
  it('reads the fields the webhooks use', () => {
    expect(parseAdmissionReview(body({}))).toEqual({
      uid: 'abc',
      kind: { group: 'kubevirt.io', version: 'v1', kind: 'VirtualMachine' },
      resource: { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachines' },
      operation: 'CREATE',
      userInfo: { username: 'alice', groups: ['system:authenticated'] },
      namespace: 'ns',
      object: { metadata: { generateName: 'vm-' } },
    });
  });

  it('says what is wrong with a review it cannot use', () => {
    expect(() => parseAdmissionReview({ ...body({}), apiVersion: 'admission.k8s.io/v1beta1' })).toThrow(
      /admissionReviewVersions: \["v1"\]/,
    );
    expect(() => parseAdmissionReview(body({ uid: '' }))).toThrow('request.uid must be a non-empty string');
    expect(() => parseAdmissionReview(body({ operation: 'PATCH' }))).toThrow(BadReviewError);
    expect(() => parseAdmissionReview([])).toThrow(/must be a JSON object/);
  });
});

describe('toResponse', () => {
  const request: AdmissionRequest = parseAdmissionReview(body({}));

  it('answers an allowance with a base64 JSON patch', () => {
    const patch = [{ op: 'add' as const, path: '/spec', value: {} }];
    const out = toResponse(request, { allowed: true, patch });
    expect(out).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
    expect(out.response).toMatchObject({ uid: 'abc', allowed: true, patchType: 'JSONPatch' });
    expect(JSON.parse(Buffer.from(out.response.patch ?? '', 'base64').toString())).toEqual(patch);
    expect(toResponse(request, { allowed: true }).response).toEqual({ uid: 'abc', allowed: true });
  });

  it('answers a refusal with a 422 Invalid Status, one line and one cause per problem', () => {
    const causes = [
      { type: 'FieldValueRequired' as const, field: 'spec.runStrategy', message: 'Required value' },
      { type: 'FieldValueInvalid' as const, field: 'spec.x', message: 'unknown field "x"' },
    ];
    const { response } = toResponse(request, { allowed: false, causes });
    expect(response.allowed).toBe(false);
    expect(response.status).toEqual({
      apiVersion: 'v1',
      kind: 'Status',
      status: 'Failure',
      code: 422,
      reason: 'Invalid',
      message:
        'VirtualMachine "vm-" is invalid (2 problems):\n* spec.runStrategy: Required value\n* spec.x: unknown field "x"',
      details: { name: 'vm-', group: 'kubevirt.io', kind: 'VirtualMachine', causes },
    });
    expect(formatCauseLines([{ type: 'FieldValueInvalid', field: '', message: 'whole object' }])).toBe(
      '* whole object',
    );
  });
});
