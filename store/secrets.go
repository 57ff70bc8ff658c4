package store

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// MaxSecretSize bounds one secret value; secrets are tokens and keys, and
// they are injected as environment variables.
const MaxSecretSize = 32 << 10

var secretNameRE = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// reservedSecretNames are names a secret may not take, with the reason
// shown to whoever tries. Secrets become environment variables of every
// command in the project's sandboxes, including the ones hero runs there
// on its own behalf (dependency installs, git); the sandbox package keeps
// them away from host processes, and this list is the second wall. It
// refuses three kinds of names:
//   - variables that make the dynamic loader, libc, a shell or an
//     interpreter load or run code before the program itself starts
//     (LD_PRELOAD, GCONV_PATH, BASH_ENV, PYTHONSTARTUP, NODE_OPTIONS …):
//     a value there turns every command into the secret's author's code;
//   - variables hero sets itself for every command (PATH, HOME, SHELL,
//     TMPDIR, USER, LANG), which a secret would silently shadow or lose to;
//   - the namespaces of programs hero drives with environment variables
//     (GIT_* carries git's configuration and hero's clone credential,
//     HERO_* is hero's own).
//
// Names that merely look sensitive (SSH_PRIVATE_KEY, NODE_AUTH_TOKEN,
// GITHUB_TOKEN) are allowed: they are data to a program, not code.
var reservedSecretNames = map[string]string{
	"GCONV_PATH":        "the C library loads code from it",
	"GLIBC_TUNABLES":    "it changes how the C library and dynamic loader behave",
	"HOSTALIASES":       "the C library reads files named by it",
	"LOCPATH":           "the C library loads locale data from it",
	"NLSPATH":           "the C library loads message catalogues from it",
	"RES_OPTIONS":       "it changes the C library's name resolution",
	"LOCALDOMAIN":       "it changes the C library's name resolution",
	"BASH_ENV":          "bash runs the file it names before every script",
	"ENV":               "sh runs the file it names at start-up",
	"SHELLOPTS":         "it changes how every bash script runs",
	"BASHOPTS":          "it changes how every bash script runs",
	"PS4":               "bash expands it, running commands, when tracing",
	"PROMPT_COMMAND":    "bash runs it",
	"IFS":               "it changes how every shell script splits words",
	"CDPATH":            "it changes where shell scripts' cd goes",
	"NODE_OPTIONS":      "node loads code named by it before every script",
	"NODE_PATH":         "node loads modules from it",
	"RUBYOPT":           "ruby loads code named by it before every script",
	"RUBYLIB":           "ruby loads code from it",
	"PERLLIB":           "perl loads code from it",
	"JAVA_TOOL_OPTIONS": "the JVM loads agents named by it",
	"JDK_JAVA_OPTIONS":  "the JVM loads agents named by it",
	"_JAVA_OPTIONS":     "the JVM loads agents named by it",
	"SSH_ASKPASS":       "ssh runs the program it names",
	"GIT_ASKPASS":       "git runs the program it names",
	"EDITOR":            "git and other tools run the program it names",
	"VISUAL":            "git and other tools run the program it names",
	"PAGER":             "git and other tools run the program it names",
	"PATH":              "hero sets it for every command",
	"HOME":              "hero sets it for every command",
	"SHELL":             "hero sets it for every command",
	"TMPDIR":            "hero sets it for every command",
	"USER":              "hero sets it for every command",
	"LANG":              "hero sets it for every command",
}

// reservedSecretPrefixes are the name families refused for the same
// reasons, matched by prefix.
var reservedSecretPrefixes = []struct{ prefix, why string }{
	{"LD_", "the dynamic loader acts on LD_ variables (LD_PRELOAD loads any shared object into every program)"},
	{"MALLOC_", "the C library's allocator acts on MALLOC_ variables"},
	{"GIT_", "git reads its configuration and credentials from GIT_ variables, and hero uses them for its own git commands"},
	{"HERO_", "HERO_ variables are hero's own"},
	{"PYTHON", "python acts on PYTHON variables at start-up (PYTHONSTARTUP, PYTHONPATH and PYTHONBREAKPOINT run or load code)"},
	{"PERL5", "perl loads code named by PERL5 variables (PERL5OPT, PERL5LIB, PERL5DB)"},
}

// ValidateSecretName reports whether name can be a secret: secrets become
// environment variables in the sandbox, so names follow env var rules and
// may not be one of the reserved names above. The error says why, for the
// web page and the CLI to show as it is.
func ValidateSecretName(name string) error {
	if !secretNameRE.MatchString(name) || len(name) > 255 {
		return fmt.Errorf("invalid secret name %q: use an environment variable name, upper-case letters, digits and _ and not starting with a digit (like GITHUB_TOKEN)", name)
	}
	why, reserved := reservedSecretNames[name]
	for _, r := range reservedSecretPrefixes {
		if !reserved && strings.HasPrefix(name, r.prefix) {
			why, reserved = r.why, true
		}
	}
	if reserved {
		return fmt.Errorf("invalid secret name %q: the name is reserved because %s; choose another name", name, why)
	}
	return nil
}

// SecretInfo describes a stored secret without its value.
type SecretInfo struct {
	Name       string    `bun:"name"`
	KeyVersion int       `bun:"key_version"`
	UpdatedBy  string    `bun:"updated_by"`
	CreatedAt  time.Time `bun:"created_at"`
	UpdatedAt  time.Time `bun:"updated_at"`
}

