package marketo

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseEndpoint(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, want, errContains string
	}{
		{in: "https://123-ABC-456.mktorest.com/rest", want: "https://123-ABC-456.mktorest.com"},
		{in: "https://123-ABC-456.mktorest.com/rest/", want: "https://123-ABC-456.mktorest.com"},
		{in: "https://123-ABC-456.mktorest.com", want: "https://123-ABC-456.mktorest.com"},
		{in: "https://123-ABC-456.mktorest.com/", want: "https://123-ABC-456.mktorest.com"},
		{in: "  https://proxy.example.com/marketo/rest  ", want: "https://proxy.example.com/marketo"},
		{in: "http://127.0.0.1:8080/rest", want: "http://127.0.0.1:8080"},
		{in: "http://localhost:8080", want: "http://localhost:8080"},
		{in: "http://[::1]:9/rest", want: "http://[::1]:9"},
		{in: "", errContains: "endpoint is empty"},
		{in: "123-ABC-456.mktorest.com/rest", errContains: "needs a scheme and a host"},
		{in: "http://123-ABC-456.mktorest.com/rest", errContains: "must use https"},
		{in: "http://10.0.0.1/rest", errContains: "must use https"},
		{in: "ftp://x.example.com", errContains: `scheme "ftp"`},
		{in: "https://x.example.com/rest?access_token=1", errContains: "must not carry"},
		{in: "https://user:pw@x.example.com/rest", errContains: "must not carry"},
		{in: "https://x.example.com/identity", errContains: "ends in /identity"},
		{in: "https://x.example.com/bulk", errContains: "ends in /bulk"},
		{in: "https://x.example.com/rest/v1", errContains: "ends in /rest/v1"},
		{in: "https://x example.com", errContains: "not a URL"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			u, err := parseEndpoint(tc.in)
			if tc.errContains != "" {
				require.ErrorContains(t, err, tc.errContains)
				require.NotContains(t, err.Error(), "pw@", "the error must not repeat a password")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, u.String())
		})
	}
}

func TestNewClientValidates(t *testing.T) {
	t.Parallel()
	ok := Config{Endpoint: "https://x.mktorest.com/rest", ClientID: "id", ClientSecret: "secret"}
	cases := []struct {
		name        string
		mod         func(*Config)
		errContains string
	}{
		{"ok", func(*Config) {}, ""},
		{"no id", func(c *Config) { c.ClientID = " " }, "client id is empty"},
		{"no secret", func(c *Config) { c.ClientSecret = "" }, "client secret is empty"},
		{"bad endpoint", func(c *Config) { c.Endpoint = "http://x.mktorest.com" }, "must use https"},
		{"negative rate", func(c *Config) { c.CallsPer20s = -1 }, "calls per 20s is -1"},
		{"negative concurrency", func(c *Config) { c.MaxConcurrency = -3 }, "max concurrency is -3"},
		{"known import rate", func(c *Config) { c.ImportRate = 1500 }, ""},
		{"negative import rate", func(c *Config) { c.ImportRate = -1 }, "import rate is -1 rows a second"},
		{"NaN import rate", func(c *Config) { c.ImportRate = math.NaN() }, "import rate is NaN"},
		{"infinite import rate", func(c *Config) { c.ImportRate = math.Inf(1) }, "import rate is +Inf"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := ok
			tc.mod(&cfg)
			c, err := NewClient(cfg)
			if tc.errContains != "" {
				require.ErrorContains(t, err, tc.errContains)
				return
			}
			require.NoError(t, err)
			require.Equal(t, CallsPer20sDefault, c.cfg.CallsPer20s)
			require.Equal(t, MaxConcurrencyDefault, c.cfg.MaxConcurrency)
			require.Equal(t, DailyQuotaDefault, c.cfg.DailyQuota)
			require.Equal(t, "https://x.mktorest.com", c.base.String())
			require.Equal(t, cfg.ImportRate, c.ImportRate())
		})
	}
}

func TestInstanceOf(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, want, errContains string
	}{
		{in: "https://123-ABC-456.mktorest.com/rest", want: "123-abc-456.mktorest.com"},
		{in: "https://123-abc-456.mktorest.com/", want: "123-abc-456.mktorest.com"},
		{in: "https://proxy.example.com:8443/marketo/rest", want: "proxy.example.com:8443"},
		{in: "http://127.0.0.1:8080/rest", want: "127.0.0.1:8080"},
		{in: "", errContains: "endpoint is empty"},
		{in: "http://123-ABC-456.mktorest.com/rest", errContains: "must use https"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := InstanceOf(tc.in)
			if tc.errContains != "" {
				require.ErrorContains(t, err, tc.errContains)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
