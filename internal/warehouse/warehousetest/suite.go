package warehousetest

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/warehouse"
)

const (
	// largeRows is the row count of the streaming case.
	largeRows = 100_000
	// smallRows is the row count the streaming case compares it with.
	smallRows = 10_000
	// maxHeapGrowth bounds how much more live heap streaming largeRows
	// rows may use than streaming smallRows rows.
	maxHeapGrowth = 20 << 20
	// hangGuard bounds operations that must be prompt. It only catches
	// hangs: it is far longer than any correct backend needs.
	hangGuard = 30 * time.Second
)

// Exercise runs the conformance suite against the warehouse h provides, as
// subtests of t. The package documentation lists the cases and the contract
// h must meet.
func Exercise(t *testing.T, h Harness) {
	t.Helper()
	s := &suite{h: h}
	// The 100,000-row dataset serves several cases. It is loaded here, on
	// t, so that it lives until the last case and so that a harness that
	// fails to load it fails t from t's own goroutine.
	s.large = wideDataset("wt_large", largeRows)
	s.largeSQL = h.Dataset(t, s.large)
	t.Run("Ping", s.testPing)
	t.Run("TypesAndNulls", s.testTypes)
	t.Run("SingleValuesAndText", s.testSingleValues)
	t.Run("ColumnOrder", s.testColumnOrder)
	t.Run("EmptyResult", s.testEmpty)
	t.Run("StreamLarge", s.testStreamLarge)
	t.Run("CancelMidway", s.testCancel)
	t.Run("CloseEarly", s.testCloseEarly)
	t.Run("SQLError", s.testSQLError)
	t.Run("RefusedModels", s.testRefused)
	t.Run("CloseIdempotent", s.testCloseIdempotent)
	t.Run("Concurrent", s.testConcurrent)
	t.Run("Timeout", s.testTimeout)
}

type suite struct {
	h        Harness
	usable   atomic.Int64
	large    Dataset
	largeSQL string
}

// largeDataset returns the 100,000-row dataset and its SQL.
func (s *suite) largeDataset() (Dataset, string) { return s.large, s.largeSQL }

func (s *suite) testPing(t *testing.T) {
	w := s.h.Warehouse(t)
	require.NoError(t, w.Ping(t.Context()))
}

func (s *suite) testTypes(t *testing.T) {
	ds := typesDataset("wt_types")
	sql := s.h.Dataset(t, ds)
	w := s.h.Warehouse(t)
	cols, rows := readAll(t, w, &warehouse.QueryParams{SQL: sql, Model: "models/types.sql"})
	requireColumns(t, ds, cols)
	requireRows(t, ds, rows)
}

// testSingleValues reads the types dataset one value at a time, through
// warehouse.TextRows as the engine does, last column first: every value must
// be the one Values gives, and text handed out as bytes must be exactly a
// string value's.
func (s *suite) testSingleValues(t *testing.T) {
	ds := typesDataset("wt_single")
	sql := s.h.Dataset(t, ds)
	w := s.h.Warehouse(t)
	rows, err := w.Query(t.Context(), &warehouse.QueryParams{SQL: sql, Model: "models/single.sql"})
	require.NoError(t, err)
	defer rows.Close()
	tr, ok := rows.(warehouse.TextRows)
	if !ok {
		t.Skip("the backend's rows do not implement warehouse.TextRows; readers use Values")
	}
	cols := rows.Columns()
	var got [][]any
	for rows.Next() {
		row := make([]any, len(cols))
		for i := len(cols) - 1; i >= 0; i-- {
			row[i] = tr.Value(i)
			b, ok := tr.Text(i)
			if ok {
				require.Equal(t, row[i], string(b), "column %s: Text and Value agree", cols[i])
			}
			if tr.IsText(i) {
				require.Equal(t, row[i] != nil, ok, "column %s is text: Text gives every non-NULL value", cols[i])
			}
		}
		require.Equal(t, row, rows.Values(), "Value and Values agree")
		got = append(got, row)
	}
	require.NoError(t, rows.Err())
	requireRows(t, ds, got)
}

func (s *suite) testColumnOrder(t *testing.T) {
	ds := orderDataset("wt_order")
	sql := s.h.Dataset(t, ds)
	w := s.h.Warehouse(t)
	cols, rows := readAll(t, w, &warehouse.QueryParams{SQL: sql, Model: "models/order.sql"})
	requireColumns(t, ds, cols)
	requireRows(t, ds, rows)
}