func (db *DB) needKeyring(op string) error {
	if db.keyring == nil {
		return fmt.Errorf("%s: no secrets keyring configured (open the store with store.WithKeyring)", op)
	}
	return nil
}

// SetSecret encrypts value with the vault and stores it under name,
// replacing an earlier value. by records who set it. ErrNotFound if the
// project does not exist.
func (db *DB) SetSecret(ctx context.Context, projectID int64, name string, value []byte, by string) error {
	if err := db.needKeyring("set secret"); err != nil {
		return err
	}
	if err := ValidateSecretName(name); err != nil {
		return fmt.Errorf("set secret: %w", err)
	}
	if len(value) > MaxSecretSize {
		return fmt.Errorf("set secret %s: value is %d bytes, the limit is %d", name, len(value), MaxSecretSize)
	}
	if _, err := db.ProjectByID(ctx, projectID); err != nil {
		return fmt.Errorf("set secret %s: %w", name, err)
	}
	blob, err := db.keyring.Seal(projectID, name, value)
	if err != nil {
		return fmt.Errorf("set secret %s: %w", name, err)
	}
	t := now()
	s := &ProjectSecret{ProjectID: projectID, Name: name, Ciphertext: blob, KeyVersion: db.keyring.Version(),
		UpdatedBy: by, CreatedAt: t, UpdatedAt: t}
	err = db.upsert(ctx, db.bun, s, []string{"project_id", "name"},
		[]string{"ciphertext", "key_version", "updated_by", "updated_at"})
	return wrap(err, "set secret %s of project %d", name, projectID)
}

// ListSecrets returns the names and metadata of a project's secrets, by
// name. Values are never read.
func (db *DB) ListSecrets(ctx context.Context, projectID int64) ([]SecretInfo, error) {
	var out []SecretInfo
	err := db.bun.NewSelect().Model((*ProjectSecret)(nil)).
		Column("name", "key_version", "updated_by", "created_at", "updated_at").
		Where("project_id = ?", projectID).Order("name").Scan(ctx, &out)
	if err != nil {
		return nil, wrap(err, "list secrets of project %d", projectID)
	}
	return out, nil
}

// DeleteSecret removes a secret; ErrNotFound if there is none by that name.
func (db *DB) DeleteSecret(ctx context.Context, projectID int64, name string) error {
	res, err := db.bun.NewDelete().Model((*ProjectSecret)(nil)).
		Where("project_id = ? AND name = ?", projectID, name).Exec(ctx)
	if err != nil {
		return wrap(err, "delete secret %s of project %d", name, projectID)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return wrap(ErrNotFound, "delete secret %s of project %d", name, projectID)
	}
	return nil
}

// SecretValues decrypts every secret of a project, for injection into its
// sandboxes and for the output redactor. A secret that does not decrypt
// (tampered, or sealed with a key no longer configured) is an error naming
// it, never a silently missing variable.
func (db *DB) SecretValues(ctx context.Context, projectID int64) (map[string]string, error) {
	if err := db.needKeyring("secret values"); err != nil {
		return nil, err
	}
	var rows []ProjectSecret
	if err := db.bun.NewSelect().Model(&rows).Where("project_id = ?", projectID).Scan(ctx); err != nil {
		return nil, wrap(err, "read secrets of project %d", projectID)
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		pt, err := db.keyring.Open(projectID, r.Name, r.Ciphertext)
		if err != nil {
			return nil, fmt.Errorf("secret values of project %d: %w", projectID, err)
		}
		out[r.Name] = string(pt)
	}
	return out, nil
}

// RotateSecrets re-encrypts every secret not sealed with the vault's
// current key version, and returns how many it rewrote. Each row is
// rewritten only if nobody changed it meanwhile, so it is safe to run while
// the server is up, and to run again after an interruption.
func (db *DB) RotateSecrets(ctx context.Context) (int, error) {
	if err := db.needKeyring("rotate secrets"); err != nil {
		return 0, err
	}
	current := db.keyring.Version()
	var rows []ProjectSecret
	if err := db.bun.NewSelect().Model(&rows).Where("key_version <> ?", current).Order("id").Scan(ctx); err != nil {
		return 0, wrap(err, "rotate secrets: list")
	}
	n := 0
	for _, r := range rows {
		pt, err := db.keyring.Open(r.ProjectID, r.Name, r.Ciphertext)
		if err != nil {
			return n, fmt.Errorf("rotate secrets: %w", err)
		}
		blob, err := db.keyring.Seal(r.ProjectID, r.Name, pt)
		clear(pt)
		if err != nil {
			return n, fmt.Errorf("rotate secrets: %w", err)
		}
		// Conditional on the row being as read: a value set meanwhile is
		// already sealed with the current key and must not be overwritten.
		res, err := db.bun.NewUpdate().Model((*ProjectSecret)(nil)).
			Set("ciphertext = ?", blob).Set("key_version = ?", current).
			Where("id = ? AND key_version = ? AND updated_at = ?", r.ID, r.KeyVersion, r.UpdatedAt).
			Exec(ctx)
		if err != nil {
			return n, wrap(err, "rotate secret %s of project %d", r.Name, r.ProjectID)
		}
		if k, _ := res.RowsAffected(); k == 1 {
			n++
		}
	}
	return n, nil
}
