// Command render renders a Helm chart offline, the way `helm template` does,
// for the chart tests (test/e2e/helm-chart.test.ts). There is no helm binary
// and no network in CI, so this reimplements the parts of Helm 3's engine the
// chart relies on, on top of Go's text/template, sprig and go-yaml (all from
// Debian packages: golang-go, golang-github-masterminds-sprig-dev,
// golang-gopkg-yaml.v3-dev, which pulls golang-gopkg-yaml.v2-dev).
//
// Build (GOPATH mode, offline):
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o render test/helm/render.go
//
// Usage (flags as helm template's):
//
//	render [-f values.yaml]... [--set a.b=c]... [--set-string a.b=c]...
//	       [--name release-name] [--namespace default] [--is-upgrade]
//	       [--kube-version v1.30.0] [-a|--api-versions group/version]...
//	       [-s|--show-only templates/x.yaml]... [--notes] CHART_DIR
//
// What it does like Helm 3 (engine, chartutil, releaseutil):
//   - Chart.yaml loaded into Helm's Metadata (.Chart.Name, .Chart.AppVersion…),
//     validated (apiVersion, name, SemVer version, type) and its kubeVersion
//     constraint checked against --kube-version;
//   - .Values: values.yaml coalesced with the -f files (later files win, maps
//     merge, lists are replaced, a null deletes the default) and --set; YAML is
//     read like sigs.k8s.io/yaml does (YAML → JSON), so every number in a
//     values file is a float64, exactly as in Helm ({{ 1048576 }} prints
//     1.048576e+06; use toYaml or int), and YAML 1.1 scalars apply (y, yes,
//     on are booleans, also as keys);
//   - .Release (Name, Namespace, Service, IsInstall, IsUpgrade, Revision),
//     .Capabilities (KubeVersion.Version/Major/Minor, APIVersions.Has,
//     HelmVersion), .Files (Get, GetBytes, Glob, Lines, AsConfig, AsSecrets;
//     every file outside templates/ and charts/ but Chart.yaml/values.yaml,
//     minus .helmignore patterns), .Template (Name, BasePath), .Subcharts ({});
//   - functions: sprig's TxtFuncMap without env/expandenv, getHostByName → "",
//     and Helm's include (with its recursion limit), tpl, required, fail,
//     toYaml, mustToYaml, fromYaml, fromYamlArray, toJson, mustToJson,
//     fromJson, fromJsonArray, lookup (always an empty map, as in helm
//     template); missingkey=zero and "<no value>" removed from the output;
//   - every file under templates/ is parsed into one template set (Helm's
//     order: deepest paths first, then by name, so every define in a _*.tpl is
//     visible everywhere); files whose name starts with "_" are not rendered;
//     NOTES.txt is rendered (its errors count) but printed only with --notes;
//   - output: the rendered files split on "---", empty documents dropped, each
//     document parsed (a YAML error names the template), sorted in Helm's
//     install order by kind then by template path, hooks last, each printed as
//     "---\n# Source: <chart>/templates/<file>\n<document>\n".
//
// Stricter than helm template: a rendered document with a duplicate mapping
// key is an error (go-yaml v3 decoding), since the API server would take one
// of the two values silently.
//
// Not done: dependency charts (charts/ and Chart.yaml dependencies) are NOT
// rendered — they are listed on stderr with their condition; values.schema.json
// is not validated; toToml/fromToml are not available (they fail); --set
// supports a.b.c=value, comma-separated assignments and {a,b} lists but not
// list indexes (a[0]=x); no crds/ handling; no API server validation.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	// GOPATH mode: Debian installs these without the /v3 suffix in the path.
	"github.com/Masterminds/semver"
	"github.com/Masterminds/sprig"
	yaml2 "gopkg.in/yaml.v2"
	yaml3 "gopkg.in/yaml.v3"
)

// ---------------------------------------------------------------------------
// Chart metadata (helm.sh/helm/v3/pkg/chart.Metadata)

type Maintainer struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	URL   string `json:"url,omitempty"`
}

type Dependency struct {
	Name         string        `json:"name"`
	Version      string        `json:"version,omitempty"`
	Repository   string        `json:"repository"`
	Condition    string        `json:"condition,omitempty"`
	Tags         []string      `json:"tags,omitempty"`
	Enabled      bool          `json:"enabled,omitempty"`
	ImportValues []interface{} `json:"import-values,omitempty"`
	Alias        string        `json:"alias,omitempty"`
}

