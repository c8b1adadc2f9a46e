package bigquerywh_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/listsync/listsync/internal/warehouse"
	"github.com/listsync/listsync/internal/warehouse/bigquerywh"
	"github.com/listsync/listsync/internal/warehouse/bigquerywh/bigquerytest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The HTTP transport's idle connections and the fake's server
		// goroutines wind down asynchronously after Close.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

const project = "fake-proj"

// bundle is a fake and a warehouse pointed at it.
type bundle struct {
	fake *bigquerytest.Fake
	url  string
	wh   *bigquerywh.Warehouse
}

// setup starts a fake with fcfg and a warehouse in location EU against it.
func setup(t *testing.T, fcfg bigquerytest.Config) *bundle {
	t.Helper()
	fake, url := bigquerytest.NewServer(t, fcfg)
	return &bundle{fake: fake, url: url, wh: open(t, bigquerywh.Config{
		Project:  project,
		Location: "EU",
		Endpoint: url,
		NoAuth:   true,
	})}
}

func open(t testing.TB, cfg bigquerywh.Config) *bigquerywh.Warehouse {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	wh, err := bigquerywh.New(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = wh.Close() })
	return wh
}

// readAll runs sql and returns the columns and a copy of every row.
func readAll(t *testing.T, wh warehouse.Warehouse, p *warehouse.QueryParams) ([]string, [][]any, error) {
	t.Helper()
	rows, err := wh.Query(t.Context(), p)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		out = append(out, append([]any(nil), rows.Values()...))
	}
	return rows.Columns(), out, rows.Err()
}

// requests returns the fake's requests whose path contains part.
func requests(f *bigquerytest.Fake, method, part string) []bigquerytest.Request {
	var out []bigquerytest.Request
	for _, r := range f.Requests() {
		if r.Method == method && strings.Contains(r.Path, part) {
			out = append(out, r)
		}
	}
	return out
}

// emailRows is a result of n rows (email, n) for paging tests.
func emailRows(n int64) bigquerytest.Result {
	return bigquerytest.Result{
		Schema:  []bigquerytest.Field{{Name: "email", Type: "STRING"}, {Name: "n", Type: "INTEGER"}},
		NumRows: n,
		Row: func(i int64, dst []any) {
			dst[0] = fmt.Sprintf("user%d@example.com", i)
			dst[1] = i
		},
	}
}

func requireEmailRows(t *testing.T, rows [][]any, n int) {
	t.Helper()
	require.Len(t, rows, n)
	for i, r := range rows {
		require.Equal(t, []any{fmt.Sprintf("user%d@example.com", i), int64(i)}, r, "row %d", i)
	}
}

func TestMultiPageResult(t *testing.T) {
	t.Parallel()
	b := setup(t, bigquerytest.Config{PageRows: 7})
	const sql = "SELECT email, n FROM `fake-proj.crm.users` ORDER BY n"
	b.fake.AddResult(sql, emailRows(50))

	cols, rows, err := readAll(t, b.wh, &warehouse.QueryParams{SQL: sql, Model: "models/users.sql"})
	require.NoError(t, err)
	require.Equal(t, []string{"email", "n"}, cols)
	requireEmailRows(t, rows, 50)

	// One jobs.query with the first page, then a getQueryResults per
	// further page, each following the previous page's token.
	q := requests(b.fake, http.MethodPost, "/queries")
	require.Len(t, q, 1)
	var body map[string]any
	require.NoError(t, json.Unmarshal(q[0].Body, &body))
	require.Equal(t, sql, body["query"])
	require.Equal(t, "EU", body["location"], "the location is sent with the query")
	require.Equal(t, false, body["useLegacySql"])
	require.True(t, strings.HasPrefix(q[0].Path, "/bigquery/v2/projects/fake-proj/"), q[0].Path)

	pages := requests(b.fake, http.MethodGet, "/queries/")
	require.Len(t, pages, 7, "50 rows in pages of 7")
	for i, p := range pages {
		require.Equal(t, fmt.Sprint(7*(i+1)), p.Query.Get("pageToken"), "page %d", i+1)
		require.Equal(t, "EU", p.Query.Get("location"))
		require.Equal(t, "true", p.Query.Get("formatOptions.useInt64Timestamp"))
	}
}

