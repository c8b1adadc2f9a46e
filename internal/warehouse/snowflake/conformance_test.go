package snowflake_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/listsync/listsync/internal/warehouse"
	"github.com/listsync/listsync/internal/warehouse/snowflake"
	"github.com/listsync/listsync/internal/warehouse/snowflake/snowflaketest"
	"github.com/listsync/listsync/internal/warehouse/warehousetest"
)

// harness serves the conformance suite's datasets from the fake: the real
// driver logs in, queries, downloads Arrow chunks and decodes them.
type harness struct {
	srv *snowflaketest.Server
}

var (
	_ warehousetest.Harness     = (*harness)(nil)
	_ warehousetest.SlowQuerier = (*harness)(nil)
)

func newHarness(tb testing.TB, cfg snowflaketest.Config) *harness {
	return &harness{srv: snowflaketest.NewServer(tb, cfg)}
}

func (h *harness) Warehouse(tb testing.TB) warehouse.Warehouse {
	w, err := snowflake.New(tb.Context(), snowflake.Config{
		Account:  h.srv.Account,
		User:     h.srv.User,
		Password: h.srv.Password,
		Host:     h.srv.Host,
		Port:     h.srv.Port,
		Protocol: "http",
	})
	if err != nil {
		tb.Fatalf("creating warehouse: %v", err)
	}
	tb.Cleanup(func() { _ = w.Close() })
	return w
}

// columnTypes maps the suite's logical types onto the Snowflake types a
// model would return them as.
var columnTypes = map[warehousetest.ColumnType]snowflaketest.Column{
	warehousetest.TypeString:  {Type: snowflaketest.Text},
	warehousetest.TypeInt64:   {Type: snowflaketest.Fixed, Precision: 38},
	warehousetest.TypeFloat64: {Type: snowflaketest.Real},
	warehousetest.TypeBool:    {Type: snowflaketest.Boolean},
	warehousetest.TypeTime:    {Type: snowflaketest.TimestampTZ, Scale: 6},
}

func (h *harness) Dataset(tb testing.TB, ds warehousetest.Dataset) string {
	cols := make([]snowflaketest.Column, len(ds.Columns))
	names := make([]string, len(ds.Columns))
	for i, c := range ds.Columns {
		col, ok := columnTypes[c.Type]
		if !ok {
			tb.Fatalf("no Snowflake type for %s", c.Type)
		}
		col.Name = strings.ToUpper(c.Name) // Snowflake folds unquoted names
		cols[i], names[i] = col, c.Name
	}
	sql := fmt.Sprintf("SELECT %s FROM %s ORDER BY row_number", strings.Join(names, ", "), ds.Name)
	h.srv.Register(sql, snowflaketest.Result{
		Columns: cols,
		NumRows: ds.Rows,
		Row:     func(i int, row []any) { copy(row, ds.Row(i)) },
	})
	return sql
}

func (h *harness) BadSQL(testing.TB) warehousetest.BadQuery {
	const sql = "SELECT email\nFROMM people"
	h.srv.RegisterError(sql, snowflaketest.SyntaxError(2, 0, "FROMM"))
	return warehousetest.BadQuery{SQL: sql, Message: "syntax error line 2 at position 0 unexpected 'FROMM'", Line: 2, Column: 1}
}

func (h *harness) SlowSQL(testing.TB) string {
	const sql = "SELECT email FROM huge_join"
	res := snowflaketest.Rows([]snowflaketest.Column{{Name: "EMAIL", Type: snowflaketest.Text}}, [][]any{{"a@x.com"}})
	res.Delay = time.Hour
	h.srv.Register(sql, res)
	return sql
}

// TestConformance is not parallel: the suite measures the process's heap,
// which other tests would disturb.
func TestConformance(t *testing.T) {
	// Chunks of 5,000 rows (about 2.7 MB of the suite's rows) keep the
	// chunks the reader holds small next to the 100,000-row result whose
	// memory the suite measures.
	warehousetest.Exercise(t, newHarness(t, snowflaketest.Config{ChunkRows: 5000}))
}

// BenchmarkRead reads 1,000,000 rows through the real driver from the fake,
// which runs in the same process (its work and memory count in the
// figures), in chunks of 50,000 rows.
func BenchmarkRead(b *testing.B) {
	warehousetest.BenchmarkRead(b, newHarness(b, snowflaketest.Config{ChunkRows: 50_000}), 1_000_000)
}
