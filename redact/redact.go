// Package redact hides known secret values in text before it leaves the
// process: log records, command output streamed to chat, step logs and LLM
// prompts. hero promises that a project secret never appears in any of
// those, so every outbound path runs its text through one Redactor that
// knows all secret values of the project.
//
// A Redactor matches each registered value and the encoded forms a secret
// typically takes when a program echoes it (base64, URL escaping, JSON
// escaping). All occurrences are found at once with an Aho-Corasick
// automaton, overlapping matches are merged so no fragment of a secret
// survives, and text without any secret is returned unchanged without
// allocating.
package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// MinSecretLen is the shortest value Add accepts. Shorter values ("1",
// "yes", "dev") occur everywhere in ordinary text; replacing them would
// shred logs and chat messages while protecting nothing worth protecting.
const MinSecretLen = 4

// minFragmentLen is the shortest derived fragment (a line of a multi-line
// secret, the stable core of a misaligned base64 encoding) worth matching:
// shorter fragments would hit unrelated text far too often.
const minFragmentLen = 8

// Redactor replaces registered secret values in text. The zero value is not
// usable; call New. All methods are safe for concurrent use: lookups read an
// immutable matcher that Add swaps atomically, so redaction never waits for
// a lock.
type Redactor struct {
	mu      sync.Mutex              // serialises Add; readers use m
	secrets map[string]string       // pattern → name ("" when unnamed)
	m       atomic.Pointer[matcher] // nil until the first secret
}

// New returns an empty Redactor: until values are added, every method passes
// text through unchanged.
func New() *Redactor {
	return &Redactor{secrets: make(map[string]string)}
}

// Add registers secret values to hide, each replaced by "[REDACTED]". Values
// shorter than MinSecretLen bytes are ignored (see MinSecretLen). Adding a
// value that is already known keeps its existing name.
func (r *Redactor) Add(values ...string) {
	r.add("", values)
}

// AddNamed registers one secret value whose occurrences are replaced by
// "[REDACTED:name]", so a reader sees which secret was used without seeing
// it. A value shorter than MinSecretLen is ignored. If the same value was
// added before without a name it gets this name.
func (r *Redactor) AddNamed(name, value string) {
	r.add(name, []string{value})
}

// AddMap registers named secrets, name → value, as AddNamed does for
// each. Loading a project's secrets with one call rebuilds the matcher
// once instead of once per secret.
func (r *Redactor) AddMap(secrets map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for name, v := range secrets {
		changed = r.insert(name, v) || changed
	}
	if changed {
		r.m.Store(buildMatcher(r.secrets))
	}
}

func (r *Redactor) add(name string, values []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for _, v := range values {
		changed = r.insert(name, v) || changed
	}
	if changed {
		r.m.Store(buildMatcher(r.secrets))
	}
}

// insert records v's forms under name; callers hold r.mu.
func (r *Redactor) insert(name, v string) bool {
	if len(v) < MinSecretLen {
		return false
	}
	changed := false
	for _, p := range forms(v) {
		old, ok := r.secrets[p]
		if !ok || (old == "" && name != "") {
			r.secrets[p] = name
			changed = true
		}
	}
	return changed
}

// Len reports how many patterns (values and their encoded forms) are
// registered; useful to check that secrets were loaded.
func (r *Redactor) Len() int {
	m := r.m.Load()
	if m == nil {
		return 0
	}
	return m.patterns
}

