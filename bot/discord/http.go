package discord

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/hero-dev/hero/bot"
)

// Delivery kinds stored in the inbox.
const (
	kindInteraction = "interaction" // an HTTP interaction, its raw body
	kindMessage     = "message"     // a gateway MESSAGE_CREATE, as JSON
)

// Interaction and response types hero handles (Discord's numbers).
const (
	interactionPing      = 1
	interactionCommand   = 2
	interactionComponent = 3

	responsePong            = 1
	responseDeferredMessage = 5 // "hero is thinking…", edited later
	responseDeferredUpdate  = 6 // a click acknowledged, the message edited later
	flagEphemeral           = 64
)

// maxBody bounds a request body from Discord.
const maxBody = 1 << 20

// Mount adds POST /discord/interactions to mux.
func (a *Adapter) Mount(mux *http.ServeMux) {
	mux.HandleFunc("POST /discord/interactions", a.serveInteraction)
}

// interactionHead is what the endpoint reads before answering.
type interactionHead struct {
	ID   string `json:"id"`
	Type int    `json:"type"`
	Data struct {
		Name    string `json:"name"`
		Options []struct {
			Name  string `json:"name"`
			Value any    `json:"value"`
		} `json:"options"`
		CustomID string `json:"custom_id"`
	} `json:"data"`
}

// text is a slash command's text option.
func (h *interactionHead) text() string {
	for _, o := range h.Data.Options {
		if s, ok := o.Value.(string); ok && o.Name == commandOption {
			return s
		}
	}
	return ""
}

// serveInteraction verifies, persists, then acknowledges. Nothing
// happens for a request whose signature does not verify: Discord probes
// the endpoint with bad signatures and expects 401.
func (a *Adapter) serveInteraction(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "request body too large or unreadable", http.StatusBadRequest)
		return
	}
	if err := Verify(a.key, r.Header, body, a.cfg.Now()); err != nil {
		a.log.Warn("rejected a Discord request", "err", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var h interactionHead
	if err := json.Unmarshal(body, &h); err != nil || h.Type == 0 {
		http.Error(w, "malformed interaction: want a JSON object with a type", http.StatusBadRequest)
		return
	}
	var answer any
	switch h.Type {
	case interactionPing:
		writeJSON(w, map[string]int{"type": responsePong})
		return
	case interactionCommand:
		// Everything but starting work or binding the channel is
		// answered privately; that must be chosen now, in the ack.
		resp := map[string]any{"type": responseDeferredMessage}
		if cmd, err := bot.Parse(h.text()); err != nil || (cmd.Verb != bot.VerbRun && cmd.Verb != bot.VerbUse) {
			resp["data"] = map[string]int{"flags": flagEphemeral}
		}
		answer = resp
	case interactionComponent:
		answer = map[string]int{"type": responseDeferredUpdate}
	default:
		http.Error(w, "hero handles slash commands and buttons only", http.StatusBadRequest)
		return
	}
	if h.ID == "" {
		http.Error(w, "malformed interaction: no id", http.StatusBadRequest)
		return
	}
	if _, err := a.inbox.Write(r.Context(), Surface, "ia:"+h.ID, kindInteraction, body); err != nil {
		a.log.Error("persist discord interaction", "interaction", h.ID, "err", err)
		http.Error(w, "could not store the interaction", http.StatusInternalServerError)
		return
	}
	a.worker.Kick()
	writeJSON(w, answer)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
