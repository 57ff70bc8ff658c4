package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hero-dev/hero/bot/discord"
	"github.com/hero-dev/hero/store"
	"github.com/hero-dev/hero/web"
)

// discordEnv is the Discord part of the environment.
type discordEnv struct {
	appID, publicKey, botToken, apiURL string
	gateway                            bool // DISCORD_GATEWAY is not "off"
}

func readDiscordEnv(getenv func(string) string) (discordEnv, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	d := discordEnv{appID: get("DISCORD_APP_ID"), publicKey: get("DISCORD_PUBLIC_KEY"), botToken: get("DISCORD_BOT_TOKEN"),
		apiURL: get("DISCORD_API_URL"), gateway: true}
	switch g := strings.ToLower(get("DISCORD_GATEWAY")); g {
	case "", "on":
	case "off":
		d.gateway = false
	default:
		return d, fmt.Errorf("DISCORD_GATEWAY must be on or off, got %q", g)
	}
	if d.apiURL == "" {
		d.apiURL = discord.DefaultAPIURL
	}
	return d, nil
}

// setupDiscord wires the Discord surface: on when DISCORD_BOT_TOKEN or
// DISCORD_PUBLIC_KEY is set (then DISCORD_APP_ID, DISCORD_PUBLIC_KEY and
// DISCORD_BOT_TOKEN are all required). It mounts POST
// /discord/interactions, adds the surface to the engine and starts the
// inbox worker and, unless DISCORD_GATEWAY=off, the gateway on whichever
// replica holds its lease.
func setupDiscord(workCtx context.Context, a *app, s *server) error {
	d, err := readDiscordEnv(a.getenv)
	if err != nil {
		return err
	}
	if d.botToken == "" && d.publicKey == "" {
		a.log.Info("Discord surface is off: set DISCORD_APP_ID, DISCORD_PUBLIC_KEY and DISCORD_BOT_TOKEN")
		return nil
	}
	a.redactor.Add(d.botToken)
	host, _ := os.Hostname()
	cfg := discord.Config{AppID: d.appID, PublicKey: d.publicKey, BotToken: d.botToken, APIURL: d.apiURL,
		Owner: fmt.Sprintf("%s-%d", host, os.Getpid()), Schedules: s.schedules}
	if d.gateway {
		cfg.Gateway = discord.NewSessionGateway(d.botToken, d.apiURL, nil)
	}
	if s.board != nil {
		cfg.Board = s.board
	}
	ad, err := discord.New(cfg, a.db, a.engine, a.log)
	if err != nil {
		return err
	}
	a.engine.AddSurface(ad)
	// Cards of boards linked to a Discord forum are its posts.
	projectBoard(workCtx, a, s, ad, "discord")
	s.mounts = append(s.mounts, ad.Mount)
	s.loops.start(workCtx, "discord surface", ad.Run)
	a.log.Info("discord surface on", "gateway", d.gateway)
	return nil
}

// discordIntegration is Discord's row on the settings page: the invite
// link, the token check, and which replica holds the gateway.
func discordIntegration(get func(string) string, db *store.DB, client *http.Client) (web.Integration, bool) {
	d, _ := readDiscordEnv(get)
	if d.botToken == "" && d.appID == "" {
		return web.Integration{}, false
	}
	in := web.Integration{Name: "Discord"}
	if d.appID != "" {
		in.ConnectURL, in.ConnectLabel = discord.InviteURL(d.appID), "Invite to a server"
	}
	if d.botToken != "" {
		token := web.DiscordTokenStatus(client, d.apiURL, d.botToken)
		in.Status = func(ctx context.Context) (bool, string) {
			ok, detail := token(ctx)
			if !d.gateway {
				return ok, detail + "; gateway off (DISCORD_GATEWAY=off): slash commands and buttons only"
			}
			if db == nil {
				return ok, detail
			}
			l, err := db.Singleton(ctx, discord.GatewayLease)
			switch {
			case errors.Is(err, store.ErrNotFound), err == nil && l.Until.Before(time.Now()):
				return false, detail + "; no replica holds the gateway, so @hero mentions are not heard"
			case err != nil:
				return ok, detail + "; gateway lease unknown: " + err.Error()
			}
			return ok, detail + "; gateway held by " + l.Holder
		}
	}
	return in, true
}

func discordCommands() []*command {
	return []*command{{
		name: "discord register", args: "[--guild ID]",
		summary: "install the /hero slash command in Discord (replaces the application's commands)",
		detail: "Global commands can take a while to show up in every server; --guild installs them in one\n" +
			"server (its id: Developer Mode → right-click the server → Copy Server ID), where they are\n" +
			"available at once. Needs DISCORD_APP_ID and DISCORD_BOT_TOKEN (and DISCORD_API_URL for a proxy).",
		example: "hero discord register\nhero discord register --guild 1234567890",
		flags: func(fs *flag.FlagSet) action {
			guild := fs.String("guild", "", "install in this server (guild) `ID` only")
			return func(ctx context.Context, cfg config, pos []string, std stdio) error {
				if len(pos) != 0 {
					return usagef("discord register", "usage: hero discord register [--guild ID]")
				}
				d, err := readDiscordEnv(cfg.getenv)
				if err != nil {
					return err
				}
				cmds, err := discord.Register(ctx, d.appID, d.botToken, d.apiURL, *guild, &http.Client{Timeout: 30 * time.Second})
				if err != nil {
					return err
				}
				where := "globally (it can take up to an hour to appear everywhere)"
				if *guild != "" {
					where = "in server " + *guild
				}
				for _, c := range cmds {
					fmt.Fprintf(std.out, "registered /%s %s\n", c.Name, where)
				}
				return nil
			}
		},
	}}
}