// String returns s with every occurrence of a registered secret, in any of
// its registered forms, replaced by its label. s itself is returned when it
// contains no secret.
func (r *Redactor) String(s string) string {
	m := r.m.Load()
	if m == nil || len(s) < m.minLen {
		return s
	}
	spans := find(m, s, nil)
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	last := 0
	for _, sp := range spans {
		b.WriteString(s[last:sp.start])
		b.WriteString(m.labels[sp.label])
		last = sp.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// Bytes is String for byte slices. It returns b itself when b contains no
// secret and a new slice otherwise; b is never modified.
func (r *Redactor) Bytes(b []byte) []byte {
	m := r.m.Load()
	if m == nil || len(b) < m.minLen {
		return b
	}
	spans := find(m, b, nil)
	if len(spans) == 0 {
		return b
	}
	return m.replace(nil, b, spans)
}

// Contains reports whether s holds any registered secret form. It does not
// allocate; callers use it to decide whether a value needs rewriting at all.
func (r *Redactor) Contains(s string) bool {
	m := r.m.Load()
	if m == nil || len(s) < m.minLen {
		return false
	}
	return m.contains(s)
}

// forms returns v and the encodings a secret commonly takes in output.
func forms(v string) []string {
	raw := []byte(v)
	out := []string{
		v,
		base64.StdEncoding.EncodeToString(raw),
		base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
		url.QueryEscape(v),
		url.PathEscape(v),
	}
	// JSON-escaped, both with Go's default HTML escaping (\u003c) and
	// without it (what most other JSON encoders produce).
	if j, err := json.Marshal(v); err == nil {
		out = append(out, string(j[1:len(j)-1]))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err == nil {
		j := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		out = append(out, string(j[1:len(j)-1]))
	}
	// A secret embedded in a longer base64 payload (HTTP Basic auth of
	// "user:token", a base64'd config file) is encoded at an arbitrary
	// byte offset. For each of the three alignments the characters that
	// depend only on the secret's bytes are the same whatever surrounds
	// it, so that core is matched too.
	for k := range 3 {
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, k), raw...))
		from := (8*k + 5) / 6
		to := 8 * (k + len(raw)) / 6
		if to-from >= minFragmentLen {
			core := enc[from:to]
			out = append(out, core, strings.NewReplacer("+", "-", "/", "_").Replace(core))
		}
	}
	// A multi-line secret (a PEM key) is often printed partly or with
	// different line endings; hide each substantial line on its own.
	if strings.ContainsAny(v, "\r\n") {
		for line := range strings.FieldsFuncSeq(v, func(r rune) bool { return r == '\n' || r == '\r' }) {
			if line = strings.TrimSpace(line); len(line) >= minFragmentLen {
				out = append(out, line)
			}
		}
	}
	return out
}

// span is one merged match: bytes [start,end) are replaced by labels[label].
type span struct {
	start, end int
	label      int32 // index into matcher.labels
	best       int32 // length of the longest match merged into the span
}

// maxDenseRows bounds the memory of dense rows (1 KiB each).
const maxDenseRows = 512

// matcher is an immutable Aho-Corasick automaton over bytes. Node 0 is the
// root; its transitions are a dense table because the scan returns to the
// root on almost every byte of ordinary text.
type matcher struct {
	root  [256]int32 // root transitions (0 = stay at root)
	edges [][]edge   // per node, sorted by byte; root's are in root
	// Nodes the scan visits constantly (depth 1, and nodes with many
	// children) get a dense row of complete transitions, fail links
	// already followed, so a step from them is one lookup.
	denseIdx []int32 // per node: row in dense, or -1
	dense    [][256]int32
	fail     []int32
	outLen   []int32 // length of the longest pattern that is a suffix of the node's path, 0 if none
	outLabel []int32 // label of that pattern
	labels   []string
	minLen   int // shortest pattern
	maxLen   int // longest pattern
	patterns int
}

type edge struct {
	b    byte
	next int32
}

