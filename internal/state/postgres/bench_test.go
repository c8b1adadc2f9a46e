package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/listsync/listsync/internal/pgtest"
	"github.com/listsync/listsync/internal/state"
	"github.com/listsync/listsync/internal/state/postgres"
)

// BenchmarkApplyBatch100k commits one batch of 100,000 confirmed adds, the
// engine's default chunk.
func BenchmarkApplyBatch100k(b *testing.B) {
	s, err := postgres.Open(b.Context(), postgres.Config{DSN: pgtest.DSN(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batch := state.Batch{At: time.Now()}
	for i := range 100_000 {
		batch.Confirmed = append(batch.Confirmed, state.Member{Key: fmt.Sprintf("user%08d@example.com", i),
			LeadID: int64(i + 1), FieldsHash: []byte("0123456789abcdef")})
	}
	for i := 0; b.Loop(); i++ {
		if err := s.ApplyBatch(b.Context(), fmt.Sprint("s", i), batch); err != nil {
			b.Fatal(err)
		}
	}
}
