package azuread

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// The refresh rule (see WithAzureAD): a token is refreshed when less than
// refreshMargin, or half of its lifetime, remains; it is still sent after a
// failed refresh while more than usableMargin, or a quarter of its lifetime,
// remains, which leaves the request time to reach the receiver.
const (
	refreshMargin = 5 * time.Minute
	usableMargin  = 30 * time.Second
	// maxTokenWait bounds getting a token when the request's context has no
	// deadline (the exporter always sets one).
	maxTokenWait = time.Minute
)

// cachedToken is a token and the times that rule its use.
type cachedToken struct {
	token     string
	expiresOn time.Time
	// refreshAt is when a new token is fetched; usableUntil is the last
	// moment the token is sent.
	refreshAt, usableUntil time.Time
}

// newCachedToken applies the refresh rule to a token obtained at now.
func newCachedToken(t azcore.AccessToken, now time.Time) cachedToken {
	life := t.ExpiresOn.Sub(now)
	c := cachedToken{
		token:       t.Token,
		expiresOn:   t.ExpiresOn,
		refreshAt:   t.ExpiresOn.Add(-min(refreshMargin, life/2)),
		usableUntil: t.ExpiresOn.Add(-min(usableMargin, life/4)),
	}
	// The authority may ask for an earlier refresh (refresh_in).
	if !t.RefreshOn.IsZero() && t.RefreshOn.After(now) && t.RefreshOn.Before(c.refreshAt) {
		c.refreshAt = t.RefreshOn
	}
	return c
}

// tokenCache hands out the current token, fetching a new one when the
// refresh point has passed. One fetch runs at a time; concurrent callers
// wait for it or for their own context.
type tokenCache struct {
	cred    azcore.TokenCredential
	opts    policy.TokenRequestOptions
	now     func() time.Time
	what    string          // the credential, for errors
	secrets func() []string // values to keep out of errors

	mu       sync.Mutex
	current  cachedToken
	inflight *fetch

	// onWait, when set (in tests), is called as a caller starts waiting
	// for another caller's token request.
	onWait func()
}

// fetch is one token request in flight; done is closed when it ends.
type fetch struct {
	done chan struct{}
	tok  cachedToken
	err  error
}

func newTokenCache(cred azcore.TokenCredential, scope string, now func() time.Time, what string, secrets func() []string) *tokenCache {
	return &tokenCache{
		cred:    cred,
		opts:    policy.TokenRequestOptions{Scopes: []string{scope}},
		now:     now,
		what:    what,
		secrets: secrets,
	}
}

// token returns a token to send now, fetching one if needed, within ctx.
func (c *tokenCache) token(ctx context.Context) (string, error) {
	for {
		c.mu.Lock()
		cur := c.current
		now := c.now()
		if cur.token != "" && now.Before(cur.refreshAt) {
			c.mu.Unlock()
			return cur.token, nil
		}
		// usable: a refresh is due, but the token we have may still be sent.
		usable := cur.token != "" && now.Before(cur.usableUntil)
		f := c.inflight
		owner := f == nil
		if owner {
			f = &fetch{done: make(chan struct{})}
			c.inflight = f
		}
		c.mu.Unlock()

		if usable {
			return c.refreshAhead(ctx, f, owner, cur.token), nil
		}
		if owner {
			c.run(ctx, f)
		} else {
			if c.onWait != nil {
				c.onWait()
			}
			select {
			case <-f.done:
			case <-ctx.Done():
				return "", c.fail(ctx.Err())
			}
		}
		switch {
		case f.err == nil:
			return f.tok.token, nil
		case !owner && ctx.Err() == nil && isContextError(f.err):
			// Another caller's context ended its fetch, not ours: fetch
			// again with our own.
			continue
		}
		return "", f.err
	}
}

// refreshAhead returns the token to send while a refresh is due and tok,
// the current token, is still usable. The refresh f runs detached from the
// request (owner starts it), bounded by maxTokenWait: an authority that
// does not answer must not spend the export's timeout, and then fail the
// export although tok could have been sent. The owner waits for the new
// token while that leaves its request half of its time, so that a
// responsive authority's token is used at once; other callers send tok
// rather than queue behind the refresh.
func (c *tokenCache) refreshAhead(ctx context.Context, f *fetch, owner bool, tok string) string {
	if !owner {
		return tok
	}
	// The refresh keeps the request's values (tracing), not its end.
	go c.run(context.WithoutCancel(ctx), f)
	var patience <-chan time.Time
	if deadline, ok := ctx.Deadline(); ok {
		timer := time.NewTimer(time.Until(deadline) / 2)
		defer timer.Stop()
		patience = timer.C
	}
	select {
	case <-f.done:
		if f.err == nil {
			return f.tok.token
		}
		// The refresh failed: send tok, and let the next request try
		// again.
	case <-patience:
	case <-ctx.Done():
	}
	return tok
}

// run fetches a token with ctx and publishes the outcome in f.
func (c *tokenCache) run(ctx context.Context, f *fetch) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, maxTokenWait)
		defer cancel()
	}
	t, err := c.cred.GetToken(ctx, c.opts)
	now := c.now()
	switch {
	case err != nil && ctx.Err() != nil:
		// The SDK words a deadline in its own text; say it plainly and
		// keep errors.Is(err, context.DeadlineExceeded) working.
		f.err = c.fail(ctx.Err())
	case err != nil:
		f.err = c.fail(err)
	case t.Token == "":
		f.err = c.fail(errors.New("the authority answered without a token"))
	case !t.ExpiresOn.After(now):
		f.err = c.fail(errors.New("the authority issued a token that has already expired: is this machine's clock right?"))
	default:
		f.tok = newCachedToken(t, now)
	}
	c.mu.Lock()
	if f.err == nil {
		c.current = f.tok
	}
	c.inflight = nil
	c.mu.Unlock()
	close(f.done)
}

// fail turns err into an error that is safe to log.
func (c *tokenCache) fail(err error) error {
	return newTokenError(c.what, err, c.secrets)
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
