package redact

import (
	"context"
	"encoding"
	"encoding/json"
	"fmt"
	"log/slog"
)

// Handler returns a slog.Handler that redacts every record before next sees
// it: the message, each attribute key and value (strings, errors,
// fmt.Stringers, any other value as formatted by fmt or encoding/json,
// LogValuers after resolving, groups recursively) and attributes added
// with With. Route every logger of the process through it so that a secret
// that reaches a log call by accident never reaches the log output.
//
// Non-string values that contain no secret are passed on unchanged (a
// struct stays a struct for a JSON handler); one that does is replaced by
// its redacted fmt form.
func Handler(next slog.Handler, r *Redactor) slog.Handler {
	return &handler{next: next, r: r}
}

type handler struct {
	next slog.Handler
	r    *Redactor
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.attr(a)
	}
	return &handler{next: h.next.WithAttrs(red), r: h.r}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(h.r.String(name)), r: h.r}
}

func (h *handler) attr(a slog.Attr) slog.Attr {
	a.Key = h.r.String(a.Key)
	a.Value = h.value(a.Value)
	return a
}

func (h *handler) value(v slog.Value) slog.Value {
	v = v.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.StringValue(h.r.String(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		red := make([]slog.Attr, len(attrs))
		for i, a := range attrs {
			red[i] = h.attr(a)
		}
		return slog.GroupValue(red...)
	case slog.KindAny:
		x := v.Any()
		var text string
		switch x := x.(type) {
		case error:
			text = x.Error()
		case fmt.Stringer:
			text = x.String()
		case []byte:
			text = string(x)
		default:
			text = fmt.Sprintf("%+v", x)
		}
		if h.r.Contains(text) {
			return slog.StringValue(h.r.String(text))
		}
		// A JSON handler marshals the value instead of formatting it,
		// which can expose a secret the text form does not show (a
		// []byte field becomes base64, a json.Marshaler writes what it
		// likes, a Stringer's fields appear).
		if j, err := json.Marshal(x); err == nil && h.r.Contains(string(j)) {
			return slog.StringValue(h.r.String(text))
		}
		// TextHandler prefers MarshalText when a value has it.
		if tm, ok := x.(encoding.TextMarshaler); ok {
			if t, err := tm.MarshalText(); err == nil && h.r.Contains(string(t)) {
				return slog.StringValue(h.r.String(text))
			}
		}
		if _, ok := x.(error); !ok {
			if s := fmt.Sprintf("%+v", x); s != text && h.r.Contains(s) {
				return slog.StringValue(h.r.String(text))
			}
		}
		return v
	default:
		// Numbers, times, durations: a secret of digits could still
		// match their text form.
		if s := v.String(); h.r.Contains(s) {
			return slog.StringValue(h.r.String(s))
		}
		return v
	}
}