type Metadata struct {
	Name         string            `json:"name,omitempty"`
	Home         string            `json:"home,omitempty"`
	Sources      []string          `json:"sources,omitempty"`
	Version      string            `json:"version,omitempty"`
	Description  string            `json:"description,omitempty"`
	Keywords     []string          `json:"keywords,omitempty"`
	Maintainers  []*Maintainer     `json:"maintainers,omitempty"`
	Icon         string            `json:"icon,omitempty"`
	APIVersion   string            `json:"apiVersion,omitempty"`
	Condition    string            `json:"condition,omitempty"`
	Tags         string            `json:"tags,omitempty"`
	AppVersion   string            `json:"appVersion,omitempty"`
	Deprecated   bool              `json:"deprecated,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	KubeVersion  string            `json:"kubeVersion,omitempty"`
	Dependencies []*Dependency     `json:"dependencies,omitempty"`
	Type         string            `json:"type,omitempty"`
}

func (m *Metadata) validate() error {
	if m.APIVersion == "" {
		return errors.New("chart.metadata.apiVersion is required")
	}
	if m.APIVersion != "v1" && m.APIVersion != "v2" {
		return fmt.Errorf("chart.metadata.apiVersion %q is invalid", m.APIVersion)
	}
	if m.Name == "" {
		return errors.New("chart.metadata.name is required")
	}
	if m.Version == "" {
		return errors.New("chart.metadata.version is required")
	}
	if _, err := semver.StrictNewVersion(m.Version); err != nil {
		if _, err2 := semver.NewVersion(m.Version); err2 != nil {
			return fmt.Errorf("chart.metadata.version %q is invalid", m.Version)
		}
	}
	if m.Type != "" && m.Type != "application" && m.Type != "library" {
		return errors.New("chart.metadata.type must be application or library")
	}
	if m.APIVersion == "v1" && len(m.Dependencies) > 0 {
		return errors.New("dependencies are not valid in the Chart file with apiVersion v1")
	}
	for _, d := range m.Dependencies {
		if d == nil || d.Name == "" {
			return errors.New("dependencies must have a name")
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// Capabilities (helm.sh/helm/v3/pkg/chartutil.Capabilities)

type KubeVersion struct {
	Version string
	Major   string
	Minor   string
}

func (kv *KubeVersion) String() string     { return kv.Version }
func (kv *KubeVersion) GitVersion() string { return kv.Version }

type VersionSet []string

func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

type HelmVersion struct {
	Version      string
	GitCommit    string
	GitTreeState string
	GoVersion    string
}

type Capabilities struct {
	APIVersions VersionSet
	KubeVersion KubeVersion
	HelmVersion HelmVersion
}

// The built-in group/versions of a current Kubernetes (what Helm's
// DefaultVersionSet lists from client-go's scheme); CRD groups such as
// monitoring.coreos.com/v1 are absent unless passed with --api-versions.
var defaultAPIVersions = []string{
	"v1", "admissionregistration.k8s.io/v1", "apiextensions.k8s.io/v1", "apiregistration.k8s.io/v1",
	"apps/v1", "authentication.k8s.io/v1", "authorization.k8s.io/v1", "autoscaling/v1", "autoscaling/v2",
	"batch/v1", "certificates.k8s.io/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1",
	"events.k8s.io/v1", "flowcontrol.apiserver.k8s.io/v1", "flowcontrol.apiserver.k8s.io/v1beta3",
	"networking.k8s.io/v1", "node.k8s.io/v1", "policy/v1", "rbac.authorization.k8s.io/v1",
	"scheduling.k8s.io/v1", "storage.k8s.io/v1",
}

// ---------------------------------------------------------------------------
// YAML the way Helm reads and writes it (sigs.k8s.io/yaml: YAML ↔ JSON)

// jsonCompatible turns go-yaml v2's map[interface{}]interface{} trees into
// JSON-encodable ones (keys become strings, as sigs.k8s.io/yaml does).
func jsonCompatible(v interface{}) interface{} {
	switch t := v.(type) {
	case map[interface{}]interface{}:
		m := make(map[string]interface{}, len(t))
		for k, val := range t {
			var key string
			switch kk := k.(type) {
			case string:
				key = kk
			case float64:
				key = strconv.FormatFloat(kk, 'g', -1, 64)
			case nil:
				key = "null"
			default:
				key = fmt.Sprint(kk)
			}
			m[key] = jsonCompatible(val)
		}
		return m
	case []interface{}:
		out := make([]interface{}, len(t))
		for i, x := range t {
			out[i] = jsonCompatible(x)
		}
		return out
	default:
		return v
	}
}

// yamlUnmarshal is sigs.k8s.io/yaml.Unmarshal: YAML (go-yaml v2) → JSON →
// encoding/json into target (so numbers in interface{} become float64).
func yamlUnmarshal(data []byte, target interface{}) error {
	var raw interface{}
	if err := yaml2.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("error converting YAML to JSON: %v", err)
	}
	j, err := json.Marshal(jsonCompatible(raw))
	if err != nil {
		return fmt.Errorf("error converting YAML to JSON: %v", err)
	}
	if err := json.Unmarshal(j, target); err != nil {
		return fmt.Errorf("error unmarshaling JSON: while decoding JSON: %v", err)
	}
	return nil
}

// yamlMarshal is sigs.k8s.io/yaml.Marshal: encoding/json, then JSON → YAML
// with go-yaml v2 (keys sorted, sequences not indented under their key).
func yamlMarshal(v interface{}) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("error marshaling into JSON: %v", err)
	}
	var obj interface{}
	if err := yaml2.Unmarshal(j, &obj); err != nil {
		return nil, fmt.Errorf("error converting JSON to YAML: %v", err)
	}
	return yaml2.Marshal(obj)
}

func toYAML(v interface{}) string {
	data, err := yamlMarshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func mustToYAML(v interface{}) (string, error) {
	data, err := yamlMarshal(v)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(string(data), "\n"), nil
}

func fromYAML(str string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yamlUnmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromYAMLArray(str string) []interface{} {
	a := []interface{}{}
	if err := yamlUnmarshal([]byte(str), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func mustToJSON(v interface{}) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(data), nil
}

func fromJSON(str string) map[string]interface{} {
	m := make(map[string]interface{})
	if err := json.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(str string) []interface{} {
	a := []interface{}{}
	if err := json.Unmarshal([]byte(str), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

// ---------------------------------------------------------------------------
// Values (chartutil.Values, ReadValues, MergeValues, CoalesceValues)

// Values is chartutil.Values: the type of .Values, of the top-level data and
// of .Template. Being a named map type matters: sprig's dig, for one, refuses
// it (dig "a" .Values fails in Helm too), while nested maps are plain.
type Values map[string]interface{}

func (v Values) YAML() (string, error) {
	b, err := yamlMarshal(v)
	return string(b), err
}

func (v Values) AsMap() map[string]interface{} {
	if len(v) == 0 {
		return map[string]interface{}{}
	}
	return v
}

func (v Values) Table(name string) (Values, error) {
	table := v
	for _, n := range strings.Split(name, ".") {
		next, ok := table[n].(map[string]interface{})
		if !ok {
			if nv, ok2 := table[n].(Values); ok2 {
				next = nv
			} else {
				return Values{}, fmt.Errorf("no table named %q", name)
			}
		}
		table = next
	}
	return table, nil
}

func (v Values) PathValue(p string) (interface{}, error) {
	if val, ok := pathValue(v, p); ok {
		return val, nil
	}
	return nil, fmt.Errorf("%v is not a value", p)
}

func readValues(data []byte) (map[string]interface{}, error) {
	vals := map[string]interface{}{}
	if len(bytes.TrimSpace(data)) == 0 {
		return vals, nil
	}
	if err := yamlUnmarshal(data, &vals); err != nil {
		return nil, err
	}
	if vals == nil {
		vals = map[string]interface{}{}
	}
	return vals, nil
}

// mergeMaps merges b into a (b wins, maps merged recursively): how Helm
// combines several -f files and --set before coalescing with the chart's.
func mergeMaps(a, b map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if vm, ok := v.(map[string]interface{}); ok {
			if bv, ok := out[k]; ok {
				if bm, ok := bv.(map[string]interface{}); ok {
					out[k] = mergeMaps(bm, vm)
					continue
				}
			}
		}
		out[k] = v
	}
	return out
}

// coalesce fills dst (user values) from src (chart defaults): missing keys
// are copied, maps recurse, and a user null deletes the default.
func coalesce(dst, src map[string]interface{}, prefix string) map[string]interface{} {
	if dst == nil {
		dst = map[string]interface{}{}
	}
	for key, val := range src {
		full := strings.TrimPrefix(prefix+"."+key, ".")
		if value, ok := dst[key]; ok {
			if value == nil {
				delete(dst, key)
				continue
			}
			dv, dok := value.(map[string]interface{})
			sv, sok := val.(map[string]interface{})
			if dok && sok {
				dst[key] = coalesce(dv, sv, full)
			} else if dok != sok && val != nil {
				fmt.Fprintf(os.Stderr, "render: warning: cannot overwrite table with non table for %s (%v)\n", full, val)
			}
		} else {
			dst[key] = deepCopy(val)
		}
	}
	return dst
}

func deepCopy(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		m := make(map[string]interface{}, len(t))
		for k, x := range t {
			m[k] = deepCopy(x)
		}
		return m
	case []interface{}:
		a := make([]interface{}, len(t))
		for i, x := range t {
			a[i] = deepCopy(x)
		}
		return a
	default:
		return v
	}
}

// pathValue looks a dotted path up in the values ("nats.enabled").
func pathValue(vals map[string]interface{}, p string) (interface{}, bool) {
	var cur interface{} = vals
	for _, seg := range strings.Split(p, ".") {
		m, ok := cur.(map[string]interface{})
		if !ok {
			return nil, false
		}
		cur, ok = m[seg]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

// --set (a subset of Helm's strvals): a.b.c=v, comma-separated, {x,y} lists.
func parseSet(expr string, typed bool, into map[string]interface{}) error {
	for _, assignment := range splitUnescaped(expr, ',', true) {
		eq := strings.IndexByte(assignment, '=')
		if eq <= 0 {
			return fmt.Errorf("--set %q: expected key=value", assignment)
		}
		key, raw := assignment[:eq], assignment[eq+1:]
		if strings.Contains(key, "[") {
			return fmt.Errorf("--set %q: list indexes are not supported by this renderer", assignment)
		}
		var value interface{}
		if strings.HasPrefix(raw, "{") && strings.HasSuffix(raw, "}") {
			items := []interface{}{}
			inner := raw[1 : len(raw)-1]
			if inner != "" {
				for _, it := range splitUnescaped(inner, ',', false) {
					items = append(items, typedValue(it, typed))
				}
			}
			value = items
		} else {
			value = typedValue(strings.ReplaceAll(raw, `\,`, ","), typed)
		}
		segs := strings.Split(key, ".")
		node := into
		for _, s := range segs[:len(segs)-1] {
			next, ok := node[s].(map[string]interface{})
			if !ok {
				next = map[string]interface{}{}
				node[s] = next
			}
			node = next
		}
		node[segs[len(segs)-1]] = value
	}
	return nil
}

// splitUnescaped splits on sep outside {…} (when braces) and not after '\'.
func splitUnescaped(s string, sep byte, braces bool) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\':
			i++
		case braces && s[i] == '{':
			depth++
		case braces && s[i] == '}':
			depth--
		case s[i] == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func typedValue(val string, typed bool) interface{} {
	if !typed {
		return val
	}
	switch strings.ToLower(val) {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if val == "0" {
		return int64(0)
	}
	if len(val) != 0 && val[0] != '0' {
		if iv, err := strconv.ParseInt(val, 10, 64); err == nil {
			return iv
		}
	}
	return val
}

// ---------------------------------------------------------------------------
// .Files (helm.sh/helm/v3/pkg/engine.files)

type Files map[string][]byte

func (f Files) GetBytes(name string) []byte {
	if v, ok := f[name]; ok {
		return v
	}
	return []byte{}
}

func (f Files) Get(name string) string { return string(f.GetBytes(name)) }

func (f Files) Glob(pattern string) Files {
	out := Files{}
	for name, content := range f {
		if globMatch(pattern, name) {
			out[name] = content
		}
	}
	return out
}

func (f Files) AsConfig() string {
	if len(f) == 0 {
		return ""
	}
	m := make(map[string]string, len(f))
	for k, v := range f {
		m[path.Base(k)] = string(v)
	}
	return toYAML(m)
}

func (f Files) AsSecrets() string {
	if len(f) == 0 {
		return ""
	}
	m := make(map[string]string, len(f))
	for k, v := range f {
		m[path.Base(k)] = base64.StdEncoding.EncodeToString(v)
	}
	return toYAML(m)
}

func (f Files) Lines(p string) []string {
	if f == nil || f[p] == nil {
		return []string{}
	}
	s := string(f[p])
	if len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return strings.Split(s, "\n")
}

// globMatch: path.Match per segment, with "**" matching any number of them
// (Helm uses gobwas/glob with '/' as the separator).
func globMatch(pattern, name string) bool {
	return globSegs(strings.Split(pattern, "/"), strings.Split(name, "/"))
}

func globSegs(p, n []string) bool {
	if len(p) == 0 {
		return len(n) == 0
	}
	if p[0] == "**" {
		for i := 0; i <= len(n); i++ {
			if globSegs(p[1:], n[i:]) {
				return true
			}
		}
		return false
	}
	if len(n) == 0 {
		return false
	}
	if ok, _ := path.Match(p[0], n[0]); !ok {
		return false
	}
	return globSegs(p[1:], n[1:])
}

// ---------------------------------------------------------------------------
// Loading the chart directory

type chartDir struct {
	meta      *Metadata
	values    map[string]interface{}
	templates map[string]string // "templates/x.yaml" → text
	files     Files
	subcharts []string
}

func loadIgnore(dir string) []string {
	data, err := os.ReadFile(filepath.Join(dir, ".helmignore"))
	if err != nil {
		return nil
	}
	var pats []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pats = append(pats, line)
	}
	return pats
}

func ignored(pats []string, rel string, isDir bool) bool {
	base := path.Base(rel)
	for _, p := range pats {
		neg := strings.HasPrefix(p, "!")
		if neg {
			continue // negations are rare; not supported
		}
		dirOnly := strings.HasSuffix(p, "/")
		p = strings.TrimSuffix(p, "/")
		if dirOnly && !isDir {
			continue
		}
		if strings.Contains(p, "/") {
			if ok, _ := path.Match(strings.TrimPrefix(p, "/"), rel); ok {
				return true
			}
		} else if ok, _ := path.Match(p, base); ok {
			return true
		}
	}
	return false
}

func loadChart(dir string) (*chartDir, error) {
	c := &chartDir{templates: map[string]string{}, files: Files{}}
	raw, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, fmt.Errorf("Chart.yaml file is missing: %v", err)
	}
	c.meta = &Metadata{}
	if err := yamlUnmarshal(raw, c.meta); err != nil {
		return nil, fmt.Errorf("cannot load Chart.yaml: %v", err)
	}
	if err := c.meta.validate(); err != nil {
		return nil, fmt.Errorf("validation: %v", err)
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "values.yaml")); err == nil {
		if c.values, err = readValues(raw); err != nil {
			return nil, fmt.Errorf("cannot load values.yaml: %v", err)
		}
	} else {
		c.values = map[string]interface{}{}
	}
	pats := loadIgnore(dir)
	err = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if ignored(pats, rel, info.IsDir()) {
			if info.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if info.IsDir() {
			if rel == "charts" {
				entries, _ := os.ReadDir(p)
				for _, e := range entries {
					c.subcharts = append(c.subcharts, e.Name())
				}
				return filepath.SkipDir
			}
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(rel, "templates/"):
			// Helm ignores hidden files in templates/.
			if !strings.HasPrefix(path.Base(rel), ".") {
				c.templates[rel] = string(data)
			}
		case rel == "Chart.yaml" || rel == "values.yaml" || rel == "Chart.lock" || rel == "values.schema.json" ||
			rel == "requirements.yaml" || rel == "requirements.lock" || rel == ".helmignore":
		case strings.HasPrefix(rel, "crds/"):
		default:
			c.files[rel] = data
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ---------------------------------------------------------------------------
// The engine (helm.sh/helm/v3/pkg/engine)

const recursionMaxNums = 1000

type engine struct {
	root          *template.Template
	includedNames map[string]int
}

func baseFuncMap() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	extra := template.FuncMap{
		"toToml": func(interface{}) (string, error) { return "", errors.New("toToml is not supported by this renderer") },
		"fromToml": func(string) (map[string]interface{}, error) {
			return nil, errors.New("fromToml is not supported by this renderer")
		},
		"toYaml":        toYAML,
		"mustToYaml":    mustToYAML,
		"toYamlPretty":  toYAML,
		"fromYaml":      fromYAML,
		"fromYamlArray": fromYAMLArray,
		"toJson":        toJSON,
		"mustToJson":    mustToJSON,
		"fromJson":      fromJSON,
		"fromJsonArray": fromJSONArray,
		"getHostByName": func(string) string { return "" },
		// Placeholders replaced per template set in funcs().
		"include":  func(string, interface{}) string { return "not implemented" },
		"tpl":      func(string, interface{}) interface{} { return "not implemented" },
		"required": func(string, interface{}) (interface{}, error) { return "not implemented", nil },
		"lookup": func(string, string, string, string) (map[string]interface{}, error) {
			return map[string]interface{}{}, nil
		},
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func (e *engine) funcs(t *template.Template) template.FuncMap {
	return template.FuncMap{
		"include": func(name string, data interface{}) (string, error) {
			var buf strings.Builder
			if v, ok := e.includedNames[name]; ok {
				if v > recursionMaxNums {
					return "", fmt.Errorf("rendering template has a nested reference name: %s: unable to execute template", name)
				}
				e.includedNames[name]++
			} else {
				e.includedNames[name] = 1
			}
			err := t.ExecuteTemplate(&buf, name, data)
			e.includedNames[name]--
			return buf.String(), err
		},
		"tpl": func(text string, vals interface{}) (string, error) {
			clone, err := t.Clone()
			if err != nil {
				return "", fmt.Errorf("cannot clone template: %v", err)
			}
			clone.Option("missingkey=zero")
			clone.Funcs(e.funcs(clone))
			name := "tpl"
			var m map[string]interface{}
			switch t := vals.(type) {
			case Values:
				m = t
			case map[string]interface{}:
				m = t
			}
			var tm map[string]interface{}
			switch t := m["Template"].(type) {
			case Values:
				tm = t
			case map[string]interface{}:
				tm = t
			}
			if n, ok := tm["Name"].(string); ok && n != "" {
				name = n
			}
			nt, err := clone.New(name).Parse(text)
			if err != nil {
				return "", fmt.Errorf("cannot parse template %q: %v", text, err)
			}
			var buf strings.Builder
			if err := nt.Execute(&buf, vals); err != nil {
				return "", fmt.Errorf("error during tpl function execution for %q: %v", text, err)
			}
			return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
		},
		"required": func(warn string, val interface{}) (interface{}, error) {
			if val == nil {
				return val, errors.New(warn)
			}
			if s, ok := val.(string); ok && s == "" {
				return val, errors.New(warn)
			}
			return val, nil
		},
	}
}

// byPathLen is Helm's template sort: fewer path segments first, then by name;
// Helm uses the reverse of it.
type byPathLen []string

func (p byPathLen) Len() int      { return len(p) }
func (p byPathLen) Swap(i, j int) { p[j], p[i] = p[i], p[j] }
func (p byPathLen) Less(i, j int) bool {
	a, b := p[i], p[j]
	ca, cb := strings.Count(a, "/"), strings.Count(b, "/")
	if ca == cb {
		return strings.Compare(a, b) == -1
	}
	return ca < cb
}

var execErrRe = regexp.MustCompile(`^template: (.*?:\d+:\d+): executing "(.*?)" at <(.*?)>: (.*)$`)
var callErrRe = regexp.MustCompile(`^error calling \w+: `)

// reformatExecError shortens text/template errors as Helm does:
// "execution error at (hyphae/templates/x.yaml:12:3): message".
func reformatExecError(err error) error {
	msg := err.Error()
	// Nested include errors repeat the prefix; keep the innermost message.
	if m := execErrRe.FindStringSubmatch(msg); m != nil {
		inner := m[4]
		for {
			if n := execErrRe.FindStringSubmatch(callErrRe.ReplaceAllString(inner, "")); n != nil {
				m = n
				inner = n[4]
				continue
			}
			break
		}
		return fmt.Errorf("execution error at (%s): %s", m[1], callErrRe.ReplaceAllString(inner, ""))
	}
	return err
}

func render(c *chartDir, top map[string]interface{}) (map[string]string, error) {
	e := &engine{includedNames: map[string]int{}}
	t := template.New("gotpl")
	t.Option("missingkey=zero")
	t.Funcs(baseFuncMap())
	t.Funcs(e.funcs(t))
	e.root = t

	names := make([]string, 0, len(c.templates))
	full := map[string]string{}
	for rel, text := range c.templates {
		n := path.Join(c.meta.Name, rel)
		names = append(names, n)
		full[n] = text
	}
	sort.Sort(sort.Reverse(byPathLen(names)))
	for _, n := range names {
		if _, err := t.New(n).Parse(full[n]); err != nil {
			return nil, fmt.Errorf("parse error in %s: %v", n, err)
		}
	}
	out := map[string]string{}
	for _, n := range names {
		if strings.HasPrefix(path.Base(n), "_") {
			continue
		}
		vals := make(Values, len(top)+1)
		for k, v := range top {
			vals[k] = v
		}
		vals["Template"] = Values{"Name": n, "BasePath": path.Join(c.meta.Name, "templates")}
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, n, vals); err != nil {
			return nil, reformatExecError(err)
		}
		out[n] = strings.ReplaceAll(buf.String(), "<no value>", "")
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Manifests (helm.sh/helm/v3/pkg/releaseutil)

var installOrder = []string{
	"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
	"PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
	"PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
	"ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding",
	"RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
}

var sepRe = regexp.MustCompile("(?:^|\\s*\n)---\\s*")

func splitManifests(big string) []string {
	var docs []string
	for _, d := range sepRe.Split(strings.TrimSpace(big), -1) {
		if d == "" {
			continue
		}
		docs = append(docs, strings.TrimSpace(d))
	}
	return docs
}

type manifest struct {
	source  string
	content string
	kind    string
	hook    bool
}

type simpleHead struct {
	Version  string `json:"apiVersion"`
	Kind     string `json:"kind,omitempty"`
	Metadata *struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata,omitempty"`
}

