package sqlite_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/listsync/listsync/internal/warehouse"
	"github.com/listsync/listsync/internal/warehouse/sqlite"
	"github.com/listsync/listsync/internal/warehouse/warehousetest"
)

// harness serves warehousetest datasets from tables in a database file in
// a temporary directory, written through a separate read-write handle.
type harness struct {
	path string
}

var (
	_ warehousetest.Harness     = (*harness)(nil)
	_ warehousetest.SlowQuerier = (*harness)(nil)
)

func newHarness(t testing.TB) *harness {
	t.Helper()
	h := &harness{path: filepath.Join(t.TempDir(), "warehouse.db")}
	db := h.writer(t)
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), "PRAGMA journal_mode=WAL"); err != nil {
		t.Fatalf("creating %s: %v", h.path, err)
	}
	return h
}

// writer opens the database for writing, as the demo's seeding does.
func (h *harness) writer(t testing.TB) *sql.DB {
	t.Helper()
	uri := "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(h.path)
	db, err := sql.Open("sqlite", uri)
	if err != nil {
		t.Fatalf("opening %s: %v", h.path, err)
	}
	return db
}

func (h *harness) Warehouse(t testing.TB) warehouse.Warehouse {
	t.Helper()
	w, err := sqlite.New(t.Context(), sqlite.Config{Path: h.path, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatalf("opening warehouse: %v", err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

var sqliteTypes = map[warehousetest.ColumnType]string{
	warehousetest.TypeString:  "TEXT",
	warehousetest.TypeInt64:   "INTEGER",
	warehousetest.TypeFloat64: "REAL",
	warehousetest.TypeBool:    "BOOLEAN",
	warehousetest.TypeTime:    "TIMESTAMP",
}

// Dataset inserts ds's rows into a table named ds.Name in one transaction
// and selects them in order of a hidden row number.
func (h *harness) Dataset(t testing.TB, ds warehousetest.Dataset) string {
	t.Helper()
	ctx := t.Context()
	db := h.writer(t)
	defer db.Close()
	defs := []string{"wt_ord INTEGER PRIMARY KEY"}
	names := []string{"wt_ord"}
	quoted := make([]string, len(ds.Columns))
	for i, c := range ds.Columns {
		quoted[i] = `"` + c.Name + `"`
		defs = append(defs, quoted[i]+" "+sqliteTypes[c.Type])
		names = append(names, quoted[i])
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %s (%s)", ds.Name, strings.Join(defs, ", "))); err != nil {
		t.Fatalf("creating table %s: %v", ds.Name, err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatalf("loading %s: %v", ds.Name, err)
	}
	defer func() { _ = tx.Rollback() }()
	// Many rows per INSERT: under the race detector the cost is per
	// statement more than per row.
	const batch = 100
	placeholders := "(?" + strings.Repeat(", ?", len(ds.Columns)) + ")"
	insert := func(n int) *sql.Stmt {
		stmt, err := tx.PrepareContext(ctx, fmt.Sprintf("INSERT INTO %s (%s) VALUES %s%s",
			ds.Name, strings.Join(names, ", "), placeholders, strings.Repeat(", "+placeholders, n-1)))
		if err != nil {
			t.Fatalf("loading %s: %v", ds.Name, err)
		}
		return stmt
	}
	full := insert(batch)
	defer full.Close()
	args := make([]any, 0, batch*(len(ds.Columns)+1))
	for start := 0; start < ds.Rows; start += batch {
		n := min(batch, ds.Rows-start)
		args = args[:0]
		for i := start; i < start+n; i++ {
			args = append(append(args, int64(i)), ds.Row(i)...)
		}
		stmt := full
		if n < batch {
			stmt = insert(n)
			defer stmt.Close()
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			t.Fatalf("loading rows %d to %d of %s: %v", start, start+n-1, ds.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("loading %s: %v", ds.Name, err)
	}
	return fmt.Sprintf("SELECT %s FROM %s ORDER BY wt_ord", strings.Join(quoted, ", "), ds.Name)
}

func (h *harness) BadSQL(testing.TB) warehousetest.BadQuery {
	return warehousetest.BadQuery{
		SQL:     "SELECT id,\n       email\nFROM no_such_table",
		Message: "no such table: no_such_table",
	}
}

// SlowSQL counts forever; only an interrupt stops it.
func (h *harness) SlowSQL(testing.TB) string {
	return "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c"
}
