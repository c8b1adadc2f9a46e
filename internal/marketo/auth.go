package marketo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

const identityLabel = "POST /identity/oauth/token"

// tokenSource holds the one access token that every caller of a Client
// shares. It fetches a new one before the current one expires and when
// Marketo refuses it (601/602); concurrent callers that need a new token
// wait for a single fetch.
type tokenSource struct {
	c *Client

	mu       sync.Mutex
	tok      string
	useUntil time.Time
	flight   *tokenFlight
}

type tokenFlight struct {
	done chan struct{}
	tok  string
	err  error
}

// token returns a token that is valid for a while yet.
func (t *tokenSource) token(ctx context.Context) (string, error) {
	for {
		t.mu.Lock()
		if t.tok != "" && t.c.now().Before(t.useUntil) {
			tok := t.tok
			t.mu.Unlock()
			return tok, nil
		}
		if f := t.flight; f != nil {
			t.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return "", ctx.Err()
			}
			if f.err == nil {
				return f.tok, nil
			}
			if ctx.Err() == nil && (errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) {
				continue // the fetching caller gave up, not this one
			}
			return "", f.err
		}
		f := &tokenFlight{done: make(chan struct{})}
		t.flight = f
		prev := t.tok
		t.mu.Unlock()

		tok, ttl, err := t.fetch(ctx)

		t.mu.Lock()
		if err == nil {
			now := t.c.now()
			margin := min(t.c.cfg.TokenRefreshMargin, ttl/4)
			if tok == prev {
				// Marketo hands out the same token until it expires: use it
				// to the end instead of asking again on every call.
				margin = 0
			}
			t.tok = tok
			t.useUntil = now.Add(ttl - margin)
			if ttl <= 0 {
				t.useUntil = now.Add(time.Second)
			}
		}
		t.flight = nil
		t.mu.Unlock()
		f.tok, f.err = tok, err
		close(f.done)
		return tok, err
	}
}

// invalidate forgets tok after Marketo refused it, unless a newer token has
// replaced it already.
func (t *tokenSource) invalidate(tok string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok == tok {
		t.tok = ""
	}
}

type tokenResponse struct {
	AccessToken      string        `json:"access_token"`
	TokenType        string        `json:"token_type"`
	ExpiresIn        flexInt       `json:"expires_in"`
	Error            string        `json:"error"`
	ErrorDescription string        `json:"error_description"`
	Errors           []codeMessage `json:"errors"`
}

// fetch asks the Identity endpoint for a token. The credentials travel in a
// form body, not the URL, so that no proxy log records them.
func (t *tokenSource) fetch(ctx context.Context) (string, time.Duration, error) {
	c := t.c
	u := *c.base
	u.Path = c.base.Path + "/identity/oauth/token"
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.cfg.ClientID},
		"client_secret": {c.cfg.ClientSecret},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, fmt.Errorf("building token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		c.record(ctx, identityLabel, "transport", false)
		if ctx.Err() != nil {
			return "", 0, ctx.Err()
		}
		return "", 0, &transportError{label: identityLabel, err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		c.record(ctx, identityLabel, "transport", false)
		return "", 0, &transportError{label: identityLabel, err: fmt.Errorf("reading token response: %w", err)}
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		c.record(ctx, identityLabel, fmt.Sprintf("http_%d", resp.StatusCode), false)
		var tr tokenResponse
		_ = json.Unmarshal(body, &tr) // the body's shape is not documented
		detail := strings.TrimSpace(tr.Error + " " + tr.ErrorDescription)
		if detail == "" {
			detail = "no detail"
		}
		return "", 0, fmt.Errorf("requesting an access token: HTTP %d (%s): %w", resp.StatusCode, detail, ErrAuth)
	}
	if resp.StatusCode != http.StatusOK {
		ae := httpError(identityLabel, resp.StatusCode, body)
		c.record(ctx, identityLabel, ae.Code, false)
		return "", 0, ae
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		c.record(ctx, identityLabel, codeInvalidResponse, false)
		return "", 0, &APIError{Code: codeInvalidResponse, Message: "token response is not JSON: " + err.Error(), Endpoint: identityLabel}
	}
	if tr.AccessToken == "" {
		if len(tr.Errors) > 0 {
			ae := &APIError{Code: string(tr.Errors[0].Code), Message: tr.Errors[0].Message, Endpoint: identityLabel}
			c.record(ctx, identityLabel, ae.Code, false)
			if ae.Class() == ClassAuth {
				return "", 0, fmt.Errorf("requesting an access token: %w: %w", ErrAuth, ae)
			}
			return "", 0, ae
		}
		c.record(ctx, identityLabel, "http_200", false)
		if tr.Error != "" {
			return "", 0, fmt.Errorf("requesting an access token: %s %s: %w", tr.Error, tr.ErrorDescription, ErrAuth)
		}
		return "", 0, &APIError{Code: codeInvalidResponse, Message: "token response carries no access_token", Endpoint: identityLabel}
	}
	c.record(ctx, identityLabel, "ok", false)
	return tr.AccessToken, time.Duration(tr.ExpiresIn) * time.Second, nil
}

// Ping checks that the endpoint is a Marketo instance that accepts the
// client's credentials, by fetching an access token (or reusing the one the
// client holds). Identity calls count against neither the rate limit nor the
// daily quota. It makes a single attempt, so that a wrong endpoint fails at
// once rather than after the retries a transient failure gets; refused
// credentials give an error wrapping [ErrAuth].
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.auth.token(ctx)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil || errors.Is(err, ErrAuth):
		return fmt.Errorf("reaching marketo at %s: %w", redactURL(c.base), err)
	}
	return fmt.Errorf("reaching marketo at %s (is it the REST endpoint shown in Admin > Web Services?): %w", redactURL(c.base), err)
}
