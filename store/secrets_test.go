package store_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

// Names that would make a program load or run the secret's value, names
// hero sets itself and hero's and git's namespaces are refused with the
// reason (issue 8 #1: a secret named LD_PRELOAD ran code on the host).
func TestReservedSecretNames(t *testing.T) {
	refused := map[string]string{
		"LD_PRELOAD":        "dynamic loader",
		"LD_LIBRARY_PATH":   "dynamic loader",
		"LD_AUDIT":          "dynamic loader",
		"GCONV_PATH":        "loads code",
		"LOCPATH":           "locale",
		"GLIBC_TUNABLES":    "C library",
		"MALLOC_CHECK_":     "allocator",
		"MALLOC_ARENA_MAX":  "allocator",
		"PATH":              "hero sets it",
		"HOME":              "hero sets it",
		"SHELL":             "hero sets it",
		"BASH_ENV":          "bash runs",
		"ENV":               "sh runs",
		"IFS":               "splits words",
		"PS4":               "tracing",
		"GIT_SSH_COMMAND":   "git reads",
		"GIT_CONFIG_COUNT":  "git reads",
		"HERO_ADMIN":        "hero's own",
		"PYTHONSTARTUP":     "python",
		"PYTHONPATH":        "python",
		"NODE_OPTIONS":      "node loads",
		"PERL5OPT":          "perl",
		"RUBYOPT":           "ruby",
		"JAVA_TOOL_OPTIONS": "JVM",
	}
	for name, why := range refused {
		err := store.ValidateSecretName(name)
		if err == nil || !strings.Contains(err.Error(), "reserved") || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), name) {
			t.Errorf("ValidateSecretName(%q) = %v; want a refusal naming it and saying %q", name, err, why)
		}
	}
	for _, name := range []string{"GITHUB_TOKEN", "NPM_TOKEN", "NODE_AUTH_TOKEN", "SSH_PRIVATE_KEY", "OPENAI_API_KEY", "MY_PATH", "LDAP_PASSWORD", "GITLAB_TOKEN", "HEROKU_API_KEY"} {
		if err := store.ValidateSecretName(name); err != nil {
			t.Errorf("ValidateSecretName(%q) = %v; want it allowed", name, err)
		}
	}

	// The store refuses them too, whatever surface calls it, and stores
	// nothing.
	db := storetest.OpenURL(t, "sqlite://"+filepath.Join(t.TempDir(), "hero.db"))
	p := newProject(t, db)
	err := db.SetSecret(t.Context(), p.ID, "LD_PRELOAD", []byte("/tmp/evil.so"), "admin")
	if err == nil || !strings.Contains(err.Error(), `invalid secret name "LD_PRELOAD": the name is reserved because the dynamic loader`) {
		t.Fatalf("SetSecret(LD_PRELOAD) = %v; want the reserved-name refusal", err)
	}
	list, err := db.ListSecrets(t.Context(), p.ID)
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("a refused secret was stored: %+v", list)
	}
}
