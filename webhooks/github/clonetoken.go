package github

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/hero-dev/hero/sandbox/mirror"
	"github.com/hero-dev/hero/store"
)

// WebOrigin is the origin (scheme://host[:port]) repositories live on for
// a GitHub API root: https://github.com for api.github.com (or ""), and
// the API's own scheme, host and port for GitHub Enterprise
// (https://ghe.example/api/v3 → https://ghe.example; http only when the
// operator configured the API over http).
func WebOrigin(apiURL string) string {
	if apiURL == "" {
		return "https://github.com"
	}
	o, err := mirror.Origin(apiURL)
	if err != nil {
		return "https://github.com"
	}
	if o == "https://api.github.com" {
		return "https://github.com"
	}
	return o
}

// origins are where this surface's credentials may go: the web origin of
// the API, or Config.Hosts over the API's scheme.
func origins(apiURL string, hosts []string) []string {
	if len(hosts) == 0 {
		return []string{WebOrigin(apiURL)}
	}
	scheme := "https"
	if u, err := url.Parse(apiURL); err == nil && apiURL != "" && strings.EqualFold(u.Scheme, "http") {
		scheme = "http"
	}
	var out []string
	for _, h := range hosts {
		if o, err := mirror.Origin(scheme + "://" + h); err == nil {
			out = append(out, o)
		}
	}
	return out
}

// BindCredential returns token as a git credential for repoURL when the
// URL is on one of origins (same scheme, host and port), and nil
// otherwise: a GitHub token never goes to another host.
func BindCredential(origins []string, repoURL, token string) *mirror.Credential {
	if token == "" {
		return nil
	}
	o, err := mirror.Origin(repoURL)
	if err != nil || !slices.Contains(origins, o) {
		return nil
	}
	return mirror.TokenCredential(o, token)
}

// CloneCredential returns the credential that lets hero's mirror fetch p's
// repository (an installation token for a GitHub App, the user's OAuth
// token, or GITHUB_TOKEN), bound to the repository's origin; nil when the
// repository is not on this GitHub's host.
func (pub *Publisher) CloneCredential(ctx context.Context, p *store.Project) (*mirror.Credential, error) {
	_, repo, ok := parseRepoURL(p.RepoURL)
	if !ok {
		return nil, nil
	}
	if o, err := mirror.Origin(p.RepoURL); err != nil || !slices.Contains(pub.origins, o) {
		return nil, nil
	}
	tok, err := pub.creds.Token(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("github token for %s: %w", repo, err)
	}
	return BindCredential(pub.origins, p.RepoURL, tok), nil
}
