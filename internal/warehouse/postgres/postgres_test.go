package postgres_test

import (
	"context"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/listsync/listsync/internal/pgtest"
	"github.com/listsync/listsync/internal/warehouse"
	"github.com/listsync/listsync/internal/warehouse/postgres"
	"github.com/listsync/listsync/internal/warehouse/warehousetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	t.Parallel()
	warehousetest.Exercise(t, newHarness(t))
}

// exec runs statements on dsn outside any warehouse, to set up a test.
func exec(t *testing.T, dsn string, stmts ...string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	defer conn.Close(context.WithoutCancel(t.Context()))
	for _, s := range stmts {
		_, err := conn.Exec(t.Context(), s)
		require.NoError(t, err, s)
	}
}

// queryOne runs sql through w and returns its single row.
func queryOne(t *testing.T, w warehouse.Warehouse, sql string) ([]any, error) {
	t.Helper()
	rows, err := w.Query(t.Context(), &warehouse.QueryParams{SQL: sql, Model: "models/t.sql"})
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []any
	for rows.Next() {
		require.Nil(t, out, "more than one row")
		out = append([]any(nil), rows.Values()...)
	}
	return out, rows.Err()
}

func TestValueNormalisation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	exec(t, h.dsn, "CREATE TYPE mood AS ENUM ('sad', 'happy')")
	w := h.Warehouse(t)
	ts := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err)
		return v.UTC()
	}
	for _, tc := range []struct {
		sql  string
		want any
	}{
		{"SELECT 7::int2", int64(7)},
		{"SELECT -7::int4", int64(-7)},
		{"SELECT 9223372036854775807::int8", int64(math.MaxInt64)},
		{"SELECT 12.00::numeric", int64(12)},
		{"SELECT 1200::numeric(10,0)", int64(1200)},
		{"SELECT 12.50::numeric", 12.5},
		{"SELECT -0.125::numeric", -0.125},
		{"SELECT 1e20::numeric", 1e20},
		{"SELECT 123456789012345678901234567890::numeric", 1.2345678901234568e29},
		{"SELECT 'Infinity'::numeric", math.Inf(1)},
		{"SELECT 1.5::float4", 1.5},
		{"SELECT 0.1::float4", 0.1},
		{"SELECT 0.1::float8", 0.1},
		{"SELECT true", true},
		{"SELECT 'x'::varchar", "x"},
		{"SELECT 'x'::char(3)", "x  "},
		{"SELECT 'héllo'::name", "héllo"},
		{`SELECT '\x6869'::bytea`, "hi"},
		{"SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{`SELECT '{"a": 1}'::json`, `{"a": 1}`},
		{`SELECT '{"a": 1}'::jsonb`, `{"a": 1}`},
		{"SELECT 'happy'::mood", "happy"},
		{"SELECT ARRAY[1, 2, 3]", "{1,2,3}"},
		{"SELECT ARRAY['a b', 'c']", `{"a b",c}`},
		{"SELECT '1 day 2 hours'::interval", "1 day 02:00:00"},
		{"SELECT '2024-02-29'::date", ts("2024-02-29T00:00:00Z")},
		{"SELECT '1900-03-01'::date", ts("1900-03-01T00:00:00Z")},
		{"SELECT '2024-02-29 13:45:30.123456'::timestamp", ts("2024-02-29T13:45:30.123456Z")},
		{"SELECT '2024-02-29 13:45:30+02'::timestamptz", ts("2024-02-29T11:45:30Z")},
		{"SELECT '0044-03-15 12:00:00 BC'::timestamp", time.Date(-43, 3, 15, 12, 0, 0, 0, time.UTC)},
		{"SELECT NULL", nil},
		{"SELECT NULL::int", nil},
	} {
		got, err := queryOne(t, w, tc.sql)
		require.NoError(t, err, tc.sql)
		require.Len(t, got, 1, tc.sql)
		if f, ok := tc.want.(float64); ok && math.IsInf(f, 0) {
			require.Equal(t, tc.want, got[0], tc.sql)
			continue
		}
		require.Equal(t, tc.want, got[0], "%s: got %T", tc.sql, got[0])
		if tm, ok := got[0].(time.Time); ok {
			require.Equal(t, time.UTC, tm.Location(), tc.sql)
		}
	}

	got, err := queryOne(t, w, "SELECT 'NaN'::numeric")
	require.NoError(t, err)
	require.True(t, math.IsNaN(got[0].(float64)))
}

func TestUnrepresentableValues(t *testing.T) {
	t.Parallel()
	w := newHarness(t).Warehouse(t)
	for _, sql := range []string{
		"SELECT 'infinity'::timestamptz AS ends_at",
		"SELECT '-infinity'::date AS ends_at",
	} {
		_, err := queryOne(t, w, sql)
		require.ErrorIs(t, err, warehouse.ErrSQL, sql)
		require.ErrorContains(t, err, `column "ends_at": an infinite`)
	}
	// The connection is left usable.
	got, err := queryOne(t, w, "SELECT 1")
	require.NoError(t, err)
	require.Equal(t, []any{int64(1)}, got)
}

func TestModelsAreReadOnly(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	exec(t, h.dsn, "CREATE SEQUENCE seq", "CREATE TABLE t (x int)", "INSERT INTO t VALUES (1)")
	w := h.Warehouse(t)
	// CheckModel cannot see these writes; the READ ONLY transaction stops
	// them.
	for _, sql := range []string{
		"SELECT nextval('seq')",
		"SELECT x FROM t FOR UPDATE",
	} {
		_, err := queryOne(t, w, sql)
		require.ErrorIs(t, err, warehouse.ErrInvalidModel, sql)
		require.ErrorContains(t, err, "models are read-only")
		require.ErrorContains(t, err, "models/t.sql")
	}
}