func (s *suite) testEmpty(t *testing.T) {
	ds := typesDataset("wt_empty")
	ds.Rows = 0
	sql := s.h.Dataset(t, ds)
	w := s.h.Warehouse(t)
	rows, err := w.Query(t.Context(), &warehouse.QueryParams{SQL: sql, Model: "models/empty.sql"})
	require.NoError(t, err)
	defer rows.Close()
	requireColumns(t, ds, rows.Columns())
	require.False(t, rows.Next(), "an empty result has no rows")
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
}

func (s *suite) testStreamLarge(t *testing.T) {
	large, largeSQL := s.largeDataset()
	small := wideDataset("wt_small", smallRows)
	smallSQL := s.h.Dataset(t, small)
	w := s.h.Warehouse(t)

	// Warm up connections, caches and pools so that they count in neither
	// measurement.
	streamPeak(t, w, smallSQL, small)
	smallPeak := streamPeak(t, w, smallSQL, small)
	largePeak := streamPeak(t, w, largeSQL, large)
	t.Logf("live heap growth while streaming: %d rows %.1f MiB, %d rows %.1f MiB",
		small.Rows, mib(smallPeak), large.Rows, mib(largePeak))
	if largePeak > smallPeak && largePeak-smallPeak > maxHeapGrowth {
		t.Fatalf("streaming %d rows used %.1f MiB more live heap than streaming %d rows (limit %.0f MiB): rows are being buffered instead of streamed",
			large.Rows, mib(largePeak-smallPeak), small.Rows, mib(maxHeapGrowth))
	}
}

