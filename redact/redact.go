// Package redact hides known secret values in text before it leaves the
// process: log records, command output streamed to chat, step logs and LLM
// prompts. hero promises that a project secret never appears in any of
// those, so every outbound path runs its text through a Redactor that
// knows the secret values.
//
// A Redactor matches each registered value and the encoded forms a secret
// typically takes when a program echoes it: base64 (at any alignment, and
// wrapped over lines), base32, hex, URL and JSON escaping, and the value
// reversed. Matching ignores ASCII case and tolerates separators between
// the characters (blanks, line breaks, "-_.:,;|" and zero-width
// characters), so `s e c r e t`, `S-E-C-R-E-T`, `fold`-ed or `tr a-z A-Z`
// output is caught too. Values too short to match loosely without hitting
// ordinary words (fewer than 8 characters once separators are removed)
// only match exactly.
//
// Encoding in general cannot be caught: rot13, gzip+base64, encryption,
// or a value spelled out one character per command all pass. The redactor
// is a safety net for accidents and the cheap tricks; hero's other
// defences (confirmations, the sandbox, credentials that never enter it)
// do not rely on it.
//
// All occurrences are found in one pass with an Aho-Corasick automaton,
// overlapping matches are merged so no fragment of a secret survives, and
// text without any secret is returned unchanged without allocating.
package redact

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// MinSecretLen is the shortest value Add accepts. Shorter values ("1",
// "yes", "dev") occur everywhere in ordinary text; replacing them would
// shred logs and chat messages while protecting nothing worth protecting.
// A value made only of blanks, separators and invisible characters is
// ignored too.
const MinSecretLen = 4

// minFragmentLen is the shortest derived fragment (a line of a multi-line
// secret, the stable core of a misaligned base64 encoding) worth matching,
// and the shortest pattern matched loosely (any case, separators between
// the characters): shorter ones would hit unrelated text far too often.
const minFragmentLen = 8

// Redactor replaces registered secret values in text. The zero value is not
// usable; call New. All methods are safe for concurrent use: lookups read an
// immutable matcher that Add swaps atomically, so redaction never waits for
// a lock.
type Redactor struct {
	mu      sync.Mutex              // serialises Add; readers use m
	secrets map[string]*pattern     // key (squeezed, lower-case form) → pattern
	m       atomic.Pointer[matcher] // nil until the first secret
}

// pattern is one form of one or more secrets as the automaton matches it.
type pattern struct {
	key  string // squeezed and lower-cased: what the automaton matches
	name string // "" when unnamed
	// strict patterns are too short to match loosely: a match counts only
	// when the text holds one of exact, byte for byte.
	strict bool
	exact  []string
}

