{{- define "integrations-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "integrations-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "integrations-operator.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "integrations-operator.labels" -}}
app.kubernetes.io/name: {{ include "integrations-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "integrations-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "integrations-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
control-plane: controller-manager
{{- end -}}

{{- define "integrations-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "integrations-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "integrations-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- /* The metrics Service's name and the DNS name its certificate is verified against. */ -}}
{{- define "integrations-operator.metricsService" -}}
{{- printf "%s-metrics" (include "integrations-operator.fullname" .) -}}
{{- end -}}

{{- define "integrations-operator.metricsServerName" -}}
{{- printf "%s.%s.svc" (include "integrations-operator.metricsService" .) .Release.Namespace -}}
{{- end -}}

{{- /* The Secret holding the metrics serving certificate (tls.crt, tls.key, ca.crt), or "" when
       the manager makes its own self-signed one. */ -}}
{{- define "integrations-operator.metricsCertSecret" -}}
{{- $tls := .Values.metrics.tls -}}
{{- if $tls.existingSecret -}}
{{- $tls.existingSecret -}}
{{- else if $tls.certManager.enabled -}}
{{- printf "%s-metrics-cert" (include "integrations-operator.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- /* Combinations of values that cannot work, refused with a message saying what to set. */ -}}
{{- define "integrations-operator.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection) -}}
{{- fail "replicaCount above 1 needs leaderElection: true (replicas without it would reconcile the same objects concurrently)" -}}
{{- end -}}
{{- if and .Values.metrics.enabled (eq (int .Values.metrics.port) 8081) -}}
{{- fail "metrics.port must not be 8081, the manager's health probe port" -}}
{{- end -}}
{{- if and .Values.metrics.tls.existingSecret .Values.metrics.tls.certManager.enabled -}}
{{- fail "set metrics.tls.existingSecret or metrics.tls.certManager.enabled, not both" -}}
{{- end -}}
{{- if .Values.serviceMonitor.enabled -}}
{{- if not .Values.metrics.enabled -}}
{{- fail "serviceMonitor.enabled needs metrics.enabled" -}}
{{- end -}}
{{- if not (include "integrations-operator.metricsCertSecret" .) -}}
{{- fail "serviceMonitor.enabled needs a metrics certificate Prometheus can verify: set metrics.tls.existingSecret (a Secret with tls.crt, tls.key and ca.crt) or metrics.tls.certManager.enabled. The manager's own certificate is self-signed, and the chart does not skip verification" -}}
{{- end -}}
{{- end -}}
{{- end -}}