func buildMatcher(secrets map[string]string) *matcher {
	m := &matcher{
		edges:    [][]edge{nil},
		fail:     []int32{0},
		outLen:   []int32{0},
		outLabel: []int32{0},
		minLen:   int(^uint(0) >> 1),
		patterns: len(secrets),
	}
	labelIdx := map[string]int32{}
	label := func(name string) int32 {
		l := "[REDACTED]"
		if name != "" {
			l = "[REDACTED:" + name + "]"
		}
		if i, ok := labelIdx[l]; ok {
			return i
		}
		i := int32(len(m.labels))
		m.labels = append(m.labels, l)
		labelIdx[l] = i
		return i
	}
	// Insert in a fixed order so the automaton (and tie-breaking between
	// names) does not depend on map iteration.
	pats := make([]string, 0, len(secrets))
	for p := range secrets {
		pats = append(pats, p)
	}
	sort.Strings(pats)
	for _, p := range pats {
		m.minLen = min(m.minLen, len(p))
		m.maxLen = max(m.maxLen, len(p))
		n := int32(0)
		for i := 0; i < len(p); i++ {
			next := m.child(n, p[i])
			if next == 0 {
				next = int32(len(m.fail))
				m.edges = append(m.edges, nil)
				m.fail = append(m.fail, 0)
				m.outLen = append(m.outLen, 0)
				m.outLabel = append(m.outLabel, 0)
				if n == 0 {
					m.root[p[i]] = next
				} else {
					es := m.edges[n]
					at := sort.Search(len(es), func(j int) bool { return es[j].b >= p[i] })
					es = append(es, edge{})
					copy(es[at+1:], es[at:])
					es[at] = edge{p[i], next}
					m.edges[n] = es
				}
			}
			n = next
		}
		m.outLen[n] = int32(len(p))
		m.outLabel[n] = label(secrets[p])
	}
	// Breadth-first: fail links, and the longest pattern ending at each
	// node (its own, or inherited through the fail link).
	queue := make([]int32, 0, len(m.fail))
	for b := range 256 {
		if c := m.root[b]; c != 0 {
			queue = append(queue, c)
		}
	}
	depth1 := len(queue)
	for qi := 0; qi < len(queue); qi++ {
		n := queue[qi]
		if m.outLen[n] == 0 {
			m.outLen[n] = m.outLen[m.fail[n]]
			m.outLabel[n] = m.outLabel[m.fail[n]]
		}
		for _, e := range m.edges[n] {
			f := m.fail[n]
			for f != 0 && m.child(f, e.b) == 0 {
				f = m.fail[f]
			}
			m.fail[e.next] = m.child(f, e.b)
			queue = append(queue, e.next)
		}
	}
	// Dense rows, in breadth-first order so that a node's fail target
	// (always shallower) is final before the node's row is computed.
	m.denseIdx = make([]int32, len(m.fail))
	for i := range m.denseIdx {
		m.denseIdx[i] = -1
	}
	for qi, n := range queue {
		if len(m.dense) == maxDenseRows {
			break
		}
		if qi >= depth1 && len(m.edges[n]) < 4 {
			continue
		}
		var row [256]int32
		for b := range 256 {
			row[b] = m.step(n, byte(b))
		}
		m.denseIdx[n] = int32(len(m.dense))
		m.dense = append(m.dense, row)
	}
	return m
}

func (m *matcher) child(n int32, b byte) int32 {
	if n == 0 {
		return m.root[b]
	}
	for _, e := range m.edges[n] {
		if e.b == b {
			return e.next
		}
		if e.b > b {
			break
		}
	}
	return 0
}

// step advances the automaton from state n on byte b.
func (m *matcher) step(n int32, b byte) int32 {
	for n != 0 {
		if m.denseIdx != nil {
			if d := m.denseIdx[n]; d >= 0 {
				return m.dense[d][b]
			}
		}
		if c := m.child(n, b); c != 0 {
			return c
		}
		n = m.fail[n]
	}
	return m.root[b]
}

// find returns the merged spans of all matches in s, left to right. Every
// match is found, including ones overlapping each other; overlapping
// matches become one span labelled with the longest of them, so no part of
// any secret stays visible.
func find[T string | []byte](m *matcher, s T, spans []span) []span {
	n := int32(0)
	for i := 0; i < len(s); i++ {
		if n == 0 {
			// Skip quickly through bytes that start no pattern.
			n = m.root[s[i]]
			if n == 0 {
				continue
			}
		} else {
			n = m.step(n, s[i])
		}
		l := m.outLen[n]
		if l == 0 {
			continue
		}
		sp := span{start: i + 1 - int(l), end: i + 1, label: m.outLabel[n], best: l}
		// A longer match can reach back over several earlier spans:
		// swallow every span it overlaps.
		for k := len(spans) - 1; k >= 0 && sp.start < spans[k].end; k-- {
			prev := spans[k]
			sp.start = min(sp.start, prev.start)
			if prev.best >= sp.best {
				sp.best, sp.label = prev.best, prev.label
			}
			spans = spans[:k]
		}
		spans = append(spans, sp)
	}
	return spans
}

func (m *matcher) contains(s string) bool {
	n := int32(0)
	for i := 0; i < len(s); i++ {
		if n == 0 {
			n = m.root[s[i]]
			if n == 0 {
				continue
			}
		} else {
			n = m.step(n, s[i])
		}
		if m.outLen[n] != 0 {
			return true
		}
	}
	return false
}

// replace appends b to dst with spans replaced by their labels.
func (m *matcher) replace(dst, b []byte, spans []span) []byte {
	last := 0
	for _, sp := range spans {
		dst = append(dst, b[last:sp.start]...)
		dst = append(dst, m.labels[sp.label]...)
		last = sp.end
	}
	return append(dst, b[last:]...)
}
