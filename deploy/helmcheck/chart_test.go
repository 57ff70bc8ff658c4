package helmcheck

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
)

const (
	chartDir   = "../helm/hero"
	localFile  = "../helm/hero/values-local-sandbox.yaml"
	release    = "hero"
	namespace  = "chat-ops"
	mysqlURL   = "mysql://hero:pw@mysql:3306/hero"
	secretsKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	kdfSalt    = "0123456789abcdef0123456789abcdef"
)

// required is what every install sets (deploy/README.md's helm install).
func required() map[string]any {
	return map[string]any{"config": map[string]any{
		"DATABASE_URL": mysqlURL, "SECRETS_ENCRYPTION_KEY": secretsKey, "SECRETS_KDF_SALT": kdfSalt,
	}}
}

// userValues merges value files and overrides the way `helm template -f a
// -f b --set …` does: later ones win, tables merge key by key.
func userValues(t *testing.T, files []string, sets ...map[string]any) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, f := range files {
		v, err := chartutil.ReadValuesFile(f)
		if err != nil {
			t.Fatalf("reading %s: %v", f, err)
		}
		merge(out, v)
	}
	for _, s := range sets {
		merge(out, s)
	}
	return out
}

func merge(dst, src map[string]any) map[string]any {
	for k, sv := range src {
		if sm, ok := sv.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
			dst[k] = merge(map[string]any{}, sm)
			continue
		}
		dst[k] = sv
	}
	return dst
}

// render is `helm template` through Helm's own packages: the chart's
// defaults coalesced with the user's values, checked against
// values.schema.json, and rendered by Helm's engine.
func render(t *testing.T, vals map[string]any) (map[string]string, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	top, err := chartutil.ToRenderValues(chrt, vals, chartutil.ReleaseOptions{Name: release, Namespace: namespace, IsInstall: true}, nil)
	if err != nil {
		return nil, err
	}
	return engine.Engine{Strict: true}.Render(chrt, top)
}

// objects is what the rendered chart would create, decoded with
// Kubernetes' strict decoder (unknown or duplicate fields fail), by kind.
type objects struct {
	deployment *appsv1.Deployment
	pdb        *policyv1.PodDisruptionBudget
	service    *corev1.Service
	secret     *corev1.Secret
	ingress    *networkingv1.Ingress
	kinds      []string
}

