package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
	"github.com/hero-dev/hero/store/vault"
)

const (
	testKey1 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	testKey2 = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100"
	testSalt = "00112233445566778899aabbccddeeff"
)

// suite is what every store test gets: a migrated database and a way to
// open a second handle to it (a second "replica").
type suite struct {
	db   *store.DB
	open func(t *testing.T, kr *vault.Keyring) *store.DB
	kr   *vault.Keyring
}

// TestStore runs the whole suite against SQLite and, when
// HERO_TEST_MYSQL_URL is set (scripts/with-mariadb.sh sets it), MariaDB.
func TestStore(t *testing.T) {
	storetest.EachURL(t, runSuite)
}

func runSuite(t *testing.T, url string) {
	kr, err := vault.Parse("1:"+testKey1, testSalt)
	if err != nil {
		t.Fatal(err)
	}
	s := &suite{kr: kr}
	s.open = func(t *testing.T, kr *vault.Keyring) *store.DB {
		t.Helper()
		db, err := store.Open(t.Context(), url, "", nil, store.WithKeyring(kr))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	s.db = s.open(t, kr)

	// Several replicas migrating at once, then once more: all succeed.
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		db := s.open(t, kr)
		wg.Go(func() { errs <- db.Migrate(t.Context()) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	if err := s.db.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	// Every migration is recorded exactly once, however many replicas ran it.
	var names []string
	if err := s.db.Bun().NewSelect().Table("hero_migrations").Column("name").Scan(t.Context(), &names); err != nil {
		t.Fatalf("read hero_migrations: %v", err)
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Fatalf("migration %s was applied twice: %v", n, names)
		}
		seen[n] = true
	}
	if !seen["20260101000001"] {
		t.Fatalf("the initial migration is not recorded: %v", names)
	}

	tests := map[string]func(*testing.T, *suite){
		"Schema":          testSchema,
		"Users":           testUsers,
		"Projects":        testProjects,
		"Members":         testMembers,
		"Secrets":         testSecrets,
		"Executions":      testExecutions,
		"ClaimRace":       testClaimExecutionRace,
		"Steps":           testSteps,
		"Confirmations":   testConfirmations,
		"DecideRace":      testDecideRace,
		"Expiry":          testExpiry,
		"Inputs":          testInputs,
		"Inbox":           testInbox,
		"InboxClaim":      testInboxClaimRace,
		"InboxWriter":     testInboxWriter,
		"InboxWriterRace": testInboxWriterRace,
		"Leases":          testLeases,
	}
	t.Run("parallel", func(t *testing.T) {
		for _, name := range slices.Sorted(mapKeys(tests)) {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				tests[name](t, s)
			})
		}
	})
	// These look at the whole database, so they run alone.
	t.Run("DeliveryCounts", func(t *testing.T) { testDeliveryCounts(t, s) })
	t.Run("RotateSecrets", func(t *testing.T) { testRotateSecrets(t, s) })
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// uniq makes names that do not collide between tests and runs sharing a
// MariaDB database.
func uniq(prefix string) string {
	b := make([]byte, 5)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newProject(t *testing.T, db *store.DB) *store.Project {
	t.Helper()
	p := &store.Project{Name: uniq("proj"), RepoURL: "https://example.com/r.git", DefaultBranch: "main"}
	must(t, db.CreateProject(t.Context(), p))
	return p
}

func newExecution(t *testing.T, db *store.DB, projectID int64) *store.Execution {
	t.Helper()
	e := &store.Execution{ProjectID: projectID, Surface: "terminal", Task: "fix the tests", Model: "m"}
	must(t, db.CreateExecution(t.Context(), e))
	return e
}

func testSchema(t *testing.T, s *suite) {
	// Every model column exists in its table.
	for _, m := range []any{&store.User{}, &store.Project{}, &store.ProjectMember{}, &store.Identity{},
		&store.ProjectSecret{}, &store.Execution{}, &store.Step{}, &store.Confirmation{}, &store.Input{},
		&store.Delivery{}, &store.SandboxLease{}} {
		err := s.db.Bun().NewSelect().Model(m).Limit(1).Scan(t.Context())
		if err != nil && !strings.Contains(err.Error(), "no rows") {
			t.Errorf("%T: %v", m, err)
		}
	}
	if d := s.db.Dialect(); d != store.DialectSQLite && d != store.DialectMySQL {
		t.Errorf("Dialect = %q", d)
	}
}

func testUsers(t *testing.T, s *suite) {
	ctx := t.Context()
	email := uniq("Ada") + "@Example.com"
	u, err := s.db.UpsertUser(ctx, email, "Ada")
	must(t, err)
	if u.ID == 0 || u.Email != strings.ToLower(email) || u.Name != "Ada" || u.CreatedAt.IsZero() {
		t.Fatalf("UpsertUser = %+v", u)
	}
	u2, err := s.db.UpsertUser(ctx, strings.ToLower(email), "Ada Lovelace")
	must(t, err)
	if u2.ID != u.ID || u2.Name != "Ada Lovelace" {
		t.Fatalf("second UpsertUser = %+v, want same id %d with new name", u2, u.ID)
	}
	if got, err := s.db.UserByID(ctx, u.ID); err != nil || got.Email != u.Email {
		t.Fatalf("UserByID = %+v, %v", got, err)
	}
	if got, err := s.db.UserByEmail(ctx, strings.ToUpper(email)); err != nil || got.ID != u.ID {
		t.Fatalf("UserByEmail = %+v, %v", got, err)
	}
	if _, err := s.db.UserByID(ctx, -1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UserByID(-1) err = %v, want ErrNotFound", err)
	}
	if _, err := s.db.UserByEmail(ctx, "nobody@nowhere"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UserByEmail err = %v, want ErrNotFound", err)
	}
	if _, err := s.db.UpsertUser(ctx, " ", "x"); err == nil {
		t.Error("UpsertUser with empty email succeeded")
	}

	ext := uniq("T1/U2")
	must(t, s.db.LinkIdentity(ctx, "slack", ext, u.ID))
	must(t, s.db.LinkIdentity(ctx, "slack", ext, u.ID)) // idempotent
	if got, err := s.db.UserByIdentity(ctx, "slack", ext); err != nil || got.ID != u.ID {
		t.Fatalf("UserByIdentity = %+v, %v", got, err)
	}
	if _, err := s.db.UserByIdentity(ctx, "discord", ext); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UserByIdentity(unlinked) err = %v, want ErrNotFound", err)
	}
	other, err := s.db.UpsertUser(ctx, uniq("bob")+"@example.com", "Bob")
	must(t, err)
	must(t, s.db.LinkIdentity(ctx, "slack", ext, other.ID)) // relink
	if got, _ := s.db.UserByIdentity(ctx, "slack", ext); got == nil || got.ID != other.ID {
		t.Fatalf("after relink UserByIdentity = %+v, want user %d", got, other.ID)
	}
	if err := s.db.LinkIdentity(ctx, "slack", uniq("x"), -5); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LinkIdentity to missing user err = %v, want ErrNotFound", err)
	}
}

