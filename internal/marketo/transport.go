package marketo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// maxResponseBytes bounds a JSON response read into memory (a page of 300
// leads with a few fields is far below it).
const maxResponseBytes = 64 << 20

// request is one Marketo API call, sent again as is on a retry.
type request struct {
	method string
	// path is below the base URL, such as "/rest/v1/leads.json".
	path string
	// label names the endpoint for counting: method and path template.
	label string
	query url.Values
	// body and contentType, when body is not nil. The body is the
	// concatenation of its pieces, sent without copying them into one (an
	// import file between its multipart framing); each attempt reads them
	// afresh.
	body        [][]byte
	contentType string
	// longGet lets a GET whose URI would pass MaxURIBytes go as
	// POST ?_method=GET with the query string as a form body.
	longGet bool
	// retry613 makes 613 retryable (a bulk status read).
	retry613 bool
	// download, when set, receives a successful response that is not a JSON
	// envelope (a CSV file) instead of parsing it; its error is retried.
	download func(resp *http.Response) error
	// header is extra request headers (such as Range), read at each attempt.
	header func() http.Header
}

func jsonRequest(method, path, label string, body any) (*request, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encoding %s body: %w", label, err)
	}
	return &request{method: method, path: path, label: label, body: [][]byte{b}, contentType: "application/json"}, nil
}

// envelope is Marketo's response wrapper.
type envelope struct {
	RequestID     string          `json:"requestId"`
	Success       bool            `json:"success"`
	Result        json.RawMessage `json:"result"`
	Errors        []codeMessage   `json:"errors"`
	Warnings      json.RawMessage `json:"warnings"`
	MoreResult    bool            `json:"moreResult"`
	NextPageToken string          `json:"nextPageToken"`
}

// codeMessage is an entry of errors[], warnings[] or reasons[]. Codes are
// strings in Marketo's docs but numbers in some answers; both are accepted.
type codeMessage struct {
	Code    flexString `json:"code"`
	Message string     `json:"message"`
}

// flexString decodes a JSON string or number into a string.
type flexString string

// UnmarshalJSON accepts a string, a number or null.
func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		*f = ""
		return nil
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("code %s is neither a string nor a number", b)
	}
	*f = flexString(n.String())
	return nil
}

// flexInt decodes a JSON number or numeric string into an int64.
type flexInt int64

// UnmarshalJSON accepts a number, a numeric string or null.
func (f *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" || string(b) == `""` {
		*f = 0
		return nil
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(s)
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("%s is not an integer", b)
	}
	*f = flexInt(n)
	return nil
}

// decodeEnvelope parses a response body and returns its error, if any.
func decodeEnvelope(label string, body []byte) (*envelope, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		msg := string(body)
		if len(msg) > 120 {
			msg = msg[:120] + "…"
		}
		return nil, &APIError{Code: codeInvalidResponse, Message: fmt.Sprintf("response is not a Marketo envelope (%v): %q", err, msg), Endpoint: label}
	}
	if !env.Success {
		if len(env.Errors) == 0 {
			return nil, &APIError{Code: codeInvalidResponse, Message: "success is false but errors is empty", Endpoint: label}
		}
		e := env.Errors[0]
		return nil, &APIError{Code: string(e.Code), Message: e.Message, Endpoint: label}
	}
	return &env, nil
}

// codeInvalidResponse marks an answer that is not a Marketo envelope (a
// truncated body, a proxy's error page); it is retried.
const codeInvalidResponse = "invalid_response"

// transportError is a call that got no response (connection refused or
// reset, a timeout); it is retried.
type transportError struct {
	label string
	err   error
}

func (e *transportError) Error() string { return fmt.Sprintf("marketo %s: %v", e.label, e.err) }
func (e *transportError) Unwrap() error { return e.err }

// call sends r, retrying transient failures with exponential backoff and
// jitter and refreshing the token on 601/602, and returns the successful
// envelope (nil for a download).
func (c *Client) call(ctx context.Context, r *request) (*envelope, error) {
	authRefreshes := 0
	for attempt := 1; ; attempt++ {
		env, tok, err := c.attempt(ctx, r)
		if err == nil {
			return env, nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		retry := false
		var pause time.Duration
		var ae *APIError
		var te *transportError
		switch {
		case errors.As(err, &ae):
			switch ae.Class() {
			case ClassAuth:
				// One refresh answers an expired or invalid token; a second
				// one covers a token that expired while the first retry was
				// in flight. More means the credentials are the problem.
				if authRefreshes < 2 {
					authRefreshes++
					c.auth.invalidate(tok)
					attempt--
					continue
				}
				return nil, fmt.Errorf("%w: %w", ErrAuth, err)
			case ClassRetryable:
				retry = true
				if ae.Code == "606" || ae.Code == "615" {
					pause = c.backoff(attempt)
				}
			case ClassPermanent:
				retry = r.retry613 && ae.Code == "613"
			}
		case errors.As(err, &te):
			retry = true
		}
		if ae != nil && ae.Class() == ClassQuota {
			return nil, fmt.Errorf("%w: %w", ErrDailyQuota, err)
		}
		if !retry {
			return nil, err
		}
		if c.cfg.MaxAttempts > 0 && attempt >= c.cfg.MaxAttempts {
			return nil, fmt.Errorf("giving up after %d attempts: %w", attempt, err)
		}
		d := c.backoff(attempt)
		if pause > 0 {
			// Another integration is spending the instance's budget: hold
			// every call of this client back, not only this one.
			c.lim.pause(pause)
		}
		c.log.Debug("retrying marketo call", zap.String("endpoint", r.label), zap.Int("attempt", attempt), zap.Duration("backoff", d), zap.Error(err))
		if serr := sleepCtx(ctx, d); serr != nil {
			return nil, fmt.Errorf("%w (while waiting to retry after: %v)", serr, err)
		}
	}
}

// backoff returns the delay before retry number attempt (1-based): an
// exponential delay capped at BackoffMax, with equal jitter.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.BackoffBase
	for i := 1; i < attempt && d < c.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, c.cfg.BackoffMax)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// attempt sends r once. It returns the token it used, so that a 601/602
