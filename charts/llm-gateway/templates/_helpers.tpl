{{- define "llmgw.name" -}}llm-gateway{{- end -}}
{{- define "llmgw.fullname" -}}
{{- if contains "llm-gateway" .Release.Name -}}{{ .Release.Name | trunc 50 | trimSuffix "-" }}{{- else -}}{{ printf "%s-llm-gateway" .Release.Name | trunc 50 | trimSuffix "-" }}{{- end -}}
{{- end -}}
{{- define "llmgw.labels" -}}
app.kubernetes.io/name: {{ include "llmgw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- define "llmgw.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}{{- end -}}
{{- define "llmgw.tokenSecret" -}}{{ .Values.snapshotToken.existingSecret | default (printf "%s-snapshot-token" (include "llmgw.fullname" .)) }}{{- end -}}
{{- define "llmgw.serviceAccount" -}}{{ include "llmgw.fullname" . }}{{- end -}}
{{- define "llmgw.redisURL" -}}
{{- if .Values.redis.url -}}{{ .Values.redis.url }}{{- else if .Values.redis.deploy -}}redis://{{ include "llmgw.fullname" . }}-redis:6379/0{{- end -}}
{{- end -}}
