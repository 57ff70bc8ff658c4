package kanban

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hero-dev/hero/store"
)

// CardClaimGrace is how long a card post's claim holds without the card
// showing in its place before a catch-up pass takes it over: far longer
// than a post takes (the platform's timeouts, rate limits and retries
// included).
const CardClaimGrace = 5 * time.Minute

// Claims are the once-claims a card post is guarded by (*store.DB).
type Claims interface {
	ClaimOnce(ctx context.Context, kind, key, owner string, at time.Time) (first string, err error)
	TakeOverClaim(ctx context.Context, kind, key, owner string, staleBefore, at time.Time) (bool, error)
	ReleaseClaim(ctx context.Context, kind, key, owner string) error
}

// CardPost is one chat projection's post of a card in one place (a Slack
// channel, a Discord forum).
type CardPost struct {
	Kind  string // the claims' kind, one per projection ("slack-card")
	Key   string // the card and the place
	Owner string // this replica; each attempt gets its own claim owner
	// CatchUp is the periodic pass for cards made where the platform was
	// out of reach; only it takes over stale claims and looks for posts
	// whose outcome was never learned.
	CatchUp bool
	// Shown reports whether the card has a recorded post in the place.
	Shown func(context.Context) (bool, error)
	// Find looks for an earlier post of the card hero made there but never
	// recorded (a reply lost, a crash right after posting); nil if none.
	Find func(context.Context) (*store.KanbanCardThread, error)
	// Post posts the card.
	Post func(context.Context) (*store.KanbanCardThread, error)
}

// PostOnce posts a card in a place once across replicas. A claim per
// card and place keeps replicas (and the catch-up) from posting it twice.
// A post that fails gives its claim back, so the next catch-up tries
// again (a passing outage heals). In the catch-up, a claim older than
// CardClaimGrace whose card shows no post there was left by a replica
// that died mid-post, and one replica takes it over; and before posting,
// the catch-up looks for an earlier post and adopts it. It returns nil
// when the card was posted before, or is being posted by another replica.
func PostOnce(ctx context.Context, db Claims, p CardPost) (*store.KanbanCardThread, error) {
	owner := fmt.Sprintf("%s/%d", p.Owner, time.Now().UnixNano())
	now := time.Now()
	first, err := db.ClaimOnce(ctx, p.Kind, p.Key, owner, now)
	if err != nil {
		return nil, err
	}
	if first != owner {
		if !p.CatchUp {
			return nil, nil
		}
		if shown, err := p.Shown(ctx); err != nil || shown {
			return nil, err
		}
		if ok, err := db.TakeOverClaim(ctx, p.Kind, p.Key, owner, now.Add(-CardClaimGrace), now); err != nil || !ok {
			return nil, err
		}
	}
	release := func(err error) error {
		// Even when the post failed because ctx ended (shutdown):
		// otherwise the card would never be posted.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if rerr := db.ReleaseClaim(rctx, p.Kind, p.Key, owner); rerr != nil {
			rerr = fmt.Errorf("give back the claim of card post %s so it is tried again: %w", p.Key, rerr)
			return errors.Join(err, rerr)
		}
		return err
	}
	if p.CatchUp {
		th, err := p.Find(ctx)
		if err != nil {
			return nil, release(err)
		}
		if th != nil {
			return th, nil
		}
	}
	th, err := p.Post(ctx)
	if err != nil {
		return nil, release(err)
	}
	return th, nil
}

// CatchUpStore is what PostMissing reads and records (*store.DB).
type CatchUpStore interface {
	CardsCreatedSince(ctx context.Context, projectID int64, since time.Time) ([]store.KanbanCard, error)
	BoardColumns(ctx context.Context, boardID int64) ([]store.KanbanColumn, error)
	AddCardThread(ctx context.Context, cardID, surface, threadRef string) error
}

// PostMissing is a chat projection's catch-up for one project: each card
// created since then is handed to post with the place where returns for
// it ("": none there) and its column, and a post made is recorded as a
// thread of the card. post (through PostOnce) skips cards posted before.
// A failed post does not stop the others; their errors are joined.
func PostMissing(ctx context.Context, db CatchUpStore, projectID int64, since time.Time,
	where func(*store.KanbanCard) string,
	post func(ctx context.Context, place string, c *store.KanbanCard, col *store.KanbanColumn, cols []store.KanbanColumn) (*store.KanbanCardThread, error)) error {
	cards, err := db.CardsCreatedSince(ctx, projectID, since)
	if err != nil {
		return err
	}
	columns := map[int64][]store.KanbanColumn{} // by board: read once per pass
	var errs []error
	for i := range cards {
		c := &cards[i]
		place := where(c)
		if place == "" {
			continue
		}
		cols, ok := columns[c.BoardID]
		if !ok {
			if cols, err = db.BoardColumns(ctx, c.BoardID); err != nil {
				return err
			}
			columns[c.BoardID] = cols
		}
		k := slices.IndexFunc(cols, func(col store.KanbanColumn) bool { return col.ID == c.ColumnID })
		if k < 0 {
			continue
		}
		th, err := post(ctx, place, c, &cols[k], cols)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if th != nil {
			if err := db.AddCardThread(ctx, c.ID, th.Surface, th.ThreadRef); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
