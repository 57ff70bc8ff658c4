package tools

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// param is one argument of a tool: it yields both the JSON Schema the model
// sees and the strict check of what the model sent, so the two cannot
// drift apart.
type param struct {
	name     string
	typ      string // "string", "boolean", "integer" or "number"
	desc     string
	required bool
	min, max *float64
}

func ptr(f float64) *float64 { return &f }

// metaParams are accepted by every mutating tool; the engine reads them to
// decide whether to ask a person first.
var metaParams = []param{
	{name: "confidence", typ: "number", min: ptr(0), max: ptr(1),
		desc: "How sure you are that this call is right and safe, from 0 to 1. Below the project's threshold a person is asked first. Omitted means fully sure."},
	{name: "reason", typ: "string",
		desc: "One sentence on why this call is needed; shown to the person if they are asked to approve it."},
}

// args is the argument list of one tool.
type args struct {
	tool   string
	params []param
}

// newArgs declares a tool's arguments; mutating tools also get the
// optional confidence and reason.
func newArgs(tool string, mutating bool, params ...param) args {
	if mutating {
		params = append(slices.Clone(params), metaParams...)
	}
	return args{tool: tool, params: params}
}

// schema is the JSON Schema of the arguments object.
func (a args) schema() json.RawMessage {
	props := map[string]any{}
	required := []string{}
	for _, p := range a.params {
		prop := map[string]any{"type": p.typ, "description": p.desc}
		if p.min != nil {
			prop["minimum"] = *p.min
		}
		if p.max != nil {
			prop["maximum"] = *p.max
		}
		props[p.name] = prop
		if p.required {
			required = append(required, p.name)
		}
	}
	b, err := json.Marshal(map[string]any{
		"type":                 "object",
		"properties":           props,
		"required":             required,
		"additionalProperties": false,
	})
	if err != nil {
		panic(fmt.Sprintf("tools: schema of %s: %v", a.tool, err)) // static data; cannot happen
	}
	return b
}

// decode checks raw against the declared arguments and fills dst (a
// pointer to a struct with json tags). Every problem is reported at once,
// in words the model can act on: unknown fields (with the allowed names),
// missing required ones, wrong types (with what was sent), out-of-range
// numbers.
func (a args) decode(raw json.RawMessage, dst any) error {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		trimmed = []byte("{}")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		return fmt.Errorf("%s: the arguments must be one JSON object like %s, but they are not (%v); got: %s",
			a.tool, a.example(), err, clip(string(trimmed), 200))
	}
	var problems []string
	known := map[string]param{}
	for _, p := range a.params {
		known[p.name] = p
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if _, ok := known[k]; !ok {
			problems = append(problems, fmt.Sprintf("unknown argument %q", k))
		}
	}
	for _, p := range a.params {
		v, ok := fields[p.name]
		if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			if p.required {
				problems = append(problems, fmt.Sprintf("missing required argument %q (%s)", p.name, p.typ))
			}
			delete(fields, p.name)
			continue
		}
		if msg := p.check(v); msg != "" {
			problems = append(problems, msg)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: invalid arguments: %s. The arguments are: %s",
			a.tool, strings.Join(problems, "; "), a.signature())
	}
	// Types were checked above, so this only copies values.
	clean, err := json.Marshal(fields)
	if err == nil {
		err = json.Unmarshal(clean, dst)
	}
	if err != nil {
		return fmt.Errorf("%s: invalid arguments: %v. The arguments are: %s", a.tool, err, a.signature())
	}
	return nil
}

// check returns what is wrong with one value, or "".
func (p param) check(v json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return fmt.Sprintf("argument %q is not valid JSON: %v", p.name, err)
	}
	wrong := func() string {
		return fmt.Sprintf("argument %q must be %s, got %s", p.name, article(p.typ), describe(x))
	}
	switch p.typ {
	case "string":
		if _, ok := x.(string); !ok {
			return wrong()
		}
		return ""
	case "boolean":
		if _, ok := x.(bool); !ok {
			return wrong()
		}
		return ""
	}
	n, ok := x.(json.Number)
	if !ok {
		return wrong()
	}
	f, err := n.Float64()
	if err != nil {
		return wrong()
	}
	if p.typ == "integer" {
		if _, err := n.Int64(); err != nil {
			return wrong()
		}
	}
	if p.min != nil && f < *p.min {
		return fmt.Sprintf("argument %q must be at least %g, got %s", p.name, *p.min, n)
	}
	if p.max != nil && f > *p.max {
		return fmt.Sprintf("argument %q must be at most %g, got %s", p.name, *p.max, n)
	}
	return ""
}

func article(typ string) string {
	switch typ {
	case "integer":
		return "an integer (a whole number, not in quotes)"
	case "number":
		return "a number (not in quotes)"
	case "boolean":
		return "a boolean (true or false, not in quotes)"
	}
	return "a " + typ
}

func describe(x any) string {
	switch v := x.(type) {
	case string:
		return fmt.Sprintf("a string (%s)", clip(fmt.Sprintf("%q", v), 60))
	case bool:
		return fmt.Sprintf("a boolean (%t)", v)
	case json.Number:
		return fmt.Sprintf("a number (%s)", v)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "null"
}

// signature lists the arguments for error messages:
// `path (string, required), recursive (boolean)`.
func (a args) signature() string {
	parts := make([]string, len(a.params))
	for i, p := range a.params {
		req := ""
		if p.required {
			req = ", required"
		}
		parts[i] = fmt.Sprintf("%s (%s%s)", p.name, p.typ, req)
	}
	return strings.Join(parts, ", ")
}

// example is a minimal valid arguments object for error messages.
func (a args) example() string {
	var b strings.Builder
	b.WriteString("{")
	n := 0
	for _, p := range a.params {
		if !p.required {
			continue
		}
		if n > 0 {
			b.WriteString(", ")
		}
		n++
		fmt.Fprintf(&b, "%q: ", p.name)
		switch p.typ {
		case "string":
			b.WriteString(`"…"`)
		case "boolean":
			b.WriteString("true")
		default:
			b.WriteString("1")
		}
	}
	b.WriteString("}")
	return b.String()
}

// clip shortens s to at most n bytes (on a rune boundary), marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
