package store_test

import (
	"errors"
	"testing"

	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/store/storetest"
)

// TestChatSurfaces covers channel bindings, the thread index and Slack
// workspace tokens on SQLite and (with HERO_TEST_MYSQL_URL) MariaDB.
func TestChatSurfaces(t *testing.T) {
	storetest.EachURL(t, testChatSurfaces)
}

func testChatSurfaces(t *testing.T, url string) {
	db := storetest.OpenURL(t, url)
	ctx := t.Context()

	p1, p2 := newProject(t, db), newProject(t, db)
	ch := uniq("T1/C1")
	if _, err := db.ChannelProject(ctx, "slack", ch); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unbound channel: err = %v, want ErrNotFound", err)
	}
	must(t, db.BindChannel(ctx, "slack", ch, p1.ID, "slack:T1/U1"))
	must(t, db.BindChannel(ctx, "slack", ch, p2.ID, "slack:T1/U2")) // rebinding replaces
	got, err := db.ChannelProject(ctx, "slack", ch)
	must(t, err)
	if got.ID != p2.ID || got.Name != p2.Name {
		t.Fatalf("ChannelProject = %d %s, want %d %s", got.ID, got.Name, p2.ID, p2.Name)
	}
	if _, err := db.ChannelProject(ctx, "discord", ch); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("same channel id on another surface: err = %v, want ErrNotFound", err)
	}
	if err := db.BindChannel(ctx, "slack", ch, 1<<40, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("bind to a missing project: err = %v, want ErrNotFound", err)
	}
	bs, err := db.ListBindings(ctx)
	must(t, err)
	found := false
	for _, b := range bs {
		if b.Surface == "slack" && b.ChannelID == ch {
			found = b.ProjectID == p2.ID && b.BoundBy == "slack:T1/U2"
		}
	}
	if !found {
		t.Fatalf("ListBindings lacks %s → %d: %+v", ch, p2.ID, bs)
	}
	must(t, db.UnbindChannel(ctx, "slack", ch))
	if err := db.UnbindChannel(ctx, "slack", ch); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second unbind: err = %v, want ErrNotFound", err)
	}

	ex := newExecution(t, db, p1.ID)
	ref := uniq("T1/C1/1700000000.0001")
	if _, err := db.ThreadExecution(ctx, "slack", ref); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown thread: err = %v, want ErrNotFound", err)
	}
	must(t, db.LinkThread(ctx, "slack", ref, ex.ID))
	must(t, db.LinkThread(ctx, "slack", ref, ex.ID))
	id, err := db.ThreadExecution(ctx, "slack", ref)
	must(t, err)
	if id != ex.ID {
		t.Fatalf("ThreadExecution = %q, want %q", id, ex.ID)
	}

	team := uniq("T")
	if _, _, err := db.SlackTeamToken(ctx, team); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown team: err = %v, want ErrNotFound", err)
	}
	must(t, db.SaveSlackTeam(ctx, store.SlackTeam{TeamID: team, TeamName: "Acme", BotUserID: "UBOT", InstalledBy: "slack:" + team + "/U1"}, "xoxb-first"))
	must(t, db.SaveSlackTeam(ctx, store.SlackTeam{TeamID: team, TeamName: "Acme", BotUserID: "UBOT2"}, "xoxb-second"))
	info, tok, err := db.SlackTeamToken(ctx, team)
	must(t, err)
	if tok != "xoxb-second" || info.BotUserID != "UBOT2" || info.TeamName != "Acme" {
		t.Fatalf("SlackTeamToken = %+v %q", info, tok)
	}
	var raw []byte
	must(t, db.Bun().NewSelect().Table("slack_teams").Column("token_ciphertext").Where("team_id = ?", team).Scan(ctx, &raw))
	if len(raw) == 0 || string(raw) == "xoxb-second" || containsBytes(raw, "xoxb") {
		t.Fatalf("token stored in clear: %q", raw)
	}
	// Installed without a hero administrator: not approved until one allows it.
	if got, err := db.SlackTeamByID(ctx, team); err != nil || got.ApprovedBy != "" || got.TeamName != "Acme" {
		t.Fatalf("SlackTeamByID = %+v, %v", got, err)
	}
	must(t, db.ApproveSlackTeam(ctx, team, "admin@example.com"))
	if got, _ := db.SlackTeamByID(ctx, team); got.ApprovedBy != "admin@example.com" {
		t.Fatalf("approved by %q", got.ApprovedBy)
	}
	if err := db.ApproveSlackTeam(ctx, uniq("Tnone"), "admin@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("approve an unknown team: %v", err)
	}
	if _, err := db.SlackTeamByID(ctx, uniq("Tnone")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown team: %v", err)
	}
	teams, err := db.ListSlackTeams(ctx)
	must(t, err)
	found = false
	for _, tm := range teams {
		found = found || (tm.TeamID == team && tm.ApprovedBy == "admin@example.com")
	}
	if !found {
		t.Fatalf("ListSlackTeams lacks the approved team: %+v", teams)
	}
}

func containsBytes(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return true
		}
	}
	return false
}