func sortManifests(files map[string]string) ([]manifest, error) {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var out []manifest
	for _, p := range paths {
		content := files[p]
		if strings.HasPrefix(path.Base(p), "_") || strings.TrimSpace(content) == "" {
			continue
		}
		for _, doc := range splitManifests(content) {
			var head simpleHead
			if err := yamlUnmarshal([]byte(doc), &head); err != nil {
				return nil, fmt.Errorf("YAML parse error on %s: %v", p, err)
			}
			// Stricter than Helm: duplicate keys (go-yaml v3 refuses them).
			var node yaml3.Node
			if err := yaml3.Unmarshal([]byte(doc), &node); err != nil {
				return nil, fmt.Errorf("YAML parse error on %s: %v", p, err)
			}
			var anyv interface{}
			if err := node.Decode(&anyv); err != nil {
				return nil, fmt.Errorf("YAML error on %s: %v", p, err)
			}
			m := manifest{source: p, content: doc, kind: head.Kind}
			if head.Metadata != nil && head.Metadata.Annotations["helm.sh/hook"] != "" {
				m.hook = true
			}
			out = append(out, m)
		}
	}
	order := map[string]int{}
	for i, k := range installOrder {
		order[k] = i
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.hook != b.hook {
			return !a.hook
		}
		first, aok := order[a.kind]
		second, bok := order[b.kind]
		if !aok && !bok {
			if a.kind != b.kind {
				return a.kind < b.kind
			}
			return false
		}
		if !aok {
			return false
		}
		if !bok {
			return true
		}
		return first < second
	})
	return out, nil
}

