package sqlite_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/listsync/listsync/internal/warehouse"
	"github.com/listsync/listsync/internal/warehouse/sqlite"
	"github.com/listsync/listsync/internal/warehouse/warehousetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	t.Parallel()
	warehousetest.Exercise(t, newHarness(t))
}

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
	db := h.writer(t)
	_, err := db.ExecContext(t.Context(), `CREATE TABLE v (
		b BOOLEAN, d DATE, dt DATETIME, ts TIMESTAMP, n NUMERIC, blob BLOB, anything)`)
	require.NoError(t, err)
	_, err = db.ExecContext(t.Context(), `INSERT INTO v VALUES
		(1, '2024-02-29', '2024-02-29 13:45:30', '2024-02-29T13:45:30.5+02:00', 12.5, x'6869', 'free')`)
	require.NoError(t, err)
	_, err = db.ExecContext(t.Context(), `INSERT INTO v VALUES (0, 'not a date', NULL, NULL, 7, NULL, 3)`)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	w := h.Warehouse(t)
	for _, tc := range []struct {
		sql  string
		want any
	}{
		{"SELECT 1", int64(1)},
		{"SELECT 1.5", 1.5},
		{"SELECT 'x'", "x"},
		{"SELECT x'6869'", "hi"},
		{"SELECT NULL", nil},
		{"SELECT 9223372036854775807", int64(math.MaxInt64)},
		{"SELECT b FROM v WHERE rowid = 1", true},
		{"SELECT b FROM v WHERE rowid = 2", false},
		{"SELECT d FROM v WHERE rowid = 1", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"SELECT d FROM v WHERE rowid = 2", "not a date"},
		{"SELECT dt FROM v WHERE rowid = 1", time.Date(2024, 2, 29, 13, 45, 30, 0, time.UTC)},
		{"SELECT ts FROM v WHERE rowid = 1", time.Date(2024, 2, 29, 11, 45, 30, 500_000_000, time.UTC)},
		{"SELECT n FROM v WHERE rowid = 1", 12.5},
		{"SELECT n FROM v WHERE rowid = 2", int64(7)},
		{"SELECT blob FROM v WHERE rowid = 1", "hi"},
		{"SELECT anything FROM v WHERE rowid = 1", "free"},
		{"SELECT anything FROM v WHERE rowid = 2", int64(3)},
		// An expression over a BOOLEAN column has no declared type.
		{"SELECT b + 0 FROM v WHERE rowid = 1", int64(1)},
	} {
		got, err := queryOne(t, w, tc.sql)
		require.NoError(t, err, tc.sql)
		require.Equal(t, []any{tc.want}, got, tc.sql)
		if tm, ok := got[0].(time.Time); ok {
			require.Equal(t, time.UTC, tm.Location(), tc.sql)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notDB := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(notDB, []byte("this is not a database, just some text that is long enough"), 0o600))

	_, err := sqlite.New(t.Context(), sqlite.Config{Path: filepath.Join(dir, "missing.db")})
	require.ErrorIs(t, err, warehouse.ErrConnect)
	require.ErrorContains(t, err, "missing.db does not exist")

	_, err = sqlite.New(t.Context(), sqlite.Config{Path: dir})
	require.ErrorIs(t, err, warehouse.ErrConnect)
	require.ErrorContains(t, err, "is a directory")

	_, err = sqlite.New(t.Context(), sqlite.Config{})
	require.ErrorIs(t, err, warehouse.ErrConnect)

	w, err := sqlite.New(t.Context(), sqlite.Config{Path: notDB})
	require.NoError(t, err)
	defer w.Close()
	err = w.Ping(t.Context())
	require.ErrorIs(t, err, warehouse.ErrConnect)
	require.ErrorContains(t, err, "not a database")
}

func TestMemory(t *testing.T) {
	t.Parallel()
	w, err := sqlite.New(t.Context(), sqlite.Config{Path: sqlite.MemoryPath})
	require.NoError(t, err)
	defer w.Close()
	require.NoError(t, w.Ping(t.Context()))
	got, err := queryOne(t, w, "SELECT 'a@example.com' AS email, 1 AS n")
	require.NoError(t, err)
	require.Equal(t, []any{"a@example.com", int64(1)}, got)
}

func TestPathWithURICharacters(t *testing.T) {
	t.Parallel()
	h := &harness{path: filepath.Join(t.TempDir(), "odd ?name#%20.db")}
	db := h.writer(t)
	_, err := db.ExecContext(t.Context(), "CREATE TABLE t (x INTEGER)")
	require.NoError(t, err)
	require.NoError(t, db.Close())
	w := h.Warehouse(t)
	require.NoError(t, w.Ping(t.Context()))
	_, err = queryOne(t, w, "SELECT count(*) FROM t")
	require.NoError(t, err)
	// The file the warehouse opened is the one with the odd name, not a
	// new one created beside it.
	entries, err := os.ReadDir(filepath.Dir(h.path))
	require.NoError(t, err)
	for _, e := range entries {
		require.Contains(t, e.Name(), "odd ?name#%20.db")
	}
}

func BenchmarkRead1M(b *testing.B) {
	warehousetest.BenchmarkRead(b, newHarness(b), 1_000_000)
}
