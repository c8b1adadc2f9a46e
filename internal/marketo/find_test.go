package marketo_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/marketo"
)

// TestPing: Ping fetches a token and nothing else, so it spends none of the
// API budget; bad credentials and wrong endpoints give clear errors.
func TestPing(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // nothing listens at its address any more

	tests := []struct {
		name    string
		client  func(c *marketo.Config, ts string)
		errIs   error
		errHas  []string
		idCalls int64
	}{
		{name: "ok", idCalls: 1},
		{
			name:    "bad secret",
			client:  func(c *marketo.Config, _ string) { c.ClientSecret = "wrong" },
			errIs:   marketo.ErrAuth,
			errHas:  []string{"HTTP 401", "check the client id and client secret"},
			idCalls: 1,
		},
		{
			name:    "bad client id",
			client:  func(c *marketo.Config, _ string) { c.ClientID = "nobody" },
			errIs:   marketo.ErrAuth,
			idCalls: 1,
		},
		{
			name:   "wrong path",
			client: func(c *marketo.Config, ts string) { c.Endpoint = ts + "/nowhere/rest" },
			errHas: []string{"/nowhere", "404", "REST endpoint shown in Admin > Web Services"},
		},
		{
			name:   "nothing listening",
			client: func(c *marketo.Config, _ string) { c.Endpoint = closed.URL + "/rest" },
			errHas: []string{closed.URL, "connection refused", "REST endpoint shown in Admin > Web Services"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var ts string
			b := setup(t, options{client: func(c *marketo.Config) {
				ts = c.Endpoint[:len(c.Endpoint)-len("/rest")]
				if tt.client != nil {
					tt.client(c, ts)
				}
			}})
			counter := &marketo.CallCounter{}
			err := b.c.Ping(marketo.WithCallCounter(t.Context(), counter))
			if tt.errIs == nil && tt.errHas == nil {
				require.NoError(t, err)
				require.NoError(t, b.c.Ping(t.Context()), "a second ping reuses the token")
			} else {
				require.Error(t, err)
				if tt.errIs != nil {
					require.ErrorIs(t, err, tt.errIs)
				}
				for _, s := range tt.errHas {
					require.ErrorContains(t, err, s)
				}
				require.NotContains(t, err.Error(), "secret=", "the credentials stay out of the error")
			}
			st := b.em.Stats()
			require.Equal(t, tt.idCalls, st.IdentityCalls, "one token fetch, no retries")
			require.Zero(t, st.CallsTotal, "Ping spends no API call")
			require.Zero(t, st.DailyCalls)
			require.Zero(t, counter.Total())
		})
	}
}

// TestFindList: every resolution outcome, read-only: FindList never creates
// a list, whatever it finds.
func TestFindList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// ref is built once the emulator holds "Trial users" (id list) in
		// folder "Audiences" (id folder).
		ref    func(list int64) marketo.ListRef
		want   func(list, folder int64) marketo.List
		ok     bool
		errIs  error
		errHas []string
	}{
		{
			name: "by id present",
			ref:  func(list int64) marketo.ListRef { return marketo.ListRef{ID: list} },
			want: func(list, folder int64) marketo.List {
				return marketo.List{ID: list, Name: "Trial users", FolderID: folder}
			},
			ok: true,
		},
		{
			name: "by id absent",
			ref:  func(int64) marketo.ListRef { return marketo.ListRef{ID: 987654} },
			want: func(int64, int64) marketo.List { return marketo.List{} },
		},
		{
			name: "by name present",
			ref:  func(int64) marketo.ListRef { return marketo.ListRef{Name: " Trial users ", Folder: "No such folder"} },
			want: func(list, folder int64) marketo.List {
				return marketo.List{ID: list, Name: "Trial users", FolderID: folder}
			},
			ok: true,
		},
		{
			name: "by name absent, folder present",
			ref:  func(int64) marketo.ListRef { return marketo.ListRef{Name: "Paying, EU", Folder: "Audiences"} },
			want: func(_, folder int64) marketo.List { return marketo.List{Name: "Paying, EU", FolderID: folder} },
		},
		{
			name:   "by name absent, folder missing",
			ref:    func(int64) marketo.ListRef { return marketo.ListRef{Name: "Paying, EU", Folder: "No such folder"} },
			errIs:  marketo.ErrFolderNotFound,
			errHas: []string{`finding static list "Paying, EU"`, `"No such folder"`, "create it in Marketo"},
		},
		{
			name:   "by name absent, no folder",
			ref:    func(int64) marketo.ListRef { return marketo.ListRef{Name: "Paying, EU"} },
			errIs:  marketo.ErrListNotFound,
			errHas: []string{"no folder is set"},
		},
		{
			name:   "both id and name",
			ref:    func(list int64) marketo.ListRef { return marketo.ListRef{ID: list, Name: "Trial users"} },
			errHas: []string{"set one"},
		},
		{
			name:   "neither",
			ref:    func(int64) marketo.ListRef { return marketo.ListRef{} },
			errHas: []string{"neither an id nor a name"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, options{})
			folder := b.em.CreateFolder("Audiences")
			list := b.em.CreateStaticList("Trial users", folder)
			before := b.em.Stats()

			got, ok, err := b.c.FindList(t.Context(), tt.ref(list))
			if tt.errIs != nil || tt.errHas != nil {
				require.Error(t, err)
				if tt.errIs != nil {
					require.ErrorIs(t, err, tt.errIs)
				}
				for _, s := range tt.errHas {
					require.ErrorContains(t, err, s)
				}
			} else {
				require.NoError(t, err)
				require.Equal(t, tt.ok, ok)
				require.Equal(t, tt.want(list, folder), got)
			}

			after := b.em.Stats()
			require.Equal(t, before.Lists, after.Lists, "FindList created no list")
			require.Len(t, b.em.StaticLists(), 1)
			require.Zero(t, after.Endpoints["POST /rest/asset/v1/staticLists.json"], "FindList made no create call")
			for _, o := range b.observed() {
				if o.path == "/identity/oauth/token" {
					continue
				}
				read := o.method == http.MethodGet || (o.method == http.MethodPost && o.query == "_method=GET")
				require.True(t, read, "FindList only reads; it sent %v", o)
			}
		})
	}
}
