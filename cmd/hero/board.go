package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/hero-dev/hero/bot/terminal"
	"github.com/hero-dev/hero/kanban"
	"github.com/hero-dev/hero/store"
)

// boardActor is the local operator on the board: the command line runs
// with the machine's full rights, as on every other subcommand.
func boardActor() kanban.Actor {
	return kanban.Actor{ID: operator(), Surface: "cli", Role: func(context.Context, int64) (store.Role, error) {
		return store.RoleOwner, nil
	}}
}

// boardError turns a refusal by the board's rules into a usage error when
// the request itself was wrong.
func boardError(err error) error {
	if kanban.KindOf(err) == kanban.Invalid {
		return usageError{err.Error()}
	}
	return err
}

// withBoard opens the app and the board service for a board or card
// subcommand.
func withBoard(do func(ctx context.Context, a *app, svc *kanban.Service, pos []string, std stdio) error) action {
	return func(ctx context.Context, cfg config, pos []string, std stdio) error {
		a, err := openApp(ctx, cfg, std)
		if err != nil {
			return err
		}
		defer a.close()
		svc, err := a.kanban()
		if err != nil {
			return err
		}
		return boardError(do(ctx, a, svc, pos, std))
	}
}

// kanban returns the board service with the projections this
// configuration has.
func (a *app) kanban() (*kanban.Service, error) {
	var ps []kanban.Projection
	gh, err := githubBoard(a)
	if err != nil {
		return nil, err
	}
	if gh != nil {
		ps = append(ps, gh)
	}
	return kanban.New(kanban.Config{Store: a.db, Log: a.log, Projections: ps})
}

