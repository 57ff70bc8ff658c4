package schedules_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/hero-dev/hero/bot/discord"
	"github.com/hero-dev/hero/bot/discord/discordtest"
	"github.com/hero-dev/hero/bot/slack"
	"github.com/hero-dev/hero/engine"
	"github.com/hero-dev/hero/engine/enginetest"
	"github.com/hero-dev/hero/schedules"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/webhooks/github"
	"github.com/hero-dev/hero/webhooks/github/githubtest"
)

// TestReportPlaceChannelPerSurface: a schedule given a place to report to
// (--channel, the settings page) is let in when the place is in a channel
// bound to the project, as the place's surface tells: the real Slack,
// Discord and GitHub surfaces, Discord's API faked. A thread in a bound
// channel is accepted and reports in that thread; a thread in another
// project's channel is refused, naming that channel; a GitHub issue has no
// channel binding. Then a digest made for a Discord thread posts in it.
func TestReportPlaceChannelPerSurface(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, url string) {
		f := newFixture(t, url, start)
		ctx := t.Context()
		eng := enginetest.New(t, f.db, nil)
		sl, err := slack.New(slack.Config{BotToken: "xoxb-test", APIURL: "http://127.0.0.1:1/"}, f.db, eng, nil)
		if err != nil {
			t.Fatal(err)
		}
		api := discordtest.NewServer(t, "bot-token", "900")
		dc, err := discord.New(discord.Config{AppID: "app", PublicKey: discordtest.NewKey(t).PublicHex(), BotToken: "bot-token", APIURL: api.APIURL()}, f.db, eng, nil)
		if err != nil {
			t.Fatal(err)
		}
		gapi := githubtest.NewServer(t, "gh-token")
		pub, err := github.NewPublisher(github.PublisherConfig{APIURL: gapi.APIURL(), Credentials: github.StaticToken("gh-token"), WritePace: -1})
		if err != nil {
			t.Fatal(err)
		}
		gh, err := github.NewService(github.Config{Publisher: pub, Store: f.db, Engine: eng})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []engine.Surface{sl, dc, gh} {
			eng.AddSurface(s)
		}
		svc, err := schedules.New(schedules.Config{Store: f.db, Places: eng, Now: f.clock.Now, Owner: "places",
			CreatorRole: func(_ context.Context, _ int64, creator engine.Principal) (store.Role, error) {
				return f.roles[strings.TrimPrefix(creator.ID, "test:")], nil
			}})
		if err != nil {
			t.Fatal(err)
		}

		// This project's channels and another project's, each with a
		// thread.
		other := &store.Project{Name: fmt.Sprintf("q%d", rand.Int64()), RepoURL: "https://github.com/o/q", DefaultBranch: "main"}
		if err := f.db.CreateProject(ctx, other); err != nil {
			t.Fatal(err)
		}
		team := fmt.Sprintf("T%d", rand.Int64())
		slackOurs, slackTheirs := team+"/C9", team+"/C8"
		dOurs, dTheirs, dThread, dTheirThread := discordtest.NewID(), discordtest.NewID(), discordtest.NewID(), discordtest.NewID()
		api.AddChannel(discordtest.Channel{ID: dOurs, GuildID: "G1", Type: 0})
		api.AddChannel(discordtest.Channel{ID: dTheirs, GuildID: "G1", Type: 0})
		api.AddChannel(discordtest.Channel{ID: dThread, GuildID: "G1", ParentID: dOurs, Type: 11})
		api.AddChannel(discordtest.Channel{ID: dTheirThread, GuildID: "G1", ParentID: dTheirs, Type: 11})
		for _, b := range []struct {
			surface, channel string
			p                *store.Project
		}{{"slack", slackOurs, f.project}, {"slack", slackTheirs, other}, {"discord", dOurs, f.project}, {"discord", dTheirs, other}} {
			if err := f.db.BindChannel(ctx, b.surface, b.channel, b.p.ID, "test:olga"); err != nil {
				t.Fatal(err)
			}
		}

		unknown := discordtest.NewID()
		accepted := map[string]string{}
		for _, tc := range []struct {
			name, surface, place string
			refused              string // "": accepted, reporting to place
		}{
			{"slack channel", "slack", slackOurs, ""},
			{"slack thread", "slack", slackOurs + "/1700000000.000100", ""},
			{"slack thread in another project's channel", "slack", slackTheirs + "/1700000000.000100",
				"slack place " + slackTheirs + "/1700000000.000100 is in channel " + slackTheirs + ", which is not bound to project " + f.project.Name},
			{"slack place without a channel", "slack", "C9", `slack: malformed channel "C9"`},
			{"discord channel", "discord", dOurs, ""},
			{"discord thread", "discord", dThread, ""},
			{"discord thread in another project's channel", "discord", dTheirThread,
				"discord place " + dTheirThread + " is in channel " + dTheirs + ", which is not bound to project " + f.project.Name},
			{"discord channel of another project", "discord", dTheirs, "discord channel " + dTheirs + " is not bound to project " + f.project.Name},
			{"discord place that is no id", "discord", dOurs + "/messages", "is not a channel id"},
			{"discord channel Discord does not know", "discord", unknown, "find the channel of discord place " + unknown},
			{"github issue", "github", "o/r#7", "github has no channels to bind a schedule to; make the schedule where it should report"},
		} {
			c, err := svc.Add(ctx, f.as("mia"), schedules.NewSchedule{Project: f.project.Name, Kind: store.ScheduleDigest, Expr: "@daily",
				ReportSurface: tc.surface, ReportTo: tc.place})
			switch {
			case tc.refused == "" && err != nil:
				t.Errorf("%s: %v", tc.name, err)
			case tc.refused == "" && (c.Schedule.ReportSurface != tc.surface || c.Schedule.ReportTo != tc.place):
				t.Errorf("%s: reports to %s %s, want %s %s", tc.name, c.Schedule.ReportSurface, c.Schedule.ReportTo, tc.surface, tc.place)
			case tc.refused == "":
				accepted[tc.name] = c.Schedule.ID
			case schedules.KindOf(err) != schedules.Invalid || !strings.Contains(err.Error(), tc.refused):
				t.Errorf("%s: %v, want refused with %q", tc.name, err, tc.refused)
			}
		}
		if _, views, err := svc.List(ctx, f.as("vic"), f.project.Name); err != nil || len(views) != len(accepted) {
			t.Fatalf("%d schedules after the table, want %d (refusals store nothing): %v", len(views), len(accepted), err)
		}
		if t.Failed() {
			return
		}

		// The Discord thread's digest is posted in that thread, not as a
		// new message in its channel. The others are removed first: Slack
		// is not reachable here.
		for name, id := range accepted {
			if name != "discord thread" {
				if _, err := svc.Change(ctx, f.as("mia"), f.project.Name, id, schedules.Remove); err != nil {
					t.Fatal(err)
				}
			}
		}
		f.clock.Add(24 * time.Hour)
		if cs, err := svc.Tick(ctx); err != nil || len(cs) != 1 {
			t.Fatalf("tick: %d slots, %v", len(cs), err)
		} else {
			svc.Fire(ctx, cs[0])
		}
		in := api.Messages(dThread)
		if len(in) != 1 || !strings.Contains(in[0].Content, "Board digest for project "+f.project.Name) {
			t.Fatalf("messages in the thread: %+v", in)
		}
		if n := len(api.Messages(dOurs)); n != 0 {
			t.Fatalf("%d messages in the thread's channel, want the digest in the thread only", n)
		}
		if sl := f.slots(t, accepted["discord thread"]); len(sl) != 1 || sl[0].Outcome != store.SlotFired {
			t.Fatalf("slots: %+v", sl)
		}
	})
}

