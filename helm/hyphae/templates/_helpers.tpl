{{/*
Names, labels and the values-derived settings every template shares.
Components (c2s, sm, roster, muc, s2s, proxy65) are passed around as
(dict "root" $ "svc" "c2s").
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "hyphae.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-hyphae (or the release name when it already contains the chart name, or fullnameOverride). */}}
{{- define "hyphae.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* hyphae-0.1.0 for the helm.sh/chart label. */}}
{{- define "hyphae.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "hyphae.labels" -}}
helm.sh/chart: {{ include "hyphae.chart" . }}
{{ include "hyphae.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: hyphae
{{- end }}

{{/* The labels that identify this release (selectors use them). */}}
{{- define "hyphae.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hyphae.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* <fullname>-<svc>, short enough that "-metrics" still fits in 63 characters. */}}
{{- define "hyphae.componentName" -}}
{{- printf "%s-%s" (include "hyphae.fullname" .root | trunc (int (sub 54 (len .svc)))) .svc | trimSuffix "-" }}
{{- end }}

{{/* Labels of one component's objects. */}}
{{- define "hyphae.componentLabels" -}}
{{ include "hyphae.labels" .root }}
app.kubernetes.io/component: {{ .svc }}
{{- end }}

{{/*
Labels of one component's pods: no helm.sh/chart, so that an upgrade that
changes only the chart version does not restart (and drain) every pod.
*/}}
{{- define "hyphae.podLabels" -}}
{{ include "hyphae.componentSelectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: hyphae
{{- end }}

{{/* The selector of one component's pods (Deployment, Services, PDB, spread). */}}
{{- define "hyphae.componentSelectorLabels" -}}
{{ include "hyphae.selectorLabels" .root }}
app.kubernetes.io/component: {{ .svc }}
{{- end }}

{{/* The service account the pods run as. */}}
{{- define "hyphae.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hyphae.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The components deployed, space-separated: c2s sm roster always, muc unless
config.muc.enabled is false, s2s and proxy65 when enabled.
*/}}
{{- define "hyphae.components" -}}
{{- $c := list "c2s" "sm" "roster" }}
{{- if ne (dig "muc" "enabled" true .Values.config) false }}
{{- $c = append $c "muc" }}
{{- end }}
{{- if .Values.s2s.enabled }}
{{- $c = append $c "s2s" }}
{{- end }}
{{- if .Values.proxy65.enabled }}
{{- $c = append $c "proxy65" }}
{{- end }}
{{- join " " $c }}
{{- end }}

{{/* Components whose pods need the TLS certificate (the edges). */}}
{{- define "hyphae.needsTls" -}}
{{- if has .svc (list "c2s" "s2s") }}true{{ end }}
{{- end }}

{{/*
The client-facing ports of a component, as YAML "ports: [{name, port}]"
(read back with fromYaml). Numbers come from the Hyphae config, so the
containers, the Services and the server always agree.
*/}}
{{- define "hyphae.clientPorts" -}}
{{- $v := .root.Values }}
ports:
{{- if eq .svc "c2s" }}
- name: xmpp-client
  port: {{ int $v.config.c2s.port }}
{{- if not (kindIs "invalid" $v.config.c2s.directTlsPort) }}
- name: xmpps-client
  port: {{ int $v.config.c2s.directTlsPort }}
{{- end }}
{{- else if eq .svc "s2s" }}
- name: xmpp-server
  port: {{ int $v.s2s.port }}
{{- else if eq .svc "proxy65" }}
- name: socks5
  port: {{ int $v.proxy65.port }}
{{- end }}
{{- end }}

{{/* Name of the Secret with tls.crt/tls.key: tls.secretName or <fullname>-tls. */}}
{{- define "hyphae.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "hyphae.fullname" .)) .Values.tls.secretName }}
{{- end }}

{{/* Where the ConfigMap and the certificate are mounted. */}}
{{- define "hyphae.configDir" -}}/etc/hyphae/config{{- end }}
{{- define "hyphae.tlsDir" -}}/etc/hyphae/tls{{- end }}
{{- define "hyphae.dataDir" -}}/var/lib/hyphae{{- end }}

{{/* Full name of a dependency chart's objects (Helm's usual fullname rule). */}}
{{- define "hyphae.dependencyFullname" -}}
{{- $sub := index .root.Values .chart }}
{{- if $sub.fullnameOverride }}
{{- $sub.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .chart $sub.nameOverride }}
{{- if contains $name .root.Release.Name }}
{{- .root.Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .root.Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* NATS_URL: the nats dependency's client Service, or externalNats.url. */}}
{{- define "hyphae.natsUrl" -}}
{{- if .Values.nats.enabled }}
{{- printf "nats://%s:%d" (include "hyphae.dependencyFullname" (dict "root" . "chart" "nats")) (int (dig "config" "nats" "port" 4222 .Values.nats)) }}
{{- else }}
{{- .Values.externalNats.url }}
{{- end }}
{{- end }}

{{/*
The Redis password Secret as "name key", empty when Redis has no password:
the redis dependency's (<release>-redis, key redis-password, or its
auth.existingSecret) or externalRedis.existingSecret.
*/}}
{{- define "hyphae.redisPasswordSecret" -}}
{{- if .Values.redis.enabled }}
{{- if ne (dig "auth" "enabled" true .Values.redis) false }}
{{- $name := dig "auth" "existingSecret" "" .Values.redis | default (include "hyphae.dependencyFullname" (dict "root" . "chart" "redis")) }}
{{- $key := dig "auth" "existingSecretPasswordKey" "" .Values.redis | default "redis-password" }}
{{- printf "%s %s" $name $key }}
{{- end }}
{{- else if .Values.externalRedis.existingSecret }}
{{- printf "%s %s" .Values.externalRedis.existingSecret (default "redis-password" .Values.externalRedis.existingSecretPasswordKey) }}
{{- end }}
{{- end }}

{{/*
REDIS_URL. With a password it refers to $(REDIS_PASSWORD), which Kubernetes
expands from the env var set just before it (the password must then be
URL-safe, as Bitnami's generated ones are).
*/}}
{{- define "hyphae.redisUrl" -}}
{{- $auth := "" }}
{{- if include "hyphae.redisPasswordSecret" . }}
{{- $auth = ":$(REDIS_PASSWORD)@" }}
{{- end }}
{{- if .Values.redis.enabled }}
{{- $port := int (dig "master" "service" "ports" "redis" 6379 .Values.redis) }}
{{- printf "redis://%s%s-master:%d" $auth (include "hyphae.dependencyFullname" (dict "root" . "chart" "redis")) $port }}
{{- else }}
{{- $u := urlParse .Values.externalRedis.url }}
{{- if $auth }}
{{- printf "%s://%s%s%s" $u.scheme $auth $u.host $u.path }}
{{- if $u.query }}?{{ $u.query }}{{ end }}
{{- else }}
{{- .Values.externalRedis.url }}
{{- end }}
{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds of a component: the value when set; for c2s by
default max(30, ceil(drainGraceMs / 1000) + 20), so the grace period, the
closing of every stream and the process's own 15 s stop deadline fit.
*/}}
{{- define "hyphae.terminationGrace" -}}
{{- $cv := index .root.Values .svc }}
{{- $grace := int (dig "c2s" "drainGraceMs" 2000 .root.Values.config) }}
{{- if not (kindIs "invalid" $cv.terminationGracePeriodSeconds) }}
{{- int $cv.terminationGracePeriodSeconds }}
{{- else if eq .svc "c2s" }}
{{- max 30 (add (div (add $grace 999) 1000) 20) }}
{{- else }}30{{- end }}
{{- end }}

{{/* "<secret> <key>" of the admin API token: adminToken.existingSecret, or the one the chart generates. */}}
{{- define "hyphae.adminTokenSecret" -}}
{{- if .Values.adminToken.existingSecret }}
{{- printf "%s %s" .Values.adminToken.existingSecret (default "token" .Values.adminToken.existingSecretKey) }}
{{- else }}
{{- printf "%s-admin token" (include "hyphae.fullname" .) }}
{{- end }}
{{- end }}

{{/*
The Hyphae configuration file: .Values.config plus what the chart owns
(dataDir, TLS file paths, s2s/proxy65 ports when enabled). nodeId, natsUrl
and redisUrl come from the environment (HYPHAE_NODE_ID, NATS_URL,
REDIS_URL), the admin token from its Secret (HYPHAE_HTTP__ADMIN_TOKEN,
adminToken.existingSecret or the generated <fullname>-admin).
*/}}
{{- define "hyphae.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- /* Helm deletes a key a values file sets to null, which would bring the
server's default (5223) back: write the null that disables direct TLS. */}}
{{- if and (kindIs "map" $cfg.c2s) (not (hasKey $cfg.c2s "directTlsPort")) }}
{{- $_ := set $cfg.c2s "directTlsPort" nil }}
{{- end }}
{{- $_ := set $cfg "dataDir" (include "hyphae.dataDir" .) }}
{{- $_ := set $cfg "tls" (dict "cert" (printf "%s/tls.crt" (include "hyphae.tlsDir" .)) "key" (printf "%s/tls.key" (include "hyphae.tlsDir" .))) }}
{{- /* Without s2s pods the other services answer remote domains at once (<remote-server-not-found/>). */}}
{{- if .Values.s2s.enabled }}
{{- $_ := set $cfg "s2s" (merge (dict "enabled" true "host" "0.0.0.0" "port" (int .Values.s2s.port) "directTlsPort" nil) (deepCopy .Values.s2s.config)) }}
{{- else }}
{{- $_ := set $cfg "s2s" (merge (dict "enabled" false) (deepCopy (default dict .Values.s2s.config))) }}
{{- end }}
{{- /* Without the proxy65 Deployment the other services must not announce a proxy nobody serves. */}}
{{- if .Values.proxy65.enabled }}
{{- $_ := set $cfg "proxy65" (merge (dict "enabled" true "host" "0.0.0.0" "port" (int .Values.proxy65.port)) (deepCopy .Values.proxy65.config)) }}
{{- else }}
{{- $_ := set $cfg "proxy65" (merge (dict "enabled" false) (deepCopy (default dict .Values.proxy65.config))) }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/*
Fails the render with a message naming the value when the values cannot work.
Every template includes it first: Helm runs the templates in reverse path
order, and this message should come before any other template's error.
*/}}
{{- define "hyphae.validate" -}}
{{- $cfg := .Values.config }}
{{- range $key := list "nodeId" "natsUrl" "redisUrl" "dataDir" "tls" }}
{{- if hasKey $cfg $key }}
{{- fail (printf "config.%s is set by the chart (see the README: %s); remove it from config" $key (get (dict "nodeId" "the pod name" "natsUrl" "nats.enabled / externalNats.url" "redisUrl" "redis.enabled / externalRedis.url" "dataDir" "an emptyDir" "tls" "tls.secretName / tls.certManager") $key)) }}
{{- end }}
{{- end }}
{{- if not (kindIs "invalid" (dig "http" "adminToken" nil $cfg)) }}
{{- fail "config.http.adminToken would be readable in the ConfigMap: put the token in a Secret and set adminToken.existingSecret" }}
{{- end }}
{{- $httpPort := dig "http" "port" nil $cfg }}
{{- if or (kindIs "invalid" $httpPort) (eq (int $httpPort) 0) }}
{{- fail "config.http.port must be a fixed port: the probes, the metrics Services and the ServiceMonitors use it" }}
{{- end }}
{{- $adminPort := dig "http" "adminPort" nil $cfg }}
{{- if and (not (kindIs "invalid" $adminPort)) (eq (int $adminPort) 0) }}
{{- fail "config.http.adminPort must be a fixed port (the CLI in the pods finds the API there), or null to serve the API on config.http.port" }}
{{- end }}
{{- if and (not (kindIs "invalid" $adminPort)) (eq (int $adminPort) (int $httpPort)) }}
{{- fail (printf "config.http.adminPort %d is config.http.port: give the admin API another port, or null to serve it on config.http.port" (int $adminPort)) }}
{{- end }}
{{- $httpHost := toString (dig "http" "host" "127.0.0.1" $cfg) }}
{{- if or (hasPrefix "127." $httpHost) (eq $httpHost "localhost") (eq $httpHost "::1") }}
{{- fail (printf "config.http.host %s is loopback: the kubelet probes could not reach /healthz and /readyz (use 0.0.0.0 or ::)" $httpHost) }}
{{- end }}
{{- $c2sHost := toString (dig "c2s" "host" "127.0.0.1" $cfg) }}
{{- if or (hasPrefix "127." $c2sHost) (eq $c2sHost "localhost") (eq $c2sHost "::1") }}
{{- fail (printf "config.c2s.host %s is loopback: clients could not reach the c2s pods (use 0.0.0.0 or ::)" $c2sHost) }}
{{- end }}
{{- if eq (int (dig "c2s" "port" 0 $cfg)) 0 }}
{{- fail "config.c2s.port must be set to a fixed port (not 0)" }}
{{- end }}
{{- $dt := dig "c2s" "directTlsPort" nil $cfg }}
{{- if and (not (kindIs "invalid" $dt)) (eq (int $dt) 0) }}
{{- fail "config.c2s.directTlsPort must be a fixed port, or null to disable it" }}
{{- end }}
{{- if and (not .Values.nats.enabled) (not .Values.externalNats.url) (not .Values.externalNats.existingSecret) }}
{{- fail "NATS: set nats.enabled=true (install the nats chart) or externalNats.url (or externalNats.existingSecret)" }}
{{- end }}
{{- if and (not .Values.redis.enabled) (not .Values.externalRedis.url) }}
{{- fail "Redis: set redis.enabled=true (install the redis chart) or externalRedis.url" }}
{{- end }}
{{- if and (not .Values.redis.enabled) .Values.externalRedis.existingSecret }}
{{- if (urlParse .Values.externalRedis.url).userinfo }}
{{- fail "externalRedis.url has credentials and externalRedis.existingSecret is set: use one or the other" }}
{{- end }}
{{- end }}
{{- $grace := int (dig "c2s" "drainGraceMs" 2000 $cfg) }}
{{- if le (int (include "hyphae.terminationGrace" (dict "root" . "svc" "c2s"))) (div (add $grace 999) 1000) }}
{{- fail (printf "c2s.terminationGracePeriodSeconds must exceed config.c2s.drainGraceMs (%d ms), or the kubelet kills c2s pods before their streams close" $grace) }}
{{- end }}
{{- range $svc := splitList " " (include "hyphae.components" .) }}
{{- $cv := index $.Values $svc }}
{{- if and $cv.pdb.enabled (not (kindIs "invalid" $cv.pdb.minAvailable)) (not (kindIs "invalid" $cv.pdb.maxUnavailable)) }}
{{- fail (printf "%s.pdb: set minAvailable or maxUnavailable, not both" $svc) }}
{{- end }}
{{- if and (has $svc (list "c2s" "s2s" "proxy65")) (not (has (toString $cv.service.type) (list "ClusterIP" "NodePort" "LoadBalancer"))) }}
{{- fail (printf "%s.service.type must be ClusterIP, NodePort or LoadBalancer (got %v)" $svc $cv.service.type) }}
{{- end }}
{{- end }}
{{- if .Values.c2s.autoscaling.enabled }}
{{- if gt (int .Values.c2s.autoscaling.minReplicas) (int .Values.c2s.autoscaling.maxReplicas) }}
{{- fail "c2s.autoscaling.minReplicas must not exceed c2s.autoscaling.maxReplicas" }}
{{- end }}
{{- end }}
{{- end }}