// New returns an empty Redactor: until values are added, every method passes
// text through unchanged.
func New() *Redactor {
	return &Redactor{secrets: make(map[string]*pattern)}
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
	// In name order, so which name wins for a value two secrets share
	// does not depend on map iteration.
	names := make([]string, 0, len(secrets))
	for name := range secrets {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		changed = r.insert(name, secrets[name]) || changed
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
	for _, f := range forms(v) {
		key := squeeze(f)
		if key == "" {
			continue
		}
		strict := len(key) < minFragmentLen
		p, ok := r.secrets[key]
		if !ok {
			p = &pattern{key: key, name: name, strict: strict}
			if strict {
				p.exact = []string{f}
			}
			r.secrets[key] = p
			changed = true
			continue
		}
		if p.name == "" && name != "" {
			p.name = name
			changed = true
		}
		switch {
		case p.strict && !strict:
			p.strict, p.exact = false, nil
			changed = true
		case p.strict && !slices.Contains(p.exact, f):
			p.exact = append(p.exact, f)
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
	return len(m.pats)
}

// String returns s with every occurrence of a registered secret, in any of
// its registered forms, replaced by its label. s itself is returned when it
// contains no secret.
func (r *Redactor) String(s string) string {
	m := r.m.Load()
	if m == nil || len(s) < m.minLen {
		return s
	}
	spans, _ := scan(m, s, nil, false)
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
	spans, _ := scan(m, b, nil, false)
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
	spans, _ := scan(m, s, nil, true)
	return len(spans) > 0
}

// forms returns v and the encodings a secret commonly takes in output.
func forms(v string) []string {
	raw := []byte(v)
	out := []string{
		v,
		reverse(v),
		hex.EncodeToString(raw), // upper-case hex: matching ignores case
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
	// A secret embedded in a longer payload (HTTP Basic auth of
	// "user:token", a base64'd config file) is encoded at an arbitrary
	// byte offset. For each alignment the characters that depend only on
	// the secret's bytes are the same whatever surrounds it, so that core
	// is matched too: base64 has 3 alignments (6 bits a character), base32
	// 5 (5 bits a character). The aligned core is the whole encoding but
	// its last character and padding.
	cores := func(align, bits int, encode func([]byte) string) []string {
		var cs []string
		for k := range align {
			enc := encode(append(make([]byte, k), raw...))
			from := (8*k + bits - 1) / bits
			to := 8 * (k + len(raw)) / bits
			if to-from < minFragmentLen {
				return nil
			}
			cs = append(cs, enc[from:to])
		}
		return cs
	}
	// base64 of the value alone is matched whole, padding included.
	out = append(out,
		base64.StdEncoding.EncodeToString(raw), base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw))
	if cs := cores(3, 6, base64.StdEncoding.EncodeToString); cs != nil {
		for _, c := range cs {
			out = append(out, c, strings.NewReplacer("+", "-", "/", "_").Replace(c))
		}
	}
	if cs := cores(5, 5, base32.StdEncoding.EncodeToString); cs != nil {
		out = append(out, cs...)
	} else {
		out = append(out, base32.StdEncoding.EncodeToString(raw))
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

// reverse returns s with its characters in reverse order, as `rev` prints
// it (invalid UTF-8 is reversed byte by byte).
func reverse(s string) string {
	if !utf8.ValidString(s) {
		b := []byte(s)
		slices.Reverse(b)
		return string(b)
	}
	r := []rune(s)
	slices.Reverse(r)
	return string(r)
}

// Byte classes of the scan: lower folds ASCII letters to lower case; isSep
// marks the ASCII separators skipped between the characters of a match.
var (
	lower = func() (t [256]byte) {
		for i := range t {
			t[i] = byte(i)
		}
		for c := 'A'; c <= 'Z'; c++ {
			t[c] = byte(c - 'A' + 'a')
		}
		return t
	}()
	isSep = func() (t [256]bool) {
		for _, c := range " \t\n\r\v\f-_.:,;|" {
			t[c] = true
		}
		return t
	}()
)

// zeroWidth returns the length of the invisible character that starts
// s[i:] (zero-width space, non-joiner, joiner, word joiner, BOM, soft
// hyphen), 0 if none. A sequence cut off by the end of s that may still
// become one counts as one, so that Writer holds a match back across it.
func zeroWidth[T string | []byte](s T, i int) int {
	rest := len(s) - i
	switch s[i] {
	case 0xE2: // U+200B..U+200D: E2 80 8B..8D; U+2060: E2 81 A0
		if rest == 1 || (rest == 2 && (s[i+1] == 0x80 || s[i+1] == 0x81)) {
			return rest
		}
		if rest >= 3 && ((s[i+1] == 0x80 && s[i+2] >= 0x8B && s[i+2] <= 0x8D) || (s[i+1] == 0x81 && s[i+2] == 0xA0)) {
			return 3
		}
	case 0xEF: // U+FEFF: EF BB BF
		if rest == 1 || (rest == 2 && s[i+1] == 0xBB) {
			return rest
		}
		if rest >= 3 && s[i+1] == 0xBB && s[i+2] == 0xBF {
			return 3
		}
	case 0xC2: // U+00AD: C2 AD
		if rest == 1 {
			return 1
		}
		if s[i+1] == 0xAD {
			return 2
		}
	}
	return 0
}

// squeeze is what the automaton matches of a form: lower case, without
// separators and invisible characters.
func squeeze(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isSep[c] {
			continue
		}
		if c >= 0xC2 {
			if n := zeroWidth(s, i); n > 0 {
				i += n - 1
				continue
			}
		}
		b.WriteByte(lower[c])
	}
	return b.String()
}

// span is one merged match: bytes [start,end) are replaced by labels[label].
type span struct {
	start, end int
	label      int32 // index into matcher.labels
	best       int32 // length of the longest match merged into the span
}

// maxDense bounds the dense transition table (entries of 4 bytes): 256
// KiB holds the nodes of depth 1 and 2 for 50 secrets, where the scan
// spends nearly all its time.
const maxDense = 1 << 16

// matcher is an immutable Aho-Corasick automaton over squeezed bytes. Node
// 0 is the root; its transitions are a dense table (for both cases of each
// letter) because the scan returns to the root on almost every byte of
// ordinary text.
type matcher struct {
	root  [256]int32 // root transitions (0 = stay at root)
	edges [][]edge   // per node, sorted by byte; root's are in root
	// The shallow nodes, where the scan spends nearly all its time, get
	// a dense row of complete transitions (fail links already followed)
	// over byte classes, so a step from them is one lookup. Class 0 is
	// every byte no key holds; cls maps a text byte (either case) to its
	// class.
	cls      [256]byte
	stride   int
	denseIdx []int32 // per node: offset of its row in dense, or -1
	dense    []int32
	fail     []int32
	depth    []int32
	// out is the longest pattern that is a suffix of the node's path
	// (its own or inherited through the fail link), -1 if none.
	out    []int32
	pats   []matchPat
	labels []string
	minLen int // shortest pattern
}

type matchPat struct {
	len    int32
	label  int32
	node   int32
	strict bool
	exact  []string
}

type edge struct {
	b    byte
	next int32
}

func buildMatcher(secrets map[string]*pattern) *matcher {
	m := &matcher{
		edges:  [][]edge{nil},
		fail:   []int32{0},
		depth:  []int32{0},
		out:    []int32{-1},
		minLen: int(^uint(0) >> 1),
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
	// Insert in a fixed order so the automaton does not depend on map
	// iteration.
	keys := make([]string, 0, len(secrets))
	for k := range secrets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// At most one node per key byte: size the node arrays once.
	nodes := 1
	for _, k := range keys {
		nodes += len(k)
	}
	m.edges = slices.Grow(m.edges, nodes)
	m.fail = slices.Grow(m.fail, nodes)
	m.depth = slices.Grow(m.depth, nodes)
	m.out = slices.Grow(m.out, nodes)
	maxLen := 0
	for _, k := range keys {
		p := secrets[k]
		m.minLen = min(m.minLen, len(k))
		maxLen = max(maxLen, len(k))
		n := int32(0)
		for i := 0; i < len(k); i++ {
			next := m.child(n, k[i])
			if next == 0 {
				next = int32(len(m.fail))
				m.edges = append(m.edges, nil)
				m.fail = append(m.fail, 0)
				m.depth = append(m.depth, m.depth[n]+1)
				m.out = append(m.out, -1)
				if n == 0 {
					m.root[k[i]] = next
				} else {
					es := m.edges[n]
					at := sort.Search(len(es), func(j int) bool { return es[j].b >= k[i] })
					es = append(es, edge{})
					copy(es[at+1:], es[at:])
					es[at] = edge{k[i], next}
					m.edges[n] = es
				}
			}
			n = next
		}
		m.out[n] = int32(len(m.pats))
		m.pats = append(m.pats, matchPat{len: int32(len(k)), label: label(p.name), node: n, strict: p.strict, exact: slices.Clone(p.exact)})
	}
	// Breadth-first: fail links, and the longest pattern ending at each
	// node (its own, or inherited through the fail link).
	queue := make([]int32, 0, len(m.fail))
	for b := range 256 {
		if c := m.root[b]; c != 0 {
			queue = append(queue, c)
		}
	}
	for qi := 0; qi < len(queue); qi++ {
		n := queue[qi]
		if m.out[n] < 0 {
			m.out[n] = m.out[m.fail[n]]
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
	var used [256]bool
	for _, k := range keys {
		for i := 0; i < len(k); i++ {
			used[k[i]] = true
		}
	}
	var classBytes []byte // class → a byte of it (index 0 unused)
	classBytes = append(classBytes, 0)
	for b := range 256 {
		if used[b] {
			m.cls[b] = byte(len(classBytes))
			classBytes = append(classBytes, byte(b))
		}
	}
	for b := range 256 {
		m.cls[b] = m.cls[lower[b]]
	}
	m.stride = len(classBytes)
	m.denseIdx = make([]int32, len(m.fail))
	for i := range m.denseIdx {
		m.denseIdx[i] = -1
	}
	rows := append([]int32{0}, queue...)
	for _, n := range rows {
		if len(m.dense)+m.stride > maxDense {
			break
		}
		off := len(m.dense)
		for c := range m.stride {
			next := int32(0)
			if c != 0 {
				next = m.step(n, byte(c), classBytes[c])
			}
			m.dense = append(m.dense, next)
		}
		m.denseIdx[n] = int32(off)
	}
	// Upper-case letters lead where their lower-case ones do; separators
	// lead nowhere (no key holds one).
	for c := 'A'; c <= 'Z'; c++ {
		m.root[c] = m.root[lower[c]]
	}
	return m
}

// child is the transition of node n on squeezed byte b, 0 if none.
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

// step advances the automaton from state n on squeezed byte b of class
// c. Rows are filled in breadth-first order, so while they are built the
// fail targets (always shallower) already have theirs.
func (m *matcher) step(n int32, c, b byte) int32 {
	if c == 0 {
		return 0
	}
	for {
		if m.denseIdx != nil {
			if d := m.denseIdx[n]; d >= 0 {
				return m.dense[int(d)+int(c)]
			}
		}
		if n == 0 {
			return m.root[b]
		}
		if next := m.child(n, b); next != 0 {
			return next
		}
		n = m.fail[n]
	}
}

// scan returns the merged spans of all matches in s, left to right, and
// where the automaton's unfinished match starts (len(s) when there is
// none): no later match can start before it, which is what Writer may
// still hold back. Every match is found, including ones overlapping each
// other; overlapping matches become one span labelled with the longest of
// them, so no part of any secret stays visible. With first, scan stops at
// the first match.
func scan[T string | []byte](m *matcher, s T, spans []span, first bool) ([]span, int) {
	n := int32(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if n == 0 {
			// Skip quickly through bytes that start no pattern.
			n = m.root[c]
			if n == 0 {
				continue
			}
		} else {
			if isSep[c] {
				continue
			}
			if c >= 0xC2 {
				if w := zeroWidth(s, i); w > 0 {
					i += w - 1
					continue
				}
			}
			if d := m.denseIdx[n]; d >= 0 {
				n = m.dense[int(d)+int(m.cls[c])]
			} else {
				n = m.step(n, m.cls[c], lower[c])
			}
			if n == 0 {
				continue
			}
		}
		for p := m.out[n]; p >= 0; p = m.out[m.fail[m.pats[p].node]] {
			pt := &m.pats[p]
			sp := span{start: back(s, i, int(pt.len)), end: i + 1, label: pt.label, best: pt.len}
			if pt.strict {
				var ok bool
				if sp.start, sp.end, ok = exactAt(s, sp.start, pt.exact); !ok {
					continue // a shorter pattern ending here may still match
				}
			}
			if first {
				return append(spans, sp), len(s)
			}
			// A longer match can reach back over several earlier spans:
			// swallow every span it overlaps.
			for k := len(spans) - 1; k >= 0 && sp.start < spans[k].end; k-- {
				prev := spans[k]
				sp.start = min(sp.start, prev.start)
				sp.end = max(sp.end, prev.end)
				if prev.best >= sp.best {
					sp.best, sp.label = prev.best, prev.label
				}
				spans = spans[:k]
			}
			spans = append(spans, sp)
			break
		}
	}
	if n == 0 {
		return spans, len(s)
	}
	return spans, back(s, len(s)-1, int(m.depth[n]))
}

// exactAt looks for one of exact in s where a strict pattern matched from
// start (its first non-separator byte): the value's own leading and
// trailing separators must be there too. It returns the value's span.
func exactAt[T string | []byte](s T, start int, exact []string) (int, int, bool) {
	for _, e := range exact {
		lead := len(e) - len(strings.TrimLeftFunc(e, func(r rune) bool {
			return r < utf8.RuneSelf && isSep[r] || strings.ContainsRune("\u200b\u200c\u200d\u2060\ufeff\u00ad", r)
		}))
		from := start - lead
		if from >= 0 && from+len(e) <= len(s) && string(s[from:from+len(e)]) == e {
			return from, from + len(e), true
		}
	}
	return 0, 0, false
}

// back returns where the last l matched bytes up to s[i] start: the scan
// skipped separators and invisible characters between them. Matches are
// rare, so walking back beats remembering every position on the way.
func back[T string | []byte](s T, i, l int) int {
	if i == len(s)-1 {
		// An invisible character, possibly cut off, at the very end.
		for j := i; j >= 0 && j >= len(s)-3; j-- {
			if s[j] >= 0xC2 {
				if zeroWidth(s, j) == len(s)-j {
					i = j - 1
				}
				break
			}
		}
	}
	for ; i >= 0; i-- {
		c := s[i]
		if isSep[c] {
			continue
		}
		if c >= 0x80 && c <= 0xBF {
			if i >= 2 && zeroWidth(s[:i+1], i-2) == 3 {
				i -= 2
				continue
			}
			if i >= 1 && s[i-1] == 0xC2 && c == 0xAD {
				i--
				continue
			}
		}
		if l--; l == 0 {
			return i
		}
	}
	return 0
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