func boardCommands() []*command {
	show := &command{
		name: "board show", args: "--project NAME", summary: "print a project's board: each column and its cards",
		example: "hero board show --project web",
		flags: func(fs *flag.FlagSet) action {
			project := fs.String("project", "", "the project's `NAME`")
			return withBoard(func(ctx context.Context, a *app, svc *kanban.Service, pos []string, std stdio) error {
				if *project == "" || len(pos) != 0 {
					return usagef("board show", "usage: hero board show --project NAME")
				}
				b, err := svc.Board(ctx, boardActor(), *project)
				if err != nil {
					return err
				}
				for i, col := range b.Columns {
					if i > 0 {
						fmt.Fprintln(std.out)
					}
					head := fmt.Sprintf("%s (%d", col.Name, len(col.Cards))
					if col.WIPLimit > 0 {
						head += fmt.Sprintf(" of %d", col.WIPLimit)
					}
					fmt.Fprintln(std.out, head+")")
					if len(col.Cards) == 0 {
						fmt.Fprintln(std.out, "  (no cards)")
					}
					for _, c := range col.Cards {
						fmt.Fprintf(std.out, "  %s  %s%s\n", c.ID, terminal.Line(c.Title, 300), cardSuffix(c))
					}
				}
				return nil
			})
		},
	}
	link := &command{
		name: "board link", args: "--project NAME (--github-project URL | --discord-forum ID)",
		summary: "show the board's columns in a GitHub Project's Status field or a Discord forum",
		detail: "With a GitHub Project linked, each card's issue is an item of that project and its Status\n" +
			"field shows the column (the project needs a single-select field named Status with the board's\n" +
			"column names as options); without one, a hero:<column> label does. \"none\" unlinks.",
		example: "hero board link --project web --github-project https://github.com/orgs/acme/projects/3\nhero board link --project web --discord-forum 1234567890",
		flags: func(fs *flag.FlagSet) action {
			project := fs.String("project", "", "the project's `NAME`")
			gh := fs.String("github-project", "", "a GitHub Project (v2) `URL`, or none")
			forum := fs.String("discord-forum", "", "a Discord forum channel `ID`, or none")
			return withBoard(func(ctx context.Context, a *app, svc *kanban.Service, pos []string, std stdio) error {
				if *project == "" || len(pos) != 0 {
					return usagef("board link", "usage: hero board link --project NAME (--github-project URL | --discord-forum ID)")
				}
				b, err := svc.LinkBoard(ctx, boardActor(), *project, kanban.Link{GitHubProject: *gh, DiscordForum: *forum})
				if err != nil {
					return err
				}
				switch {
				case *gh == "none":
					fmt.Fprintf(std.out, "board of %s: columns shown as hero: labels\n", *project)
				case *gh != "":
					fmt.Fprintf(std.out, "board of %s linked to GitHub Project %s\n", *project, b.GitHubProject)
				}
				switch {
				case *forum == "none":
					fmt.Fprintf(std.out, "board of %s: no Discord forum\n", *project)
				case *forum != "":
					fmt.Fprintf(std.out, "board of %s linked to Discord forum %s\n", *project, b.DiscordForum)
				}
				return nil
			})
		},
	}
	add := &command{
		name: "card add", args: `--project NAME "TITLE" [--body TEXT] [--column NAME]`,
		summary: "add a card to a project's board (and, on GitHub, its issue)",
		detail:  "The card goes to the end of its column (default: To do). It prints the card's id and, for\na project on GitHub, the URL of the issue that is the card there.",
		example: `hero card add --project web "Fix the login loop" --body "It loops after a password reset."`,
		flags: func(fs *flag.FlagSet) action {
			project := fs.String("project", "", "the project's `NAME`")
			body := fs.String("body", "", "the card's description (`TEXT`)")
			column := fs.String("column", "", "the column's `NAME` (default To do)")
			return withBoard(func(ctx context.Context, a *app, svc *kanban.Service, pos []string, std stdio) error {
				if *project == "" || len(pos) != 1 {
					return usagef("card add", `usage: hero card add --project NAME "TITLE" [--body TEXT] [--column NAME]`)
				}
				c, col, err := svc.AddCard(ctx, boardActor(), kanban.NewCard{Project: *project, Title: pos[0], Body: *body, Column: *column})
				if err != nil {
					return err
				}
				line := fmt.Sprintf("card %s created in %s", c.ID, col.Name)
				if c.IssueURL != "" {
					line += ": " + c.IssueURL
				}
				fmt.Fprintln(std.out, line)
				return nil
			})
		},
	}
	move := &command{
		name: "card move", args: "[--project NAME] ID COLUMN", summary: "move a card to another column",
		detail:  "The column is named as on the board (\"In progress\") or by its label (in-progress). Moving a\ncard into In progress starts a run on it.",
		example: `hero card move kq3b7x2ma "In progress"`,
		flags: func(fs *flag.FlagSet) action {
			project := fs.String("project", "", "the card's project (`NAME`), to check it")
			return withBoard(func(ctx context.Context, a *app, svc *kanban.Service, pos []string, std stdio) error {
				if len(pos) < 2 {
					return usagef("card move", "usage: hero card move [--project NAME] ID COLUMN")
				}
				m, err := svc.MoveCard(ctx, boardActor(), *project, pos[0], strings.Join(pos[1:], " "))
				if err != nil {
					return err
				}
				if !m.Moved {
					fmt.Fprintf(std.out, "card %s is already in %s\n", m.Card.ID, m.To.Name)
					return nil
				}
				fmt.Fprintf(std.out, "card %s moved from %s to %s\n", m.Card.ID, m.From.Name, m.To.Name)
				if m.To.Kind == store.KindDoing {
					// The command line drives no runs: hero serve does.
					fmt.Fprintln(std.out, "no run started from the command line: runs start when a card is moved on the web board or in chat, where hero serve drives them")
				}
				return nil
			})
		},
	}
	showCard := &command{
		name: "card show", args: "[--project NAME] ID", summary: "print a card: its column, links, runs and history",
		example: "hero card show kq3b7x2ma",
		flags: func(fs *flag.FlagSet) action {
			project := fs.String("project", "", "the card's project (`NAME`), to check it")
			return withBoard(func(ctx context.Context, a *app, svc *kanban.Service, pos []string, std stdio) error {
				if len(pos) != 1 {
					return usagef("card show", "usage: hero card show [--project NAME] ID")
				}
				d, err := svc.Card(ctx, boardActor(), *project, pos[0])
				if err != nil {
					return err
				}
				w := std.out
				c := d.Card
				fmt.Fprintf(w, "card %s: %s\n", c.ID, terminal.Line(c.Title, 300))
				fmt.Fprintf(w, "project: %s\n", d.Project.Name)
				if d.Column != nil {
					fmt.Fprintf(w, "column: %s\n", d.Column.Name)
				}
				fmt.Fprintf(w, "creator: %s\n", c.Creator)
				if c.Assignee != "" {
					fmt.Fprintf(w, "assignee: %s\n", c.Assignee)
				}
				if c.IssueURL != "" {
					fmt.Fprintf(w, "issue: %s\n", c.IssueURL)
				}
				if c.PRURL != "" {
					fmt.Fprintf(w, "pull request: %s\n", c.PRURL)
				}
				for _, t := range d.Threads {
					fmt.Fprintf(w, "thread: %s %s\n", t.Surface, t.ThreadRef)
				}
				if len(d.Runs) > 0 {
					fmt.Fprintf(w, "runs: %s\n", strings.Join(d.Runs, ", "))
				}
				if strings.TrimSpace(c.Body) != "" {
					fmt.Fprintln(w, "\n"+strings.TrimRight(terminal.Text(c.Body), "\n"))
				}
				fmt.Fprintln(w, "\nhistory:")
				for _, h := range d.History {
					fmt.Fprintf(w, "  %s  %s\n", h.At.UTC().Format("2006-01-02 15:04"), terminal.Text(kanban.Describe(h)))
				}
				return nil
			})
		},
	}
	return []*command{show, link, add, move, showCard}
}

// cardSuffix shows a card's links and assignee on the board.
func cardSuffix(c store.KanbanCard) string {
	var s []string
	if c.IssueNumber > 0 {
		s = append(s, fmt.Sprintf("#%d", c.IssueNumber))
	}
	if c.Assignee != "" {
		s = append(s, "@"+c.Assignee)
	}
	if len(s) == 0 {
		return ""
	}
	return "  (" + strings.Join(s, ", ") + ")"
}