func testProjects(t *testing.T, s *suite) {
	ctx := t.Context()
	p := &store.Project{
		Name: uniq("web"), RepoURL: "https://github.com/acme/web.git", DefaultBranch: "main",
		Sandbox:     store.SandboxConfig{Provider: "local", Template: "go", NetworkAllowed: true, CPUSeconds: 60, MemoryMB: 512, MaxProcesses: 64, IdleTimeoutS: 900},
		Governance:  store.Governance{BudgetPerRunUSD: 1.5, BudgetPerDayUSD: 20, MaxSteps: 40, WallClockS: 600, UncertaintyThreshold: 0.6, ConfirmationTTLS: 3600},
		PolicyRules: []store.PolicyRule{{Tool: "run_command", Pattern: `^rm -rf`, Action: "deny"}},
	}
	must(t, s.db.CreateProject(ctx, p))
	if p.ID == 0 || p.CreatedAt.IsZero() {
		t.Fatalf("CreateProject did not set ID/CreatedAt: %+v", p)
	}
	got, err := s.db.ProjectByName(ctx, p.Name)
	must(t, err)
	if got.ID != p.ID || got.Sandbox != p.Sandbox || got.Governance != p.Governance ||
		!slices.Equal(got.PolicyRules, p.PolicyRules) || !got.CreatedAt.Equal(p.CreatedAt) {
		t.Fatalf("ProjectByName = %+v\nwant %+v", got, p)
	}
	if got, err := s.db.ProjectByID(ctx, p.ID); err != nil || got.Name != p.Name {
		t.Fatalf("ProjectByID = %+v, %v", got, err)
	}
	// Zero values are stored as zero: defaults are the engine's business.
	bare := &store.Project{Name: uniq("bare")}
	must(t, s.db.CreateProject(ctx, bare))
	if got, _ := s.db.ProjectByID(ctx, bare.ID); got.Governance != (store.Governance{}) || got.Sandbox != (store.SandboxConfig{}) {
		t.Fatalf("bare project got defaults: %+v", got)
	}
	if err := s.db.CreateProject(ctx, &store.Project{Name: p.Name}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate CreateProject err = %v, want ErrConflict", err)
	}
	if err := s.db.CreateProject(ctx, &store.Project{}); err == nil {
		t.Fatal("CreateProject without a name succeeded")
	}

	p.DefaultBranch = "trunk"
	p.Governance.MaxSteps = 99
	p.PolicyRules = append(p.PolicyRules, store.PolicyRule{Tool: "*", Action: "confirm"})
	must(t, s.db.UpdateProject(ctx, p))
	got, _ = s.db.ProjectByID(ctx, p.ID)
	if got.DefaultBranch != "trunk" || got.Governance.MaxSteps != 99 || len(got.PolicyRules) != 2 {
		t.Fatalf("after UpdateProject: %+v", got)
	}
	renamed := *got
	renamed.Name = bare.Name
	if err := s.db.UpdateProject(ctx, &renamed); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("rename onto existing name err = %v, want ErrConflict", err)
	}
	if err := s.db.UpdateProject(ctx, &store.Project{ID: -3, Name: "ghost"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateProject(missing) err = %v, want ErrNotFound", err)
	}

	list, err := s.db.ListProjects(ctx)
	must(t, err)
	var names []string
	for _, q := range list {
		names = append(names, q.Name)
	}
	if !slices.Contains(names, p.Name) || !slices.Contains(names, bare.Name) || !slices.IsSorted(names) {
		t.Fatalf("ListProjects names = %v", names)
	}

	// Delete: members and secrets go, executions stay.
	u, _ := s.db.UpsertUser(ctx, uniq("del")+"@example.com", "D")
	must(t, s.db.SetMember(ctx, p.ID, u.ID, store.RoleOwner))
	must(t, s.db.SetSecret(ctx, p.ID, "TOKEN", []byte("v"), "test"))
	e := newExecution(t, s.db, p.ID)
	must(t, s.db.DeleteProject(ctx, p.Name))
	if _, err := s.db.ProjectByName(ctx, p.Name); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete ProjectByName err = %v", err)
	}
	if role, _ := s.db.MemberRole(ctx, p.ID, u.ID); role != "" {
		t.Errorf("member survived project deletion: %q", role)
	}
	if secrets, _ := s.db.ListSecrets(ctx, p.ID); len(secrets) != 0 {
		t.Errorf("secrets survived project deletion: %v", secrets)
	}
	if _, err := s.db.Execution(ctx, e.ID); err != nil {
		t.Errorf("execution was deleted with its project: %v", err)
	}
	if err := s.db.DeleteProject(ctx, p.Name); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteProject err = %v, want ErrNotFound", err)
	}
}

func testMembers(t *testing.T, s *suite) {
	ctx := t.Context()
	p := newProject(t, s.db)
	a, _ := s.db.UpsertUser(ctx, uniq("a")+"@example.com", "A")
	b, _ := s.db.UpsertUser(ctx, uniq("b")+"@example.com", "B")
	must(t, s.db.SetMember(ctx, p.ID, a.ID, store.RoleMember))
	must(t, s.db.SetMember(ctx, p.ID, a.ID, store.RoleApprover)) // change role
	must(t, s.db.SetMember(ctx, p.ID, b.ID, store.RoleViewer))
	if role, err := s.db.MemberRole(ctx, p.ID, a.ID); err != nil || role != store.RoleApprover {
		t.Fatalf("MemberRole = %q, %v", role, err)
	}
	ms, err := s.db.ListMembers(ctx, p.ID)
	must(t, err)
	if len(ms) != 2 || ms[0].UserID != a.ID || ms[0].Role != store.RoleApprover || ms[0].Email != a.Email || ms[1].Role != store.RoleViewer {
		t.Fatalf("ListMembers = %+v", ms)
	}
	if err := s.db.SetMember(ctx, p.ID, a.ID, "god"); err == nil || !strings.Contains(err.Error(), `"god"`) {
		t.Errorf("SetMember with bad role err = %v", err)
	}
	if err := s.db.SetMember(ctx, -1, a.ID, store.RoleMember); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetMember missing project err = %v", err)
	}
	must(t, s.db.RemoveMember(ctx, p.ID, b.ID))
	if role, err := s.db.MemberRole(ctx, p.ID, b.ID); err != nil || role != "" {
		t.Fatalf("MemberRole after remove = %q, %v", role, err)
	}
	if err := s.db.RemoveMember(ctx, p.ID, b.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second RemoveMember err = %v, want ErrNotFound", err)
	}
}