func decode(t *testing.T, files map[string]string) objects {
	t.Helper()
	dec := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	var objs objects
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		for _, doc := range strings.Split(files[name], "\n---") {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			obj, gvk, err := dec.Decode([]byte(doc), nil, nil)
			if err != nil {
				t.Fatalf("%s does not decode as a Kubernetes object: %v\n%s", name, err, doc)
			}
			if slices.Contains(objs.kinds, gvk.Kind) {
				t.Fatalf("%s renders a second %s", name, gvk.Kind)
			}
			objs.kinds = append(objs.kinds, gvk.Kind)
			switch o := obj.(type) {
			case *appsv1.Deployment:
				objs.deployment = o
			case *policyv1.PodDisruptionBudget:
				objs.pdb = o
			case *corev1.Service:
				objs.service = o
			case *corev1.Secret:
				objs.secret = o
			case *networkingv1.Ingress:
				objs.ingress = o
			default:
				t.Errorf("%s renders an unexpected %s", name, gvk)
			}
			if n := obj.(interface{ GetName() string }).GetName(); !strings.HasPrefix(n, release) {
				t.Errorf("%s %s: the name does not start with the release's", gvk.Kind, n)
			}
		}
	}
	slices.Sort(objs.kinds)
	return objs
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func env(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

func probePath(p *corev1.Probe) string {
	if p == nil || p.HTTPGet == nil {
		return "<none>"
	}
	return p.HTTPGet.Path + " on " + p.HTTPGet.Port.String()
}

// What an operator gets from `helm install` with the defaults (E2B
// sandboxes): N replicas of hero behind a Service, a PodDisruptionBudget,
// the configuration from the chart's Secret, and no loosened confinement.
func TestChartDefaults(t *testing.T) {
	files, err := render(t, userValues(t, nil, required(), map[string]any{"replicaCount": 3}))
	if err != nil {
		t.Fatalf("helm template with the required values: %v", err)
	}
	objs := decode(t, files)
	if want := []string{"Deployment", "PodDisruptionBudget", "Secret", "Service"}; !slices.Equal(objs.kinds, want) {
		t.Fatalf("objects %v, want %v", objs.kinds, want)
	}
	d := objs.deployment
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("replicas %v, want 3 (replicaCount)", d.Spec.Replicas)
	}
	pod := d.Spec.Template
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("containers: %d", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if c.Image != "ghcr.io/hero-dev/hero:dev" || !slices.Equal(c.Args, []string{"serve"}) {
		t.Errorf("image %s args %v: want the chart's appVersion running `hero serve`", c.Image, c.Args)
	}
	for name, got := range map[string]string{
		"startupProbe":   probePath(c.StartupProbe),
		"livenessProbe":  probePath(c.LivenessProbe),
		"readinessProbe": probePath(c.ReadinessProbe),
	} {
		want := "/healthz on http"
		if name == "readinessProbe" {
			want = "/readyz on http"
		}
		if got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
		t.Errorf("ports %+v: want http on 8080", c.Ports)
	}
	e := env(c)
	if e["HERO_SANDBOX"] != "e2b" || e["HERO_ADDR"] != "0.0.0.0:8080" || e["HERO_DATA_DIR"] != "/data" {
		t.Errorf("env %v: want E2B sandboxes, 0.0.0.0:8080 and /data", e)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != objs.secret.Name {
		t.Errorf("envFrom %+v: the configuration does not come from the chart's Secret %s", c.EnvFrom, objs.secret.Name)
	}
	if got := objs.secret.StringData; got["DATABASE_URL"] != mysqlURL || got["SECRETS_ENCRYPTION_KEY"] != secretsKey || got["SECRETS_KDF_SALT"] != kdfSalt {
		t.Errorf("Secret holds %v", got)
	}
	if pod.Annotations["checksum/config"] == "" {
		t.Error("no checksum/config annotation: pods would not roll when the configuration changes")
	}

	// The E2B default needs nothing special from the pod.
	psc, csc := pod.Spec.SecurityContext, c.SecurityContext
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault || psc.AppArmorProfile != nil ||
		pod.Spec.HostUsers != nil || csc.ProcMount != nil || len(csc.Capabilities.Add) != 0 {
		t.Errorf("the E2B default loosens the pod's confinement: pod %+v, container %+v, hostUsers %v", psc, csc, pod.Spec.HostUsers)
	}
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation ||
		!slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
		t.Errorf("the pod is not locked down: pod %+v, container %+v", psc, csc)
	}

	podLabels := labels.Set(pod.Labels)
	sel := labels.SelectorFromSet(d.Spec.Selector.MatchLabels)
	if !sel.Matches(podLabels) {
		t.Errorf("the Deployment's selector %v does not select its pods %v", sel, podLabels)
	}
	if s := labels.SelectorFromSet(objs.pdb.Spec.Selector.MatchLabels); !s.Matches(podLabels) {
		t.Errorf("the PodDisruptionBudget's selector %v does not select the pods", s)
	}
	if objs.pdb.Spec.MaxUnavailable == nil || objs.pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1", objs.pdb.Spec.MaxUnavailable)
	}
	if s := labels.SelectorFromSet(objs.service.Spec.Selector); len(objs.service.Spec.Selector) == 0 || !s.Matches(podLabels) {
		t.Errorf("the Service's selector %v does not select the pods", s)
	}
	if ports := objs.service.Spec.Ports; len(ports) != 1 || ports[0].Port != 80 || ports[0].TargetPort.String() != "http" {
		t.Errorf("Service ports %+v: want 80 to the pods' http port", ports)
	}
}