func TestSQLErrorPosition(t *testing.T) {
	t.Parallel()
	w := newHarness(t).Warehouse(t)
	// Postgres counts characters, not bytes: "é" is one.
	_, err := queryOne(t, w, "SELECT 'é',\n  emial FROM (SELECT 1 AS email) u")
	var we *warehouse.Error
	require.ErrorAs(t, err, &we)
	require.ErrorIs(t, err, warehouse.ErrSQL)
	require.Equal(t, 2, we.Line)
	require.Equal(t, 3, we.Column)
	require.Equal(t, `postgres: SQL error in models/t.sql at line 2, column 3: column "emial" does not exist`+
		` (hint: Perhaps you meant to reference the column "u.email".)`, err.Error())
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	base := pgtest.BaseURL(t)
	withUserAndPort := func(user, port string) string {
		u, err := url.Parse(base)
		require.NoError(t, err)
		u.User = url.UserPassword(user, "s3cret-pw")
		if port != "" {
			u.Host = u.Hostname() + ":" + port
		}
		return u.String()
	}
	for _, tc := range []struct {
		name string
		dsn  string
		kind error
	}{
		{"connection refused", withUserAndPort("postgres", "1"), warehouse.ErrConnect},
		{"unknown role", withUserAndPort("listsync_no_such_role", ""), warehouse.ErrAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, err := postgres.New(t.Context(), postgres.Config{DSN: tc.dsn})
			require.NoError(t, err)
			defer w.Close()
			err = w.Ping(t.Context())
			require.ErrorIs(t, err, tc.kind)
			require.NotContains(t, err.Error(), "s3cret-pw")
			_, err = queryOne(t, w, "SELECT 1")
			require.ErrorIs(t, err, tc.kind)
			require.ErrorContains(t, err, "models/t.sql")
			require.NotContains(t, err.Error(), "s3cret-pw")
		})
	}

	t.Run("unparseable DSN", func(t *testing.T) {
		t.Parallel()
		for _, dsn := range []string{
			"postgres://u:s3cret-pw@host:notaport/db",
			"host=x password=s3cret-pw port=notaport",
			"",
		} {
			_, err := postgres.New(t.Context(), postgres.Config{DSN: dsn})
			require.ErrorIs(t, err, warehouse.ErrConnect)
			require.NotContains(t, err.Error(), "s3cret-pw")
		}
	})
}

func TestPermissionDenied(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u, err := url.Parse(h.dsn)
	require.NoError(t, err)
	schema := u.Query().Get("search_path")
	role := "wt_noperm_" + strings.TrimPrefix(schema, "lstest_")
	exec(t, h.dsn, "CREATE TABLE secrets (email text)")
	conn, err := pgx.Connect(t.Context(), h.dsn)
	require.NoError(t, err)
	_, err = conn.Exec(t.Context(), "CREATE ROLE "+role+" LOGIN")
	_ = conn.Close(t.Context())
	if err != nil && strings.Contains(err.Error(), "42501") {
		t.Skipf("the test database's user cannot create roles: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		conn, err := pgx.Connect(ctx, h.dsn)
		if err == nil {
			_, _ = conn.Exec(ctx, "DROP ROLE IF EXISTS "+role)
			_ = conn.Close(ctx)
		}
	})
	u.User = url.User(role)
	w, err := postgres.New(t.Context(), postgres.Config{DSN: u.String()})
	require.NoError(t, err)
	defer w.Close()
	_, err = queryOne(t, w, "SELECT email FROM "+schema+".secrets")
	require.ErrorIs(t, err, warehouse.ErrPermission)
	require.ErrorContains(t, err, "permission denied")
}

// TestCancelStopsTheServer checks that cancelling a model's context stops
// the query on the server, not just the client's wait for it.
func TestCancelStopsTheServer(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	w := h.Warehouse(t)
	const marker = "wt_cancel_marker"
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	rows, err := w.Query(ctx, &warehouse.QueryParams{SQL: "SELECT pg_sleep(60) AS " + marker, Model: "models/sleep.sql"})
	if err == nil {
		rows.Close()
	}
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, time.Since(start), 30*time.Second)

	conn, err := pgx.Connect(t.Context(), h.dsn)
	require.NoError(t, err)
	defer conn.Close(context.WithoutCancel(t.Context()))
	require.Eventually(t, func() bool {
		var n int
		err := conn.QueryRow(t.Context(),
			"SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%'||$1||'%' AND pid <> pg_backend_pid()",
			marker).Scan(&n)
		return err == nil && n == 0
	}, 10*time.Second, 50*time.Millisecond, "the canceled query is still running on the server")
}

func TestQueryTimeoutMessage(t *testing.T) {
	t.Parallel()
	w := newHarness(t).Warehouse(t)
	rows, err := w.Query(t.Context(), &warehouse.QueryParams{SQL: "SELECT pg_sleep(60)", Model: "models/slow.sql", Timeout: 200 * time.Millisecond})
	if err == nil {
		rows.Close()
	}
	require.ErrorIs(t, err, warehouse.ErrTimeout)
	require.EqualError(t, err, "postgres: timed out running models/slow.sql: canceling statement due to statement timeout")
}

func BenchmarkRead1M(b *testing.B) {
	warehousetest.BenchmarkRead(b, newHarness(b), 1_000_000)
}
