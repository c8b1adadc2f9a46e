package bigquerywh

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/url"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"github.com/stretchr/testify/require"
	"google.golang.org/api/googleapi"

	"github.com/listsync/listsync/internal/warehouse"
)

func apiErr(code int, reason, msg string) error {
	return &googleapi.Error{Code: code, Message: msg, Errors: []googleapi.ErrorItem{{Reason: reason, Message: msg}}}
}

var dialErr = &url.Error{Op: "Post", URL: "http://127.0.0.1:1/bigquery/v2/projects/p/queries",
	Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}

func TestClassify(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		err  error
		kind error
		pos  []int
	}{
		{"syntax error", apiErr(400, "invalidQuery", "Syntax error: Unexpected keyword FROM at [3:1]"), warehouse.ErrSQL, []int{3, 1}},
		{"unknown column", apiErr(400, "invalidQuery", "Unrecognized name: emial; Did you mean email? at [1:8]"), warehouse.ErrSQL, []int{1, 8}},
		{"missing dataset", apiErr(404, "notFound", "Not found: Dataset p:crm was not found in location US"), warehouse.ErrSQL, nil},
		{"table access", apiErr(403, "accessDenied", "Access Denied: Table p:crm.t"), warehouse.ErrPermission, nil},
		{"quota", apiErr(403, "quotaExceeded", "Quota exceeded: Your project exceeded quota for free query bytes scanned."), warehouse.ErrPermission, nil},
		{"response too large", apiErr(403, "responseTooLarge", "Response too large to return."), warehouse.ErrSQL, nil},
		{"unknown 403", apiErr(403, "", "Forbidden"), warehouse.ErrPermission, nil},
		{"bad token", apiErr(401, "authError", "Request had invalid authentication credentials."), warehouse.ErrAuth, nil},
		{"backend", apiErr(503, "backendError", "Error encountered during execution. Retrying may solve the problem."), warehouse.ErrConnect, nil},
		{"unknown 5xx", apiErr(502, "", "Bad Gateway"), warehouse.ErrConnect, nil},
		{"service timeout", apiErr(400, "timeout", "Query exceeded the job timeout of 5.0 seconds."), warehouse.ErrTimeout, nil},
		{"stopped by job timeout", &bigquery.Error{Reason: "stopped", Message: "Job execution was cancelled: Job timed out after 5 sec"}, warehouse.ErrTimeout, nil},
		{"stopped by someone", &bigquery.Error{Reason: "stopped", Message: "Job execution was cancelled: User requested cancellation"}, warehouse.ErrSQL, nil},
		{"token fetch", &url.Error{Op: "Post", URL: "https://x", Err: &auth.Error{Err: errors.New("invalid_grant")}}, warehouse.ErrAuth, nil},
		{"refused", dialErr, warehouse.ErrConnect, nil},
		{"anything else", errors.New("bigquery: invalid NUMERIC value \"x\""), warehouse.ErrConnect, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := classify(fmt.Errorf("wrapped: %w", c.err))
			require.Equal(t, c.kind, got.kind)
			require.NotEmpty(t, got.msg)
			require.Equal(t, c.pos, got.pos)
		})
	}
}

func TestMapErrorUnderContext(t *testing.T) {
	t.Parallel()
	p := &warehouse.QueryParams{SQL: "SELECT 1", Model: "models/m.sql", Timeout: time.Second}
	expired, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	canceled, cancel2 := context.WithCancel(t.Context())
	cancel2()

	// The client retried a refused connection until the deadline: the
	// connection is what to fix.
	err := mapError(expired, p, dialErr)
	require.ErrorIs(t, err, warehouse.ErrConnect)
	require.ErrorContains(t, err, "connection refused")

	// Anything else cut short by the deadline is a timeout.
	err = mapError(expired, p, fmt.Errorf("retry failed with %w", context.DeadlineExceeded))
	require.ErrorIs(t, err, warehouse.ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// Cancellation is reported as such, not as a failure.
	err = mapError(canceled, p, dialErr)
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, warehouse.ErrConnect)

	// Position reported by BigQuery lands on the *warehouse.Error.
	err = mapError(t.Context(), p, apiErr(400, "invalidQuery", "Syntax error: Unexpected end of script at [4:12]"))
	var we *warehouse.Error
	require.ErrorAs(t, err, &we)
	require.Equal(t, [2]int{4, 12}, [2]int{we.Line, we.Column})
	require.Equal(t, "models/m.sql", we.Model)
}

