package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeYAML(t *testing.T, name string, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s does not parse: %v", name, err)
	}
	return m
}

// dig walks nested maps and lists ("spec.template.spec.containers.0.name").
func dig(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		switch t := v.(type) {
		case map[string]any:
			v = t[k]
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i >= len(t) {
				return nil
			}
			v = t[i]
		default:
			return nil
		}
	}
	return v
}

var varName = regexp.MustCompile(`\b[A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9]\b`)

// readmeVariables returns the variables named in README.md's tables
// (documented settings) and every variable the README mentions at all.
func readmeVariables(t *testing.T) (tables, mentioned map[string]bool) {
	tables, mentioned = map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(string(read(t, "../README.md")), "\n") {
		for _, v := range varName.FindAllString(line, -1) {
			mentioned[v] = true
		}
		if strings.HasPrefix(line, "|") {
			for _, m := range regexp.MustCompile("`([A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9])`").FindAllStringSubmatch(line, -1) {
				tables[m[1]] = true
			}
		}
	}
	return tables, mentioned
}

// envExample returns the variables .env.example sets or shows commented out.
func envExample(t *testing.T) map[string]string {
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(read(t, ".env.example")))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || (strings.HasPrefix(line, "#") && !regexp.MustCompile(`^# [A-Z][A-Z0-9_]*=`).MatchString(line)) {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "# "), "=")
		if !ok || !regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`).MatchString(k) {
			t.Fatalf(".env.example:%d is neither a comment nor NAME=value: %q", n, line)
		}
		if _, dup := vars[k]; dup {
			t.Fatalf(".env.example:%d sets %s twice", n, k)
		}
		vars[k] = v
	}
	return vars
}

// Variables only compose (not hero) reads.
var composeOnly = map[string]bool{"COMPOSE_PROFILES": true, "MYSQL_PASSWORD": true, "MYSQL_ROOT_PASSWORD": true, "MYSQL_DATABASE": true, "MYSQL_USER": true}

func TestEnvExampleDocumentsEveryVariable(t *testing.T) {
	tables, mentioned := readmeVariables(t)
	env := envExample(t)
	for v := range tables {
		if _, ok := env[v]; !ok {
			t.Errorf("README's table documents %s but deploy/.env.example lacks it: add %s= there (empty keeps hero's default)", v, v)
		}
	}
	for v, val := range env {
		if !mentioned[v] && !composeOnly[v] {
			t.Errorf("deploy/.env.example sets %s, which README.md does not document", v)
		}
		// No real values: only placeholders and non-secret choices.
		if regexp.MustCompile(`(?i)(KEY|SECRET|TOKEN|PASSWORD|SALT)`).MatchString(v) && val != "" && !strings.HasPrefix(val, "change-me") {
			t.Errorf("deploy/.env.example has a value for %s; leave secrets empty", v)
		}
	}
	if len(tables) < 40 {
		t.Fatalf("found only %d variables in README's tables: is the parser broken?", len(tables))
	}
}

func TestCompose(t *testing.T) {
	raw := read(t, "compose.yaml")
	c := decodeYAML(t, "compose.yaml", raw)
	services, _ := c["services"].(map[string]any)
	if got := slices.Sorted(maps.Keys(services)); !slices.Equal(got, []string{"hero-1", "hero-2", "hero-local-1", "hero-local-2", "mysql"}) {
		t.Fatalf("services: %v", got)
	}
	if img := dig(services, "mysql.image"); img != "mysql:8.4" {
		t.Errorf("mysql image %v, want mysql:8.4", img)
	}
	if dig(services, "mysql.healthcheck.test") == nil {
		t.Error("mysql has no health check; the replicas wait on it")
	}
	_, mentioned := readmeVariables(t)
	env := envExample(t)
	ports := map[string][]string{}
	for _, name := range []string{"hero-1", "hero-2", "hero-local-1", "hero-local-2"} {
		s := services[name].(map[string]any)
		if cond := dig(s, "depends_on.mysql.condition"); cond != "service_healthy" {
			t.Errorf("%s waits for mysql with %v, want service_healthy", name, cond)
		}
		if p := dig(s, "env_file.0.path"); p != ".env" {
			t.Errorf("%s env_file %v, want .env", name, p)
		}
		if dig(s, "build.dockerfile") != "deploy/docker/Dockerfile" {
			t.Errorf("%s is not built from deploy/docker/Dockerfile", name)
		}
		envs := s["environment"].(map[string]any)
		for k := range envs {
			if !mentioned[k] {
				t.Errorf("%s sets %s, which README.md does not document", name, k)
			}
		}
		if envs["HERO_ADDR"] != "0.0.0.0:8080" || envs["HERO_DATA_DIR"] != "/data" || !strings.HasPrefix(fmt.Sprint(envs["DATABASE_URL"]), "mysql://") {
			t.Errorf("%s environment: %v", name, envs)
		}
		profiles := fmt.Sprint(s["profiles"])
		sec := fmt.Sprint(s["security_opt"])
		local := strings.HasPrefix(name, "hero-local")
		switch {
		case local && (profiles != "[local-sandbox]" || envs["HERO_SANDBOX"] != "local" || !strings.Contains(sec, "seccomp=unconfined") || !strings.Contains(sec, "apparmor=unconfined") || !strings.Contains(sec, "systempaths=unconfined")):
			t.Errorf("%s: profiles %s, HERO_SANDBOX %v, security_opt %s", name, profiles, envs["HERO_SANDBOX"], sec)
		case !local && (profiles != "[e2b]" || sec != "<nil>"):
			t.Errorf("%s: profiles %s, security_opt %s (the E2B pair needs no unconfined profile)", name, profiles, sec)
		}
		if s["privileged"] != nil || s["cap_add"] != nil {
			t.Errorf("%s is privileged or adds capabilities", name)
		}
		p := fmt.Sprint(s["ports"])
		ports[profiles] = append(ports[profiles], p)
	}
	for prof, ps := range ports {
		if ps[0] == ps[1] {
			t.Errorf("profile %s publishes both replicas on %s", prof, ps[0])
		}
	}
	// Every ${VAR} compose reads comes from .env.
	for _, m := range regexp.MustCompile(`\$\{([A-Z_]+)`).FindAllStringSubmatch(string(raw), -1) {
		if _, ok := env[m[1]]; !ok {
			t.Errorf("compose.yaml reads ${%s}, which .env.example lacks", m[1])
		}
	}
	if p := env["COMPOSE_PROFILES"]; p != "e2b" {
		t.Errorf(".env.example's COMPOSE_PROFILES = %q: plain `docker compose up` would start no replica", p)
	}
	// The comments explain the unconfined profiles and Ubuntu's sysctl.
	for _, s := range []string{"seccomp", "AppArmor", "kernel.apparmor_restrict_unprivileged_userns"} {
		if !strings.Contains(string(raw), s) {
			t.Errorf("compose.yaml does not explain %s", s)
		}
	}
}

// The Dockerfile, line by line (`make image-check` builds and runs the
// image; it needs root and minutes, so it is not part of this test).
func TestDockerfile(t *testing.T) {
	type instr struct{ cmd, args string }
	var ins []instr
	text := strings.ReplaceAll(string(read(t, "docker/Dockerfile")), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cmd, args, _ := strings.Cut(line, " ")
		ins = append(ins, instr{strings.ToUpper(cmd), strings.Join(strings.Fields(args), " ")})
	}
	var stages []string
	final := map[string][]string{} // instructions of the last stage
	for _, in := range ins {
		if in.cmd == "FROM" {
			stages = append(stages, in.args)
			final = map[string][]string{}
			continue
		}
		final[in.cmd] = append(final[in.cmd], in.args)
	}
	if len(stages) != 2 || !strings.HasPrefix(stages[0], "golang:") || !regexp.MustCompile(`^debian:[a-z]+-slim `).MatchString(stages[1]) {
		t.Fatalf("stages %q: want a golang build stage and a Debian slim runtime", stages)
	}
	build := ""
	for _, in := range ins {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			build = in.args
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-X main.version=${VERSION}", "./cmd/hero"} {
		if !strings.Contains(build, want) {
			t.Errorf("the build (%q) lacks %s", build, want)
		}
	}
	install := strings.Join(final["RUN"], " ")
	for _, pkg := range []string{"bubblewrap", "git", "ca-certificates", "tini", "slirp4netns", "e2fsprogs", "iproute2", "util-linux"} {
		if !regexp.MustCompile(`\b` + pkg + `\b`).MatchString(install) {
			t.Errorf("the runtime does not install %s", pkg)
		}
	}
	// What the Dockerfile installs matches what install-deps.sh gives the
	// local sandbox.
	deps := string(read(t, "../scripts/install-deps.sh"))
	for _, pkg := range regexp.MustCompile(`pkgs\+=\(([a-z0-9-]+)\)`).FindAllStringSubmatch(deps, -1) {
		switch pkg[1] {
		case "mariadb-server", "chromium", // the tests'
			"buildah", "podman", "runc", "debootstrap": // make image-check's
			continue
		}
		if !strings.Contains(install, pkg[1]) {
			t.Errorf("scripts/install-deps.sh installs %s for the sandbox; the image does not", pkg[1])
		}
	}
	if u := final["USER"]; len(u) != 1 || u[0] == "root" || u[0] == "0" {
		t.Errorf("runtime USER %q: want one non-root user", u)
	}
	env := strings.Join(final["ENV"], " ")
	for _, want := range []string{"HERO_ADDR=0.0.0.0:8080", "HERO_DATA_DIR=/data"} {
		if !strings.Contains(env, want) {
			t.Errorf("ENV lacks %s", want)
		}
	}
	if v := strings.Join(final["VOLUME"], " "); !strings.Contains(v, "/data") {
		t.Errorf("VOLUME %q: want /data", v)
	}
	if h := strings.Join(final["HEALTHCHECK"], " "); !strings.Contains(h, "/healthz") {
		t.Errorf("HEALTHCHECK %q does not probe /healthz", h)
	}
	if e := strings.Join(final["ENTRYPOINT"], " "); !strings.Contains(e, "tini") || !strings.Contains(e, "hero") {
		t.Errorf("ENTRYPOINT %q: want tini running hero", e)
	}
	if _, err := os.Stat("../cmd/hero/main.go"); err != nil {
		t.Errorf("the Dockerfile builds ./cmd/hero: %v", err)
	}
}