// invalidates that token and no newer one.
func (c *Client) attempt(ctx context.Context, r *request) (*envelope, string, error) {
	tok, err := c.auth.token(ctx)
	if err != nil {
		return nil, "", err
	}
	if !c.quota.take(c.now()) {
		return nil, tok, fmt.Errorf("%s: %w (the client's DailyQuota of %d calls is spent)", r.label, ErrDailyQuota, c.cfg.DailyQuota)
	}
	req, err := c.newHTTPRequest(ctx, r)
	if err != nil {
		return nil, tok, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	release, err := c.lim.acquire(ctx)
	if err != nil {
		return nil, tok, err
	}
	defer release()
	start := c.now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.record(ctx, r.label, "transport", true)
		if ctx.Err() != nil {
			return nil, tok, ctx.Err()
		}
		return nil, tok, &transportError{label: r.label, err: err}
	}
	defer resp.Body.Close()
	env, err := c.readResponse(r, resp)
	code := "ok"
	var ae *APIError
	var te *transportError
	switch {
	case errors.As(err, &ae):
		code = ae.Code
	case errors.As(err, &te):
		code = "transport"
	case err != nil:
		code = "download"
	}
	c.record(ctx, r.label, code, true)
	if c.log.Core().Enabled(zap.DebugLevel) {
		c.log.Debug("marketo call", zap.String("endpoint", r.label), zap.String("code", code), zap.Duration("took", c.now().Sub(start)))
	}
	if err != nil && ae == nil && te == nil {
		err = &transportError{label: r.label, err: err}
	}
	return env, tok, err
}

// record counts a call into the context's counters (when it is a budget
// call) and reports it to OnCall.
func (c *Client) record(ctx context.Context, label, code string, budget bool) {
	if budget {
		countCall(ctx, label, code)
	}
	if c.onCall != nil {
		c.onCall(label, code)
	}
}

func (c *Client) newHTTPRequest(ctx context.Context, r *request) (*http.Request, error) {
	u := *c.base
	u.Path = c.base.Path + r.path
	method := r.method
	body := r.body
	contentType := r.contentType
	q := r.query.Encode()
	if q != "" {
		u.RawQuery = q
	}
	if method == http.MethodGet && r.longGet && len(u.String()) > c.cfg.MaxURIBytes {
		// Marketo answers 414 past 8 KB; the documented workaround is a POST
		// that carries the query string as a form body.
		method = http.MethodPost
		u.RawQuery = "_method=GET"
		body = [][]byte{[]byte(q)}
		contentType = "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("building %s request: %w", r.label, err)
	}
	if body != nil {
		setBody(req, body)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if r.header != nil {
		for k, vs := range r.header() {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
	}
	return req, nil
}

// setBody sets the request's body to the concatenation of pieces, with its
// exact Content-Length, and GetBody to read it again from the start (a
// redirect or a retried connection sends it anew).
func setBody(req *http.Request, pieces [][]byte) {
	n := 0
	for _, p := range pieces {
		n += len(p)
	}
	if n == 0 {
		req.Body, req.GetBody = http.NoBody, func() (io.ReadCloser, error) { return http.NoBody, nil }
		return
	}
	open := func() (io.ReadCloser, error) {
		rs := make([]io.Reader, len(pieces))
		for i, p := range pieces {
			rs[i] = bytes.NewReader(p)
		}
		return io.NopCloser(io.MultiReader(rs...)), nil
	}
	req.ContentLength = int64(n)
	req.Body, _ = open()
	req.GetBody = open
}

// readResponse turns a response into an envelope or an error.
func (c *Client) readResponse(r *request, resp *http.Response) (*envelope, error) {
	isJSON := false
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err == nil {
		isJSON = strings.HasSuffix(mt, "json")
	}
	ok := resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPartialContent
	if ok && r.download != nil && !isJSON {
		return nil, r.download(resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, &transportError{label: r.label, err: fmt.Errorf("reading response: %w", err)}
	}
	if !ok {
		// An error page, or a JSON envelope with a Marketo code.
		if isJSON {
			if _, err := decodeEnvelope(r.label, body); err != nil {
				var ae *APIError
				if errors.As(err, &ae) && ae.Code != codeInvalidResponse {
					ae.HTTPStatus = resp.StatusCode
					if resp.StatusCode >= 500 {
						ae.Code = "http_" + strconv.Itoa(resp.StatusCode)
					}
					return nil, ae
				}
			}
		}
		return nil, httpError(r.label, resp.StatusCode, body)
	}
	return decodeEnvelope(r.label, body)
}