func rawSecret(t *testing.T, db *store.DB, projectID int64, name string) (blob []byte, version int) {
	t.Helper()
	var row struct {
		Ciphertext []byte `bun:"ciphertext"`
		KeyVersion int    `bun:"key_version"`
	}
	err := db.Bun().NewSelect().Table("project_secrets").Column("ciphertext", "key_version").
		Where("project_id = ? AND name = ?", projectID, name).Scan(t.Context(), &row)
	must(t, err)
	return row.Ciphertext, row.KeyVersion
}

func testSecrets(t *testing.T, s *suite) {
	ctx := t.Context()
	p := newProject(t, s.db)
	q := newProject(t, s.db)
	value := []byte("ghp_" + uniq("plaintextsecret"))
	must(t, s.db.SetSecret(ctx, p.ID, "GITHUB_TOKEN", value, "alice"))
	must(t, s.db.SetSecret(ctx, p.ID, "NPM_TOKEN", []byte("npm-1"), "alice"))
	must(t, s.db.SetSecret(ctx, p.ID, "NPM_TOKEN", []byte("npm-2"), "bob")) // replace

	list, err := s.db.ListSecrets(ctx, p.ID)
	must(t, err)
	if len(list) != 2 || list[0].Name != "GITHUB_TOKEN" || list[1].Name != "NPM_TOKEN" || list[1].UpdatedBy != "bob" || list[1].UpdatedAt.IsZero() {
		t.Fatalf("ListSecrets = %+v", list)
	}
	vals, err := s.db.SecretValues(ctx, p.ID)
	must(t, err)
	if len(vals) != 2 || vals["GITHUB_TOKEN"] != string(value) || vals["NPM_TOKEN"] != "npm-2" {
		t.Fatalf("SecretValues = %v", vals)
	}

	// At rest: ciphertext only.
	blob, version := rawSecret(t, s.db, p.ID, "GITHUB_TOKEN")
	if bytes.Contains(blob, value) || version != 1 {
		t.Fatalf("raw column holds the plaintext or wrong version %d", version)
	}

	// A ciphertext copied into another project's row, or under another
	// name, does not decrypt.
	must(t, s.db.SetSecret(ctx, q.ID, "GITHUB_TOKEN", []byte("q's own"), "carol"))
	_, err = s.db.Bun().NewUpdate().Table("project_secrets").Set("ciphertext = ?", blob).
		Where("project_id = ? AND name = ?", q.ID, "GITHUB_TOKEN").Exec(ctx)
	must(t, err)
	if vals, err := s.db.SecretValues(ctx, q.ID); !errors.Is(err, vault.ErrDecrypt) || strings.Contains(fmt.Sprint(err), string(value)) {
		t.Fatalf("SecretValues after cross-project copy = %v, %v; want ErrDecrypt", vals, err)
	}
	must(t, s.db.DeleteSecret(ctx, q.ID, "GITHUB_TOKEN"))
	_, err = s.db.Bun().NewUpdate().Table("project_secrets").Set("ciphertext = ?", blob).
		Where("project_id = ? AND name = ?", p.ID, "NPM_TOKEN").Exec(ctx)
	must(t, err)
	if _, err := s.db.SecretValues(ctx, p.ID); !errors.Is(err, vault.ErrDecrypt) {
		t.Fatalf("SecretValues after cross-name copy err = %v; want ErrDecrypt", err)
	}

	for _, bad := range []string{"lower", "1ABC", "WITH-DASH", "", "A B"} {
		err := s.db.SetSecret(ctx, p.ID, bad, []byte("v"), "x")
		if err == nil || !strings.Contains(err.Error(), "invalid secret name") {
			t.Errorf("SetSecret(%q) err = %v, want invalid secret name", bad, err)
		}
	}
	if err := s.db.SetSecret(ctx, -1, "OK", []byte("v"), "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetSecret on missing project err = %v, want ErrNotFound", err)
	}
	if err := s.db.DeleteSecret(ctx, p.ID, "NOPE"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteSecret(missing) err = %v, want ErrNotFound", err)
	}

	// Without a keyring, secret methods say so.
	nokey, err := store.Open(ctx, "sqlite://:memory:", "", nil)
	must(t, err)
	defer nokey.Close()
	if err := nokey.SetSecret(ctx, 1, "A", nil, "x"); err == nil || !strings.Contains(err.Error(), "keyring") {
		t.Errorf("SetSecret without keyring err = %v", err)
	}
}

func testRotateSecrets(t *testing.T, s *suite) {
	ctx := t.Context()
	p := newProject(t, s.db)
	must(t, s.db.SetSecret(ctx, p.ID, "A", []byte("alpha"), "x"))
	must(t, s.db.SetSecret(ctx, p.ID, "B", []byte("beta"), "x"))
	// Other tests left undecryptable rows on purpose; clear them.
	_, err := s.db.Bun().NewDelete().Table("project_secrets").Where("project_id <> ?", p.ID).Exec(ctx)
	must(t, err)

	rotated, err := vault.Parse("2:"+testKey2+",1:"+testKey1, testSalt)
	must(t, err)
	db2 := s.open(t, rotated)
	n, err := db2.RotateSecrets(ctx)
	must(t, err)
	if n != 2 {
		t.Fatalf("RotateSecrets = %d, want 2", n)
	}
	if _, v := rawSecret(t, db2, p.ID, "A"); v != 2 {
		t.Fatalf("key_version after rotation = %d, want 2", v)
	}
	if n, err := db2.RotateSecrets(ctx); err != nil || n != 0 {
		t.Fatalf("second RotateSecrets = %d, %v; want 0", n, err)
	}
	onlyNew, _ := vault.Parse("2:"+testKey2, testSalt)
	vals, err := s.open(t, onlyNew).SecretValues(ctx, p.ID)
	if err != nil || vals["A"] != "alpha" || vals["B"] != "beta" {
		t.Fatalf("SecretValues with only the new key = %v, %v", vals, err)
	}
	if _, err := s.db.SecretValues(ctx, p.ID); err == nil {
		t.Fatal("the old key alone still opens rotated secrets")
	}
}

