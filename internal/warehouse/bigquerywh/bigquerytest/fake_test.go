package bigquerytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
	"unicode/utf8"

	"cloud.google.com/go/bigquery"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

func numbers(n int64) Result {
	return Result{
		Schema:  []Field{{Name: "n", Type: "INTEGER"}, {Name: "at", Type: "TIMESTAMP"}},
		NumRows: n,
		Row: func(i int64, dst []any) {
			dst[0] = i
			dst[1] = time.Unix(i, 0)
		},
	}
}

// TestClientPageSize reads through the real client with a page size set,
// which makes it discard jobs.query's first page and read from startIndex 0
// with maxResults: the fake must honour both, then pageToken.
func TestClientPageSize(t *testing.T) {
	t.Parallel()
	f, url := NewServer(t, Config{})
	f.AddResult("SELECT n", numbers(10))
	c, err := bigquery.NewClient(t.Context(), "p", option.WithEndpoint(url+"/bigquery/v2/"), option.WithoutAuthentication())
	require.NoError(t, err)
	defer c.Close()

	it, err := c.Query("SELECT n").Read(t.Context())
	require.NoError(t, err)
	it.PageInfo().MaxSize = 3
	var got []int64
	for {
		var row []bigquery.Value
		err := it.Next(&row)
		if err == iterator.Done {
			break
		}
		require.NoError(t, err)
		got = append(got, row[0].(int64))
		require.Equal(t, time.Unix(row[0].(int64), 0).UTC(), row[1])
	}
	require.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, got)
	require.Equal(t, uint64(10), it.TotalRows)

	var gets []Request
	for _, r := range f.Requests() {
		if r.Method == http.MethodGet {
			gets = append(gets, r)
		}
	}
	require.Len(t, gets, 4)
	require.Equal(t, "0", gets[0].Query.Get("startIndex"))
	require.Equal(t, "3", gets[0].Query.Get("maxResults"))
	for i, g := range gets[1:] {
		require.Equal(t, fmt.Sprint(3*(i+1)), g.Query.Get("pageToken"))
	}
}

// post sends a JSON body and decodes the JSON answer.
func post(t *testing.T, url string, body any) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	require.NoError(t, err)
	return decode(t, resp)
}

func get(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	return decode(t, resp)
}

func decode(t *testing.T, resp *http.Response) (int, map[string]any) {
	t.Helper()
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out), "%s", raw)
	return resp.StatusCode, out
}