// streamPeak reads every row of sql, checks it against ds, and returns the
// largest growth of the live heap over its level before the query, sampled
// after a collection every 5,000 rows.
func streamPeak(t *testing.T, w warehouse.Warehouse, sql string, ds Dataset) uint64 {
	t.Helper()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc

	rows, err := w.Query(t.Context(), &warehouse.QueryParams{SQL: sql, Model: "models/stream.sql"})
	require.NoError(t, err)
	defer rows.Close()
	requireColumns(t, ds, rows.Columns())
	n := 0
	for rows.Next() {
		if n >= ds.Rows {
			t.Fatalf("the result has more than the %d rows of the dataset", ds.Rows)
		}
		requireRow(t, ds, n, rows.Values())
		n++
		if n%5000 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	require.NoError(t, rows.Err())
	require.Equal(t, ds.Rows, n, "row count")
	require.NoError(t, rows.Close())
	return peak - base
}

func (s *suite) testCancel(t *testing.T) {
	large, largeSQL := s.largeDataset()
	w := s.h.Warehouse(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rows, err := w.Query(ctx, &warehouse.QueryParams{SQL: largeSQL, Model: "models/cancel.sql"})
	require.NoError(t, err)
	defer rows.Close()
	for i := range 1000 {
		require.True(t, rows.Next(), "row %d: %v", i, rows.Err())
		requireRow(t, large, i, rows.Values())
	}
	cancel()
	require.False(t, rows.Next(), "Next must return false once the query's context is canceled")
	err = rows.Err()
	require.Error(t, err, "Err must report the cancellation")
	require.ErrorIs(t, err, context.Canceled)
	within(t, "Rows.Close after cancellation", func() { _ = rows.Close() })

	requireUsable(t, s, w)
}

func (s *suite) testCloseEarly(t *testing.T) {
	large, largeSQL := s.largeDataset()
	w := s.h.Warehouse(t)
	for range 2 {
		rows, err := w.Query(t.Context(), &warehouse.QueryParams{SQL: largeSQL, Model: "models/early.sql"})
		require.NoError(t, err)
		for i := range 10 {
			require.True(t, rows.Next(), "row %d: %v", i, rows.Err())
			requireRow(t, large, i, rows.Values())
		}
		within(t, "Rows.Close before the end of the result", func() { err = rows.Close() })
		require.NoError(t, err)
		require.False(t, rows.Next(), "Next after Close")
	}
	requireUsable(t, s, w)
}

func (s *suite) testSQLError(t *testing.T) {
	bq := s.h.BadSQL(t)
	require.NoError(t, warehouse.CheckModel(bq.SQL), "BadSQL must pass CheckModel so that it reaches the warehouse")
	w := s.h.Warehouse(t)
	const model = "models/bad.sql"
	err := queryErr(t, w, &warehouse.QueryParams{SQL: bq.SQL, Model: model})
	require.Error(t, err, "the warehouse must reject %q", bq.SQL)
	require.ErrorIs(t, err, warehouse.ErrSQL)
	var we *warehouse.Error
	require.ErrorAs(t, err, &we)
	require.Equal(t, model, we.Model)
	require.NotEmpty(t, we.Warehouse, "Error.Warehouse names the backend")
	require.Contains(t, we.Message, bq.Message, "Error.Message carries the warehouse's own message")
	require.Contains(t, err.Error(), model, "the message names the model")
	if bq.Line > 0 {
		require.Equal(t, [2]int{bq.Line, bq.Column}, [2]int{we.Line, we.Column}, "line and column of the error in %s", err)
	}
	requireUsable(t, s, w)
}

func (s *suite) testRefused(t *testing.T) {
	ds := orderDataset("wt_refuse")
	sql := s.h.Dataset(t, ds)
	w := s.h.Warehouse(t)
	models := map[string]string{
		"two statements":       "SELECT 1; SELECT 2",
		"harness SQL and more": sql + "; DROP TABLE wt_refuse",
		"delete":               "DELETE FROM wt_refuse",
		"insert":               "INSERT INTO wt_refuse SELECT * FROM wt_refuse",
		"data-modifying CTE":   "WITH gone AS (DELETE FROM wt_refuse RETURNING *) SELECT count(*) FROM gone",
		"select into":          "SELECT * INTO wt_refuse_copy FROM wt_refuse",
		"empty":                "",
		"only a comment":       "  -- nothing here\n",
	}
	for name, sql := range models {
		model := "models/" + strings.ReplaceAll(name, " ", "_") + ".sql"
		rows, err := w.Query(t.Context(), &warehouse.QueryParams{SQL: sql, Model: model})
		if err == nil {
			_ = rows.Close()
			t.Fatalf("%s: Query accepted %q", name, sql)
		}
		require.ErrorIs(t, err, warehouse.ErrInvalidModel, "%s: %q", name, sql)
		require.Contains(t, err.Error(), model, "%s: the error names the model", name)
	}
	_, got := readAll(t, w, &warehouse.QueryParams{SQL: sql, Model: "models/after.sql"})
	require.Len(t, got, ds.Rows, "the refused models must not have reached the warehouse")
}

func (s *suite) testCloseIdempotent(t *testing.T) {
	ds := orderDataset("wt_close")
	sql := s.h.Dataset(t, ds)
	w := s.h.Warehouse(t)
	p := &warehouse.QueryParams{SQL: sql, Model: "models/close.sql"}
	rows, err := w.Query(t.Context(), p)
	require.NoError(t, err)
	require.True(t, rows.Next(), "%v", rows.Err())
	require.NoError(t, rows.Close())
	require.NoError(t, rows.Close(), "a second Rows.Close")
	require.False(t, rows.Next(), "Next after Close")

	require.NoError(t, w.Close())
	require.NoError(t, w.Close(), "a second Warehouse.Close")
	within(t, "Query on a closed warehouse", func() { err = queryErr(t, w, p) })
	require.Error(t, err, "a query on a closed warehouse must fail")
}

func (s *suite) testConcurrent(t *testing.T) {
	ds := wideDataset("wt_concurrent", 5000)
	sql := s.h.Dataset(t, ds)
	w := s.h.Warehouse(t)
	const readers = 4
	errs := make(chan error, readers)
	for r := range readers {
		go func() {
			errs <- readCheck(t.Context(), w, sql, ds, fmt.Sprintf("models/concurrent_%d.sql", r))
		}()
	}
	for range readers {
		require.NoError(t, <-errs)
	}
}

// readCheck reads every row of sql and checks it against ds, for use off
// the test's goroutine.
func readCheck(ctx context.Context, w warehouse.Warehouse, sql string, ds Dataset, model string) error {
	rows, err := w.Query(ctx, &warehouse.QueryParams{SQL: sql, Model: model})
	if err != nil {
		return err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		if n >= ds.Rows {
			return fmt.Errorf("%s: more than %d rows", model, ds.Rows)
		}
		if err := checkRow(ds, n, rows.Values()); err != nil {
			return fmt.Errorf("%s: %w", model, err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if n != ds.Rows {
		return fmt.Errorf("%s: got %d rows, want %d", model, n, ds.Rows)
	}
	return rows.Close()
}

func (s *suite) testTimeout(t *testing.T) {
	sq, ok := s.h.(SlowQuerier)
	if !ok {
		t.Skip("the harness provides no slow query (SlowQuerier)")
	}
	sql := sq.SlowSQL(t)
	w := s.h.Warehouse(t)
	p := &warehouse.QueryParams{SQL: sql, Model: "models/slow.sql", Timeout: 500 * time.Millisecond}
	var err error
	within(t, "a query with a 500ms timeout", func() { err = queryErr(t, w, p) })
	require.Error(t, err, "the slow query must be stopped by its timeout")
	require.ErrorIs(t, err, warehouse.ErrTimeout)
	require.Contains(t, err.Error(), "models/slow.sql")
	requireUsable(t, s, w)
}

// requireUsable checks that w still runs a query, after a failure or a
// cancellation left one of its connections in an unusual state.
func requireUsable(t *testing.T, s *suite, w warehouse.Warehouse) {
	t.Helper()
	ds := orderDataset(fmt.Sprintf("wt_usable_%d", s.usable.Add(1)))
	sql := s.h.Dataset(t, ds)
	for range 3 { // more than once, to cycle through a small pool
		_, rows := readAll(t, w, &warehouse.QueryParams{SQL: sql, Model: "models/usable.sql"})
		requireRows(t, ds, rows)
	}
}

// queryErr runs p and returns the error Query or the Rows report.
func queryErr(t *testing.T, w warehouse.Warehouse, p *warehouse.QueryParams) error {
	t.Helper()
	rows, err := w.Query(t.Context(), p)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}

// readAll runs p and returns its columns and a copy of every row.
func readAll(t *testing.T, w warehouse.Warehouse, p *warehouse.QueryParams) ([]string, [][]any) {
	t.Helper()
	rows, err := w.Query(t.Context(), p)
	require.NoError(t, err, "running %s", p.Model)
	defer rows.Close()
	cols := append([]string(nil), rows.Columns()...)
	var out [][]any
	for rows.Next() {
		vals := rows.Values()
		require.Len(t, vals, len(cols), "values per row")
		out = append(out, append([]any(nil), vals...))
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	return cols, out
}

func requireColumns(t *testing.T, ds Dataset, got []string) {
	t.Helper()
	want := make([]string, len(ds.Columns))
	for i, c := range ds.Columns {
		want[i] = c.Name
	}
	lower := make([]string, len(got))
	for i, c := range got {
		lower[i] = strings.ToLower(c)
	}
	require.Equal(t, want, lower, "column names in order")
}

func requireRows(t *testing.T, ds Dataset, got [][]any) {
	t.Helper()
	require.Len(t, got, ds.Rows, "row count")
	for i, row := range got {
		requireRow(t, ds, i, row)
	}
}

func requireRow(t *testing.T, ds Dataset, i int, got []any) {
	t.Helper()
	if err := checkRow(ds, i, got); err != nil {
		t.Fatal(err)
	}
}

// checkRow compares row i of a result with row i of ds: the same values of
// exactly the same Go types, times as the same instant in UTC.
func checkRow(ds Dataset, i int, got []any) error {
	want := ds.Row(i)
	if len(got) != len(want) {
		return fmt.Errorf("row %d: %d values, want %d", i, len(got), len(want))
	}
	for j := range want {
		if !sameValue(want[j], got[j]) {
			return fmt.Errorf("row %d, column %q (%s): got %#v (%T), want %#v (%T)",
				i, ds.Columns[j].Name, ds.Columns[j].Type, got[j], got[j], want[j], want[j])
		}
	}
	return nil
}

func sameValue(want, got any) bool {
	switch w := want.(type) {
	case nil:
		return got == nil
	case time.Time:
		g, ok := got.(time.Time)
		return ok && g.Equal(w) && g.Location() == time.UTC
	case float64:
		g, ok := got.(float64)
		return ok && (g == w || (math.IsNaN(g) && math.IsNaN(w)))
	default:
		return want == got
	}
}

// within runs fn and fails t if it does not return within hangGuard. fn
// runs on another goroutine, so it must not call t.FailNow (require).
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(hangGuard):
		t.Fatalf("%s did not return within %s", what, hangGuard)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