func testExecutions(t *testing.T, s *suite) {
	ctx := t.Context()
	p := newProject(t, s.db)
	e := &store.Execution{ProjectID: p.ID, Surface: "slack", ThreadRef: "C1/1.2", Task: "add a README", Model: "gpt", CostUSD: 0.25}
	must(t, s.db.CreateExecution(ctx, e))
	if !regexp.MustCompile(`^r[a-z2-7]{7}$`).MatchString(e.ID) || e.Status != store.StatusQueued || e.CreatedAt.IsZero() {
		t.Fatalf("CreateExecution = %+v", e)
	}
	got, err := s.db.Execution(ctx, e.ID)
	must(t, err)
	if got.Task != e.Task || got.ThreadRef != e.ThreadRef || !got.CreatedAt.Equal(e.CreatedAt) || got.StartedAt != nil {
		t.Fatalf("Execution = %+v", got)
	}
	if err := s.db.CreateExecution(ctx, &store.Execution{ID: e.ID, ProjectID: p.ID}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate id err = %v, want ErrConflict", err)
	}
	if _, err := s.db.Execution(ctx, "rnothere"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Execution(missing) err = %v", err)
	}

	// Only the named columns are written.
	started := time.Now().UTC().Truncate(time.Microsecond)
	e.Status, e.StartedAt, e.Task = store.StatusRunning, &started, "changed in memory only"
	before := e.UpdatedAt
	must(t, s.db.UpdateExecution(ctx, e, "status", "started_at"))
	got, _ = s.db.Execution(ctx, e.ID)
	if got.Status != store.StatusRunning || got.StartedAt == nil || !got.StartedAt.Equal(started) || got.Task != "add a README" || !got.UpdatedAt.After(before) {
		t.Fatalf("after UpdateExecution: %+v", got)
	}
	e.Conversation = strings.Repeat("x", 100_000) // beyond TEXT
	must(t, s.db.UpdateExecution(ctx, e))
	if got, _ := s.db.Execution(ctx, e.ID); len(got.Conversation) != 100_000 || got.Task != "changed in memory only" {
		t.Fatalf("full update: len(conversation) = %d, task %q", len(got.Conversation), got.Task)
	}
	if err := s.db.UpdateExecution(ctx, &store.Execution{ID: "rmissing"}, "status"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateExecution(missing) err = %v", err)
	}

	e2 := newExecution(t, s.db, p.ID)
	e2.Status, e2.CostUSD = store.StatusSucceeded, 1.0
	must(t, s.db.UpdateExecution(ctx, e2, "status", "cost_usd"))
	list, err := s.db.ListExecutions(ctx, store.ExecutionFilter{ProjectID: p.ID})
	must(t, err)
	if len(list) != 2 || list[0].ID != e2.ID || list[1].ID != e.ID {
		t.Fatalf("ListExecutions = %v, want newest first [%s %s]", ids(list), e2.ID, e.ID)
	}
	list, _ = s.db.ListExecutions(ctx, store.ExecutionFilter{ProjectID: p.ID, Statuses: []string{store.StatusRunning, store.StatusWaiting}})
	if len(list) != 1 || list[0].ID != e.ID {
		t.Fatalf("ListExecutions(running) = %v", ids(list))
	}
	list, _ = s.db.ListExecutions(ctx, store.ExecutionFilter{ProjectID: p.ID, Limit: 1})
	if len(list) != 1 {
		t.Fatalf("ListExecutions(limit 1) = %v", ids(list))
	}
	byStatus, err := s.db.ExecutionsByStatus(ctx, store.StatusRunning)
	must(t, err)
	if !slices.Contains(ids(byStatus), e.ID) || slices.Contains(ids(byStatus), e2.ID) {
		t.Fatalf("ExecutionsByStatus(running) = %v", ids(byStatus))
	}

	spend, err := s.db.ProjectSpendSince(ctx, p.ID, time.Now().Add(-time.Hour))
	must(t, err)
	if spend != 1.25 {
		t.Fatalf("ProjectSpendSince = %v, want 1.25", spend)
	}
	if spend, _ := s.db.ProjectSpendSince(ctx, p.ID, time.Now().Add(time.Hour)); spend != 0 {
		t.Fatalf("ProjectSpendSince(future) = %v", spend)
	}

	// Claims: unowned → A; B loses; A renews; lapsed → B; released → anyone.
	claim := func(owner string, until time.Time) bool {
		ok, err := s.db.ClaimExecution(ctx, e.ID, owner, until)
		must(t, err)
		return ok
	}
	soon := time.Now().Add(time.Minute)
	if !claim("A", soon) || claim("B", soon) || !claim("A", soon.Add(time.Minute)) {
		t.Fatal("claim sequence A, B, A-renew wrong")
	}
	if !claim("A", time.Now().Add(-time.Second)) || !claim("B", soon) {
		t.Fatal("B could not take over a lapsed lease")
	}
	must(t, s.db.ReleaseExecution(ctx, e.ID, "A")) // not A's: no-op
	if claim("A", soon) {
		t.Fatal("release by a non-owner freed the run")
	}
	must(t, s.db.ReleaseExecution(ctx, e.ID, "B"))
	if !claim("A", soon) {
		t.Fatal("A could not claim a released run")
	}
	if _, err := s.db.ClaimExecution(ctx, "rmissing", "A", soon); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ClaimExecution(missing) err = %v", err)
	}
}

func ids(es []store.Execution) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func testClaimExecutionRace(t *testing.T, s *suite) {
	p := newProject(t, s.db)
	e := newExecution(t, s.db, p.ID)
	dbs := []*store.DB{s.db, s.open(t, s.kr)}
	var mu sync.Mutex
	var winners []string
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			owner := fmt.Sprintf("replica-%d", i)
			ok, err := dbs[i%2].ClaimExecution(t.Context(), e.ID, owner, time.Now().Add(time.Minute))
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				winners = append(winners, owner)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("winners = %v, want exactly one", winners)
	}
}

func testSteps(t *testing.T, s *suite) {
	ctx := t.Context()
	p := newProject(t, s.db)
	e := newExecution(t, s.db, p.ID)
	dbs := []*store.DB{s.db, s.open(t, s.kr)}
	const n = 24
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			st := &store.Step{ExecutionID: e.ID, Kind: store.StepTool, Tool: "run_command", Arguments: fmt.Sprint(i), Output: "ok"}
			if err := dbs[i%2].AppendStep(ctx, st); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	steps, err := s.db.ListSteps(ctx, e.ID)
	must(t, err)
	if len(steps) != n {
		t.Fatalf("ListSteps returned %d steps, want %d", len(steps), n)
	}
	seen := map[string]bool{}
	for i, st := range steps {
		if st.Ordinal != i+1 {
			t.Fatalf("step %d has ordinal %d", i, st.Ordinal)
		}
		seen[st.Arguments] = true
	}
	if len(seen) != n {
		t.Fatalf("steps lost or duplicated: %d distinct", len(seen))
	}
	st := &store.Step{ExecutionID: "rmissing", Kind: store.StepModel}
	if err := s.db.AppendStep(ctx, st); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AppendStep to missing execution err = %v", err)
	}
}

