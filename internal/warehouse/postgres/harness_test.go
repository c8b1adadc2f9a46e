package postgres_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap/zaptest"

	"github.com/listsync/listsync/internal/pgtest"
	"github.com/listsync/listsync/internal/warehouse"
	"github.com/listsync/listsync/internal/warehouse/postgres"
	"github.com/listsync/listsync/internal/warehouse/warehousetest"
)

// harness serves warehousetest datasets from tables in a private schema of
// the machine's Postgres.
type harness struct {
	dsn string
}

var (
	_ warehousetest.Harness     = (*harness)(nil)
	_ warehousetest.SlowQuerier = (*harness)(nil)
)

func newHarness(t testing.TB) *harness {
	t.Helper()
	return &harness{dsn: pgtest.DSN(t)}
}

func (h *harness) Warehouse(t testing.TB) warehouse.Warehouse {
	t.Helper()
	w, err := postgres.New(t.Context(), postgres.Config{DSN: h.dsn, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatalf("opening warehouse: %v", err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

var pgTypes = map[warehousetest.ColumnType]string{
	warehousetest.TypeString:  "text",
	warehousetest.TypeInt64:   "bigint",
	warehousetest.TypeFloat64: "double precision",
	warehousetest.TypeBool:    "boolean",
	warehousetest.TypeTime:    "timestamptz",
}

// Dataset loads ds into a table named ds.Name with COPY, generating the
// rows as COPY consumes them, and selects them in order of a hidden row
// number.
func (h *harness) Dataset(t testing.TB, ds warehousetest.Dataset) string {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, h.dsn)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer conn.Close(ctx)
	defs := []string{"wt_ord bigint PRIMARY KEY"}
	names := []string{"wt_ord"}
	quoted := make([]string, len(ds.Columns))
	for i, c := range ds.Columns {
		defs = append(defs, pgx.Identifier{c.Name}.Sanitize()+" "+pgTypes[c.Type])
		names = append(names, c.Name)
		quoted[i] = pgx.Identifier{c.Name}.Sanitize()
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (%s)", ds.Name, strings.Join(defs, ", "))); err != nil {
		t.Fatalf("creating table %s: %v", ds.Name, err)
	}
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i >= ds.Rows {
			return nil, nil
		}
		row := append([]any{int64(i)}, ds.Row(i)...)
		i++
		return row, nil
	})
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{ds.Name}, names, src); err != nil {
		t.Fatalf("loading %s: %v", ds.Name, err)
	}
	if _, err := conn.Exec(ctx, "ANALYZE "+ds.Name); err != nil {
		t.Fatalf("analyzing %s: %v", ds.Name, err)
	}
	return fmt.Sprintf("SELECT %s FROM %s ORDER BY wt_ord", strings.Join(quoted, ", "), ds.Name)
}

func (h *harness) BadSQL(testing.TB) warehousetest.BadQuery {
	return warehousetest.BadQuery{
		SQL:     "SELECT id,\n       email\nFROM no_such_table",
		Message: `relation "no_such_table" does not exist`,
		Line:    3,
		Column:  6,
	}
}

func (h *harness) SlowSQL(testing.TB) string { return "SELECT pg_sleep(60)" }
