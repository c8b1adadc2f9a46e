package warehousetest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/listsync/listsync/internal/warehouse"
	"github.com/listsync/listsync/internal/warehouse/warehousetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestReferenceWarehouse runs the suite against memWarehouse, an in-memory
// warehouse that serves datasets the way a protocol fake does, to show that
// a correct backend passes.
func TestReferenceWarehouse(t *testing.T) {
	t.Parallel()
	warehousetest.Exercise(t, newMemHarness(""))
}

// TestSuiteCatchesBrokenBackends shows that the suite can fail: each broken
// variant of memWarehouse, run in a child test process, fails with the
// message that names its fault.
func TestSuiteCatchesBrokenBackends(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fault, cases, want string
	}{
		{"buffer", "StreamLarge", "rows are being buffered instead of streamed"},
		{"ignore-ctx", "CancelMidway", "Next must return false once the query's context is canceled"},
		{"float-ints", "TypesAndNulls", `column "i" (int64): got 0 (float64), want 0 (int64)`},
		{"local-time", "TypesAndNulls", `column "ts" (time)`},
		{"sorted-columns", "ColumnOrder", "column names in order"},
		{"no-check", "RefusedModels", `expected: "invalid model"`},
		{"plain-sql-error", "SQLError", "Target error should be in err chain"},
		{"close-twice-fails", "CloseIdempotent", "a second Warehouse.Close"},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBrokenBackend$/^"+tc.cases+"$", "-test.count=1")
			cmd.Env = append(os.Environ(), "WAREHOUSETEST_FAULT="+tc.fault)
			out, err := cmd.CombinedOutput()
			require.Error(t, err, "the suite passed a backend with fault %s:\n%s", tc.fault, out)
			require.Contains(t, string(out), tc.want)
		})
	}
}

// TestBrokenBackend runs the suite against the broken memWarehouse named by
// $WAREHOUSETEST_FAULT; TestSuiteCatchesBrokenBackends runs it.
func TestBrokenBackend(t *testing.T) {
	fault := os.Getenv("WAREHOUSETEST_FAULT")
	if fault == "" {
		t.Skip("run by TestSuiteCatchesBrokenBackends")
	}
	warehousetest.Exercise(t, newMemHarness(fault))
}

// memHarness registers datasets with the in-memory warehouse; like a
// protocol fake, it runs no SQL and serves each dataset's rows, generated
// on demand, for the SQL Dataset returned.
type memHarness struct {
	fault    string
	mu       stdsync.Mutex
	datasets map[string]warehousetest.Dataset
}

var _ warehousetest.SlowQuerier = (*memHarness)(nil)

const (
	badSQL  = "SELECT id,\n       email\nFROM no_such_table"
	slowSQL = "SELECT pg_sleep(60)"
)

func newMemHarness(fault string) *memHarness {
	return &memHarness{fault: fault, datasets: map[string]warehousetest.Dataset{}}
}

func (h *memHarness) Warehouse(t testing.TB) warehouse.Warehouse {
	w := &memWarehouse{h: h}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

func (h *memHarness) Dataset(_ testing.TB, ds warehousetest.Dataset) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	sql := "SELECT * FROM " + ds.Name
	h.datasets[sql] = ds
	return sql
}

func (h *memHarness) BadSQL(testing.TB) warehousetest.BadQuery {
	return warehousetest.BadQuery{SQL: badSQL, Message: `relation "no_such_table" does not exist`, Line: 3, Column: 6}
}

func (h *memHarness) SlowSQL(testing.TB) string { return slowSQL }

type memWarehouse struct {
	h      *memHarness
	mu     stdsync.Mutex
	closed bool
}

func (w *memWarehouse) Ping(context.Context) error { return nil }

func (w *memWarehouse) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed && w.h.fault == "close-twice-fails" {
		return fmt.Errorf("already closed")
	}
	w.closed = true
	return nil
}

func (w *memWarehouse) Query(ctx context.Context, p *warehouse.QueryParams) (warehouse.Rows, error) {
	if w.h.fault != "no-check" {
		if err := warehouse.CheckParams("mem", warehouse.DialectPostgres, p); err != nil {
			return nil, err
		}
	}
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return nil, warehouse.NewError(warehouse.ErrConnect, "mem", p, "the warehouse is closed", nil)
	}
	if p.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Timeout)
		defer cancel()
	}
	switch p.SQL {
	case badSQL:
		if w.h.fault == "plain-sql-error" {
			return nil, fmt.Errorf(`relation "no_such_table" does not exist`)
		}
		return nil, warehouse.NewError(warehouse.ErrSQL, "mem", p, `relation "no_such_table" does not exist`, nil).AtPosition(p.SQL, 30)
	case slowSQL:
		<-ctx.Done()
		return nil, warehouse.ContextError(ctx, "mem", p)
	}
	w.h.mu.Lock()
	ds, ok := w.h.datasets[p.SQL]
	w.h.mu.Unlock()
	if !ok {
		return nil, warehouse.NewError(warehouse.ErrSQL, "mem", p, "unknown query", nil)
	}
	cols := make([]string, len(ds.Columns))
	for i, c := range ds.Columns {
		cols[i] = strings.ToUpper(c.Name) // as Snowflake does
	}
	if w.h.fault == "sorted-columns" {
		slices.Sort(cols)
	}
	r := &memRows{ctx: ctx, fault: w.h.fault, ds: ds, cols: cols}
	if w.h.fault == "buffer" {
		for i := range ds.Rows {
			r.buffered = append(r.buffered, r.decode(ds.Row(i)))
		}
	}
	return r, nil
}

type memRows struct {
	ctx      context.Context
	fault    string
	ds       warehousetest.Dataset
	cols     []string
	i        int
	vals     []any
	buffered [][]any
	err      error
	closed   bool
}

func (r *memRows) Columns() []string { return r.cols }
func (r *memRows) Values() []any     { return r.vals }
func (r *memRows) Err() error        { return r.err }

func (r *memRows) Next() bool {
	if r.closed || r.err != nil || r.i >= r.ds.Rows {
		return false
	}
	if r.fault != "ignore-ctx" {
		if err := warehouse.ContextError(r.ctx, "mem", nil); err != nil {
			r.err = err
			return false
		}
	}
	if r.buffered != nil {
		r.vals = r.buffered[r.i]
	} else {
		r.vals = r.decode(r.ds.Row(r.i))
	}
	r.i++
	return true
}

// decode copies strings, as a driver decoding them from the wire does,
// and applies the variant's type faults.
func (r *memRows) decode(row []any) []any {
	for j, v := range row {
		switch x := v.(type) {
		case string:
			row[j] = strings.Clone(x)
		case int64:
			if r.fault == "float-ints" {
				row[j] = float64(x)
			}
		case time.Time:
			if r.fault == "local-time" {
				row[j] = x.In(time.FixedZone("X", 3600))
			}
		}
	}
	return row
}

func (r *memRows) Close() error {
	r.closed = true
	return nil
}
