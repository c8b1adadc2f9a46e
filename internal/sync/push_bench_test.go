package sync

import (
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/marketo/emulator"
	"github.com/listsync/listsync/internal/memsample"
	"github.com/listsync/listsync/internal/state"
	"github.com/listsync/listsync/internal/state/sqlite"
)

// BenchmarkPushAdds100k measures the memory of pushing one chunk of 100,000
// adds with three fields (a first sync's chunk, one import file): reading
// the diff, marking the rows pending in a SQLite ledger, the client's bulk
// import and the commit of its outcomes. Marketo is the project's emulator
// with instant imports, in the same process: its own memory (it parses each
// import file and keeps the leads it creates) is counted too, so the figures
// are an upper bound of listsync's. It reports the peak heap in use and the
// peak live heap above the heap in use before the push.
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
		client, list := emulatedMarketo(b)
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
		r := &runner{e: e, spec: spec, run: &state.Run{AddsPlanned: n}, log: zap.NewNop(), list: marketo.List{ID: list}}

		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := float64(ms.HeapInuse) / (1 << 20)
		peak := memsample.Start(2 * time.Millisecond)
		b.StartTimer()
		err = r.pushUpserts(ctx, fieldNames, path)
		b.StopTimer()
		pk := peak()
		inuse, live := float64(pk.Inuse)/(1<<20), float64(pk.Live)/(1<<20)
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

// emulatedMarketo returns a client of a fresh emulator with instant imports
// and polls of a millisecond, and the id of a list on it.
func emulatedMarketo(b *testing.B) (*marketo.Client, int64) {
	b.Helper()
	em := emulator.New(emulator.Config{ClientID: "id", ClientSecret: "secret", ImportRowsPerSec: -1})
	ts := httptest.NewServer(em)
	b.Cleanup(func() {
		ts.Close()
		_ = em.Close()
	})
	c, err := marketo.NewClient(marketo.Config{Endpoint: ts.URL, ClientID: "id", ClientSecret: "secret", HTTPClient: ts.Client(),
		ImportPollInitial: time.Millisecond, ImportPollMax: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	return c, em.CreateStaticList("L", em.CreateFolder("F"))
}