func FuzzPosition(f *testing.F) {
	for _, s := range []string{
		"Syntax error: Unexpected keyword FROM at [3:1]",
		"Unrecognized name: x at [1:8]; see also [2:9]",
		"[0:0]", "[99999999999999999999:1]", "at [", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		pos := position(msg)
		if pos == nil {
			return
		}
		if len(pos) != 2 || pos[0] <= 0 || pos[1] <= 0 {
			t.Fatalf("position(%q) = %v", msg, pos)
		}
		require.Contains(t, msg, "]")
	})
}

func TestNormalizeEndpoint(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"https://bigquery.googleapis.com":             "https://bigquery.googleapis.com/bigquery/v2/",
		"https://bigquery-psc.p.googleapis.com/":      "https://bigquery-psc.p.googleapis.com/bigquery/v2/",
		"https://bigquery.googleapis.com/bigquery/v2": "https://bigquery.googleapis.com/bigquery/v2/",
		"http://127.0.0.1:9050/bigquery/v2/":          "http://127.0.0.1:9050/bigquery/v2/",
		"http://proxy.internal/custom/prefix":         "http://proxy.internal/custom/prefix/",
	}
	for in, want := range cases {
		got, err := normalizeEndpoint(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"bigquery.googleapis.com", "ftp://x/", "http://", "::"} {
		_, err := normalizeEndpoint(bad)
		require.Error(t, err, bad)
	}
}

func TestScalarCivilAndCompound(t *testing.T) {
	t.Parallel()
	ts := time.Date(2024, 5, 6, 7, 8, 9, 120000000, time.UTC)
	cases := []struct {
		in   bigquery.Value
		want any
	}{
		{civil.Date{Year: 2024, Month: 2, Day: 29}, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{civil.DateTime{Date: civil.Date{Year: 2024, Month: 2, Day: 29}, Time: civil.Time{Hour: 23, Minute: 59, Second: 58, Nanosecond: 1000}},
			time.Date(2024, 2, 29, 23, 59, 58, 1000, time.UTC)},
		{civil.Time{Hour: 7, Minute: 5}, "07:05:00"},
		{civil.Time{Hour: 7, Minute: 5, Second: 1, Nanosecond: 123456000}, "07:05:01.123456"},
		{&bigquery.IntervalValue{Years: 1, Months: 2, Days: 3, Hours: 4}, "1-2 3 4:0:0"},
		{&bigquery.RangeValue{Start: civil.Date{Year: 2024, Month: 1, Day: 1}}, "[2024-01-01, UNBOUNDED)"},
		{&bigquery.RangeValue{Start: ts, End: ts.Add(time.Hour)}, "[2024-05-06 07:08:09.12 UTC, 2024-05-06 08:08:09.12 UTC)"},
		{big.NewRat(10, 2), int64(5)},
		{big.NewRat(1, 4), 0.25},
		{ts.In(time.FixedZone("X", 3600)), ts},
		{[]byte("raw"), "raw"},
	}
	for _, c := range cases {
		got, err := scalar(c.in)
		require.NoError(t, err, "%#v", c.in)
		require.Equal(t, c.want, got, "%#v", c.in)
	}
	_, err := scalar(struct{}{})
	require.Error(t, err)
}

func TestNormalizeNested(t *testing.T) {
	t.Parallel()
	rec := &bigquery.FieldSchema{Name: "r", Type: bigquery.RecordFieldType, Schema: bigquery.Schema{
		{Name: "b", Type: bigquery.FloatFieldType},
		{Name: "a", Type: bigquery.DateFieldType, Repeated: true},
	}}
	got, err := normalize([]bigquery.Value{math.NaN(), []bigquery.Value{civil.Date{Year: 2020, Month: 1, Day: 2}}}, rec)
	require.NoError(t, err)
	require.Equal(t, `{"b":"NaN","a":["2020-01-02T00:00:00Z"]}`, got, "fields in schema order, NaN as text")

	_, err = normalize("not a record", rec)
	require.ErrorContains(t, err, "unexpected RECORD value")
}
