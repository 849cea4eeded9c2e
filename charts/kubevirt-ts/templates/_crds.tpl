{{/*
The CustomResourceDefinitions are generated from packages/schema into templates/crd-<plural>.yaml (one file per
CRD; do not edit them by hand). They are templates rather than files in crds/, so that `helm upgrade` updates them
as the schema evolves (Helm never upgrades crds/). Each generated file:
  - is wrapped in {{ "{{- if .Values.crds.enabled }}" }} ... {{ "{{- end }}" }};
  - puts {{ "{{- include \"kubevirt-ts.crd.metadata\" . | nindent 2 }}" }} under its metadata, for the labels and
    the keep annotation below.
*/}}

{{/*
Labels and annotations of every CRD. With crds.keep (the default) Helm leaves the CRDs in place on uninstall:
deleting a CRD deletes every object of its kind, i.e. every VM in the cluster.
*/}}
{{- define "kubevirt-ts.crd.metadata" -}}
labels:
  {{- include "kubevirt-ts.labels" . | nindent 2 }}
{{- if .Values.crds.keep }}
annotations:
  helm.sh/resource-policy: keep
{{- end }}
{{- end }}