// The local-sandbox values add what bubblewrap needs inside the pod, and
// an Ingress routes to the Service when enabled.
func TestChartLocalSandboxAndIngress(t *testing.T) {
	files, err := render(t, userValues(t, []string{localFile}, required(), map[string]any{
		"ingress": map[string]any{"enabled": true, "className": "nginx", "host": "hero.example.org", "tls": map[string]any{"enabled": true}},
	}))
	if err != nil {
		t.Fatalf("helm template -f values-local-sandbox.yaml: %v", err)
	}
	objs := decode(t, files)
	if want := []string{"Deployment", "Ingress", "PodDisruptionBudget", "Secret", "Service"}; !slices.Equal(objs.kinds, want) {
		t.Fatalf("objects %v, want %v", objs.kinds, want)
	}
	pod := objs.deployment.Spec.Template.Spec
	c := pod.Containers[0]
	if env(c)["HERO_SANDBOX"] != "local" {
		t.Errorf("HERO_SANDBOX = %q, want local", env(c)["HERO_SANDBOX"])
	}
	if *objs.deployment.Spec.Replicas != 2 {
		t.Errorf("replicas %d, want the default 2", *objs.deployment.Spec.Replicas)
	}
	psc, csc := pod.SecurityContext, c.SecurityContext
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeUnconfined {
		t.Errorf("seccompProfile %+v, want Unconfined", psc.SeccompProfile)
	}
	if psc.AppArmorProfile == nil || psc.AppArmorProfile.Type != corev1.AppArmorProfileTypeUnconfined {
		t.Errorf("appArmorProfile %+v, want Unconfined", psc.AppArmorProfile)
	}
	if !slices.Equal(csc.Capabilities.Add, []corev1.Capability{"SETFCAP"}) || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("capabilities %+v, want all dropped but SETFCAP", csc.Capabilities)
	}
	if pod.HostUsers == nil || *pod.HostUsers {
		t.Errorf("hostUsers %v, want false", pod.HostUsers)
	}
	if csc.ProcMount == nil || *csc.ProcMount != corev1.UnmaskedProcMount {
		t.Errorf("procMount %v, want Unmasked (bubblewrap mounts /proc)", ptrString(csc.ProcMount))
	}
	if *csc.AllowPrivilegeEscalation || csc.Privileged != nil && *csc.Privileged {
		t.Error("the local sandbox's pod is privileged")
	}

	ing := objs.ingress
	if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" {
		t.Errorf("ingressClassName %v", ing.Spec.IngressClassName)
	}
	if len(ing.Spec.TLS) != 1 || !slices.Equal(ing.Spec.TLS[0].Hosts, []string{"hero.example.org"}) || ing.Spec.TLS[0].SecretName != "hero-tls" {
		t.Errorf("tls %+v", ing.Spec.TLS)
	}
	if len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].Host != "hero.example.org" {
		t.Fatalf("rules %+v", ing.Spec.Rules)
	}
	b := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service
	if b == nil || b.Name != objs.service.Name || b.Port.Name != objs.service.Spec.Ports[0].Name {
		t.Errorf("the Ingress routes to %+v, not to the Service %s port %s", b, objs.service.Name, objs.service.Spec.Ports[0].Name)
	}

	// Without a user namespace Kubernetes refuses an unmasked /proc, so the
	// chart leaves it out (and /readyz says what bubblewrap lacks).
	files, err = render(t, userValues(t, []string{localFile}, required(), map[string]any{"sandbox": map[string]any{"local": map[string]any{"hostUsers": true}}}))
	if err != nil {
		t.Fatal(err)
	}
	objs = decode(t, files)
	if objs.deployment.Spec.Template.Spec.HostUsers != nil || objs.deployment.Spec.Template.Spec.Containers[0].SecurityContext.ProcMount != nil {
		t.Error("sandbox.local.hostUsers: true still sets hostUsers: false or procMount: Unmasked")
	}
}

