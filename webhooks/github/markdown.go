package github

import (
	"net/url"
	"regexp"
	"strings"
)

// safeMarkdown makes markdown hero did not write (the model's comments,
// pull request descriptions, summaries, a confirmation's action) safe to
// post on GitHub, where a manipulated model would use it to carry data out
// or to reach people:
//
//   - An image from any host but the repository's own GitHub host is
//     dropped with a note: GitHub's image proxy fetches every image for
//     every reader, so its URL alone would carry data (a secret hex-encoded
//     in a query) to that host.
//   - A link to another host keeps its text and shows its URL as code, not
//     clickable; a bare URL to another host becomes code too. Links to the
//     repository's GitHub host (issues, pull requests, files) keep working.
//   - Raw HTML is shown as text (no <img>, <a> or <details> tricks), and a
//     link reference definition to another host is shown as text.
//   - An @mention of a person or team becomes code, so nobody is notified
//     by text the model wrote.
//
// Code spans and fenced code blocks are left alone: GitHub renders nothing
// in them. hosts are the GitHub web hosts whose links are kept
// (host[:port], lower case).
func safeMarkdown(md string, hosts []string) string {
	var b strings.Builder
	fence := "" // the open code fence, "" outside one
	for line := range strings.SplitAfterSeq(md, "\n") {
		trimmed := strings.TrimLeft(line, " ")
		indent := len(line) - len(trimmed)
		if fence != "" {
			b.WriteString(line)
			if indent < 4 && strings.HasPrefix(trimmed, fence) && strings.TrimSpace(strings.TrimLeft(trimmed, fence[:1])) == "" {
				fence = ""
			}
			continue
		}
		if f := openFence(trimmed); indent < 4 && f != "" {
			fence = f
			b.WriteString(line)
			continue
		}
		if m := refDefinition.FindStringSubmatch(line); m != nil && !allowedURL(m[1], hosts) {
			b.WriteString(strings.Repeat(" ", indent) + `\` + trimmed[:1])
			line = trimmed[1:]
		}
		safeInline(&b, line, hosts)
	}
	return b.String()
}

// openFence returns the fence a line opens (``` or ~~~, three or more),
// or "".
func openFence(line string) string {
	for _, c := range []string{"`", "~"} {
		n := len(line) - len(strings.TrimLeft(line, c))
		if n >= 3 && (c == "~" || !strings.Contains(line[n:], "`")) {
			return strings.Repeat(c, n)
		}
	}
	return ""
}

// safeInline writes one line, its code spans untouched.
func safeInline(b *strings.Builder, line string, hosts []string) {
	for line != "" {
		i := strings.IndexByte(line, '`')
		if i < 0 {
			safeText(b, line, hosts)
			return
		}
		safeText(b, line[:i], hosts)
		n := len(line[i:]) - len(strings.TrimLeft(line[i:], "`"))
		run := line[i : i+n]
		rest := line[i+n:]
		// A code span closes with a run of exactly as many backticks.
		end := -1
		for j := 0; j < len(rest); {
			k := strings.Index(rest[j:], run)
			if k < 0 {
				break
			}
			k += j
			m := len(rest[k:]) - len(strings.TrimLeft(rest[k:], "`"))
			if m == n {
				end = k
				break
			}
			j = k + m
		}
		if end < 0 {
			b.WriteString(run) // literal backticks
			line = rest
			continue
		}
		b.WriteString(run + rest[:end] + run)
		line = rest[end+n:]
	}
}

var (
	// inlineRisk finds, in text outside code: an image, a link, a bare
	// URL (GitHub links http(s):// and www. ones by itself), a mention,
	// or a "<" (an HTML tag or an autolink; escaping every one keeps the
	// rest of the text scanned, so the URL of <https://…> is seen).
	inlineRisk = regexp.MustCompile(
		`(!?)\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?([^\s)>]*)>?(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)` + // 1 bang, 2 text, 3 url
			`|((?i:https?://|www\.)[^\s<>\x60]*[^\s<>\x60.,:;!?'")\]])` + // 4 bare URL
			`|@([A-Za-z0-9][A-Za-z0-9-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)?)` + // 5 mention
			`|(<)`) // 6 HTML tag or autolink
	// refDefinition is a link reference definition: [name]: url
	refDefinition = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)`)
)

func safeText(b *strings.Builder, s string, hosts []string) {
	last := 0
	for _, m := range inlineRisk.FindAllStringSubmatchIndex(s, -1) {
		start, end := m[0], m[1]
		group := func(i int) string {
			if m[2*i] < 0 {
				return ""
			}
			return s[m[2*i]:m[2*i+1]]
		}
		var out string
		switch {
		case m[2] >= 0: // image or link
			text, target := group(2), group(3)
			var inner strings.Builder
			safeText(&inner, text, hosts)
			switch {
			case allowedURL(target, hosts):
				out = group(1) + "[" + inner.String() + "](" + target + ")"
			case group(1) == "!":
				out = "(image removed: hero does not show images from other sites"
				if t := strings.TrimSpace(inner.String()); t != "" {
					out += "; it was labelled “" + t + "”"
				}
				out += ")"
			default:
				out = inner.String() + " (" + codeSpan(target) + ")"
			}
		case m[2*4] >= 0:
			u := group(4)
			out = u
			if !allowedURL(u, hosts) {
				out = codeSpan(u)
			}
		case m[2*5] >= 0:
			// A mention starts after a non-word character (not inside an
			// e-mail address or a word).
			if start > 0 && isWordByte(s[start-1]) {
				out = s[start:end]
				break
			}
			out = codeSpan(s[start:end])
		default:
			out = "&lt;"
		}
		b.WriteString(s[last:start])
		b.WriteString(out)
		last = end
	}
	b.WriteString(s[last:])
}

func isWordByte(c byte) bool {
	return c == '_' || c == '.' || c == '/' || c == '@' || c == '`' ||
		('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// codeSpan shows s as inline code (the fence longer than any backtick run
// in it).
func codeSpan(s string) string {
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	pad := ""
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		pad = " "
	}
	return fence + pad + s + pad + fence
}

// allowedURL reports whether a link or image target stays live: a
// relative one (it resolves on GitHub itself), an in-page anchor, or one
// on the repository's GitHub host.
func allowedURL(target string, hosts []string) bool {
	if target == "" || strings.HasPrefix(target, "#") {
		return true
	}
	if strings.HasPrefix(strings.ToLower(target), "www.") {
		target = "https://" + target
	}
	u, err := url.Parse(target)
	if err != nil {
		return false
	}
	if u.Scheme == "" && u.Host == "" && !strings.HasPrefix(target, "//") {
		return !strings.Contains(u.Path, ":") // relative path, not a mailto-like scheme
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return false
	}
	host := strings.ToLower(u.Host)
	for _, h := range hosts {
		if host == h {
			return true
		}
	}
	return false
}
