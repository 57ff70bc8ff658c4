package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// runSocketMode holds a Socket Mode connection (slack-go reconnects by
// itself) and feeds what arrives into the same inbox as the HTTP routes:
// each envelope is persisted, then acknowledged.
func (a *Adapter) runSocketMode(ctx context.Context) error {
	api := a.newAPI(a.cfg.BotToken, slack.OptionAppLevelToken(a.cfg.AppToken))
	sm := socketmode.New(api)
	errc := make(chan error, 1)
	go func() { errc <- sm.RunContext(ctx) }()
	a.log.Info("slack socket mode starting")
	for {
		select {
		case <-ctx.Done():
			<-errc
			return nil
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("slack socket mode: %w", err)
		case evt := <-sm.Events:
			switch evt.Type {
			case socketmode.EventTypeConnected:
				a.log.Info("slack socket mode connected")
			case socketmode.EventTypeConnectionError, socketmode.EventTypeInvalidAuth:
				a.log.Warn("slack socket mode", "event", evt.Type, "detail", fmt.Sprint(evt.Data))
			case socketmode.EventTypeEventsAPI, socketmode.EventTypeInteractive, socketmode.EventTypeSlashCommand:
				if evt.Request == nil {
					continue
				}
				if err := a.persistEnvelope(ctx, evt.Type, evt.Request.Payload); err != nil {
					// Not acknowledged: Slack sends it again.
					a.log.Error("persist socket mode envelope", "type", evt.Type, "err", err)
					continue
				}
				actx, cancel := context.WithTimeout(ctx, 5*time.Second)
				if err := sm.AckCtx(actx, evt.Request.EnvelopeID, nil); err != nil {
					a.log.Warn("ack socket mode envelope", "err", err)
				}
				cancel()
			}
		}
	}
}

// persistEnvelope stores a Socket Mode payload under the same kinds and
// delivery ids as its HTTP twin.
func (a *Adapter) persistEnvelope(ctx context.Context, typ socketmode.EventType, payload json.RawMessage) error {
	var id, kind string
	var body []byte
	switch typ {
	case socketmode.EventTypeEventsAPI:
		var head struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal(payload, &head); err != nil {
			return fmt.Errorf("events_api payload: %w", err)
		}
		kind, body, id = kindEvent, payload, contentHash("ev:", payload)
		if head.EventID != "" {
			id = "ev:" + head.EventID
		}
	case socketmode.EventTypeInteractive:
		var head struct {
			TriggerID string `json:"trigger_id"`
		}
		if err := json.Unmarshal(payload, &head); err != nil {
			return fmt.Errorf("interactive payload: %w", err)
		}
		kind, body, id = kindInteraction, payload, contentHash("ia:", payload)
		if head.TriggerID != "" {
			id = "ia:" + head.TriggerID
		}
	case socketmode.EventTypeSlashCommand:
		var cmd map[string]any
		if err := json.Unmarshal(payload, &cmd); err != nil {
			return fmt.Errorf("slash command payload: %w", err)
		}
		form := url.Values{}
		for k, v := range cmd {
			switch v := v.(type) {
			case string:
				form.Set(k, v)
			case bool, float64:
				form.Set(k, fmt.Sprint(v))
			}
		}
		kind, body = kindCommand, []byte(form.Encode())
		id = contentHash("cmd:", body)
		if t := strings.TrimSpace(form.Get("trigger_id")); t != "" {
			id = "cmd:" + t
		}
	}
	if _, err := a.inbox.Write(ctx, Surface, id, kind, body); err != nil {
		return err
	}
	a.worker.Kick()
	return nil
}
