package postgres_test

import (
	"testing"

	"github.com/listsync/listsync/internal/pgtest"
	"github.com/listsync/listsync/internal/state/postgres"
	"github.com/listsync/listsync/internal/state/statetest"
)

// BenchmarkApplyBatch100k commits one batch of 100,000 confirmed adds, the
// engine's default chunk.
func BenchmarkApplyBatch100k(b *testing.B) {
	s, err := postgres.Open(b.Context(), postgres.Config{DSN: pgtest.DSN(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	statetest.BenchApplyBatch100k(b, s)
}