func TestJobNotDoneAtFirst(t *testing.T) {
	t.Parallel()
	b := setup(t, bigquerytest.Config{PageRows: 4})
	const sql = "SELECT email, n FROM crm.slow"
	res := emailRows(10)
	res.Pending = 3
	b.fake.AddResult(sql, res)

	_, rows, err := readAll(t, b.wh, &warehouse.QueryParams{SQL: sql})
	require.NoError(t, err)
	requireEmailRows(t, rows, 10)

	// jobs.query answered "not complete"; the client then polled with
	// maxResults=0 until it was, and read the rows from startIndex 0.
	gets := requests(b.fake, http.MethodGet, "/queries/")
	var polls, reads int
	for _, g := range gets {
		if g.Query.Get("maxResults") == "0" {
			polls++
		} else {
			reads++
		}
	}
	require.Equal(t, 3, polls, "two polls while running, one when done")
	require.Equal(t, 3, reads, "10 rows in pages of 4")
	require.Equal(t, "0", gets[polls].Query.Get("startIndex"))
}

func TestTimeoutIsSentAsJobTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, bigquerytest.Config{PageRows: 6})
	const sql = "SELECT email, n FROM crm.users"
	res := emailRows(20)
	res.Pending = 1
	b.fake.AddResult(sql, res)

	_, rows, err := readAll(t, b.wh, &warehouse.QueryParams{SQL: sql, Timeout: 90 * time.Second})
	require.NoError(t, err)
	requireEmailRows(t, rows, 20)

	// With a job timeout the client creates the job with jobs.insert.
	require.Empty(t, requests(b.fake, http.MethodPost, "/queries"))
	ins := requests(b.fake, http.MethodPost, "/jobs")
	require.Len(t, ins, 1)
	var job struct {
		JobReference  struct{ Location string }
		Configuration struct {
			JobTimeoutMs string
			Query        struct {
				Query        string
				UseLegacySQL *bool `json:"useLegacySql"`
			}
		}
	}
	require.NoError(t, json.Unmarshal(ins[0].Body, &job))
	ms, err := strconv.Atoi(job.Configuration.JobTimeoutMs)
	require.NoError(t, err)
	require.InDelta(t, 90_000, ms, 5_000, "the time left of the 90s timeout")
	require.Equal(t, sql, job.Configuration.Query.Query)
	require.Equal(t, "EU", job.JobReference.Location)
	require.NotNil(t, job.Configuration.Query.UseLegacySQL)
	require.False(t, *job.Configuration.Query.UseLegacySQL)
}

func TestContextDeadlineIsSentAsJobTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, bigquerytest.Config{})
	const sql = "SELECT email, n FROM crm.users"
	b.fake.AddResult(sql, emailRows(3))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	rows, err := b.wh.Query(ctx, &warehouse.QueryParams{SQL: sql, Timeout: time.Hour})
	require.NoError(t, err)
	require.NoError(t, rows.Close())
	ins := requests(b.fake, http.MethodPost, "/jobs")
	require.Len(t, ins, 1)
	var job struct{ Configuration struct{ JobTimeoutMs string } }
	require.NoError(t, json.Unmarshal(ins[0].Body, &job))
	ms, err := strconv.Atoi(job.Configuration.JobTimeoutMs)
	require.NoError(t, err)
	require.InDelta(t, 30_000, ms, 5_000, "the caller's deadline is nearer than the model's timeout")
}

