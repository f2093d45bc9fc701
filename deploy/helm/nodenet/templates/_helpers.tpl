{{/* The labels every object carries and the DaemonSet selects its pods by (as deploy/*.yaml). */}}
{{- define "nodenet.labels" -}}
app.kubernetes.io/name: nodenet
{{- end }}

{{/* RULE_EXTERNAL_CLUSTER_ENABLE: as set, else on exactly in IPVS proxy mode. */}}
{{- define "nodenet.externalCluster" -}}
{{- if kindIs "invalid" .Values.fixes.externalCluster }}{{ eq .Values.proxyMode "ipvs" }}{{ else }}{{ .Values.fixes.externalCluster }}{{ end }}
{{- end }}

{{/* The container port: METRICS_ADDRESS's port. */}}
{{- define "nodenet.metricsPort" -}}
{{- regexFind "[0-9]+$" .Values.metricsAddress | atoi }}
{{- end }}

{{/* Whether the state file is kept on the host (SHAPING_STATE_FILE is not none). */}}
{{- define "nodenet.shapingState" -}}
{{- if and .Values.shaping.enabled .Values.shaping.stateFile (ne .Values.shaping.stateFile "none") }}true{{ end }}
{{- end }}

{{/*
The agent's environment, one variable per setting in values.yaml. The settings that deploy/*.yaml
set are always rendered; the others only when set, so that the agent's default applies.
*/}}
{{- define "nodenet.env" -}}
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: PROXY_MODE
  value: {{ .Values.proxyMode | quote }}
{{- with .Values.backend }}
- name: BACKEND
  value: {{ . | quote }}
{{- end }}
- name: RULE_EXTERNAL_CLUSTER_ENABLE
  value: {{ include "nodenet.externalCluster" . | quote }}
{{- if not (kindIs "invalid" .Values.fixes.externalIPs) }}
- name: RULE_EXTERNAL_IPS_ENABLE
  value: {{ .Values.fixes.externalIPs | quote }}
{{- end }}
- name: RULE_DROP_INVALID_INPUT_ENABLE
  value: {{ .Values.fixes.dropInvalidInput | quote }}
{{- if not (kindIs "invalid" .Values.fixes.notTrackDns) }}
- name: RULE_NOT_TRACK_DNS_ENABLE
  value: {{ .Values.fixes.notTrackDns | quote }}
{{- end }}
{{- with .Values.fixes.notTrackDnsServices }}
- name: RULE_NOT_TRACK_DNS_SERVICES
  value: {{ join "," . | quote }}
{{- end }}
{{- with .Values.netStack }}
- name: NET_STACK
  value: {{ . | quote }}
{{- end }}
{{- with .Values.podCIDR.ipv4 }}
- name: POD_CIDR_IPV4
  value: {{ . | quote }}
{{- end }}
{{- with .Values.podCIDR.ipv6 }}
- name: POD_CIDR_IPV6
  value: {{ . | quote }}
{{- end }}
{{- if not (kindIs "invalid" .Values.masqueradeBit) }}
- name: MASQUERADE_BIT
  value: {{ .Values.masqueradeBit | quote }}
{{- end }}
- name: METRICS_ADDRESS
  value: {{ .Values.metricsAddress | quote }}
- name: RESYNC_PERIOD
  value: {{ .Values.resyncPeriod | quote }}
# Shaping by pod annotation: pods' namespaces are found through the runtime's netns files, else
# through their processes in the host's /proc (mounted below).
- name: SHAPING
  value: {{ .Values.shaping.enabled | quote }}
{{- if .Values.shaping.enabled }}
- name: SHAPING_NETNS_DIRS
  value: {{ join "," .Values.shaping.netnsDirs | quote }}
- name: SHAPING_PROC_ROOT
  value: {{ ternary "/host/proc" "none" .Values.shaping.hostProc | quote }}
- name: SHAPING_STATE_FILE
  value: {{ .Values.shaping.stateFile | default "none" | quote }}
{{- end }}
# Bridges and VXLANs from Link resources (the chart's crds/).
- name: OVERLAYS
  value: {{ .Values.overlays.enabled | quote }}
{{- with .Values.logLevel }}
- name: NODENET_LOG_LEVEL
  value: {{ . | quote }}
{{- end }}
{{- if not (kindIs "invalid" .Values.kernelThreads) }}
- name: NODENET_KERNEL_THREADS
  value: {{ .Values.kernelThreads | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
NET_ADMIN: netfilter tables, conntrack and qdiscs; NET_RAW: libiptc's raw socket. Shaping adds
SYS_ADMIN (entering a pod's network namespace, setns, to shape its egress) and, with the host's
/proc, SYS_PTRACE (reading other processes' namespace links there).
*/}}
{{- define "nodenet.capabilities" -}}
{{- $add := list "NET_ADMIN" "NET_RAW" }}
{{- if .Values.shaping.enabled }}
{{- $add = append $add "SYS_ADMIN" }}
{{- if .Values.shaping.hostProc }}{{ $add = append $add "SYS_PTRACE" }}{{ end }}
{{- end }}
{{- toYaml $add }}
{{- end }}

{{/* The volume of SHAPING_NETNS_DIRS' n-th directory: netns, netns-2, netns-3, … */}}
{{- define "nodenet.netnsVolume" -}}
{{- if eq . 0 }}netns{{ else }}netns-{{ add . 1 }}{{ end }}
{{- end }}