func newConfirmation(t *testing.T, db *store.DB, e *store.Execution, expires time.Time) *store.Confirmation {
	t.Helper()
	c := &store.Confirmation{ExecutionID: e.ID, ProjectID: e.ProjectID, Kind: store.ConfirmKindTool, Tool: "git_push",
		Action: "git push origin main", ActionHash: "h", Risk: "high", ExpiresAt: expires}
	must(t, db.CreateConfirmation(t.Context(), c))
	return c
}

func testConfirmations(t *testing.T, s *suite) {
	ctx := t.Context()
	p := newProject(t, s.db)
	e := newExecution(t, s.db, p.ID)
	c := newConfirmation(t, s.db, e, time.Now().Add(time.Hour))
	if !regexp.MustCompile(`^c[a-z2-7]{6}$`).MatchString(c.ID) || c.Status != store.ConfirmPending {
		t.Fatalf("CreateConfirmation = %+v", c)
	}
	if err := s.db.CreateConfirmation(ctx, &store.Confirmation{ExecutionID: e.ID}); err == nil || !strings.Contains(err.Error(), "ExpiresAt") {
		t.Fatalf("CreateConfirmation without expiry err = %v", err)
	}
	c2 := newConfirmation(t, s.db, e, time.Now().Add(time.Hour))
	pending, err := s.db.PendingConfirmations(ctx, e.ID)
	must(t, err)
	if len(pending) != 2 || pending[0].ID != c.ID {
		t.Fatalf("PendingConfirmations = %+v", pending)
	}
	all, _ := s.db.PendingConfirmations(ctx, "")
	if len(all) < 2 {
		t.Fatalf("PendingConfirmations(all) = %d rows", len(all))
	}
	must(t, s.db.SetConfirmationRef(ctx, c.ID, "C1/1712.5"))
	if err := s.db.SetConfirmationRef(ctx, "cnone", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetConfirmationRef(missing) err = %v", err)
	}

	at := time.Now()
	won, err := s.db.DecideConfirmation(ctx, c.ID, store.ConfirmApproved, "slack:T1/U2", "", at)
	must(t, err)
	if !won {
		t.Fatal("first decision lost")
	}
	if won, _ := s.db.DecideConfirmation(ctx, c.ID, store.ConfirmDenied, "someone", "", at); won {
		t.Fatal("second decision won")
	}
	got, _ := s.db.Confirmation(ctx, c.ID)
	if got.Status != store.ConfirmApproved || got.DecidedBy != "slack:T1/U2" || got.DecidedAt == nil || got.SurfaceRef != "C1/1712.5" {
		t.Fatalf("Confirmation after decide = %+v", got)
	}
	if _, err := s.db.DecideConfirmation(ctx, c2.ID, "maybe", "x", "", at); err == nil {
		t.Fatal("DecideConfirmation accepted status maybe")
	}
	if _, err := s.db.DecideConfirmation(ctx, "cnone", store.ConfirmApproved, "x", "", at); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DecideConfirmation(missing) err = %v", err)
	}
	// Past its expiry a confirmation cannot be decided any more.
	if won, err := s.db.DecideConfirmation(ctx, c2.ID, store.ConfirmApproved, "x", "", time.Now().Add(2*time.Hour)); err != nil || won {
		t.Fatalf("decision after expiry = %v, %v", won, err)
	}
	if _, err := s.db.Confirmation(ctx, "cnone"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Confirmation(missing) err = %v", err)
	}
}

func testDecideRace(t *testing.T, s *suite) {
	p := newProject(t, s.db)
	e := newExecution(t, s.db, p.ID)
	c := newConfirmation(t, s.db, e, time.Now().Add(time.Hour))
	dbs := []*store.DB{s.db, s.open(t, s.kr)}
	var mu sync.Mutex
	var winners []string
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			who := fmt.Sprintf("user-%d", i)
			status := store.ConfirmApproved
			if i%3 == 0 {
				status = store.ConfirmDenied
			}
			won, err := dbs[i%2].DecideConfirmation(t.Context(), c.ID, status, who, "", time.Now())
			if err != nil {
				t.Error(err)
			}
			if won {
				mu.Lock()
				winners = append(winners, who)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("winners = %v, want exactly one", winners)
	}
	got, _ := s.db.Confirmation(t.Context(), c.ID)
	if got.DecidedBy != winners[0] {
		t.Fatalf("DecidedBy = %q, winner %q", got.DecidedBy, winners[0])
	}
}

