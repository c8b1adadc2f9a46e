package emulator

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// maxRetiredTokens bounds how many old tokens are remembered as expired
// (answered 602); older ones are answered 601.
const maxRetiredTokens = 1024

// authState is the identity service: one live token at a time, like
// Marketo, which returns the same token until it expires.
type authState struct {
	token   string
	expiry  time.Time
	retired map[string]struct{}
	order   []string // retired tokens, oldest first
}

func (a *authState) init() {
	a.retired = make(map[string]struct{})
}

// retire moves the live token to the expired set.
func (a *authState) retire() {
	if a.token == "" {
		return
	}
	a.retired[a.token] = struct{}{}
	a.order = append(a.order, a.token)
	if len(a.order) > maxRetiredTokens {
		delete(a.retired, a.order[0])
		a.order = a.order[1:]
	}
	a.token = ""
}

// tokenLocked returns the live token, issuing a new one when there is none
// or it has expired.
func (e *Emulator) tokenLocked(now time.Time) (string, time.Time) {
	a := &e.auth
	if a.token != "" && !now.Before(a.expiry) {
		a.retire()
	}
	if a.token == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		h := hex.EncodeToString(b[:])
		a.token = h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32] + ":emu"
		a.expiry = now.Add(e.cfg.TokenTTL)
	}
	return a.token, a.expiry
}

// checkTokenLocked authenticates a call: "" when tok is the live token,
// else 601 (unknown or missing) or 602 (expired).
func (e *Emulator) checkTokenLocked(tok string, now time.Time) (code, msg string) {
	a := &e.auth
	switch {
	case tok == "":
		return "601", "Access token invalid"
	case tok == a.token:
		if !now.Before(a.expiry) {
			a.retire()
			return "602", "Access token expired"
		}
		if e.drawTokenExpiryLocked() {
			a.retire()
			return "602", "Access token expired"
		}
		return "", ""
	default:
		if _, ok := a.retired[tok]; ok {
			return "602", "Access token expired"
		}
		return "601", "Access token invalid"
	}
}

// ExpireTokens expires the live access token at once: calls that use it
// answer 602, and the identity endpoint issues a new one.
func (e *Emulator) ExpireTokens() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.auth.retire()
}

// tokenResponse is the identity endpoint's answer.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// oauthError is the identity endpoint's error body.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// serveIdentity answers GET and POST /identity/oauth/token with the
// parameters in the query string or a form body (client credentials may
// also come as HTTP basic auth). Identity calls are not counted against the
// API limits.
func (e *Emulator) serveIdentity(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.stats.identityCalls++
	e.mu.Unlock()
	writeJSON := func(status int, v any) {
		if status != http.StatusOK {
			e.mu.Lock()
			e.stats.rejected[strconv.Itoa(status)]++
			e.mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	if len(r.URL.RequestURI()) > MaxURIBytes {
		writeJSON(http.StatusRequestURITooLong, oauthError{"invalid_request", "Request-URI Too Large"})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeJSON(http.StatusMethodNotAllowed, oauthError{"invalid_request", "Method " + r.Method + " not allowed"})
		return
	}
	params := r.URL.Query()
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" && r.Body != nil {
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err != nil {
			writeJSON(http.StatusRequestEntityTooLarge, oauthError{"invalid_request", "Request body too large"})
			return
		}
		form, err := url.ParseQuery(string(data))
		if err != nil {
			writeJSON(http.StatusBadRequest, oauthError{"invalid_request", "Malformed form body"})
			return
		}
		for k, v := range form {
			params[k] = append(params[k], v...)
		}
	}
	id, secret := params.Get("client_id"), params.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok && id == "" && secret == "" {
		id, secret = u, p
	}
	switch gt := params.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		writeJSON(http.StatusBadRequest, oauthError{"invalid_request", "Missing grant type"})
		return
	default:
		writeJSON(http.StatusBadRequest, oauthError{"unsupported_grant_type", "Unsupported grant type: " + gt})
		return
	}
	if (e.cfg.ClientID != "" || e.cfg.ClientSecret != "") && (id != e.cfg.ClientID || secret != e.cfg.ClientSecret) {
		writeJSON(http.StatusUnauthorized, oauthError{"invalid_client", "Bad client credentials"})
		return
	}
	e.mu.Lock()
	now := e.now()
	tok, exp := e.tokenLocked(now)
	e.mu.Unlock()
	writeJSON(http.StatusOK, tokenResponse{
		AccessToken: tok,
		TokenType:   "bearer",
		ExpiresIn:   int64(exp.Sub(now) / time.Second),
		Scope:       "apis@emulator",
	})
}
