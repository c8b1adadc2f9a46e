package sqlstore

import (
	"fmt"
	"testing"

	"github.com/listsync/listsync/internal/state"
)

// BenchmarkMergeDigest1M merges 1,000,000 chunk entries with an empty delta:
// the CPU a ScanDigest spends besides reading the chunks.
func BenchmarkMergeDigest1M(b *testing.B) {
	const n = 1_000_000
	es := make([]state.DigestEntry, n)
	for i := range es {
		es[i] = entry(fmt.Sprintf("member%08d@example.com", i), int64(1_000_000+i), fmt.Appendf(nil, "%016x", i))
	}
	sortByFP(es)
	m := &memSource{chunks: encode(b, es)}
	src := m.source()
	src.ConcurrentChunks = true
	var bytes int
	for _, c := range m.chunks {
		bytes += len(c)
	}
	b.Logf("%d chunks, %d bytes", len(m.chunks), bytes)
	for b.Loop() {
		var got int
		if err := ScanDigest(b.Context(), "s", src, func(*state.DigestEntry) error { got++; return nil }); err != nil {
			b.Fatal(err)
		}
		if got != n {
			b.Fatal(got)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/member")
}