func TestWireFormat(t *testing.T) {
	t.Parallel()
	f, url := NewServer(t, Config{PageRows: 2})
	f.AddResult("SELECT n", numbers(5))
	f.AddError("SELEC n", Error{Code: 400, Reason: "invalidQuery", Message: "Syntax error: Unexpected identifier \"SELEC\" at [1:1]"})

	// Without the /bigquery/v2 prefix, as a bare endpoint gives.
	code, res := post(t, url+"/projects/p/queries", map[string]any{
		"query": "SELECT n", "useLegacySql": false, "location": "EU",
		"formatOptions": map[string]any{"useInt64Timestamp": true},
	})
	require.Equal(t, 200, code)
	require.Equal(t, "5", res["totalRows"], "totalRows is a JSON string")
	require.Equal(t, "2", res["pageToken"])
	require.Equal(t, true, res["jobComplete"])
	ref := res["jobReference"].(map[string]any)
	require.Equal(t, "EU", ref["location"])
	rows := res["rows"].([]any)
	require.Len(t, rows, 2)
	require.Equal(t, map[string]any{"f": []any{map[string]any{"v": "1"}, map[string]any{"v": "1000000"}}}, rows[1])
	jobID := ref["jobId"].(string)

	// Without useInt64Timestamp, timestamps are float seconds.
	code, res = get(t, url+"/bigquery/v2/projects/p/queries/"+jobID+"?location=EU&pageToken=4")
	require.Equal(t, 200, code)
	require.Nil(t, res["pageToken"], "no token on the last page")
	require.Equal(t, map[string]any{"f": []any{map[string]any{"v": "4"}, map[string]any{"v": "4E+00"}}}, res["rows"].([]any)[0])

	// A status poll has the schema and no rows.
	code, res = get(t, url+"/bigquery/v2/projects/p/queries/"+jobID+"?maxResults=0")
	require.Equal(t, 200, code)
	require.Nil(t, res["rows"])
	require.NotNil(t, res["schema"])

	// The job lives in EU: asking in US does not find it.
	code, res = get(t, url+"/bigquery/v2/projects/p/queries/"+jobID+"?location=US")
	require.Equal(t, 404, code)
	require.Equal(t, "NOT_FOUND", res["error"].(map[string]any)["status"])

	// Errors come in Google's shape.
	code, res = post(t, url+"/bigquery/v2/projects/p/queries", map[string]any{"query": "SELEC n", "useLegacySql": false})
	require.Equal(t, 400, code)
	e := res["error"].(map[string]any)
	require.Equal(t, float64(400), e["code"])
	require.Equal(t, "INVALID_ARGUMENT", e["status"])
	item := e["errors"].([]any)[0].(map[string]any)
	require.Equal(t, "invalidQuery", item["reason"])
	require.Equal(t, "q", item["location"])
	require.Contains(t, item["message"], "[1:1]")

	// Legacy SQL, the API's default, is refused rather than misread.
	code, _ = post(t, url+"/bigquery/v2/projects/p/queries", map[string]any{"query": "SELECT n"})
	require.Equal(t, 400, code)

	// jobs.insert then jobs.get echo the job.
	code, res = post(t, url+"/bigquery/v2/projects/p/jobs", map[string]any{
		"jobReference":  map[string]any{"projectId": "p", "jobId": "mine", "location": "EU"},
		"configuration": map[string]any{"query": map[string]any{"query": "SELECT n", "useLegacySql": false}, "jobTimeoutMs": "1000"},
	})
	require.Equal(t, 200, code)
	require.Equal(t, "DONE", res["status"].(map[string]any)["state"])
	require.Equal(t, "1000", res["configuration"].(map[string]any)["jobTimeoutMs"])
	code, res = get(t, url+"/bigquery/v2/projects/p/jobs/mine?location=EU")
	require.Equal(t, 200, code)
	require.Equal(t, "p:EU.mine", res["id"])
	code, res = post(t, url+"/bigquery/v2/projects/p/jobs", map[string]any{
		"jobReference":  map[string]any{"projectId": "p", "jobId": "mine", "location": "EU"},
		"configuration": map[string]any{"query": map[string]any{"query": "SELECT n", "useLegacySql": false}},
	})
	require.Equal(t, 409, code, "job IDs are unique")
	require.Equal(t, "ALREADY_EXISTS", res["error"].(map[string]any)["status"])

	// A failed job is created, and its error answered by getQueryResults.
	code, res = post(t, url+"/bigquery/v2/projects/p/jobs", map[string]any{
		"jobReference":  map[string]any{"projectId": "p", "jobId": "bad"},
		"configuration": map[string]any{"query": map[string]any{"query": "SELEC n", "useLegacySql": false}},
	})
	require.Equal(t, 200, code)
	require.NotNil(t, res["status"].(map[string]any)["errorResult"])
	code, _ = get(t, url+"/bigquery/v2/projects/p/queries/bad")
	require.Equal(t, 400, code)
}

func TestRegistrationMistakesPanic(t *testing.T) {
	t.Parallel()
	f := New(Config{})
	for name, r := range map[string]Result{
		"no columns":            {},
		"standard SQL type":     {Schema: []Field{{Name: "x", Type: "INT64"}}},
		"rows without Row":      {Schema: []Field{{Name: "x", Type: "STRING"}}, NumRows: 1},
		"record without fields": {Schema: []Field{{Name: "x", Type: "RECORD"}}},
	} {
		require.Panics(t, func() { f.AddResult("SELECT x", r) }, name)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\ nl\n tab\t", "\x00\x1f\x7f", "ünï 😀", "\xff\xfe bad", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("appendString(%q) = %s: not JSON: %v", s, b, err)
		}
		if utf8.ValidString(s) && got != s {
			t.Fatalf("appendString(%q) round-trips to %q", s, got)
		}
	})
}
