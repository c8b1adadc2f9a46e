package marketo_test

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/marketo/emulator"
	"github.com/listsync/listsync/internal/memsample"
)

// benchFieldNames are the fields of the full bench's model (bench/pgdata.go).
var benchFieldNames = []string{"firstName", "lastName", "company"}

// benchLeads returns n new leads shaped like the full bench's rows: an
// email and three short fields, about 70 bytes of CSV a row.
func benchLeads(n int) []marketo.Lead {
	first := []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret"}
	last := []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton"}
	company := []string{"Initech", "Globex Corporation", "Umbrella", "Stark Industries", "Wayne Enterprises"}
	out := make([]marketo.Lead, n)
	for i := range out {
		f, l := first[i%len(first)], last[(i/7)%len(last)]
		out[i] = benchLead(f+"."+l+strconv.Itoa(i)+"@example.com", f, l, company[(i/3)%len(company)])
	}
	return out
}

func benchLead(key, first, last, company string) marketo.Lead {
	return marketo.Lead{Key: key, Values: []string{first, last, company}}
}

// BenchmarkAddBulk100k measures the memory of AddToList importing 100,000
// new leads with three fields (one import file, as in the full bench's first
// sync) into the project's emulator with instant imports. The emulator runs
// in the same process, so its own memory (it parses the file and keeps the
// leads) is counted too: the figures are an upper bound of the client's.
//
// It reports the peak heap in use (live data and garbage not yet
// collected, what the process's RSS follows) and the peak live heap (as
// marked by a GC), both above the heap in use before the call, which holds
// the caller's leads (peak-heap-MB, peak-live-MB), and the leads' own size
// (leads-MB). The emulators of earlier iterations live on until the end of
// the benchmark, in the heap before the call.
//
// Run with: go test -run '^$' -bench AddBulk100k -benchtime 3x ./internal/marketo/
func BenchmarkAddBulk100k(b *testing.B) {
	const n = 100_000
	runtime.GC()
	before := memsample.HeapInuse()
	leads := benchLeads(n)
	runtime.GC()
	leadsMB := float64(max(memsample.HeapInuse(), before)-before) / (1 << 20)
	var peakInuse, peakLive float64
	for b.Loop() {
		b.StopTimer()
		bd := setup(b, options{em: emulator.Config{ImportRowsPerSec: -1}})
		c, list := bd.c, bd.em.CreateStaticList("L", bd.em.CreateFolder("F"))
		runtime.GC()
		base := memsample.HeapInuse()
		outs := 0
		commit := func(_ context.Context, o []marketo.Outcome) error { outs += len(o); return nil }
		peak := memsample.Start(2 * time.Millisecond)
		b.StartTimer()
		err := c.AddToList(b.Context(), marketo.AddParams{ListID: list, FieldNames: benchFieldNames, Leads: leads}, commit)
		b.StopTimer()
		pk := peak()
		require.NoError(b, err)
		require.Equal(b, n, outs)
		runtime.KeepAlive(leads)
		peakInuse = max(peakInuse, float64(pk.Inuse-min(pk.Inuse, base))/(1<<20))
		peakLive = max(peakLive, float64(pk.Live-min(pk.Live, base))/(1<<20))
		b.StartTimer()
	}
	b.ReportMetric(peakInuse, "peak-heap-MB")
	b.ReportMetric(peakLive, "peak-live-MB")
	b.ReportMetric(leadsMB, "leads-MB")
}
