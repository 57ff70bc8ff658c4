package openai

import (
	"context"
	"net/http"
	"time"
)

// SetSleep replaces the backoff wait so tests observe the requested
// durations without sleeping.
func SetSleep(c *Client, f func(ctx context.Context, d time.Duration) error) { c.sleep = f }

// RetryHint exposes retryHint for table tests.
func RetryHint(h http.Header, now time.Time) time.Duration { return retryHint(h, now) }

// Sleep is the production backoff wait, for tests that watch it begin.
func Sleep(ctx context.Context, d time.Duration) error { return sleepCtx(ctx, d) }
