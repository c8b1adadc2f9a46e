package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/listsync/listsync/internal/state/sqlite"
	"github.com/listsync/listsync/internal/state/statetest"
)

func openBench(b *testing.B) *sqlite.Store {
	b.Helper()
	s, err := sqlite.Open(b.Context(), sqlite.Config{Path: filepath.Join(b.TempDir(), "state.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkApplyBatch100k commits one batch of 100,000 confirmed adds, the
// engine's default chunk.
func BenchmarkApplyBatch100k(b *testing.B) {
	statetest.BenchApplyBatch100k(b, openBench(b))
}

// BenchmarkScanDigest1M scans the compacted digest of 1,000,000 members.
func BenchmarkScanDigest1M(b *testing.B) {
	statetest.BenchScanDigest1M(b, openBench(b))
}

// BenchmarkCompactDigest1M compacts the digest of 1,000,000 members after
// 1% of them changed.
func BenchmarkCompactDigest1M(b *testing.B) {
	statetest.BenchCompactDigest1M(b, openBench(b))
}

// BenchmarkFirstSync1M runs the state-store side of a first sync of
// 1,000,000 members: pending marks, confirmations, the compaction.
func BenchmarkFirstSync1M(b *testing.B) {
	statetest.BenchFirstSync1M(b, openBench(b))
}

// BenchmarkReplaceMembers1M runs the state-store side of a full resync of
// 1,000,000 members: ReplaceMembers, then the compaction.
func BenchmarkReplaceMembers1M(b *testing.B) {
	statetest.BenchReplaceMembers1M(b, openBench(b))
}
