/**
 * The Helm chart, helm/hyphae, rendered offline and checked structurally.
 *
 * There is no helm binary and no network here, so test/helm/render.go renders
 * the chart the way `helm template` does: Go's text/template with sprig and
 * Helm's own functions (include, tpl, required, toYaml, …), values coalesced
 * as Helm does, Helm's output order. It is built here in GOPATH mode from
 * Debian packages (golang-go, golang-github-masterminds-sprig-dev,
 * golang-gopkg-yaml.v3-dev); without them the suite is skipped with the
 * reason. The renderer's header lists what it reproduces and what it does not.
 *
 * What this checks, for the default values and for the value sets in
 * helm/hyphae/ci/ (external NATS/Redis with a NodePort Service, other ports,
 * no MUC, no HPA; everything on: s2s, proxy65, ServiceMonitors, cert-manager,
 * LoadBalancer options):
 * - the renderer itself on known `helm template` behaviours (a small fixture);
 * - every object has apiVersion/kind/metadata.name, valid names and label
 *   values, no two share kind and name, selectors carry no label that changes
 *   between chart versions (selectors are immutable);
 * - the Hyphae configuration in the ConfigMap, with each Deployment's
 *   environment resolved as the kubelet would (pod name for HYPHAE_NODE_ID,
 *   placeholder secret values, $(VAR) expansion), is accepted by the server's
 *   own loadConfig() from @hyphae/config: the validation `hyphae <component>
 *   --config …` runs at start, so the chart produces a configuration the
 *   server accepts (with s2s/proxy65 enabled, only their not-yet-existing
 *   sections are refused);
 * - every Deployment: resources, liveness (/healthz) and readiness (/readyz)
 *   probes on the config's http.port, selector ⊆ pod labels, a Service and
 *   (unless disabled) a PDB selecting it, `<component> --config <mounted
 *   file>`, non-root with a read-only root filesystem and writable mounts for
 *   dataDir and /tmp, the TLS Secret mounted where tls.cert/tls.key point
 *   (c2s, s2s), every mount backed by a volume;
 * - c2s: rolling update maxUnavailable 0 / maxSurge 1, terminationGracePeriodSeconds
 *   longer than config.c2s.drainGraceMs, an autoscaling/v2 HPA targeting it
 *   (and then no replicas field) with CPU requests to compute utilization;
 * - the PDBs and the HPA target Deployments that exist; ServiceMonitors select
 *   a metrics Service with the port they scrape;
 * - every port the rendered config uses (c2s.port, c2s.directTlsPort,
 *   http.port; s2s and proxy65 ports when enabled) is a containerPort of the
 *   right Deployment and exposed by a Service selecting it (client ports on
 *   the LoadBalancer/NodePort Service, http only inside the cluster);
 * - every Secret referenced (volumes, secretKeyRef) is created by the chart
 *   (the cert-manager Certificate) or named by the values (tls.secretName,
 *   externalRedis.existingSecret, adminToken.existingSecret, the redis
 *   dependency's <release>-redis), and NATS_URL/REDIS_URL name the dependency
 *   charts' Services when those are enabled;
 * - the admin API listens on loopback on its own port (config.http.adminHost,
 *   adminPort): no containerPort, no Service reaches it; every container gets
 *   its bearer token from a Secret — adminToken.existingSecret, or one the
 *   chart generates (read back with lookup on upgrades);
 * - values that cannot work fail the render with a message naming the value;
 * - values.yaml documents every key, README.md's values table covers every key
 *   and names none that does not exist, and the chart's config defaults are
 *   the server's except the deliberate differences.
 *
 * What it cannot check: no API server (OpenAPI schemas, admission, defaulting),
 * no kubeconform/kubeval schemas offline, the CRD kinds (ServiceMonitor,
 * Certificate) only by their shape here; the dependency charts (nats, redis)
 * are not rendered, only the names this chart assumes for their Service and
 * Secret; nothing runs: the image, the probes answering, drain timing, cloud
 * load balancers and cert-manager issuing are not exercised.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, parse as parseYaml, parseAllDocuments, parseDocument, stringify, type YAMLMap } from 'yaml';
import { ConfigError, defaultConfig, isLoopbackHost, loadConfig, type HyphaeConfig } from '@hyphae/config';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CHART = join(ROOT, 'helm/hyphae');
const RENDERER = join(ROOT, 'test/helm/render.go');
const GOPATH = process.env.HYPHAE_GOPATH ?? '/usr/share/gocode';
/** Go packages render.go imports (GOPATH mode: Debian installs them without /v3). */
const GO_PACKAGES: Record<string, string> = {
  'github.com/Masterminds/sprig': 'golang-github-masterminds-sprig-dev',
  'github.com/Masterminds/semver': 'golang-github-masterminds-semver-dev',
  'gopkg.in/yaml.v2': 'golang-gopkg-yaml.v2-dev',
  'gopkg.in/yaml.v3': 'golang-gopkg-yaml.v3-dev',
};

function skipReason(): string | null {
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.error || go.status !== 0) return 'go is not installed (Debian: apt-get install golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev)';
  for (const [pkg, deb] of Object.entries(GO_PACKAGES)) {
    if (!existsSync(join(GOPATH, 'src', pkg))) return `Go sources of ${pkg} are missing under ${GOPATH} (Debian: apt-get install ${deb})`;
  }
  return null;
}

// ---------------------------------------------------------------------------
// Kubernetes shapes (only what the checks read)

