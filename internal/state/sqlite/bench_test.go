package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/listsync/listsync/internal/state/sqlite"
	"github.com/listsync/listsync/internal/state/statetest"
)

// BenchmarkApplyBatch100k commits one batch of 100,000 confirmed adds, the
// engine's default chunk.
func BenchmarkApplyBatch100k(b *testing.B) {
	s, err := sqlite.Open(b.Context(), sqlite.Config{Path: filepath.Join(b.TempDir(), "state.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	statetest.BenchApplyBatch100k(b, s)
}