func testExpiry(t *testing.T, s *suite) {
	ctx := t.Context()
	p := newProject(t, s.db)
	e := newExecution(t, s.db, p.ID)
	// Far in the past so that no other test's confirmation sorts before it.
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	var mine []string
	for range 5 {
		mine = append(mine, newConfirmation(t, s.db, e, old).ID)
	}
	live := newConfirmation(t, s.db, e, time.Now().Add(time.Hour))

	dbs := []*store.DB{s.db, s.open(t, s.kr)}
	results := make([][]store.Confirmation, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			var err error
			results[i], err = dbs[i].ExpireConfirmations(ctx, time.Now())
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	count := map[string]int{}
	for _, r := range results {
		for _, c := range r {
			count[c.ID]++
			if c.Status != store.ConfirmExpired {
				t.Errorf("returned confirmation %s has status %q", c.ID, c.Status)
			}
		}
	}
	for _, id := range mine {
		if count[id] != 1 {
			t.Errorf("confirmation %s returned %d times by two concurrent expirers, want 1", id, count[id])
		}
		if c, _ := s.db.Confirmation(ctx, id); c.Status != store.ConfirmExpired {
			t.Errorf("confirmation %s status %q after expiry", id, c.Status)
		}
	}
	if count[live.ID] != 0 {
		t.Error("a live confirmation was expired")
	}
	again, _ := s.db.ExpireConfirmations(ctx, time.Now())
	for _, c := range again {
		if slices.Contains(mine, c.ID) {
			t.Errorf("confirmation %s expired twice", c.ID)
		}
	}
}

func testInputs(t *testing.T, s *suite) {
	ctx := t.Context()
	p := newProject(t, s.db)
	e := newExecution(t, s.db, p.ID)
	for i := range 3 {
		_, err := s.db.AddInput(ctx, e.ID, "alice", fmt.Sprintf("msg %d", i))
		must(t, err)
	}
	got, err := s.db.TakeInputs(ctx, e.ID)
	must(t, err)
	if len(got) != 3 || got[0].Body != "msg 0" || got[2].Body != "msg 2" || got[0].ConsumedAt == nil {
		t.Fatalf("TakeInputs = %+v", got)
	}
	if again, err := s.db.TakeInputs(ctx, e.ID); err != nil || len(again) != 0 {
		t.Fatalf("second TakeInputs = %+v, %v", again, err)
	}
	if _, err := s.db.AddInput(ctx, "rmissing", "a", "b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AddInput(missing) err = %v", err)
	}

	// A redelivered message (same delivery key) is stored once; the key is
	// per execution, and unkeyed inputs never collide.
	other := newExecution(t, s.db, p.ID)
	for _, c := range []struct {
		exec, key string
		added     bool
	}{{e.ID, "slack:Ev1", true}, {e.ID, "slack:Ev1", false}, {other.ID, "slack:Ev1", true}, {e.ID, "", true}, {e.ID, "", true}} {
		_, added, err := s.db.AddInputOnce(ctx, c.exec, "bob", "steer", c.key)
		if err != nil || added != c.added {
			t.Fatalf("AddInputOnce(%s, %q) = %v, %v; want %v", c.exec, c.key, added, err, c.added)
		}
	}
	if got, _ := s.db.TakeInputs(ctx, e.ID); len(got) != 3 {
		t.Fatalf("inputs after a redelivery = %d, want 3", len(got))
	}

	// Concurrent takers while inputs arrive: every input is taken once.
	dbs := []*store.DB{s.db, s.open(t, s.kr)}
	const n = 40
	var mu sync.Mutex
	taken := map[string]int{}
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		for i := range n {
			if _, err := s.db.AddInput(ctx, e.ID, "bob", fmt.Sprint(i)); err != nil {
				t.Error(err)
			}
		}
	})
	for i := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					ins, err := dbs[i%2].TakeInputs(ctx, e.ID)
					if err != nil {
						t.Error(err)
					}
					mu.Lock()
					for _, in := range ins {
						taken[in.Body]++
					}
					mu.Unlock()
					return
				default:
				}
				ins, err := dbs[i%2].TakeInputs(ctx, e.ID)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, in := range ins {
					taken[in.Body]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(taken) != n {
		t.Fatalf("%d distinct inputs taken, want %d", len(taken), n)
	}
	for body, k := range taken {
		if k != 1 {
			t.Errorf("input %q taken %d times", body, k)
		}
	}
}

func testInbox(t *testing.T, s *suite) {
	ctx := t.Context()
	src := uniq("github")
	ins, err := s.db.Enqueue(ctx, src, "d-1", "issue_comment", []byte(`{"a":1}`))
	must(t, err)
	if !ins {
		t.Fatal("first Enqueue not inserted")
	}
	if ins, err := s.db.Enqueue(ctx, src, "d-1", "issue_comment", []byte(`{"a":1}`)); err != nil || ins {
		t.Fatalf("duplicate Enqueue = %v, %v; want false, nil", ins, err)
	}
	if ins, err := s.db.Enqueue(ctx, src, "D-1", "issue_comment", nil); err != nil || !ins {
		t.Fatalf("Enqueue with id differing in case = %v, %v; want a new delivery", ins, err)
	}
	if _, err := s.db.Enqueue(ctx, src, "", "x", nil); err == nil {
		t.Fatal("Enqueue without delivery id succeeded")
	}

	ds, err := s.db.ClaimDeliveries(ctx, "w1", time.Minute, 10, src)
	must(t, err)
	if len(ds) != 2 || ds[0].DeliveryID != "d-1" || string(ds[0].Payload) != `{"a":1}` || ds[0].Attempts != 1 || ds[0].ClaimedBy != "w1" {
		var all []store.Delivery
		_ = s.db.Bun().NewSelect().Model(&all).Where("source = ?", src).Scan(ctx)
		t.Fatalf("ClaimDeliveries = %+v\nrows: %+v\nnow %v", ds, all, time.Now().UTC())
	}
	if more, _ := s.db.ClaimDeliveries(ctx, "w2", time.Minute, 10, src); len(more) != 0 {
		t.Fatalf("claimed deliveries handed out again: %+v", more)
	}
	must(t, s.db.CompleteDelivery(ctx, ds[0].ID))
	if d, _ := s.db.Delivery(ctx, ds[0].ID); d.Status != store.DeliveryDone || d.ProcessedAt == nil {
		t.Fatalf("after CompleteDelivery: %+v", d)
	}

	// Failure with retries: rescheduled after the backoff, then parked.
	id := ds[1].ID
	must(t, s.db.FailDelivery(ctx, id, "boom", 2, time.Hour))
	d, _ := s.db.Delivery(ctx, id)
	if d.Status != store.DeliveryPending || d.LastError != "boom" || time.Until(d.NextAttemptAt) < 50*time.Minute {
		t.Fatalf("after first failure: %+v", d)
	}
	if due, _ := s.db.ClaimDeliveries(ctx, "w1", time.Minute, 10, src); len(due) != 0 {
		t.Fatal("a delivery in backoff was claimed")
	}
	must(t, s.db.FailDelivery(ctx, id, "boom", 2, 0)) // due at once
	if d, _ := s.db.Delivery(ctx, id); d.Status != store.DeliveryPending {
		t.Fatalf("status %q", d.Status)
	}
	again, err := s.db.ClaimDeliveries(ctx, "w1", time.Minute, 10, src)
	must(t, err)
	if len(again) != 1 || again[0].Attempts != 2 {
		t.Fatalf("reclaim = %+v", again)
	}
	must(t, s.db.FailDelivery(ctx, id, strings.Repeat("e", 10_000), 2, 0))
	d, _ = s.db.Delivery(ctx, id)
	if d.Status != store.DeliveryFailed || len(d.LastError) > 4000 {
		t.Fatalf("after maxAttempts: status %q, len(err) %d", d.Status, len(d.LastError))
	}

	// A lapsed lease makes a delivery claimable again.
	enqueue(t, s.db, src, "d-2")
	first, _ := s.db.ClaimDeliveries(ctx, "dead-worker", time.Millisecond, 1, src)
	if len(first) != 1 {
		t.Fatalf("claim d-2: %+v", first)
	}
	deadline := time.Now().Add(time.Minute) // a loaded machine is slow, not wrong
	for {
		got, err := s.db.ClaimDeliveries(ctx, "w3", time.Minute, 1, src)
		must(t, err)
		if len(got) == 1 && got[0].ID == first[0].ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("delivery with a lapsed lease never reclaimed")
		}
	}
	if err := s.db.CompleteDelivery(ctx, -1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CompleteDelivery(missing) err = %v", err)
	}
	if err := s.db.FailDelivery(ctx, -1, "x", 1, 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FailDelivery(missing) err = %v", err)
	}
}

