package discord

import (
	"context"
	"fmt"
	"net/http"

	"github.com/bwmarrin/discordgo"
)

// commandOption is the /hero command's one option: the text that follows,
// read with the same grammar as Slack and GitHub.
const commandOption = "text"

// Commands are the application commands hero installs.
func Commands() []*discordgo.ApplicationCommand {
	// In servers and in direct messages with hero (where it links
	// accounts and answers status and help).
	contexts := []discordgo.InteractionContextType{discordgo.InteractionContextGuild, discordgo.InteractionContextBotDM}
	return []*discordgo.ApplicationCommand{{
		Contexts:    &contexts,
		Name:        "hero",
		Type:        discordgo.ChatApplicationCommand,
		Description: "Ask hero to do a task, or: use NAME, status, cancel, link CODE, help",
		Options: []*discordgo.ApplicationCommandOption{{
			Type:        discordgo.ApplicationCommandOptionString,
			Name:        commandOption,
			Description: "a task, or a command: use NAME · status [ID] · cancel · approve ID · link CODE · help",
			MaxLength:   4000,
		}},
	}}
}

// Register installs hero's slash commands, replacing the application's
// commands (a bulk overwrite): globally, or in one server (guild), where
// they are available at once.
func Register(ctx context.Context, appID, token, apiURL, guild string, client *http.Client) ([]*discordgo.ApplicationCommand, error) {
	if appID == "" || token == "" {
		return nil, fmt.Errorf("register commands: set DISCORD_APP_ID and DISCORD_BOT_TOKEN")
	}
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	if client == nil {
		client = http.DefaultClient
	}
	s, err := newSession(token, apiURL, appID, client, 50)
	if err != nil {
		return nil, err
	}
	cmds, err := s.ApplicationCommandBulkOverwrite(appID, guild, Commands(), discordgo.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("register commands: %w", err)
	}
	return cmds, nil
}
