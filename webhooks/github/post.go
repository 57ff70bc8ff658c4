package github

import (
	"context"
	"fmt"
)

// Post comments text on an issue or pull request ("owner/repo#12", as a
// run's ThreadRef names it) and returns the thread reference:
// scheduled work made on an issue reports there.
func (s *Service) Post(ctx context.Context, place, text string) (string, error) {
	th, err := ParseThread(place)
	if err != nil {
		return "", err
	}
	th = Thread{Repo: th.Repo, Number: th.Number} // a new comment on the issue itself
	if _, err := s.createComment(ctx, th, text); err != nil {
		return "", fmt.Errorf("post on %s: %w", th, err)
	}
	return th.String(), nil
}