func TestTypesAndNulls(t *testing.T) {
	t.Parallel()
	b := setup(t, bigquerytest.Config{})
	ts := time.Date(2024, 2, 29, 13, 45, 30, 123456000, time.UTC)
	schema := []bigquerytest.Field{
		{Name: "s", Type: "STRING"},
		{Name: "i", Type: "INTEGER"},
		{Name: "f", Type: "FLOAT"},
		{Name: "b", Type: "BOOLEAN"},
		{Name: "ts", Type: "TIMESTAMP"},
		{Name: "d", Type: "DATE"},
		{Name: "dt", Type: "DATETIME"},
		{Name: "tm", Type: "TIME"},
		{Name: "num", Type: "NUMERIC"},
		{Name: "big", Type: "BIGNUMERIC"},
		{Name: "by", Type: "BYTES"},
		{Name: "geo", Type: "GEOGRAPHY"},
		{Name: "js", Type: "JSON"},
		{Name: "iv", Type: "INTERVAL"},
		{Name: "tags", Type: "STRING", Mode: "REPEATED"},
		{Name: "addr", Type: "RECORD", Fields: []bigquerytest.Field{
			{Name: "city", Type: "STRING"},
			{Name: "zip", Type: "INTEGER"},
			{Name: "seen", Type: "TIMESTAMP", Mode: "REPEATED"},
		}},
	}
	rows := [][]any{
		{"ünï \"q\"\n", int64(math.MinInt64), 3.25, true, ts,
			time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), time.Date(2024, 2, 29, 13, 45, 30, 500000000, time.UTC),
			time.Date(0, 1, 1, 13, 45, 30, 250000000, time.UTC),
			"12.000000000", big.NewRat(-7, 2), []byte{0, 'a', 0xff}, "POINT(1 2)", `{"a":[1,2]}`, "1-2 3 4:5:6.5",
			[]any{"x", "y"}, []any{"Paris", int64(75001), []any{ts}}},
		{"", int64(7), math.Inf(-1), false, time.Unix(0, 0).UTC(), nil, nil, nil,
			"99999999999999999999", "0.1", []byte{}, nil, nil, nil, []any{}, []any{nil, nil, []any{}}},
		{nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
	}
	const sql = "SELECT * FROM crm.types"
	b.fake.AddResult(sql, bigquerytest.Rows(schema, rows))

	cols, got, err := readAll(t, b.wh, &warehouse.QueryParams{SQL: sql})
	require.NoError(t, err)
	require.Equal(t, []string{"s", "i", "f", "b", "ts", "d", "dt", "tm", "num", "big", "by", "geo", "js", "iv", "tags", "addr"}, cols)
	require.Len(t, got, 3)
	want := [][]any{
		{"ünï \"q\"\n", int64(math.MinInt64), 3.25, true, ts,
			time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), time.Date(2024, 2, 29, 13, 45, 30, 500000000, time.UTC),
			"13:45:30.25", int64(12), -3.5, "\x00a\xff", "POINT(1 2)", `{"a":[1,2]}`, "1-2 3 4:5:6.5",
			`["x","y"]`, `{"city":"Paris","zip":75001,"seen":["2024-02-29T13:45:30.123456Z"]}`},
		{"", int64(7), math.Inf(-1), false, time.Unix(0, 0).UTC(), nil, nil, nil,
			1e20, 0.1, "", nil, nil, nil, `[]`, `{"city":null,"zip":null,"seen":[]}`},
		{nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
	}
	for i := range want {
		for j := range want[i] {
			w, g := want[i][j], got[i][j]
			if wt, ok := w.(time.Time); ok {
				gt, ok := g.(time.Time)
				require.True(t, ok, "row %d column %s: %T", i, cols[j], g)
				require.True(t, wt.Equal(gt), "row %d column %s: %v", i, cols[j], gt)
				require.Equal(t, time.UTC, gt.Location(), "row %d column %s", i, cols[j])
				continue
			}
			require.Equal(t, w, g, "row %d column %s", i, cols[j])
		}
	}
}

func TestEmptyResult(t *testing.T) {
	t.Parallel()
	b := setup(t, bigquerytest.Config{})
	const sql = "SELECT email, n FROM crm.nobody"
	b.fake.AddResult(sql, emailRows(0))
	rows, err := b.wh.Query(t.Context(), &warehouse.QueryParams{SQL: sql})
	require.NoError(t, err)
	require.Equal(t, []string{"email", "n"}, rows.Columns(), "columns are known without rows")
	require.False(t, rows.Next())
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
}

func TestQueryErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		fakeErr  bigquerytest.Error
		kind     error
		line     int
		col      int
		contains string
	}{
		{
			name: "syntax error",
			fakeErr: bigquerytest.Error{Code: 400, Reason: "invalidQuery",
				Message: `Syntax error: Expected end of input but got identifier "FORM" at [2:10]`},
			kind: warehouse.ErrSQL, line: 2, col: 10, contains: `got identifier "FORM"`,
		},
		{
			name: "missing table",
			fakeErr: bigquerytest.Error{Code: 404, Reason: "notFound",
				Message: "Not found: Table fake-proj:crm.gone was not found in location EU"},
			kind: warehouse.ErrSQL, contains: "crm.gone was not found",
		},
		{
			name: "no access to the table",
			fakeErr: bigquerytest.Error{Code: 403, Reason: "accessDenied",
				Message: "Access Denied: Table fake-proj:crm.secret: User does not have permission to query table fake-proj:crm.secret."},
			kind: warehouse.ErrPermission, contains: "Access Denied",
		},
		{
			name: "may not create jobs",
			fakeErr: bigquerytest.Error{Code: 403, Reason: "accessDenied", Request: true,
				Message: "Access Denied: Project fake-proj: User does not have bigquery.jobs.create permission in project fake-proj."},
			kind: warehouse.ErrPermission, contains: "bigquery.jobs.create",
		},
		{
			name: "resources exceeded",
			fakeErr: bigquerytest.Error{Code: 400, Reason: "resourcesExceeded",
				Message: "Resources exceeded during query execution: The query could not be executed in the allotted memory."},
			kind: warehouse.ErrSQL, contains: "Resources exceeded",
		},
		{
			name: "job timeout",
			fakeErr: bigquerytest.Error{Code: 400, Reason: "timeout",
				Message: "Query exceeded the job timeout of 1.0 seconds."},
			kind: warehouse.ErrTimeout, contains: "job timeout",
		},
	}
	b := setup(t, bigquerytest.Config{})
	for i, c := range cases {
		sql := fmt.Sprintf("SELECT %d FROM crm.t", i)
		b.fake.AddError(sql, c.fakeErr)
		// Both of the client's paths: jobs.query (no timeout) and
		// jobs.insert then jobs.getQueryResults (with a job timeout).
		for _, timeout := range []time.Duration{0, time.Minute} {
			t.Run(fmt.Sprintf("%s/timeout=%s", c.name, timeout), func(t *testing.T) {
				t.Parallel()
				p := &warehouse.QueryParams{SQL: sql, Model: "models/bad.sql", Timeout: timeout}
				rows, err := b.wh.Query(t.Context(), p)
				require.Nil(t, rows)
				require.ErrorIs(t, err, c.kind)
				var we *warehouse.Error
				require.ErrorAs(t, err, &we)
				require.Equal(t, "bigquery", we.Warehouse)
				require.Equal(t, "models/bad.sql", we.Model)
				require.Contains(t, we.Message, c.contains)
				require.Equal(t, [2]int{c.line, c.col}, [2]int{we.Line, we.Column})
				require.Contains(t, err.Error(), "models/bad.sql")
			})
		}
	}
}

func TestRefusedModelNeverSent(t *testing.T) {
	t.Parallel()
	b := setup(t, bigquerytest.Config{})
	for _, sql := range []string{"DELETE FROM crm.users WHERE true", "SELECT 1; SELECT 2", "CREATE TABLE crm.x AS SELECT 1"} {
		_, err := b.wh.Query(t.Context(), &warehouse.QueryParams{SQL: sql, Model: "models/evil.sql"})
		require.ErrorIs(t, err, warehouse.ErrInvalidModel, sql)
	}
	require.Empty(t, b.fake.Requests())
}

func TestCancelMidway(t *testing.T) {
	t.Parallel()
	b := setup(t, bigquerytest.Config{PageRows: 500})
	const sql = "SELECT email, n FROM crm.many"
	b.fake.AddResult(sql, emailRows(1_000_000))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rows, err := b.wh.Query(ctx, &warehouse.QueryParams{SQL: sql, Model: "models/many.sql"})
	require.NoError(t, err)
	for i := range 1200 {
		require.True(t, rows.Next(), "row %d: %v", i, rows.Err())
	}
	cancel()
	before := len(b.fake.Requests())
	require.False(t, rows.Next())
	require.ErrorIs(t, rows.Err(), context.Canceled)
	require.NotErrorIs(t, rows.Err(), warehouse.ErrTimeout)
	require.False(t, rows.Next())
	require.NoError(t, rows.Close())
	require.NoError(t, rows.Close())
	require.Equal(t, before, len(b.fake.Requests()), "no page is fetched after the cancellation")
}

