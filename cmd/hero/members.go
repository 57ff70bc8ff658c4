package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/hero-dev/hero/membership"
	"github.com/hero-dev/hero/store"
)

// cliActor is the local operator acting on a project: the command line
// runs with the machine's (and the database's) full rights, like a site
// admin on the page, and is recorded as local:USER.
func cliActor() membership.Actor {
	return membership.Actor{Name: operator(), Role: store.RoleOwner, Via: viaCLI}
}

// memberError turns a refused change into an error that says what to do.
func memberError(err error) error {
	if membership.KindOf(err) == membership.Invalid {
		return usageError{err.Error()}
	}
	return err
}

func memberCommands() []*command {
	// withRules is withProject with the membership rules opened too.
	withRules := func(name string, fs *flag.FlagSet, do func(ctx context.Context, a *app, rules *membership.Rules, p *store.Project, pos []string, std stdio) error) action {
		return withProject(name, fs, func(ctx context.Context, a *app, p *store.Project, pos []string, std stdio) error {
			rules, err := membership.New(a.db, a.log)
			if err != nil {
				return err
			}
			return do(ctx, a, rules, p, pos, std)
		})
	}
	add := &command{
		name: "member add", args: "--project NAME EMAIL [ROLE]",
		summary: "add a person to a project, or change their role (default: member)",
		detail: "Roles: owner, admin, approver, member, viewer. People are known by the email they log in\n" +
			"with. The same rules as the settings page apply (the last owner stays); the change is\n" +
			"recorded in the project's audit log as made by the local operator.",
		example: "hero member add --project web ana@example.com approver",
		flags: func(fs *flag.FlagSet) action {
			return withRules("member add", fs, func(ctx context.Context, a *app, rules *membership.Rules, p *store.Project, pos []string, std stdio) error {
				if len(pos) < 1 || len(pos) > 2 {
					return usagef("member add", "usage: hero member add --project NAME EMAIL [ROLE]")
				}
				role := store.RoleMember
				if len(pos) == 2 {
					role = store.Role(pos[1])
				}
				u, err := rules.Set(ctx, p, cliActor(), pos[0], role)
				if err != nil {
					return memberError(err)
				}
				fmt.Fprintf(std.out, "%s is %s of project %s\n", u.Email, article(string(role)), p.Name)
				return nil
			})
		},
	}
	list := &command{
		name: "member list", args: "--project NAME", summary: "list a project's members and their roles",
		example: "hero member list --project web",
		flags: func(fs *flag.FlagSet) action {
			return withRules("member list", fs, func(ctx context.Context, a *app, _ *membership.Rules, p *store.Project, pos []string, std stdio) error {
				if len(pos) != 0 {
					return usagef("member list", "usage: hero member list --project NAME")
				}
				ms, err := a.db.ListMembers(ctx, p.ID)
				if err != nil {
					return fmt.Errorf("list members: %w", err)
				}
				if len(ms) == 0 {
					fmt.Fprintf(std.out, "project %s has no members; add one with: hero member add --project %s EMAIL [ROLE]\n", p.Name, p.Name)
					return nil
				}
				tw := tabwriter.NewWriter(std.out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "EMAIL\tROLE\tSINCE")
				for _, m := range ms {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", m.Email, m.Role, m.CreatedAt.UTC().Format("2006-01-02"))
				}
				return tw.Flush()
			})
		},
	}
	rm := &command{
		name: "member rm", args: "--project NAME EMAIL", summary: "take a person out of a project",
		example: "hero member rm --project web ana@example.com",
		flags: func(fs *flag.FlagSet) action {
			return withRules("member rm", fs, func(ctx context.Context, a *app, rules *membership.Rules, p *store.Project, pos []string, std stdio) error {
				if len(pos) != 1 {
					return usagef("member rm", "usage: hero member rm --project NAME EMAIL")
				}
				if err := rules.RemoveByEmail(ctx, p, cliActor(), pos[0]); err != nil {
					return memberError(err)
				}
				fmt.Fprintf(std.out, "%s removed from project %s\n", pos[0], p.Name)
				return nil
			})
		},
	}
	return []*command{add, list, rm}
}

func article(role string) string {
	if role != "" && (role[0] == 'a' || role[0] == 'o') {
		return "an " + role
	}
	return "a " + role
}
