package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func identity(t *testing.T, v *env, method, query, form string, basic bool) (int, map[string]any) {
	t.Helper()
	var body io.Reader
	if form != "" {
		body = strings.NewReader(form)
	}
	req, err := http.NewRequest(method, v.ts.URL+"/identity/oauth/token?"+query, body)
	require.NoError(t, err)
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if basic {
		req.SetBasicAuth("id", "secret")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func TestIdentityVariants(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	creds := "grant_type=client_credentials&client_id=id&client_secret=secret"
	tests := []struct {
		name, method, query, form string
		basic                     bool
		status                    int
		errCode                   string
	}{
		{name: "GET query", method: "GET", query: creds, status: 200},
		{name: "POST query", method: "POST", query: creds, status: 200},
		{name: "POST form", method: "POST", form: creds, status: 200},
		{name: "basic auth", method: "POST", form: "grant_type=client_credentials", basic: true, status: 200},
		{name: "bad secret", method: "GET", query: "grant_type=client_credentials&client_id=id&client_secret=nope", status: 401, errCode: "invalid_client"},
		{name: "no grant type", method: "GET", query: "client_id=id&client_secret=secret", status: 400, errCode: "invalid_request"},
		{name: "other grant type", method: "GET", query: "grant_type=password&client_id=id&client_secret=secret", status: 400, errCode: "unsupported_grant_type"},
		{name: "PUT", method: "PUT", query: creds, status: 405, errCode: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := identity(t, v, tt.method, tt.query, tt.form, tt.basic)
			require.Equal(t, tt.status, status, "%v", body)
			if tt.errCode != "" {
				require.Equal(t, tt.errCode, body["error"])
				return
			}
			// The same token is returned until it expires.
			require.Equal(t, v.token, body["access_token"])
			require.Equal(t, "bearer", body["token_type"])
			require.EqualValues(t, 3600, body["expires_in"])
		})
	}
}

func TestIdentityAnyCredentialsWhenUnconfigured(t *testing.T) {
	t.Parallel()
	em := New(Config{ClientID: "", ClientSecret: ""})
	rec := httptestRecorder(em, "GET", "/identity/oauth/token?grant_type=client_credentials&client_id=x&client_secret=y")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
}

func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{TokenTTL: time.Minute})
	list := v.em.CreateStaticList("L", v.em.CreateFolder("F"))
	path := "/rest/v1/lists/" + itoa(list) + ".json"

	ok(t, v.get(path, nil))

	// Remaining lifetime is reported, and the token is reused.
	v.clock.Advance(20 * time.Second)
	status, body := identity(t, v, "GET", "grant_type=client_credentials&client_id=id&client_secret=secret", "", false)
	require.Equal(t, 200, status)
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	golden(t, "identity_token.json", raw)
	require.Equal(t, v.token, body["access_token"])
	require.EqualValues(t, 40, body["expires_in"])

	// Expiry: 602, then a new token works and the old one stays 602.
	v.clock.Advance(40 * time.Second)
	failed(t, v.get(path, nil), "602")
	old := v.token
	v.token = v.fetchToken()
	require.NotEqual(t, old, v.token)
	ok(t, v.get(path, nil))
	failed(t, v.do(request{path: path, token: &old}), "602")

	// Forced expiry.
	v.em.ExpireTokens()
	failed(t, v.get(path, nil), "602")
	v.token = v.fetchToken()
	ok(t, v.get(path, nil))

	// Missing, malformed or unknown tokens are 601.
	r := v.do(request{path: path, token: strp("")})
	failed(t, r, "601")
	golden(t, "token_invalid.json", r.Raw)
	failed(t, v.do(request{path: path, token: strp("nope")}), "601")
	failed(t, v.do(request{path: path, token: strp(""), header: http.Header{"Authorization": {"Basic abc"}}}), "601")

	// The deprecated access_token query parameter is accepted.
	ok(t, v.do(request{path: path, token: strp(""), query: url.Values{"access_token": {v.token}}}))

	st := v.em.Stats()
	require.EqualValues(t, 3, st.Rejected["602"])
	require.EqualValues(t, 3, st.Rejected["601"])
	require.EqualValues(t, 4, st.IdentityCalls)
}