func TestTimeoutWhileRunning(t *testing.T) {
	t.Parallel()
	b := setup(t, bigquerytest.Config{})
	const sql = "SELECT email, n FROM crm.forever"
	res := emailRows(1)
	res.Pending = math.MaxInt32
	b.fake.AddResult(sql, res)

	start := time.Now()
	_, err := b.wh.Query(t.Context(), &warehouse.QueryParams{SQL: sql, Model: "models/forever.sql", Timeout: 300 * time.Millisecond})
	require.ErrorIs(t, err, warehouse.ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Contains(t, err.Error(), "models/forever.sql")
	require.Less(t, time.Since(start), 10*time.Second)
}

func TestTimeoutWhileStreaming(t *testing.T) {
	t.Parallel()
	b := setup(t, bigquerytest.Config{PageRows: 10})
	const sql = "SELECT email, n FROM crm.sluggish"
	res := emailRows(100)
	res.PageDelay = 150 * time.Millisecond
	b.fake.AddResult(sql, res)

	rows, err := b.wh.Query(t.Context(), &warehouse.QueryParams{SQL: sql, Model: "models/sluggish.sql", Timeout: 400 * time.Millisecond})
	require.NoError(t, err)
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	require.Less(t, n, 100)
	require.ErrorIs(t, rows.Err(), warehouse.ErrTimeout)
}

func TestAuthRejected(t *testing.T) {
	t.Parallel()
	b := setup(t, bigquerytest.Config{Token: "the-only-token"})
	b.fake.AddResult("SELECT 1 AS x", emailRows(1))

	err := b.wh.Ping(t.Context())
	require.ErrorIs(t, err, warehouse.ErrAuth)
	_, err = b.wh.Query(t.Context(), &warehouse.QueryParams{SQL: "SELECT 1 AS x", Model: "models/x.sql"})
	require.ErrorIs(t, err, warehouse.ErrAuth)
	require.Contains(t, err.Error(), "invalid authentication credentials")
}

// serviceAccountFile writes a service account key whose token endpoint is
// the fake's.
func serviceAccountFile(t *testing.T, tokenURL string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	sa, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     project,
		"private_key_id": "key1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "listsync@fake-proj.iam.gserviceaccount.com",
		"client_id":      "1234567890",
		"token_uri":      tokenURL,
	})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "sa.json")
	require.NoError(t, os.WriteFile(path, sa, 0o600))
	return path
}

func TestServiceAccountCredentials(t *testing.T) {
	t.Parallel()
	fake, url := bigquerytest.NewServer(t, bigquerytest.Config{Token: "sa-token"})
	creds := serviceAccountFile(t, url+"/token")
	const sql = "SELECT email, n FROM crm.users"
	fake.AddResult(sql, emailRows(3))

	for _, hc := range []*http.Client{nil, {Timeout: time.Minute}} {
		wh := open(t, bigquerywh.Config{Project: project, Endpoint: url, CredentialsFile: creds, HTTPClient: hc})
		require.NoError(t, wh.Ping(t.Context()))
		_, rows, err := readAll(t, wh, &warehouse.QueryParams{SQL: sql})
		require.NoError(t, err)
		requireEmailRows(t, rows, 3)
	}
	var tokens int
	for _, r := range fake.Requests() {
		if r.Path == "/token" {
			tokens++
			continue
		}
		require.Equal(t, "Bearer sa-token", r.Header.Get("Authorization"), r.Path)
	}
	require.Positive(t, tokens, "the key was exchanged for a token")
}

func TestPing(t *testing.T) {
	t.Parallel()
	b := setup(t, bigquerytest.Config{})
	require.NoError(t, b.wh.Ping(t.Context()))
	ins := requests(b.fake, http.MethodPost, "/jobs")
	require.Len(t, ins, 1)
	var job struct {
		Configuration struct {
			DryRun bool
			Query  struct{ Query string }
		}
	}
	require.NoError(t, json.Unmarshal(ins[0].Body, &job))
	require.True(t, job.Configuration.DryRun, "Ping is a free dry run")
}

func TestConnectRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	wh := open(t, bigquerywh.Config{Project: project, Endpoint: "http://" + addr, NoAuth: true})

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err = wh.Ping(ctx)
	require.ErrorIs(t, err, warehouse.ErrConnect, "the client retried until the deadline, but the cause is the connection")
	_, err = wh.Query(t.Context(), &warehouse.QueryParams{SQL: "SELECT 1", Model: "models/x.sql", Timeout: 300 * time.Millisecond})
	require.ErrorIs(t, err, warehouse.ErrConnect)
	require.Contains(t, err.Error(), "connection refused")
}

func TestEndpointForms(t *testing.T) {
	t.Parallel()
	fake, url := bigquerytest.NewServer(t, bigquerytest.Config{})
	const sql = "SELECT email, n FROM crm.users"
	fake.AddResult(sql, emailRows(2))
	for _, ep := range []string{url, url + "/", url + "/bigquery/v2", url + "/bigquery/v2/"} {
		wh := open(t, bigquerywh.Config{Project: project, Endpoint: ep, NoAuth: true})
		_, rows, err := readAll(t, wh, &warehouse.QueryParams{SQL: sql})
		require.NoError(t, err, ep)
		requireEmailRows(t, rows, 2)
	}
	for _, r := range fake.Requests() {
		require.True(t, strings.HasPrefix(r.Path, "/bigquery/v2/projects/"), r.Path)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notJSON := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(notJSON, []byte("nope"), 0o600))
	oddType := filepath.Join(dir, "odd.json")
	require.NoError(t, os.WriteFile(oddType, []byte(`{"type":"api_key"}`), 0o600))
	cases := []struct {
		name        string
		cfg         bigquerywh.Config
		kind        error
		errContains string
	}{
		{"no project", bigquerywh.Config{NoAuth: true, Endpoint: "http://127.0.0.1:1"}, warehouse.ErrConnect, "project is not set"},
		{"no auth without endpoint", bigquerywh.Config{Project: project, NoAuth: true}, warehouse.ErrConnect, "needs an Endpoint"},
		{"no auth with credentials", bigquerywh.Config{Project: project, NoAuth: true, Endpoint: "http://127.0.0.1:1", CredentialsFile: notJSON}, warehouse.ErrConnect, "exclude each other"},
		{"endpoint not a URL", bigquerywh.Config{Project: project, NoAuth: true, Endpoint: "127.0.0.1:9050"}, warehouse.ErrConnect, "not an http(s) URL"},
		{"missing credentials file", bigquerywh.Config{Project: project, CredentialsFile: filepath.Join(dir, "none.json")}, warehouse.ErrAuth, "none.json"},
		{"credentials not JSON", bigquerywh.Config{Project: project, CredentialsFile: notJSON}, warehouse.ErrAuth, "is not JSON"},
		{"credentials of an unknown type", bigquerywh.Config{Project: project, CredentialsFile: oddType}, warehouse.ErrAuth, `type "api_key"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			wh, err := bigquerywh.New(t.Context(), c.cfg)
			require.Nil(t, wh)
			require.ErrorIs(t, err, c.kind)
			require.ErrorContains(t, err, c.errContains)
		})
	}
}

// TestNoDefaultCredentials checks that a missing credentials setup is
// reported as an authentication problem when New runs, not at the first
// query. It cannot run in parallel: it empties the environment ADC reads.
func TestNoDefaultCredentials(t *testing.T) {
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	wh, err := bigquerywh.New(t.Context(), bigquerywh.Config{Project: project})
	if err == nil {
		_ = wh.Close()
		t.Skip("Application Default Credentials are available here (a metadata server?)")
	}
	require.ErrorIs(t, err, warehouse.ErrAuth)
	require.ErrorContains(t, err, "default credentials")
}

func TestClosedWarehouse(t *testing.T) {
	t.Parallel()
	b := setup(t, bigquerytest.Config{})
	require.NoError(t, b.wh.Close())
	require.NoError(t, b.wh.Close())
	_, err := b.wh.Query(t.Context(), &warehouse.QueryParams{SQL: "SELECT 1"})
	require.ErrorContains(t, err, "closed")
	require.ErrorContains(t, b.wh.Ping(t.Context()), "closed")
}