// ---------------------------------------------------------------------------

type multi []string

func usage() {
	fmt.Fprintln(os.Stderr, `usage: render [-f values.yaml]... [--set k=v]... [--set-string k=v]... [--name N] [--namespace NS]
              [--is-upgrade] [--kube-version v1.30.0] [-a group/version]... [-s templates/x.yaml]... [--notes] CHART_DIR`)
	os.Exit(2)
}

func main() {
	var valueFiles, sets, setStrings, apiVersions, showOnly multi
	name, namespace, kubeVersion := "release-name", "default", "v1.30.0"
	isUpgrade, notes := false, false
	chartPath := ""
	args := os.Args[1:]
	next := func(i *int, flag string) string {
		if *i+1 >= len(args) {
			fmt.Fprintf(os.Stderr, "render: %s needs a value\n", flag)
			usage()
		}
		*i++
		return args[*i]
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		flag, val, hasVal := a, "", false
		if strings.HasPrefix(a, "--") {
			if eq := strings.IndexByte(a, '='); eq > 0 {
				flag, val, hasVal = a[:eq], a[eq+1:], true
			}
		}
		get := func() string {
			if hasVal {
				return val
			}
			return next(&i, flag)
		}
		switch flag {
		case "-f", "--values":
			valueFiles = append(valueFiles, get())
		case "--set":
			sets = append(sets, get())
		case "--set-string":
			setStrings = append(setStrings, get())
		case "--name":
			name = get()
		case "-n", "--namespace":
			namespace = get()
		case "--kube-version":
			kubeVersion = get()
		case "-a", "--api-versions":
			apiVersions = append(apiVersions, get())
		case "-s", "--show-only":
			showOnly = append(showOnly, get())
		case "--is-upgrade":
			isUpgrade = true
		case "--notes":
			notes = true
		case "-h", "--help":
			usage()
		default:
			if strings.HasPrefix(a, "-") || chartPath != "" {
				fmt.Fprintf(os.Stderr, "render: unexpected argument %q\n", a)
				usage()
			}
			chartPath = a
		}
	}
	if chartPath == "" {
		usage()
	}
	if err := run(chartPath, name, namespace, kubeVersion, isUpgrade, notes, valueFiles, sets, setStrings, apiVersions, showOnly); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}

