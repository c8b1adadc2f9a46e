package warehousetest

import (
	"runtime"
	"testing"

	"github.com/listsync/listsync/internal/warehouse"
)

// BenchmarkRead measures reading a result of rows rows shaped like a typical
// model (an email key, a name that is NULL in one row of ten, an integer, a
// float, a bool and a timestamp) through a warehouse from h. Besides the
// usual figures it reports "rows/s" and "peak-heap-MiB", the largest heap in
// use (live and not yet collected) sampled every 50,000 rows. For a protocol
// fake the heap includes the fake server, which runs in the same process.
// Loading the dataset is not timed.
func BenchmarkRead(b *testing.B, h Harness, rows int) {
	ds := benchDataset("wt_bench", rows)
	sql := h.Dataset(b, ds)
	w := h.Warehouse(b)
	p := &warehouse.QueryParams{SQL: sql, Model: "models/bench.sql"}
	var ms runtime.MemStats
	var peak uint64
	b.ReportAllocs()
	for b.Loop() {
		r, err := w.Query(b.Context(), p)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for r.Next() {
			if len(r.Values()) != len(ds.Columns) {
				b.Fatalf("row %d has %d values, want %d", n, len(r.Values()), len(ds.Columns))
			}
			n++
			if n%50_000 == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
		if err := r.Err(); err != nil {
			b.Fatal(err)
		}
		if err := r.Close(); err != nil {
			b.Fatal(err)
		}
		if n != rows {
			b.Fatalf("read %d rows, want %d", n, rows)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(mib(peak), "peak-heap-MiB")
}