// With existingSecret the chart makes no Secret and reads the operator's.
func TestChartExistingSecret(t *testing.T) {
	files, err := render(t, map[string]any{"existingSecret": "hero-config"})
	if err != nil {
		t.Fatalf("existingSecret without config: %v", err)
	}
	objs := decode(t, files)
	if objs.secret != nil {
		t.Error("the chart makes a Secret although existingSecret is set")
	}
	if ref := objs.deployment.Spec.Template.Spec.Containers[0].EnvFrom[0].SecretRef; ref == nil || ref.Name != "hero-config" {
		t.Errorf("envFrom %+v, want the Secret hero-config", ref)
	}
}

// Bad values fail at `helm template`/`helm install` with a message that
// names the value and what to do, before anything reaches the cluster.
func TestChartRejectsBadValues(t *testing.T) {
	without := func(key string) map[string]any {
		v := required()
		delete(v["config"].(map[string]any), key)
		return v
	}
	for _, tc := range []struct {
		name string
		vals map[string]any
		want []string
	}{
		{"replicaCount not a number", userValues(t, nil, required(), map[string]any{"replicaCount": "x"}), []string{"replicaCount", "integer"}},
		{"no replicas", userValues(t, nil, required(), map[string]any{"replicaCount": 0}), []string{"replicaCount", "minimum"}},
		{"unknown sandbox", userValues(t, nil, required(), map[string]any{"sandbox": map[string]any{"provider": "docker"}}), []string{"sandbox/provider", "e2b", "local"}},
		{"misspelt top-level value", userValues(t, nil, required(), map[string]any{"replicas": 3}), []string{"replicas", "additional properties"}},
		{"DATABASE_URL not MySQL", userValues(t, nil, required(), map[string]any{"config": map[string]any{"DATABASE_URL": "postgres://x"}}), []string{"DATABASE_URL", "mysql://"}},
		{"malformed key", userValues(t, nil, required(), map[string]any{"config": map[string]any{"SECRETS_ENCRYPTION_KEY": "secret"}}), []string{"SECRETS_ENCRYPTION_KEY"}},
		{"no DATABASE_URL", without("DATABASE_URL"), []string{"config.DATABASE_URL is required", "existingSecret", "SQLite"}},
		{"no encryption key", without("SECRETS_ENCRYPTION_KEY"), []string{"config.SECRETS_ENCRYPTION_KEY is required", "openssl rand -hex 32"}},
		{"no KDF salt", without("SECRETS_KDF_SALT"), []string{"config.SECRETS_KDF_SALT is required", "openssl rand -hex 16"}},
		{"nothing set", map[string]any{}, []string{"config.DATABASE_URL is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, tc.vals)
			if err == nil {
				t.Fatalf("values %v rendered", tc.vals)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

// `helm lint --strict`: no error or warning for either value set, with
// the values an install sets; a broken value is an error there too.
func TestChartLint(t *testing.T) {
	messages := func(vals map[string]any) (msgs []support.Message) {
		for _, m := range lint.All(chartDir, vals, namespace, false).Messages {
			if m.Severity >= support.WarningSev {
				msgs = append(msgs, m)
			}
		}
		return msgs
	}
	for _, files := range [][]string{nil, {localFile}} {
		if msgs := messages(userValues(t, files, required())); len(msgs) > 0 {
			t.Errorf("helm lint --strict with %v: %v", files, msgs)
		}
	}
	msgs := messages(userValues(t, nil, required(), map[string]any{"replicaCount": "x"}))
	if len(msgs) == 0 || !strings.Contains(fmt.Sprint(msgs), "replicaCount") {
		t.Errorf("helm lint passes replicaCount: \"x\": %v", msgs)
	}
}

func ptrString[T any](p *T) string {
	if p == nil {
		return "<unset>"
	}
	return fmt.Sprint(*p)
}
