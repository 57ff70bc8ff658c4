package github

import (
	"context"
	"fmt"

	"github.com/hero-dev/hero/store"
)

// CloneToken returns the token that lets a sandbox clone p's repository
// (an installation token for a GitHub App, the user's OAuth token, or
// GITHUB_TOKEN), or "" when the repository is not on GitHub.
func (s *Service) CloneToken(ctx context.Context, p *store.Project) (string, error) {
	_, repo, ok := parseRepoURL(p.RepoURL)
	if !ok {
		return "", nil
	}
	tok, err := s.cfg.Credentials.Token(ctx, repo)
	if err != nil {
		return "", fmt.Errorf("github token for %s: %w", repo, err)
	}
	return tok, nil
}
