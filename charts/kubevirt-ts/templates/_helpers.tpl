{{/*
Shared helpers of the kubevirt-ts chart.

Object names are fixed, as KubeVirt's are: the services find each other, their Secrets and the objects they
inject a CA bundle into by these names, and the cluster-scoped ones (APIService, webhooks, CRDs) allow one
installation per cluster anyway. The services' side of this contract:
  - ServiceAccounts virt-controller, virt-api, virt-handler, named like their workloads (devcluster mints
    tokens for the same names; virt-api trusts VMI status writes from the controller and the handler only);
    RBAC roles and bindings carry the same names;
  - Service virt-api (port 443 -> 8443) behind the webhooks and the APIService; the handler's gRPC port 8190;
    the health ports below (each service's --health-port default, passed explicitly);
  - webhook configurations virt-api-mutator and virt-api-validator, APIService v1.subresources.kubevirt.io;
  - Secrets kubevirt-ca, kubevirt-virt-api-certs, kubevirt-virt-handler-server-certs,
    kubevirt-virt-handler-certs, written by the controller's leader; its leader-election Lease virt-controller;
  - environment: LOG_LEVEL, POD_NAME, POD_NAMESPACE for all; LAUNCHER_IMAGE and LAUNCHER_IMAGE_PULL_POLICY for
    the controller; NODE_NAME and POD_IP for the handler. Settings go in as environment variables rather than
    flags so that a service which does not read one yet still starts.
*/}}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "kubevirt-ts.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "kubevirt-ts.labels" -}}
helm.sh/chart: {{ include "kubevirt-ts.chart" . }}
app.kubernetes.io/name: kubevirt-ts
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubevirt-ts
{{- with .Values.global.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels of one component's objects. Call with (dict "ctx" $ "component" "controller").
`kubevirt.io: virt-<component>` is the label KubeVirt puts on its own components.
*/}}
{{- define "kubevirt-ts.componentLabels" -}}
{{ include "kubevirt-ts.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
kubevirt.io: virt-{{ .component }}
{{- end }}

{{/* Selector labels of one component's pods (stable across upgrades). Same argument as componentLabels. */}}
{{- define "kubevirt-ts.selectorLabels" -}}
app.kubernetes.io/name: kubevirt-ts
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Fixed names (see the top of this file). */}}
{{- define "kubevirt-ts.controller.name" -}}virt-controller{{- end }}
{{- define "kubevirt-ts.api.name" -}}virt-api{{- end }}
{{- define "kubevirt-ts.handler.name" -}}virt-handler{{- end }}
{{- define "kubevirt-ts.controller.serviceAccountName" -}}virt-controller{{- end }}
{{- define "kubevirt-ts.api.serviceAccountName" -}}virt-api{{- end }}
{{- define "kubevirt-ts.handler.serviceAccountName" -}}virt-handler{{- end }}
{{- define "kubevirt-ts.mutatingWebhookName" -}}virt-api-mutator{{- end }}
{{- define "kubevirt-ts.validatingWebhookName" -}}virt-api-validator{{- end }}
{{- define "kubevirt-ts.apiServiceName" -}}v1.subresources.kubevirt.io{{- end }}
{{- define "kubevirt-ts.caSecretName" -}}kubevirt-ca{{- end }}
{{- define "kubevirt-ts.apiCertsSecretName" -}}kubevirt-virt-api-certs{{- end }}
{{- define "kubevirt-ts.handlerServerCertsSecretName" -}}kubevirt-virt-handler-server-certs{{- end }}
{{- define "kubevirt-ts.handlerCertsSecretName" -}}kubevirt-virt-handler-certs{{- end }}

{{/* Every certificate Secret the controller's leader keeps, as a YAML list. */}}
{{- define "kubevirt-ts.certificateSecretNames" -}}
- {{ include "kubevirt-ts.caSecretName" . }}
- {{ include "kubevirt-ts.apiCertsSecretName" . }}
- {{ include "kubevirt-ts.handlerServerCertsSecretName" . }}
- {{ include "kubevirt-ts.handlerCertsSecretName" . }}
{{- end }}

{{/*
An image reference from a component's image block: registry/repository:tag, where global.imageRegistry replaces
the component's registry. Call with (dict "image" .Values.controller.image "global" .Values.global).
*/}}
{{- define "kubevirt-ts.image" -}}
{{- $registry := .global.imageRegistry | default .image.registry -}}
{{- $ref := printf "%s:%s" .image.repository (.image.tag | toString) -}}
{{- if $registry }}{{ printf "%s/%s" $registry $ref }}{{ else }}{{ $ref }}{{ end -}}
{{- end }}

{{/* Environment every service gets: its log level and who and where it is (downward API). */}}
{{- define "kubevirt-ts.commonEnv" -}}
- name: LOG_LEVEL
  value: {{ .Values.global.logLevel | quote }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end }}

{{/*
The plain-HTTP port of /livez, /readyz and /metrics of each service: each service's own default, distinct so
that all of them can also run side by side as plain processes in one network namespace (devcluster).
*/}}
{{- define "kubevirt-ts.controller.healthPort" -}}8186{{- end }}
{{- define "kubevirt-ts.api.healthPort" -}}8187{{- end }}
{{- define "kubevirt-ts.handler.healthPort" -}}8188{{- end }}
{{/* virt-api's HTTPS port (webhooks, aggregated API) and virt-handler's gRPC port (called by virt-api). */}}
{{- define "kubevirt-ts.api.httpsPort" -}}8443{{- end }}
{{- define "kubevirt-ts.handler.grpcPort" -}}8190{{- end }}

{{/* Liveness and readiness probes on the health port (runtime's HealthServer). */}}
{{- define "kubevirt-ts.probes" -}}
livenessProbe:
  httpGet:
    path: /livez
    port: health
  initialDelaySeconds: 10
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: health
  periodSeconds: 5
  failureThreshold: 3
{{- end }}