type Labels = Record<string, string>;
interface Meta { name: string; namespace?: string; labels?: Labels; annotations?: Labels }
interface K8s { apiVersion: string; kind: string; metadata: Meta; spec?: unknown; data?: Record<string, string> }
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string } };
}
interface ContainerPort { name?: string; containerPort: number; protocol?: string }
interface Probe { httpGet?: { path: string; port: number | string } }
interface Mount { name: string; mountPath: string; readOnly?: boolean }
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: ContainerPort[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Labels; limits?: Labels };
  securityContext?: { runAsNonRoot?: boolean; readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
  volumeMounts?: Mount[];
}
interface Volume { name: string; configMap?: { name: string }; secret?: { secretName: string }; emptyDir?: object }
interface PodSpec {
  containers: Container[];
  volumes?: Volume[];
  securityContext?: { runAsNonRoot?: boolean };
  terminationGracePeriodSeconds?: number;
  serviceAccountName?: string;
}
interface DeploymentSpec {
  replicas?: number;
  selector: { matchLabels: Labels };
  strategy?: { type: string; rollingUpdate?: { maxUnavailable?: number | string; maxSurge?: number | string } };
  template: { metadata: { labels: Labels }; spec: PodSpec };
}
interface ServicePort { name?: string; port: number; targetPort?: number | string; nodePort?: number; protocol?: string }
interface ServiceSpec { type?: string; selector?: Labels; ports: ServicePort[]; externalTrafficPolicy?: string }
interface PdbSpec { minAvailable?: number | string; maxUnavailable?: number | string; selector: { matchLabels: Labels } }
interface HpaSpec {
  scaleTargetRef: { apiVersion: string; kind: string; name: string };
  minReplicas?: number;
  maxReplicas: number;
  metrics?: { type: string; resource?: { name: string } }[];
}
interface ServiceMonitorSpec {
  selector: { matchLabels: Labels };
  namespaceSelector?: { matchNames?: string[] };
  endpoints: { port: string; path?: string; honorLabels?: boolean }[];
}
interface CertificateSpec { secretName: string; dnsNames: string[]; issuerRef: { name: string; kind?: string } }

const spec = <T>(o: K8s): T => o.spec as T;

// ---------------------------------------------------------------------------
// Building and running the renderer

let workDir = '';
let renderBin = '';

function buildRenderer(): void {
  workDir = mkdtempSync(join(tmpdir(), 'hyphae-helm-'));
  renderBin = join(workDir, 'render');
  const cache = process.env.GOCACHE ?? join(tmpdir(), 'hyphae-helm-gocache');
  mkdirSync(cache, { recursive: true });
  const r = spawnSync('go', ['build', '-o', renderBin, RENDERER], {
    encoding: 'utf8',
    env: { ...process.env, GOPATH, GO111MODULE: 'off', GOFLAGS: '', GOCACHE: cache },
    timeout: 280_000,
  });
  assert.equal(r.status, 0, `go build ${RENDERER} failed:\n${r.stderr}${r.error ? String(r.error) : ''}`);
}

interface Rendered { objects: K8s[]; stdout: string; stderr: string }