func run(chartPath, name, namespace, kubeVersion string, isUpgrade, notes bool, valueFiles, sets, setStrings, apiVersions, showOnly []string) error {
	c, err := loadChart(chartPath)
	if err != nil {
		return err
	}
	if c.meta.Type == "library" {
		return errors.New("library charts are not installable")
	}

	kv, err := semver.NewVersion(kubeVersion)
	if err != nil {
		return fmt.Errorf("invalid kube version %q: %v", kubeVersion, err)
	}
	if c.meta.KubeVersion != "" {
		cons, err := semver.NewConstraint(c.meta.KubeVersion)
		if err != nil {
			return fmt.Errorf("invalid kubeVersion constraint %q in Chart.yaml: %v", c.meta.KubeVersion, err)
		}
		if !cons.Check(kv) {
			return fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", c.meta.KubeVersion, "v"+kv.String())
		}
	}

	user := map[string]interface{}{}
	for _, f := range valueFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		v, err := readValues(data)
		if err != nil {
			return fmt.Errorf("failed to parse %s: %v", f, err)
		}
		user = mergeMaps(user, v)
	}
	for _, s := range sets {
		m := map[string]interface{}{}
		if err := parseSet(s, true, m); err != nil {
			return err
		}
		user = mergeMaps(user, m)
	}
	for _, s := range setStrings {
		m := map[string]interface{}{}
		if err := parseSet(s, false, m); err != nil {
			return err
		}
		user = mergeMaps(user, m)
	}
	vals := coalesce(user, c.values, "")

	for _, d := range c.meta.Dependencies {
		// Helm's rule: the first condition path that holds a bool decides.
		enabled, why := true, "no condition"
		for _, cond := range strings.Split(d.Condition, ",") {
			cond = strings.TrimSpace(cond)
			if v, ok := pathValue(vals, cond); ok && cond != "" {
				if b, ok := v.(bool); ok {
					enabled, why = b, fmt.Sprintf("%s=%v", cond, b)
					break
				}
			}
		}
		if enabled {
			fmt.Fprintf(os.Stderr, "render: dependency %s %s (%s) is enabled (%s) but NOT rendered: dependency charts are out of scope\n", d.Name, d.Version, d.Repository, why)
		} else {
			fmt.Fprintf(os.Stderr, "render: dependency %s is disabled (%s)\n", d.Name, why)
		}
	}
	for _, s := range c.subcharts {
		fmt.Fprintf(os.Stderr, "render: charts/%s is not rendered\n", s)
	}
	if len(c.meta.Dependencies) > 0 {
		if _, ok := vals["global"]; !ok {
			vals["global"] = map[string]interface{}{}
		}
	}

	apis := VersionSet(append(append([]string{}, defaultAPIVersions...), apiVersions...))
	top := map[string]interface{}{
		"Values": Values(vals),
		"Release": map[string]interface{}{
			"Name":      name,
			"Namespace": namespace,
			"IsUpgrade": isUpgrade,
			"IsInstall": !isUpgrade,
			"Revision":  1,
			"Service":   "Helm",
		},
		"Chart": c.meta,
		"Capabilities": &Capabilities{
			APIVersions: apis,
			KubeVersion: KubeVersion{
				Version: "v" + kv.String(),
				Major:   strconv.FormatUint(kv.Major(), 10),
				Minor:   strconv.FormatUint(kv.Minor(), 10),
			},
			HelmVersion: HelmVersion{Version: "v3.14.0", GoVersion: "offline-renderer"},
		},
		"Files":     c.files,
		"Subcharts": map[string]interface{}{},
	}

	rendered, err := render(c, top)
	if err != nil {
		return err
	}
	notesName := path.Join(c.meta.Name, "templates", "NOTES.txt")
	notesText, hasNotes := rendered[notesName]
	for k := range rendered {
		if strings.HasSuffix(k, "NOTES.txt") {
			delete(rendered, k)
		}
	}
	if len(showOnly) > 0 {
		keep := map[string]string{}
		for _, s := range showOnly {
			full := path.Join(c.meta.Name, filepath.ToSlash(s))
			v, ok := rendered[full]
			if !ok {
				return fmt.Errorf("could not find template %s in chart", s)
			}
			keep[full] = v
		}
		rendered = keep
	}
	manifests, err := sortManifests(rendered)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, m := range manifests {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.source, m.content)
	}
	if notes && hasNotes {
		fmt.Fprintf(&b, "\nNOTES:\n%s\n", notesText)
	}
	_, err = os.Stdout.WriteString(b.String())
	return err
}
