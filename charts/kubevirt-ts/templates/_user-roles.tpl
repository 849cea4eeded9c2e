{{/*
Rules of the subresources.kubevirt.io API for the user roles. Call with (dict "write" bool "console" bool):
`console` adds the interactive streams (console, VNC, and port-forward to a VM's or VMI's guest ports, as
KubeVirt's admin and edit roles grant them), `write` the actions that change a VM's state.
*/}}
{{- define "kubevirt-ts.userRoles.subresources" -}}
- apiGroups: ["subresources.kubevirt.io"]
  resources: ["virtualmachineinstances/guestosinfo"]
  verbs: ["get"]
{{- if .console }}
- apiGroups: ["subresources.kubevirt.io"]
  resources:
    - virtualmachineinstances/console
    - virtualmachineinstances/vnc
    - virtualmachineinstances/portforward
    - virtualmachines/portforward
  verbs: ["get"]
{{- end }}
{{- if .write }}
- apiGroups: ["subresources.kubevirt.io"]
  resources:
    - virtualmachineinstances/pause
    - virtualmachineinstances/unpause
    - virtualmachineinstances/softreboot
  verbs: ["update"]
- apiGroups: ["subresources.kubevirt.io"]
  resources:
    - virtualmachines/start
    - virtualmachines/stop
    - virtualmachines/restart
    - virtualmachines/migrate
  verbs: ["update"]
{{- end }}
{{- end }}

{{/*
Cluster-scoped instancetypes and preferences: readable by every namespace role (a VM refers to them); only
cluster administrators create them, which the aggregated namespace roles cannot grant anyway.
*/}}
{{- define "kubevirt-ts.userRoles.clusterTypes" -}}
- apiGroups: ["instancetype.kubevirt.io"]
  resources: ["virtualmachineclusterinstancetypes", "virtualmachineclusterpreferences"]
  verbs: ["get", "list", "watch"]
{{- end }}