// TestCommandLinePlaceIsTheChannel: without surfaces (the command line)
// nothing says which channel a thread is in, so --channel must name the
// bound channel itself; a thread in it is refused, not let in unchecked.
func TestCommandLinePlaceIsTheChannel(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, url string) {
		f := newFixture(t, url, start)
		svc, err := schedules.New(schedules.Config{Store: f.db, Now: f.clock.Now,
			CreatorRole: func(context.Context, int64, engine.Principal) (store.Role, error) { return "", nil }})
		if err != nil {
			t.Fatal(err)
		}
		channel := fmt.Sprintf("T%d/C9", rand.Int64())
		f.bindChannel(t, channel)
		add := func(place string) error {
			_, err := svc.Add(t.Context(), f.as("mia"), schedules.NewSchedule{Project: f.project.Name, Kind: store.ScheduleDigest, Expr: "@daily",
				ReportSurface: "slack", ReportTo: place})
			return err
		}
		if err := add(channel); err != nil {
			t.Fatalf("the bound channel: %v", err)
		}
		if err := add(channel + "/1700000000.000100"); schedules.KindOf(err) != schedules.Invalid ||
			!strings.Contains(err.Error(), "slack channel "+channel+"/1700000000.000100 is not bound to project "+f.project.Name) {
			t.Fatalf("a thread from the command line: %v", err)
		}
	})
}