func enqueue(t *testing.T, db *store.DB, source, id string) {
	t.Helper()
	if _, err := db.Enqueue(t.Context(), source, id, "event", nil); err != nil {
		t.Fatal(err)
	}
}

func testInboxClaimRace(t *testing.T, s *suite) {
	ctx := t.Context()
	src := uniq("slack")
	const n = 60
	for i := range n {
		enqueue(t, s.db, src, fmt.Sprint(i))
	}
	replicas := []*store.DB{s.db, s.open(t, s.kr)}
	var mu sync.Mutex
	got := map[int64]string{}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			owner := fmt.Sprintf("replica-%d/worker-%d", w%2, w)
			for {
				ds, err := replicas[w%2].ClaimDeliveries(ctx, owner, time.Minute, 4, src)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					if prev, dup := got[d.ID]; dup {
						t.Errorf("delivery %d handed to %s and %s", d.ID, prev, owner)
					}
					got[d.ID] = owner
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(got) != n {
		t.Fatalf("%d deliveries claimed, want %d", len(got), n)
	}
}

// testInboxWriterRace: a delivery another replica commits while a batch
// holding it is being stored is reported as already stored, and the rest
// of the batch is stored all the same.
func testInboxWriterRace(t *testing.T, s *suite) {
	ctx := t.Context()
	src := uniq("slack")
	at := time.Now().UTC().Truncate(time.Second)
	other, err := s.db.Bun().BeginTx(ctx, nil)
	must(t, err)
	_, err = other.NewInsert().Model(&store.Delivery{Source: src, DeliveryID: "k", Event: "e", Payload: []byte("first"),
		Status: store.DeliveryPending, ReceivedAt: at, NextAttemptAt: at}).Exec(ctx)
	must(t, err)

	w := store.NewInboxWriter(s.db, 16, 100*time.Millisecond) // one batch for both
	got := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range []string{"k", "k2"} {
		wg.Go(func() {
			ok, err := w.Write(ctx, src, id, "e", []byte("second"))
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			got[id] = ok
			mu.Unlock()
		})
	}
	time.Sleep(300 * time.Millisecond) // the batch waits behind the other transaction
	must(t, other.Commit())
	wg.Wait()
	if got["k"] || !got["k2"] {
		t.Fatalf("inserted = %v, want k stored by the other writer and k2 by this one", got)
	}
	ds, err := s.db.ClaimDeliveries(ctx, "check", time.Minute, 10, src)
	must(t, err)
	payloads := map[string]string{}
	for _, d := range ds {
		payloads[d.DeliveryID] = string(d.Payload)
	}
	if len(ds) != 2 || payloads["k"] != "first" || payloads["k2"] != "second" {
		t.Fatalf("stored %v, want k from the other writer and k2 from this one", payloads)
	}
}

func testInboxWriter(t *testing.T, s *suite) {
	ctx := t.Context()
	src := uniq("github")
	// Two writers, as two replicas would have: a delivery sent to both
	// at once is reported new by exactly one of them.
	writers := []*store.InboxWriter{store.NewInboxWriter(s.db, 16, time.Millisecond), store.NewInboxWriter(s.db, 16, time.Millisecond)}
	const n = 100
	var mu sync.Mutex
	inserted := map[string]int{}
	var wg sync.WaitGroup
	for i := range 4 * n { // every delivery id four times
		wg.Go(func() {
			id := fmt.Sprint(i % n)
			ok, err := writers[i%2].Write(ctx, src, id, "push", []byte(id))
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				mu.Lock()
				inserted[id]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(inserted) != n {
		t.Fatalf("%d ids reported inserted, want %d", len(inserted), n)
	}
	for id, k := range inserted {
		if k != 1 {
			t.Errorf("id %s reported inserted %d times", id, k)
		}
	}
	ds, err := s.db.ClaimDeliveries(ctx, "check", time.Minute, 1000, src)
	must(t, err)
	if len(ds) != n {
		t.Fatalf("%d deliveries stored, want %d", len(ds), n)
	}
	for _, d := range ds {
		if string(d.Payload) != d.DeliveryID {
			t.Fatalf("delivery %s has payload %q", d.DeliveryID, d.Payload)
		}
	}
	if _, err := writers[0].Write(ctx, "", "x", "", nil); err == nil {
		t.Fatal("Write without source succeeded")
	}
}

func testDeliveryCounts(t *testing.T, s *suite) {
	ctx := t.Context()
	before, err := s.db.DeliveryCounts(ctx)
	must(t, err)
	src := uniq("discord")
	for i := range 3 {
		enqueue(t, s.db, src, fmt.Sprint(i))
	}
	ds, _ := s.db.ClaimDeliveries(ctx, "w", time.Minute, 2, src)
	must(t, s.db.CompleteDelivery(ctx, ds[0].ID))
	must(t, s.db.FailDelivery(ctx, ds[1].ID, "bad", 1, 0))
	after, err := s.db.DeliveryCounts(ctx)
	must(t, err)
	for status, delta := range map[string]int{store.DeliveryPending: 1, store.DeliveryDone: 1, store.DeliveryFailed: 1} {
		if after[status]-before[status] != delta {
			t.Errorf("%s: %d → %d, want +%d", status, before[status], after[status], delta)
		}
	}
}

func testLeases(t *testing.T, s *suite) {
	ctx := t.Context()
	id := uniq("sbx")
	l := &store.SandboxLease{SandboxID: id, Provider: "local", Template: "go", ProjectID: 1, Owner: "replica-a", State: "pooled",
		Host: "host-1", Process: "boot/42/1000"}
	must(t, s.db.PutLease(ctx, l))
	l.State, l.ExecutionID = "leased", "rabc"
	must(t, s.db.PutLease(ctx, l))
	touched := time.Now().Add(time.Minute).UTC().Truncate(time.Microsecond)
	must(t, s.db.TouchLease(ctx, id, touched))
	ls, err := s.db.ListLeases(ctx)
	must(t, err)
	var found *store.SandboxLease
	for i := range ls {
		if ls[i].SandboxID == id {
			found = &ls[i]
		}
	}
	if found == nil || found.State != "leased" || found.ExecutionID != "rabc" || !found.LastUsedAt.Equal(touched) || !found.CreatedAt.Equal(l.CreatedAt) {
		t.Fatalf("ListLeases entry = %+v", found)
	}
	// The owner's identity and heartbeat, for the orphan reaper.
	if found.Host != "host-1" || found.Process != "boot/42/1000" || found.HeartbeatAt != nil {
		t.Fatalf("owner identity = %q %q %v", found.Host, found.Process, found.HeartbeatAt)
	}
	beat := touched.Add(time.Minute)
	must(t, s.db.HeartbeatLeases(ctx, "replica-a", beat))
	must(t, s.db.HeartbeatLeases(ctx, "replica-b", beat.Add(time.Hour))) // someone else's
	ls, err = s.db.ListLeases(ctx)
	must(t, err)
	for _, x := range ls {
		if x.SandboxID == id && (x.HeartbeatAt == nil || !x.HeartbeatAt.Equal(beat)) {
			t.Fatalf("heartbeat = %v, want %v", x.HeartbeatAt, beat)
		}
	}
	if err := s.db.TouchLease(ctx, "nope", touched); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("TouchLease(missing) err = %v", err)
	}
	must(t, s.db.DeleteLease(ctx, id))
	must(t, s.db.DeleteLease(ctx, id)) // idempotent
	ls, _ = s.db.ListLeases(ctx)
	for _, x := range ls {
		if x.SandboxID == id {
			t.Fatal("lease still listed after delete")
		}
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "data")
	db, err := store.Open(ctx, "", dir, nil)
	must(t, err)
	must(t, db.Migrate(ctx))
	if db.Dialect() != store.DialectSQLite {
		t.Errorf("Dialect = %q", db.Dialect())
	}
	must(t, db.Close())
	if _, err := os.Stat(filepath.Join(dir, "hero.db")); err != nil {
		t.Fatalf("default database file: %v", err)
	}
	var mode string
	db, _ = store.Open(ctx, "", dir, nil)
	must(t, db.Bun().NewRaw("PRAGMA journal_mode").Scan(ctx, &mode))
	db.Close()
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}

	mem, err := store.Open(ctx, "sqlite://:memory:", "", nil)
	must(t, err)
	must(t, mem.Migrate(ctx))
	must(t, mem.CreateProject(ctx, &store.Project{Name: "p"}))
	if _, err := mem.ProjectByName(ctx, "p"); err != nil {
		t.Fatalf("in-memory database lost a row: %v", err)
	}
	mem.Close()

	for url, want := range map[string]string{
		"postgres://u:p@h/db":            `unsupported DATABASE_URL scheme "postgres"`,
		"mysql://u:secretpw@h:3306/":     "database name",
		"mysql://u:secretpw@h:3306/db?x": `unsupported DATABASE_URL parameter "x"`,
		"mysql://u:secretpw@/db":         "needs a host",
		"sqlite://":                      "no path",
	} {
		_, err := store.Open(ctx, url, "", nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q) err = %v, want %q", url, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secretpw") {
			t.Errorf("Open(%q) error leaks the password: %v", url, err)
		}
	}
	if _, err := store.Open(ctx, "", "", nil); err == nil {
		t.Error("Open with no URL and no data dir succeeded")
	}
}

// TestOpenMySQLSocket opens the test MariaDB through its unix socket.
func TestOpenMySQLSocket(t *testing.T) {
	url := os.Getenv("HERO_TEST_MYSQL_SOCKET_URL")
	if url == "" {
		t.Skip("HERO_TEST_MYSQL_SOCKET_URL not set; scripts/with-mariadb.sh sets it")
	}
	t.Parallel()
	db, err := store.Open(t.Context(), url, "", nil)
	must(t, err)
	defer db.Close()
	if db.Dialect() != store.DialectMySQL {
		t.Fatalf("Dialect = %q", db.Dialect())
	}
	must(t, db.Migrate(t.Context()))
	if _, err := db.ListProjects(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkInboxWriter measures durable deliveries per second on SQLite
// (synchronous=FULL) with many concurrent callers, as a webhook burst.
func BenchmarkInboxWriter(b *testing.B) {
	db, err := store.Open(context.Background(), "sqlite://"+filepath.Join(b.TempDir(), "hero.db"), "", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	w := store.NewInboxWriter(db, 256, 0)
	payload := bytes.Repeat([]byte("x"), 2048)
	var seq sync.Mutex
	next := 0
	b.SetParallelism(32) // 32 × GOMAXPROCS concurrent webhook handlers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			seq.Lock()
			next++
			id := fmt.Sprint(next)
			seq.Unlock()
			if _, err := w.Write(context.Background(), "github", id, "issue_comment", payload); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkEnqueue is the one-transaction-per-delivery baseline.
func BenchmarkEnqueue(b *testing.B) {
	db, err := store.Open(context.Background(), "sqlite://"+filepath.Join(b.TempDir(), "hero.db"), "", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	payload := bytes.Repeat([]byte("x"), 2048)
	b.ResetTimer()
	for i := range b.N {
		if _, err := db.Enqueue(context.Background(), "github", fmt.Sprint(i), "issue_comment", payload); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

func TestProgressMessages(t *testing.T) {
	storetest.EachURL(t, func(t *testing.T, url string) {
		db := storetest.OpenURL(t, url)
		ctx := t.Context()
		p := newProject(t, db)
		ex := &store.Execution{ProjectID: p.ID, Status: store.StatusRunning, Surface: "slack", Task: "t", Model: "m"}
		must(t, db.CreateExecution(ctx, ex))
		if _, err := db.ProgressMessage(ctx, ex.ID, "slack"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("before: %v", err)
		}
		must(t, db.SetProgressMessage(ctx, ex.ID, "slack", "T1/C1/1.0"))
		must(t, db.SetProgressMessage(ctx, ex.ID, "slack", "T1/C1/2.0"))
		must(t, db.SetProgressMessage(ctx, ex.ID, "discord", "D1/5"))
		if ref, err := db.ProgressMessage(ctx, ex.ID, "slack"); err != nil || ref != "T1/C1/2.0" {
			t.Fatalf("slack: %q %v", ref, err)
		}
		if ref, err := db.ProgressMessage(ctx, ex.ID, "discord"); err != nil || ref != "D1/5" {
			t.Fatalf("discord: %q %v", ref, err)
		}
	})
}
