package sync

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/state"
	"github.com/listsync/listsync/internal/state/sqlite"
)

// BenchmarkPushAdds100k measures the memory of pushing one chunk of 100,000
// adds with three fields (a first sync's chunk, one import file): reading
// the diff, marking the rows pending in a SQLite ledger, the client's bulk
// import and the commit of its outcomes. Marketo is a stand-in that reads
// each import file and throws it away and answers the import Complete at
// once, so that the heap measured is listsync's alone (the emulator keeps
// every lead it is sent). It reports the peak heap in use and the peak
// live heap above the heap in use before the push.
//
// Run with: go test -run '^$' -bench PushAdds100k -benchtime 3x ./internal/sync/
func BenchmarkPushAdds100k(b *testing.B) {
	const n = 100_000
	fieldNames := []string{"company", "firstName", "lastName"}
	ctx := b.Context()
	var peakInuse, peakLive float64
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "state.db")})
		if err != nil {
			b.Fatal(err)
		}
		client := sinkClient(b)
		e, err := NewEngine(EngineConfig{Store: store, Marketo: client, TempDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		w, err := createRecordFile(dir, "diff-*.bin")
		if err != nil {
			b.Fatal(err)
		}
		first := []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret"}
		last := []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton"}
		company := []string{"Initech", "Globex Corporation", "Umbrella", "Stark Industries", "Wayne Enterprises"}
		for i := range n {
			f, l := first[i%len(first)], last[(i/7)%len(last)]
			vals := []string{company[(i/3)%len(company)], f, l}
			rec := record{kind: kindAdd, key: "user" + strconv.Itoa(i) + "@example.com", hash: hashFields(fieldNames, vals), values: vals}
			if err := w.write(&rec); err != nil {
				b.Fatal(err)
			}
		}
		path, err := w.finish()
		if err != nil {
			b.Fatal(err)
		}
		spec := Spec{Name: "bench", LookupField: "email"}
		// As after the diff, which counts what it wrote.
		r := &runner{e: e, spec: spec, run: &state.Run{AddsPlanned: n}, log: zap.NewNop(), list: marketo.List{ID: 1}}

		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := float64(ms.HeapInuse) / (1 << 20)
		peak := sampleHeap()
		b.StartTimer()
		err = r.pushUpserts(ctx, fieldNames, path)
		b.StopTimer()
		inuse, live := peak()
		if err != nil {
			b.Fatal(err)
		}
		if r.run.AddsConfirmed != n {
			b.Fatalf("%d adds confirmed, want %d", r.run.AddsConfirmed, n)
		}
		peakInuse, peakLive = max(peakInuse, inuse-base), max(peakLive, live-base)
		if err := store.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(peakInuse, "peak-heap-MB")
	b.ReportMetric(peakLive, "peak-live-MB")
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
		ok(w, []map[string]any{{"batchId": 1, "status": "Complete", "numOfLeadsProcessed": 1}})
	})
	ts := httptest.NewServer(mux)
	b.Cleanup(ts.Close)
	c, err := marketo.NewClient(marketo.Config{Endpoint: ts.URL, ClientID: "id", ClientSecret: "secret", HTTPClient: ts.Client(),
		ImportPollInitial: time.Millisecond, ImportPollMax: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	return c
}
