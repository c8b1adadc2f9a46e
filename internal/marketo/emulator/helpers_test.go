package emulator

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 2, 15, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one emulator served by httptest, with a fake clock and a token.
type env struct {
	t     *testing.T
	em    *Emulator
	ts    *httptest.Server
	clock *fakeClock
	token string
}

// newEnv starts an emulator with cfg (credentials "id"/"secret" and a fake
// clock unless set) and fetches a token.
func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	clock := newFakeClock()
	if cfg.ClientID == "" {
		cfg.ClientID, cfg.ClientSecret = "id", "secret"
	}
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	em := New(cfg)
	ts := httptest.NewServer(em)
	t.Cleanup(func() {
		ts.Close()
		_ = em.Close()
	})
	v := &env{t: t, em: em, ts: ts, clock: clock}
	v.token = v.fetchToken()
	return v
}

func (v *env) fetchToken() string {
	v.t.Helper()
	resp, err := http.Get(v.ts.URL + "/identity/oauth/token?grant_type=client_credentials&client_id=id&client_secret=secret")
	require.NoError(v.t, err)
	defer resp.Body.Close()
	require.Equal(v.t, http.StatusOK, resp.StatusCode)
	var tok tokenResponse
	require.NoError(v.t, json.NewDecoder(resp.Body).Decode(&tok))
	return tok.AccessToken
}

// apiResp is a decoded Marketo envelope.
type apiResp struct {
	Status        int             `json:"-"`
	Raw           []byte          `json:"-"`
	RequestID     string          `json:"requestId"`
	Success       bool            `json:"success"`
	Errors        []apiError      `json:"errors"`
	Warnings      json.RawMessage `json:"warnings"`
	Result        json.RawMessage `json:"result"`
	MoreResult    bool            `json:"moreResult"`
	NextPageToken string          `json:"nextPageToken"`
}

// code returns the first error code, or "".
func (r apiResp) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	return r.Errors[0].Code
}

// results decodes the result array into a slice of maps.
func (r apiResp) results(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	if len(r.Result) > 0 {
		require.NoError(t, json.Unmarshal(r.Result, &out))
	}
	return out
}

// request is one call to the emulator.
type request struct {
	method string
	path   string
	query  url.Values
	form   url.Values // sent as a form body
	json   any        // sent as a JSON body
	body   []byte     // sent as is, with ctype
	ctype  string
	token  *string // nil: the env's token
	header http.Header
}

func (v *env) do(rq request) apiResp {
	v.t.Helper()
	u := v.ts.URL + rq.path
	if len(rq.query) > 0 {
		u += "?" + rq.query.Encode()
	}
	var body io.Reader
	ctype := rq.ctype
	switch {
	case rq.form != nil:
		body = strings.NewReader(rq.form.Encode())
		ctype = "application/x-www-form-urlencoded"
	case rq.json != nil:
		b, err := json.Marshal(rq.json)
		require.NoError(v.t, err)
		body = bytes.NewReader(b)
		ctype = "application/json"
	case rq.body != nil:
		body = bytes.NewReader(rq.body)
	}
	method := rq.method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequest(method, u, body)
	require.NoError(v.t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	tok := v.token
	if rq.token != nil {
		tok = *rq.token
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, vs := range rq.header {
		req.Header[k] = vs
	}
	resp, err := v.ts.Client().Do(req)
	require.NoError(v.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(v.t, err)
	out := apiResp{Status: resp.StatusCode, Raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(v.t, json.Unmarshal(raw, &out), "body: %s", raw)
	}
	return out
}

func (v *env) get(path string, query url.Values) apiResp {
	v.t.Helper()
	return v.do(request{path: path, query: query})
}

// ok asserts a successful envelope.
func ok(t *testing.T, r apiResp) apiResp {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, "body: %s", r.Raw)
	require.True(t, r.Success, "body: %s", r.Raw)
	return r
}

// failed asserts a success:false envelope with code.
func failed(t *testing.T, r apiResp, code string) {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, "body: %s", r.Raw)
	require.False(t, r.Success, "body: %s", r.Raw)
	require.Equal(t, code, r.code(), "body: %s", r.Raw)
}

// multipartBody builds a bulk import body: the file part plus fields.
func multipartBody(t *testing.T, file string, fields map[string]string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		require.NoError(t, mw.WriteField(k, v))
	}
	fw, err := mw.CreateFormFile("file", "leads.csv")
	require.NoError(t, err)
	_, err = fw.Write([]byte(file))
	require.NoError(t, err)
	require.NoError(t, mw.Close())
	return buf.Bytes(), mw.FormDataContentType()
}

// tokenPattern matches access tokens, which are random.
var tokenPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:emu`)

// golden compares a response body (JSON re-indented, tokens masked) with
// testdata/golden/<name>, rewriting it under -update.
func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	got := body
	var buf bytes.Buffer
	if json.Indent(&buf, body, "", "  ") == nil {
		got = append(buf.Bytes(), '\n')
	}
	got = tokenPattern.ReplaceAll(got, []byte("<token>"))
	path := filepath.Join("testdata", "golden", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing; run go test -update")
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
	}
}

func strp(s string) *string { return &s }
