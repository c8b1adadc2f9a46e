package bigquerywh_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/listsync/listsync/internal/warehouse"
	"github.com/listsync/listsync/internal/warehouse/bigquerywh"
	"github.com/listsync/listsync/internal/warehouse/bigquerywh/bigquerytest"
	"github.com/listsync/listsync/internal/warehouse/warehousetest"
)

// harness runs the conformance suite against the fake through the real
// client. The fake pages like the service (about 10 MB per page).
type harness struct {
	fake  *bigquerytest.Fake
	url   string
	quiet bool // no logger, for benchmarks
}

var (
	_ warehousetest.Harness     = (*harness)(nil)
	_ warehousetest.SlowQuerier = (*harness)(nil)
)

func newHarness(tb testing.TB, cfg bigquerytest.Config) *harness {
	fake, url := bigquerytest.NewServer(tb, cfg)
	return &harness{fake: fake, url: url}
}

func (h *harness) Warehouse(t testing.TB) warehouse.Warehouse {
	cfg := bigquerywh.Config{Project: project, Location: "US", Endpoint: h.url, NoAuth: true}
	if h.quiet {
		cfg.Logger = zap.NewNop()
	}
	return open(t, cfg)
}

var columnTypes = map[warehousetest.ColumnType]string{
	warehousetest.TypeString:  "STRING",
	warehousetest.TypeInt64:   "INTEGER",
	warehousetest.TypeFloat64: "FLOAT",
	warehousetest.TypeBool:    "BOOLEAN",
	warehousetest.TypeTime:    "TIMESTAMP",
}

func (h *harness) Dataset(t testing.TB, ds warehousetest.Dataset) string {
	schema := make([]bigquerytest.Field, len(ds.Columns))
	names := make([]string, len(ds.Columns))
	for i, c := range ds.Columns {
		typ, ok := columnTypes[c.Type]
		if !ok {
			t.Fatalf("dataset %s: no BigQuery type for column %s of type %s", ds.Name, c.Name, c.Type)
		}
		schema[i] = bigquerytest.Field{Name: c.Name, Type: typ}
		names[i] = c.Name
	}
	sql := fmt.Sprintf("SELECT %s FROM `%s.listsync_test.%s` ORDER BY row_number",
		strings.Join(names, ", "), project, ds.Name)
	h.fake.AddResult(sql, bigquerytest.Result{
		Schema:  schema,
		NumRows: int64(ds.Rows),
		Row: func(i int64, dst []any) {
			copy(dst, ds.Row(int(i)))
		},
	})
	return sql
}

func (h *harness) BadSQL(t testing.TB) warehousetest.BadQuery {
	sql := "SELECT email FORM `" + project + ".listsync_test.users`"
	h.fake.AddError(sql, bigquerytest.Error{
		Code:    400,
		Reason:  "invalidQuery",
		Message: `Syntax error: Expected end of input but got identifier "FORM" at [1:14]`,
	})
	return warehousetest.BadQuery{SQL: sql, Message: `got identifier "FORM"`, Line: 1, Column: 14}
}

func (h *harness) SlowSQL(t testing.TB) string {
	sql := "SELECT email FROM `" + project + ".listsync_test.huge_join`"
	h.fake.AddResult(sql, bigquerytest.Result{
		Schema:  []bigquerytest.Field{{Name: "email", Type: "STRING"}},
		NumRows: 1,
		Row:     func(int64, []any) {},
		Pending: math.MaxInt32, // never done
	})
	return sql
}

func TestConformance(t *testing.T) {
	warehousetest.Exercise(t, newHarness(t, bigquerytest.Config{}))
}

// BenchmarkRead reads 1,000,000 rows from the fake (not BigQuery) through
// the real client:
//
//	go test -run '^$' -bench BenchmarkRead -benchtime 3x ./internal/warehouse/bigquerywh/
func BenchmarkRead(b *testing.B) {
	for _, pageRows := range []int{0, 10_000} {
		name := "fake/pages=10MB"
		if pageRows > 0 {
			name = fmt.Sprintf("fake/pages=%drows", pageRows)
		}
		b.Run(name, func(b *testing.B) {
			h := newHarness(b, bigquerytest.Config{PageRows: pageRows})
			h.quiet = true
			warehousetest.BenchmarkRead(b, h, 1_000_000)
		})
	}
}
