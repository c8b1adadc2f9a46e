package marketo_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/marketo/emulator"
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
// sync), against two servers:
//
//   - sink: a stand-in for Marketo that reads the import file and discards
//     it, and answers the import Complete at once; the heap measured is the
//     client's alone.
//   - emulator: the project's emulator with instant imports, in the same
//     process; its own memory (it parses the file and keeps the leads) is
//     counted too.
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
	for _, server := range []string{"sink", "emulator"} {
		b.Run(server, func(b *testing.B) {
			runtime.GC()
			before := heapInuse()
			leads := benchLeads(n)
			runtime.GC()
			leadsMB := float64(max(heapInuse(), before)-before) / (1 << 20)
			var peakInuse, peakLive float64
			for b.Loop() {
				b.StopTimer()
				var c *marketo.Client
				var list int64 = 1
				if server == "sink" {
					c = sinkClient(b)
				} else {
					bd := setup(b, options{em: emulator.Config{ImportRowsPerSec: -1}})
					c, list = bd.c, bd.em.CreateStaticList("L", bd.em.CreateFolder("F"))
				}
				runtime.GC()
				base := heapInuse()
				outs := 0
				commit := func(_ context.Context, o []marketo.Outcome) error { outs += len(o); return nil }
				peak := sampleHeap()
				b.StartTimer()
				err := c.AddToList(b.Context(), marketo.AddParams{ListID: list, FieldNames: benchFieldNames, Leads: leads}, commit)
				b.StopTimer()
				inuse, live := peak()
				require.NoError(b, err)
				require.Equal(b, n, outs)
				runtime.KeepAlive(leads)
				peakInuse = max(peakInuse, float64(inuse-min(inuse, base))/(1<<20))
				peakLive = max(peakLive, float64(live-min(live, base))/(1<<20))
				b.StartTimer()
			}
			b.ReportMetric(peakInuse, "peak-heap-MB")
			b.ReportMetric(peakLive, "peak-live-MB")
			b.ReportMetric(leadsMB, "leads-MB")
		})
	}
}

func heapInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// sampleHeap samples the heap every 2 ms until the returned func is called,
// which returns the peaks, in bytes, of the heap in use and of the live heap
// (as marked by the last GC).
func sampleHeap() func() (inuse, live uint64) {
	var mu sync.Mutex
	var peakInuse, peakLive uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		for {
			inuse := heapInuse()
			metrics.Read(sample)
			mu.Lock()
			peakInuse = max(peakInuse, inuse)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				peakLive = max(peakLive, sample[0].Value.Uint64())
			}
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() (uint64, uint64) {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return peakInuse, peakLive
	}
}

// sinkClient is a client of a stand-in for Marketo's bulk import: it hands
// out a token, reads each import file to the end and throws it away, and
// answers every status read Complete with no failures or warnings.
func sinkClient(b *testing.B) *marketo.Client {
	b.Helper()
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, result any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"requestId": "r", "success": true, "result": result})
	}
	mux.HandleFunc("POST /identity/oauth/token", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "t", "token_type": "bearer", "expires_in": 3600})
	})
	mux.HandleFunc("POST /bulk/v1/leads.json", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ok(w, []map[string]any{{"batchId": 1, "status": "Queued"}})
	})
	mux.HandleFunc("GET /bulk/v1/leads/batch/{id}", func(w http.ResponseWriter, _ *http.Request) {
		ok(w, []map[string]any{{"batchId": 1, "status": "Complete", "numOfLeadsProcessed": 1, "numOfRowsFailed": 0, "numOfRowsWithWarning": 0}})
	})
	ts := httptest.NewServer(mux)
	b.Cleanup(ts.Close)
	c, err := marketo.NewClient(marketo.Config{Endpoint: ts.URL, ClientID: "id", ClientSecret: "secret", HTTPClient: ts.Client(),
		ImportPollInitial: time.Millisecond, ImportPollMax: time.Millisecond, TempDir: b.TempDir()})
	require.NoError(b, err)
	return c
}
