{{/*
The ingress rule that admits /metrics scrapes on the health port: from networkPolicy.metricsFrom, or from
anywhere when that list is empty. (The kubelet's probes come from the node and are not subject to policies.)
*/}}
{{- define "kubevirt-ts.networkPolicy.metricsRule" -}}
- ports:
    - port: health
      protocol: TCP
  {{- with .Values.networkPolicy.metricsFrom }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