function runRenderer(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(renderBin, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Render and parse (YAML 1.1, as Kubernetes' go-yaml reads manifests). */
function render(args: string[]): Rendered {
  const r = runRenderer(args);
  assert.equal(r.status, 0, `render ${args.join(' ')} failed:\n${r.stderr}`);
  const objects: K8s[] = [];
  for (const doc of parseAllDocuments(r.stdout, { version: '1.1' })) {
    assert.deepEqual(doc.errors, [], `rendered YAML does not parse: ${doc.errors.map(String).join('; ')}`);
    const o = doc.toJS() as K8s | null;
    if (o !== null) objects.push(o);
  }
  return { objects, stdout: r.stdout, stderr: r.stderr };
}

/** Render that must fail; returns the error text. */
function renderFails(args: string[]): string {
  const r = runRenderer(args);
  assert.notEqual(r.status, 0, `render ${args.join(' ')} should have failed; it printed:\n${r.stdout.slice(0, 2000)}`);
  return r.stderr;
}

// ---------------------------------------------------------------------------
// Small helpers

const subset = (sel: Labels | undefined, labels: Labels | undefined): boolean =>
  !!sel && Object.keys(sel).length > 0 && Object.entries(sel).every(([k, v]) => labels?.[k] === v);

const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const PORT_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
/** Labels whose value changes between chart versions: never in a selector. */
const VOLATILE_LABELS = ['helm.sh/chart', 'app.kubernetes.io/version'];

/** Kubernetes $(VAR) expansion from earlier variables ($$ escapes, unknown names stay). */
function expandK8s(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string | undefined) =>
    m === '$$' ? '$' : name !== undefined && name in env ? env[name]! : m);
}

/** The container port a probe or targetPort means (a name or a number). */
function resolvePort(c: Container, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return c.ports?.some((p) => p.containerPort === port) ? port : undefined;
  return c.ports?.find((p) => p.name === port)?.containerPort;
}

/** Longest mountPath that contains `path`. */
function mountFor(c: Container, path: string): Mount | undefined {
  return (c.volumeMounts ?? [])
    .filter((m) => path === m.mountPath || path.startsWith(m.mountPath.endsWith('/') ? m.mountPath : `${m.mountPath}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
}

const componentOf = (o: K8s): string => o.metadata.labels?.['app.kubernetes.io/component'] ?? '';

// ---------------------------------------------------------------------------
// The value sets

interface Case {
  title: string;
  args: string[];
  release: string;
  namespace: string;
  /** Object name prefix the chart must use. */
  fullname: string;
  components: string[];
  clientServiceType: 'LoadBalancer' | 'NodePort';
  hpa: boolean;
  pdbDisabled: string[];
  serviceMonitors: boolean;
  certificate: boolean;
  /** Host:port NATS_URL / REDIS_URL must name (the dependency charts' Services). */
  natsHost?: string;
  redisHost?: string;
  /** Secrets referenced but not created by the chart, with the keys they must hold. */
  externalSecrets: Record<string, string[]>;
  /** Config sections the server does not know yet (s2s, proxy65). */
  futureSections: string[];
  /** The Secret holding the admin API token, and whether the chart generates it. */
  adminSecret: { name: string; generated: boolean };
}

const TLS_KEYS = ['tls.crt', 'tls.key'];

const CASES: Case[] = [
  {
    title: 'default values',
    args: [],
    release: 'release-name',
    namespace: 'default',
    fullname: 'release-name-hyphae',
    components: ['c2s', 'sm', 'roster', 'muc'],
    clientServiceType: 'LoadBalancer',
    hpa: true,
    pdbDisabled: [],
    serviceMonitors: false,
    certificate: false,
    natsHost: 'release-name-nats:4222',
    redisHost: 'release-name-redis-master:6379',
    externalSecrets: { 'release-name-hyphae-tls': TLS_KEYS, 'release-name-redis': ['redis-password'] },
    futureSections: [],
    adminSecret: { name: 'release-name-hyphae-admin', generated: true },
  },
  {
    title: 'external NATS and Redis, NodePort, other ports, no MUC (ci/external-values.yaml)',
    args: ['-f', join(CHART, 'ci/external-values.yaml'), '--name', 'chat', '--namespace', 'xmpp'],
    release: 'chat',
    namespace: 'xmpp',
    fullname: 'chat-hyphae',
    components: ['c2s', 'sm', 'roster'],
    clientServiceType: 'NodePort',
    hpa: false,
    pdbDisabled: ['sm'],
    serviceMonitors: false,
    certificate: false,
    externalSecrets: { 'chat-hyphae-tls': TLS_KEYS, 'hyphae-redis': ['password'], 'hyphae-admin': ['token'] },
    futureSections: [],
    adminSecret: { name: 'hyphae-admin', generated: false },
  },
  {
    title: 's2s, proxy65, ServiceMonitors, cert-manager, LoadBalancer options (ci/full-values.yaml)',
    args: ['-f', join(CHART, 'ci/full-values.yaml'), '--name', 'hyphae', '--namespace', 'prod', '--api-versions', 'monitoring.coreos.com/v1', '--api-versions', 'cert-manager.io/v1'],
    release: 'hyphae',
    namespace: 'prod',
    fullname: 'xmpp',
    components: ['c2s', 'sm', 'roster', 'muc', 's2s', 'proxy65'],
    clientServiceType: 'LoadBalancer',
    hpa: true,
    pdbDisabled: [],
    serviceMonitors: true,
    certificate: true,
    natsHost: 'hyphae-nats:4222',
    redisHost: 'hyphae-redis-master:6379',
    externalSecrets: { 'hyphae-redis': ['redis-password'] },
    futureSections: ['s2s', 'proxy65'],
    adminSecret: { name: 'xmpp-admin', generated: true },
  },
];

// ---------------------------------------------------------------------------

const reason = skipReason();

describe('Helm chart helm/hyphae (rendered offline with test/helm/render.go)', { skip: reason ?? false }, () => {
  before(() => buildRenderer(), { timeout: 300_000 });
  after(() => {
    if (workDir && !process.env.HYPHAE_E2E_KEEP) rmSync(workDir, { recursive: true, force: true });
  });

  it('the renderer behaves like helm template on known cases', () => {
    const chart = join(workDir, 'fixture');
    mkdirSync(join(chart, 'templates'), { recursive: true });
    mkdirSync(join(chart, 'files'), { recursive: true });
    writeFileSync(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: fixture\nversion: 1.2.3\nappVersion: "9"\nkubeVersion: ">=1.23.0-0"\n');
    writeFileSync(join(chart, 'values.yaml'), 'big: 1048576\nsmall: 5222\nm: {b: [1, 2], a: "yes"}\ngone: {x: 1}\nkeep: {x: 1, w: 2}\n');
    writeFileSync(join(chart, 'files/a.txt'), 'hello\n');
    writeFileSync(join(chart, 'templates/_h.tpl'), '{{- define "fx.name" -}}{{ .Chart.Name }}-{{ .Release.Name }}{{- end }}\n');
    writeFileSync(join(chart, 'templates/cm.yaml'), [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: {{ include "fx.name" . }}',
      'data:',
      '  big: "{{ .Values.big }}"',
      '  small: "{{ .Values.small }}"',
      '  absent: "{{ .Values.absent }}"',
      '  tpl: {{ tpl "{{ .Release.Namespace }}" . | quote }}',
      '  hpa: "{{ .Capabilities.APIVersions.Has "autoscaling/v2" }}"',
      '  kube: "{{ .Capabilities.KubeVersion.Major }}.{{ .Capabilities.KubeVersion.Minor }}"',
      '  file: {{ .Files.Get "files/a.txt" | trim | quote }}',
      '  template: {{ .Template.Name | quote }}',
      '  gone: "{{ hasKey .Values "gone" }}"',
      '  keep: {{ toJson .Values.keep | quote }}',
      '  yaml: |',
      '    {{- toYaml .Values.m | nindent 4 }}',
      '',
    ].join('\n'));
    writeFileSync(join(chart, 'over.yaml'), 'gone: null\nkeep: {w: 3}\n');

    const out = render(['-f', join(chart, 'over.yaml'), '--name', 'rel', '--namespace', 'ns', '--kube-version', 'v1.29.4', chart]);
    assert.match(out.stdout, /^---\n# Source: fixture\/templates\/cm.yaml\n/);
    assert.equal(out.objects.length, 1);
    const cm = out.objects[0]!;
    assert.equal(cm.metadata.name, 'fixture-rel');
    assert.deepEqual(cm.data, {
      big: '1.048576e+06', // Helm reads values numbers as float64
      small: '5222',
      absent: '',
      tpl: 'ns',
      hpa: 'true',
      kube: '1.29',
      file: 'hello',
      template: 'fixture/templates/cm.yaml',
      gone: 'false', // a null in a values file deletes the default
      keep: '{"w":3,"x":1}', // maps merge
      yaml: 'a: "yes"\nb:\n- 1\n- 2\n', // sigs.k8s.io/yaml style
    });

    writeFileSync(join(chart, 'templates/req.yaml'), 'x: {{ required "value x is required" .Values.x }}\n');
    assert.match(renderFails([chart]), /execution error at \(fixture\/templates\/req\.yaml:1:6\): value x is required/);
    writeFileSync(join(chart, 'templates/req.yaml'), 'x: {{ env "HOME" }}\n');
    assert.match(renderFails([chart]), /function "env" not defined/);
    rmSync(join(chart, 'templates/req.yaml'));
    assert.match(renderFails(['--kube-version', 'v1.22.0', chart]), /chart requires kubeVersion: >=1\.23\.0-0 which is incompatible with Kubernetes v1\.22\.0/);
    writeFileSync(join(chart, 'templates/dup.yaml'), 'kind: ConfigMap\nmetadata: {name: a}\nmetadata: {name: b}\n');
    assert.match(renderFails([chart]), /dup\.yaml/);
  });

  it('Chart.yaml: apiVersion v2, NATS and Redis as optional dependencies', () => {
    const chart = parseYaml(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as {
      apiVersion: string;
      name: string;
      version: string;
      appVersion: string;
      dependencies: { name: string; repository: string; condition: string; version: string }[];
    };
    assert.equal(chart.apiVersion, 'v2');
    assert.equal(chart.name, 'hyphae');
    const dep = (n: string) => chart.dependencies.find((d) => d.name === n);
    assert.equal(dep('nats')?.repository, 'https://nats-io.github.io/k8s/helm/charts/');
    assert.equal(dep('nats')?.condition, 'nats.enabled');
    assert.match(dep('redis')?.repository ?? '', /bitnami/);
    assert.equal(dep('redis')?.condition, 'redis.enabled');
    const hyphaePkg = JSON.parse(readFileSync(join(ROOT, 'services/hyphae/package.json'), 'utf8')) as { version: string };
    assert.equal(chart.appVersion, hyphaePkg.version, 'appVersion (the default image tag) follows services/hyphae/package.json');
  });

  for (const c of CASES) {
    describe(c.title, () => {
      let r: Rendered | undefined;
      const of = (kind: string) => {
        assert.ok(r, 'the chart did not render (see "renders")');
        return r.objects.filter((o) => o.kind === kind);
      };
      const deployments = () => of('Deployment');
      const deploymentOf = (svc: string) => {
        const d = deployments().find((o) => componentOf(o) === svc);
        assert.ok(d, `no Deployment for ${svc}`);
        return d;
      };
      const containerOf = (d: K8s) => {
        const cs = spec<DeploymentSpec>(d).template.spec.containers;
        assert.equal(cs.length, 1, `${d.metadata.name}: one container`);
        return cs[0]!;
      };
      const podLabels = (d: K8s) => spec<DeploymentSpec>(d).template.metadata.labels;
      const servicesSelecting = (d: K8s) => of('Service').filter((s) => subset(spec<ServiceSpec>(s).selector, podLabels(d)));
      const selectedDeployments = (sel: Labels | undefined) => deployments().filter((d) => subset(sel, podLabels(d)));
      /** The Hyphae config file as the server loads it, per Deployment. */
      const loaded = new Map<string, HyphaeConfig>();
      let rawConfig: Record<string, unknown> = {};

      it('renders', () => {
        r = render([...c.args, CHART]);
      });

      it('objects: names, labels, no duplicates, release namespace', () => {
        const seen = new Set<string>();
        assert.ok(r, 'the chart did not render (see "renders")');
        for (const o of r.objects) {
          const id = `${o.kind}/${o.metadata?.name}`;
          assert.ok(o.apiVersion && o.kind && o.metadata?.name, `incomplete object ${id}`);
          assert.ok(!seen.has(id), `duplicate ${id}`);
          seen.add(id);
          assert.ok(o.metadata.name.startsWith(c.fullname), `${id}: name starts with ${c.fullname}`);
          assert.match(o.metadata.name, o.kind === 'Service' ? DNS_LABEL : DNS_SUBDOMAIN, `${id}: name`);
          assert.ok(o.metadata.name.length <= (o.kind === 'Service' ? 63 : 253), `${id}: name too long`);
          if (o.kind !== 'ServiceMonitor') assert.equal(o.metadata.namespace, c.namespace, `${id}: namespace`);
          const labels = o.metadata.labels ?? {};
          for (const k of ['app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/managed-by', 'helm.sh/chart']) {
            assert.ok(labels[k], `${id}: label ${k}`);
          }
          assert.equal(labels['app.kubernetes.io/instance'], c.release);
          for (const [k, v] of Object.entries(labels)) {
            assert.ok(typeof v === 'string' && v.length <= 63 && LABEL_VALUE.test(v), `${id}: label ${k}=${String(v)} is not a valid label value`);
          }
        }
        const kinds = (k: string) => of(k).length;
        assert.deepEqual(deployments().map(componentOf).sort(), [...c.components].sort());
        assert.equal(kinds('ConfigMap'), 1);
        assert.equal(kinds('HorizontalPodAutoscaler'), c.hpa ? 1 : 0);
        assert.equal(kinds('PodDisruptionBudget'), c.components.length - c.pdbDisabled.length);
        assert.equal(kinds('ServiceMonitor'), c.serviceMonitors ? c.components.length : 0);
        assert.equal(kinds('Certificate'), c.certificate ? 1 : 0);
        for (const sm of of('ServiceMonitor')) assert.equal(sm.apiVersion, 'monitoring.coreos.com/v1');
        for (const cert of of('Certificate')) assert.equal(cert.apiVersion, 'cert-manager.io/v1');
        for (const p of of('PodDisruptionBudget')) assert.equal(p.apiVersion, 'policy/v1');
        for (const h of of('HorizontalPodAutoscaler')) assert.equal(h.apiVersion, 'autoscaling/v2');
      });

      it("the ConfigMap's configuration, with each Deployment's environment, passes the server's loadConfig()", () => {
        const cms = of('ConfigMap');
        const cm = cms[0]!;
        const text = cm.data?.['hyphae.yaml'];
        assert.ok(text, 'ConfigMap has hyphae.yaml');
        rawConfig = parseYaml(text) as Record<string, unknown>;
        const dir = mkdtempSync(join(workDir, 'config-'));
        const file = join(dir, 'hyphae.yaml');
        // What the server can load today: the sections of services that do
        // not exist yet (s2s, proxy65) are checked apart below.
        const current = { ...rawConfig };
        for (const s of c.futureSections) delete current[s];
        writeFileSync(file, stringify(current));
        if (c.futureSections.length > 0) {
          const full = join(dir, 'full.yaml');
          writeFileSync(full, text);
          try {
            loadConfig({ file: full, env: {} });
          } catch (e) {
            assert.ok(e instanceof ConfigError, String(e));
            for (const issue of e.issues) {
              assert.ok(c.futureSections.includes(issue.key) && /unknown key/.test(issue.message),
                `only the sections of services that do not exist yet may be refused, got: ${issue.message}`);
            }
          }
          const sections = rawConfig as Record<string, { port?: number }>;
          if (c.futureSections.includes('s2s')) assert.equal(sections.s2s?.port, 5269);
          if (c.futureSections.includes('proxy65')) assert.equal(sections.proxy65?.port, 7777);
        }

        for (const d of deployments()) {
          const ctr = containerOf(d);
          const podName = `${d.metadata.name}-5d8f7c9b6d-x2x7z`;
          const env: Record<string, string> = {};
          for (const e of ctr.env ?? []) {
            let value: string;
            if (e.value !== undefined) value = expandK8s(String(e.value), env);
            else if (e.valueFrom?.fieldRef) {
              assert.equal(e.valueFrom.fieldRef.fieldPath, 'metadata.name', `${d.metadata.name}: ${e.name} fieldRef`);
              value = podName;
            } else if (e.valueFrom?.secretKeyRef) value = 'Placeholder-secret-0123456789';
            else assert.fail(`${d.metadata.name}: env ${e.name} has no value`);
            env[e.name] = value;
          }
          assert.equal(env.HYPHAE_NODE_ID, podName, `${d.metadata.name}: HYPHAE_NODE_ID from the pod name`);
          assert.ok(env.NATS_URL && env.REDIS_URL, `${d.metadata.name}: NATS_URL and REDIS_URL`);
          assert.ok(!/\$\(/.test(env.REDIS_URL), `${d.metadata.name}: REDIS_URL refers to an undefined variable: ${env.REDIS_URL}`);

          let cfg: HyphaeConfig;
          try {
            cfg = loadConfig({ file, env });
          } catch (e) {
            assert.fail(`${d.metadata.name}: the server refuses the rendered configuration: ${(e as Error).message}`);
          }
          loaded.set(componentOf(d), cfg);
          assert.equal(cfg.nodeId, podName);
          assert.ok(cfg.natsUrl && cfg.redisUrl, 'cluster mode needs natsUrl and redisUrl');
          if (c.natsHost) assert.equal(cfg.natsUrl, `nats://${c.natsHost}`, 'NATS_URL names the nats chart Service');
          if (c.redisHost) assert.equal(new URL(cfg.redisUrl).host, c.redisHost, 'REDIS_URL names the redis chart master Service');
          if (c.externalSecrets['hyphae-redis']?.includes('password')) {
            assert.equal(new URL(cfg.redisUrl).password, 'Placeholder-secret-0123456789', 'the external Redis password reaches the URL');
          }
          if (ctr.env?.some((e) => e.name === 'HYPHAE_HTTP__ADMIN_TOKEN')) assert.equal(cfg.http.adminToken, 'Placeholder-secret-0123456789');
        }
      });

      it('every Deployment: resources, probes on http.port, selector, Service, PDB, command, security, mounts', () => {
        const cm = of('ConfigMap')[0]!;
        for (const d of deployments()) {
          const name = d.metadata.name;
          const svc = componentOf(d);
          const ds = spec<DeploymentSpec>(d);
          const ctr = containerOf(d);
          const cfg = loaded.get(svc);
          assert.ok(cfg, `${name}: configuration loaded`);

          assert.ok(subset(ds.selector.matchLabels, podLabels(d)), `${name}: selector matches its pod labels`);
          for (const k of VOLATILE_LABELS) assert.ok(!(k in ds.selector.matchLabels), `${name}: selector must not use ${k}`);
          // A new chart version alone must not restart (drain) every pod.
          assert.ok(!('helm.sh/chart' in podLabels(d)), `${name}: helm.sh/chart in the pod template`);
          for (const other of deployments()) {
            if (other !== d) assert.ok(!subset(ds.selector.matchLabels, podLabels(other)), `${name}: selector also matches ${other.metadata.name}`);
          }

          assert.ok(ctr.resources?.requests?.cpu && ctr.resources.requests.memory, `${name}: cpu and memory requests`);
          assert.ok(ctr.resources?.limits?.memory, `${name}: memory limit`);

          const httpPort = cfg.http.port;
          assert.ok(typeof httpPort === 'number' && httpPort > 0);
          assert.equal(ctr.livenessProbe?.httpGet?.path, '/healthz', `${name}: liveness on /healthz`);
          assert.equal(ctr.readinessProbe?.httpGet?.path, '/readyz', `${name}: readiness on /readyz`);
          assert.equal(resolvePort(ctr, ctr.livenessProbe.httpGet.port), httpPort, `${name}: liveness on http.port`);
          assert.equal(resolvePort(ctr, ctr.readinessProbe.httpGet.port), httpPort, `${name}: readiness on http.port`);
          if (ctr.startupProbe) assert.equal(resolvePort(ctr, ctr.startupProbe.httpGet?.port), httpPort);

          const names = (ctr.ports ?? []).map((p) => p.name ?? '');
          assert.equal(new Set(names).size, names.length, `${name}: port names unique`);
          for (const n of names) assert.ok(n.length <= 15 && PORT_NAME.test(n) && /[a-z]/.test(n), `${name}: port name ${n}`);

          assert.ok(servicesSelecting(d).length > 0, `${name}: a Service selects it`);
          const pdbs = of('PodDisruptionBudget').filter((p) => subset(spec<PdbSpec>(p).selector.matchLabels, podLabels(d)));
          assert.equal(pdbs.length, c.pdbDisabled.includes(svc) ? 0 : 1, `${name}: PodDisruptionBudgets selecting it`);

          // `<component> --config <file>`, the file being the ConfigMap's key.
          const args = ctr.args ?? [];
          assert.equal(args[0], svc, `${name}: runs hyphae ${svc}`);
          assert.equal(args[1], '--config');
          const configPath = args[2] ?? '';
          const cmMount = mountFor(ctr, configPath);
          assert.ok(cmMount, `${name}: ${configPath} is mounted`);
          const vols = new Map((ds.template.spec.volumes ?? []).map((v) => [v.name, v]));
          assert.equal(vols.get(cmMount.name)?.configMap?.name, cm.metadata.name, `${name}: the config comes from the ConfigMap`);
          assert.equal(posix.relative(cmMount.mountPath, configPath), 'hyphae.yaml');

          // Non-root, read-only root filesystem; what the server writes is on emptyDirs.
          const pod = ds.template.spec;
          assert.ok(pod.securityContext?.runAsNonRoot || ctr.securityContext?.runAsNonRoot, `${name}: runAsNonRoot`);
          assert.equal(ctr.securityContext?.readOnlyRootFilesystem, true, `${name}: read-only root filesystem`);
          assert.equal(ctr.securityContext?.allowPrivilegeEscalation, false, `${name}: no privilege escalation`);
          for (const path of [cfg.dataDir, '/tmp']) {
            const m = mountFor(ctr, path);
            assert.ok(m && vols.get(m.name)?.emptyDir && !m.readOnly, `${name}: ${path} is a writable emptyDir`);
          }
          for (const m of ctr.volumeMounts ?? []) assert.ok(vols.has(m.name), `${name}: mount ${m.name} has a volume`);
          if (pod.serviceAccountName && pod.serviceAccountName !== 'default') {
            assert.ok(of('ServiceAccount').some((s) => s.metadata.name === pod.serviceAccountName), `${name}: ServiceAccount exists`);
          }

          // The edges read the shared certificate where the config says.
          if (svc === 'c2s' || svc === 's2s') {
            for (const file of [cfg.tls.cert, cfg.tls.key]) {
              assert.ok(file, `${name}: tls.cert and tls.key set`);
              const m = mountFor(ctr, file);
              const secret = m ? vols.get(m.name)?.secret?.secretName : undefined;
              assert.ok(secret, `${name}: ${file} is on a Secret volume`);
              assert.ok(m!.readOnly, `${name}: the TLS mount is read-only`);
              assert.ok(TLS_KEYS.includes(posix.relative(m!.mountPath, file)), `${name}: ${file} is tls.crt or tls.key of the Secret`);
            }
          }
        }
      });

      it('c2s: rolling update 0/1, grace period longer than the drain, HPA', () => {
        const d = deploymentOf('c2s');
        const ds = spec<DeploymentSpec>(d);
        const cfg = loaded.get('c2s')!;
        assert.equal(ds.strategy?.type, 'RollingUpdate');
        assert.equal(ds.strategy?.rollingUpdate?.maxUnavailable, 0);
        assert.equal(ds.strategy?.rollingUpdate?.maxSurge, 1);
        const grace = ds.template.spec.terminationGracePeriodSeconds;
        assert.ok(typeof grace === 'number' && grace * 1000 > cfg.c2s.drainGraceMs,
          `terminationGracePeriodSeconds ${String(grace)} must exceed drainGraceMs ${cfg.c2s.drainGraceMs}`);
        const hpas = of('HorizontalPodAutoscaler');
        if (c.hpa) {
          assert.equal(ds.replicas, undefined, 'with an HPA the Deployment leaves replicas to it');
        } else {
          assert.ok(typeof ds.replicas === 'number' && ds.replicas >= 1);
        }
        for (const h of hpas) {
          const hs = spec<HpaSpec>(h);
          assert.deepEqual([hs.scaleTargetRef.apiVersion, hs.scaleTargetRef.kind], ['apps/v1', 'Deployment']);
          const target = deployments().find((x) => x.metadata.name === hs.scaleTargetRef.name);
          assert.ok(target, `HPA ${h.metadata.name} targets an existing Deployment`);
          assert.equal(componentOf(target), 'c2s');
          assert.ok((hs.minReplicas ?? 1) >= 1 && (hs.minReplicas ?? 1) <= hs.maxReplicas);
          assert.ok(hs.metrics && hs.metrics.length > 0, 'HPA has metrics');
          for (const m of hs.metrics) {
            if (m.type === 'Resource' && m.resource) {
              assert.ok(containerOf(target).resources?.requests?.[m.resource.name], `utilization of ${m.resource.name} needs a request`);
            }
          }
        }
      });

      it('PDBs, Services and ServiceMonitors select existing Deployments', () => {
        for (const p of of('PodDisruptionBudget')) {
          const ps = spec<PdbSpec>(p);
          const targets = selectedDeployments(ps.selector.matchLabels);
          assert.equal(targets.length, 1, `PDB ${p.metadata.name} selects exactly one Deployment`);
          assert.ok((ps.minAvailable === undefined) !== (ps.maxUnavailable === undefined), `PDB ${p.metadata.name}: minAvailable or maxUnavailable`);
          const t = targets[0]!;
          const replicas = spec<DeploymentSpec>(t).replicas
            ?? spec<HpaSpec>(of('HorizontalPodAutoscaler').find((h) => spec<HpaSpec>(h).scaleTargetRef.name === t.metadata.name)!).minReplicas ?? 1;
          if (typeof ps.minAvailable === 'number') {
            assert.ok(ps.minAvailable < replicas, `PDB ${p.metadata.name}: minAvailable ${ps.minAvailable} would block every eviction of ${replicas} replicas`);
          }
          if (typeof ps.maxUnavailable === 'number') assert.ok(ps.maxUnavailable >= 1);
        }
        for (const s of of('Service')) {
          const ss = spec<ServiceSpec>(s);
          const targets = selectedDeployments(ss.selector);
          assert.equal(targets.length, 1, `Service ${s.metadata.name} selects exactly one Deployment`);
          for (const port of ss.ports) {
            const target = resolvePort(containerOf(targets[0]!), port.targetPort ?? port.port);
            assert.ok(target !== undefined, `Service ${s.metadata.name} port ${port.name}: targetPort ${String(port.targetPort)} is a containerPort`);
            if (port.nodePort !== undefined) {
              assert.notEqual(ss.type, 'ClusterIP');
              assert.ok(port.nodePort >= 30000 && port.nodePort <= 32767, `nodePort ${port.nodePort} in the default range`);
            }
          }
        }
        for (const m of of('ServiceMonitor')) {
          const ms = spec<ServiceMonitorSpec>(m);
          assert.ok(ms.namespaceSelector?.matchNames?.includes(c.namespace), `${m.metadata.name}: looks in the release namespace`);
          const services = of('Service').filter((s) => subset(ms.selector.matchLabels, s.metadata.labels));
          assert.equal(services.length, 1, `${m.metadata.name} selects one Service`);
          const ss = spec<ServiceSpec>(services[0]!);
          assert.equal(ss.type ?? 'ClusterIP', 'ClusterIP');
          const target = selectedDeployments(ss.selector)[0];
          assert.ok(target, `${m.metadata.name}: its Service selects a Deployment`);
          for (const ep of ms.endpoints) {
            const port = ss.ports.find((p) => p.name === ep.port);
            assert.ok(port, `${m.metadata.name}: endpoint port ${ep.port} exists on the Service`);
            assert.equal(ep.path ?? '/metrics', '/metrics');
            // Hyphae's series carry service="c2s"… and node=…, which the
            // dashboard filters on; without honorLabels Prometheus would
            // rename them exported_service and put the Kubernetes Service name in.
            assert.equal(ep.honorLabels, true, `${m.metadata.name}: honorLabels`);
            assert.equal(resolvePort(containerOf(target), port.targetPort ?? port.port), loaded.get(componentOf(target))!.http.port);
          }
        }
        if (c.serviceMonitors) {
          for (const d of deployments()) {
            assert.ok(of('ServiceMonitor').some((m) => componentOf(m) === componentOf(d)), `a ServiceMonitor for ${d.metadata.name}`);
          }
        }
      });

      it('every port the configuration uses is a containerPort and exposed by a Service', () => {
        const exposed = (svc: string, port: number, types: string[]) => {
          const d = deploymentOf(svc);
          const ctr = containerOf(d);
          assert.ok(ctr.ports?.some((p) => p.containerPort === port), `${d.metadata.name}: containerPort ${port}`);
          const via = servicesSelecting(d).filter((s) =>
            types.includes(spec<ServiceSpec>(s).type ?? 'ClusterIP') &&
            spec<ServiceSpec>(s).ports.some((p) => resolvePort(ctr, p.targetPort ?? p.port) === port));
          assert.ok(via.length > 0, `${d.metadata.name}: port ${port} exposed by a ${types.join('/')} Service`);
        };
        const cfg = loaded.get('c2s')!;
        exposed('c2s', cfg.c2s.port, [c.clientServiceType]);
        if (cfg.c2s.directTlsPort !== null) exposed('c2s', cfg.c2s.directTlsPort, [c.clientServiceType]);
        else {
          // Disabled direct TLS leaves nothing listening on 5223: no port for it.
          assert.ok(!containerOf(deploymentOf('c2s')).ports?.some((p) => p.name === 'xmpps-client'));
        }
        for (const d of deployments()) exposed(componentOf(d), loaded.get(componentOf(d))!.http.port!, ['ClusterIP']);
        const sections = rawConfig as Record<string, { port?: number } | undefined>;
        for (const s of c.futureSections) exposed(s, sections[s]!.port!, [c.clientServiceType]);
        // Metrics, health and the admin API stay inside the cluster.
        for (const s of of('Service')) {
          const ss = spec<ServiceSpec>(s);
          if ((ss.type ?? 'ClusterIP') === 'ClusterIP') continue;
          const ctr = containerOf(selectedDeployments(ss.selector)[0]!);
          for (const p of ss.ports) {
            assert.notEqual(resolvePort(ctr, p.targetPort ?? p.port), loaded.get(componentOf(s))?.http.port, `${s.metadata.name} must not expose the http port`);
          }
          assert.equal(ss.type, c.clientServiceType);
        }
      });

      it('the admin API: loopback, its own port, not exposed; every container has its token from a Secret', () => {
        for (const d of deployments()) {
          const ctr = containerOf(d);
          const cfg = loaded.get(componentOf(d))!;
          assert.ok(isLoopbackHost(cfg.http.adminHost), `${d.metadata.name}: admin API on ${cfg.http.adminHost}`);
          assert.equal(typeof cfg.http.adminPort, 'number', `${d.metadata.name}: the admin API has its own listener`);
          assert.notEqual(cfg.http.adminPort, cfg.http.port);
          assert.notEqual(cfg.http.host, cfg.http.adminHost, 'metrics and probes stay reachable on another address');
          assert.ok(!ctr.ports?.some((p) => p.containerPort === cfg.http.adminPort), `${d.metadata.name}: the admin port is no containerPort`);
          for (const svc of servicesSelecting(d)) {
            for (const p of spec<ServiceSpec>(svc).ports) {
              assert.notEqual(p.targetPort, cfg.http.adminPort, `${svc.metadata.name} must not reach the admin API`);
            }
          }
          const ref = ctr.env?.find((e) => e.name === 'HYPHAE_HTTP__ADMIN_TOKEN')?.valueFrom?.secretKeyRef;
          assert.deepEqual(ref, { name: c.adminSecret.name, key: 'token' }, `${d.metadata.name}: HYPHAE_HTTP__ADMIN_TOKEN from the Secret`);
          assert.ok(cfg.http.adminToken && cfg.http.adminToken.length >= 16, 'the server loads the token');
        }
        const generated = of('Secret').filter((x) => x.metadata.name === c.adminSecret.name);
        assert.equal(generated.length, c.adminSecret.generated ? 1 : 0, 'the chart generates the Secret only without adminToken.existingSecret');
        for (const g of generated) {
          const token = Buffer.from(g.data?.token ?? '', 'base64').toString('utf8');
          assert.match(token, /^[A-Za-z0-9]{40}$/, 'a 40-character random token');
          assert.ok(!(rawConfig.http as Record<string, unknown> | undefined)?.adminToken, 'the token is not in the ConfigMap');
        }
      });

      it('every Secret referenced is created by the chart or named by the values', () => {
        const created = new Map<string, string[]>();
        for (const s of of('Secret')) created.set(s.metadata.name, Object.keys({ ...(s.data ?? {}), ...((s as { stringData?: Labels }).stringData ?? {}) }));
        for (const cert of of('Certificate')) {
          const cs = spec<CertificateSpec>(cert);
          created.set(cs.secretName, TLS_KEYS);
          assert.ok(cs.issuerRef.name, 'Certificate has an issuer');
          const domains = loaded.get('c2s')!.domains;
          for (const dom of domains) assert.ok(cs.dnsNames.includes(dom), `the certificate names ${dom}`);
        }
        const known = (name: string) => created.get(name) ?? c.externalSecrets[name];
        const used = new Set<string>();
        for (const d of deployments()) {
          const pod = spec<DeploymentSpec>(d).template.spec;
          for (const v of pod.volumes ?? []) {
            if (v.secret) {
              const keys = known(v.secret.secretName);
              assert.ok(keys, `${d.metadata.name}: volume Secret ${v.secret.secretName} is neither created nor named by the values`);
              used.add(v.secret.secretName);
            }
            if (v.configMap) assert.ok(of('ConfigMap').some((m) => m.metadata.name === v.configMap!.name), `${d.metadata.name}: ConfigMap ${v.configMap.name}`);
          }
          for (const e of containerOf(d).env ?? []) {
            const ref = e.valueFrom?.secretKeyRef;
            if (ref) {
              const keys = known(ref.name);
              assert.ok(keys, `${d.metadata.name}: env ${e.name} refers to Secret ${ref.name}, neither created nor named by the values`);
              assert.ok(keys.includes(ref.key), `${d.metadata.name}: env ${e.name}: key ${ref.key} of ${ref.name}`);
              used.add(ref.name);
            }
            const cmRef = e.valueFrom?.configMapKeyRef;
            if (cmRef) assert.ok(of('ConfigMap').some((m) => m.metadata.name === cmRef.name && cmRef.key in (m.data ?? {})));
          }
        }
        for (const name of [...Object.keys(c.externalSecrets), ...created.keys()]) assert.ok(used.has(name), `Secret ${name} is used`);
      });
    });
  }

  it('values that cannot work fail the render, naming the value', () => {
    const cases: [string[], RegExp][] = [
      [['--set', 'tls.certManager.enabled=true'], /tls\.certManager\.issuerRef\.name is required/],
      [['--set', 'nats.enabled=false'], /externalNats\.url/],
      [['--set', 'redis.enabled=false'], /externalRedis\.url/],
      [['--set', 'config.http.port=null'], /config\.http\.port must be a fixed port/],
      [['--set', 'config.http.host=127.0.0.1'], /config\.http\.host 127\.0\.0\.1 is loopback/],
      [['--set', 'config.c2s.port=0'], /config\.c2s\.port/],
      [['--set', 'c2s.terminationGracePeriodSeconds=5'], /c2s\.terminationGracePeriodSeconds must exceed config\.c2s\.drainGraceMs/],
      [['--set', 'config.nodeId=x'], /config\.nodeId is set by the chart/],
      [['--set', 'config.http.adminToken=0123456789abcdefgh'], /adminToken\.existingSecret/],
      [['--set', 'config.http.adminPort=0'], /config\.http\.adminPort must be a fixed port/],
      [['--set', 'config.http.adminPort=5280'], /config\.http\.adminPort 5280 is config\.http\.port/],
      [['--set', 'c2s.pdb.minAvailable=1'], /c2s\.pdb: set minAvailable or maxUnavailable, not both/],
      [['--set', 'c2s.service.type=Ingress'], /c2s\.service\.type must be/],
      [['--set', 'c2s.autoscaling.targetCPUUtilizationPercentage=null'], /c2s\.autoscaling: set targetCPUUtilizationPercentage/],
      [['--kube-version', 'v1.22.0'], /requires kubeVersion/],
    ];
    for (const [args, message] of cases) {
      assert.match(renderFails([...args, CHART]), message, `render ${args.join(' ')}`);
    }
  });

  it('the generated admin token survives upgrades: the template reads the existing Secret back (lookup) before generating one', () => {
    const tpl = readFileSync(join(CHART, 'templates/admin-secret.yaml'), 'utf8');
    assert.match(tpl, /lookup "v1" "Secret" \.Release\.Namespace \$name/);
    assert.match(tpl, /randAlphaNum 40/);
    // helm template has no cluster (lookup is empty): each render generates a new token.
    const token = (r: Rendered) => r.objects.find((o) => o.kind === 'Secret' && o.metadata.name === 'release-name-hyphae-admin')?.data?.token;
    assert.notEqual(token(render([CHART])), token(render([CHART])));
  });

  it("values.yaml documents every key; the README's values table covers them", () => {
    const doc = parseDocument(readFileSync(join(CHART, 'values.yaml'), 'utf8'));
    assert.deepEqual(doc.errors, []);
    // Blocks handed to Kubernetes (or to cert-manager) as they are: their
    // own keys need no comment of their own.
    const verbatim = ['podSecurityContext', 'securityContext', 'probes.*', '*.strategy', '*.resources', '*.autoscaling.behavior',
      'tls.certManager.privateKey', '*.service.nodePorts'];
    const matches = (pattern: string, path: string[]) => {
      const p = pattern.split('.');
      return p.length <= path.length && p.every((seg, i) => seg === '*' || seg === path[i]);
    };
    const undocumented: string[] = [];
    const keys: string[] = [];
    const isVerbatim = (path: string[]) => verbatim.some((v) => matches(v, path) && v.split('.').length === path.length);
    const walk = (map: YAMLMap, path: string[], exempt: boolean): void => {
      map.items.forEach((pair, i) => {
        const full = [...path, isScalar(pair.key) ? String(pair.key.value) : String(pair.key)];
        const keyNode = pair.key as { commentBefore?: string | null; comment?: string | null };
        const valueNode = pair.value as { comment?: string | null } | null;
        const commented = !!(keyNode.commentBefore || (i === 0 && map.commentBefore) || valueNode?.comment || keyNode.comment);
        const block = isMap(pair.value) && pair.value.items.length > 0;
        if (block && isVerbatim(full)) {
          if (!exempt) keys.push(full.join('.'));
          if (!commented && !exempt) undocumented.push(full.join('.'));
          walk(pair.value as YAMLMap, full, true);
        } else if (block) {
          // A section: documented through its keys (its own comment is optional).
          walk(pair.value as YAMLMap, full, exempt);
        } else if (!exempt) {
          keys.push(full.join('.'));
          if (!commented) undocumented.push(full.join('.'));
        }
      });
    };
    assert.ok(isMap(doc.contents));
    walk(doc.contents, [], false);
    assert.deepEqual(undocumented, [], 'keys without a comment in values.yaml');

    const readme = readFileSync(join(CHART, 'README.md'), 'utf8');
    const rows = [...readme.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!);
    assert.ok(rows.length > 20, 'README.md has a values table');
    const values = parseYaml(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Record<string, unknown>;
    const has = (path: string) => {
      let node: unknown = values;
      for (const seg of path.split('.')) {
        if (typeof node !== 'object' || node === null || !(seg in node)) return false;
        node = (node as Record<string, unknown>)[seg];
      }
      return true;
    };
    for (const row of rows) assert.ok(has(row), `README.md documents ${row}, which values.yaml does not have`);
    for (const key of keys) {
      assert.ok(rows.some((row) => key === row || key.startsWith(`${row}.`)), `README.md's values table does not cover ${key}`);
    }
    assert.match(readme, /\]\(\.\.\/\.\.\/deploy\/grafana\/dashboards\/hyphae\.json\)/, 'README.md links the Grafana dashboard');
  });

  it("config defaults are the server's, except the chart's deliberate choices", () => {
    const values = parseYaml(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as { config: Record<string, unknown> };
    const server = defaultConfig() as unknown as Record<string, unknown>;
    const deliberate = new Set(['domains', 'http.host', 'http.adminPort', 'c2s.host', 'c2s.drainGraceMs', 'registration.open']);
    const walk = (chart: Record<string, unknown>, srv: Record<string, unknown>, path: string[]) => {
      for (const [k, v] of Object.entries(chart)) {
        const key = [...path, k].join('.');
        assert.ok(k in srv, `config.${key} is not a server key`);
        if (typeof v === 'object' && v !== null && !Array.isArray(v)) walk(v as Record<string, unknown>, srv[k] as Record<string, unknown>, [...path, k]);
        else if (deliberate.has(key)) assert.notDeepEqual(v, srv[k], `config.${key} is listed as a deliberate difference but equals the server default`);
        else assert.deepEqual(v, srv[k], `config.${key}: chart default ${JSON.stringify(v)}, server default ${JSON.stringify(srv[k])}`);
      }
    };
    walk(values.config, server, []);
  });
});
