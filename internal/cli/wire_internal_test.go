package cli

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/listsync/listsync/internal/state"
	statesqlite "github.com/listsync/listsync/internal/state/sqlite"
)

// TestKeptImportRate: a process starts from the import rate kept in the
// state store unless it is older than importRateMaxAge or cannot be read,
// and keeps each rate its client measures.
func TestKeptImportRate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const instance = "123-abc-456.mktorest.com"
	cases := []struct {
		name   string
		kept   *state.ImportRate
		closed bool
		want   float64
	}{
		{name: "none kept", want: 0},
		{name: "fresh", kept: &state.ImportRate{RowsPerSec: 1500, MeasuredAt: now.Add(-time.Hour)}, want: 1500},
		{name: "at the age limit", kept: &state.ImportRate{RowsPerSec: 1500, MeasuredAt: now.Add(-importRateMaxAge)}, want: 1500},
		{name: "too old", kept: &state.ImportRate{RowsPerSec: 1500, MeasuredAt: now.Add(-importRateMaxAge - time.Second)}, want: 0},
		{name: "store unreadable", kept: &state.ImportRate{RowsPerSec: 1500, MeasuredAt: now}, closed: true, want: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log := zaptest.NewLogger(t)
			st, err := statesqlite.Open(t.Context(), statesqlite.Config{Path: filepath.Join(t.TempDir(), "state.db")})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, st.Close()) })
			if tc.kept != nil {
				require.NoError(t, st.SetImportRate(t.Context(), instance, *tc.kept))
			}
			if tc.closed {
				require.NoError(t, st.Close())
			}
			e := &env{now: func() time.Time { return now }}
			require.Equal(t, tc.want, e.keptImportRate(t.Context(), st, instance, log))
		})
	}

	t.Run("keep", func(t *testing.T) {
		t.Parallel()
		st, err := statesqlite.Open(t.Context(), statesqlite.Config{Path: filepath.Join(t.TempDir(), "state.db")})
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, st.Close()) })
		e := &env{now: func() time.Time { return now }}
		keep := e.keepImportRate(st, instance, zaptest.NewLogger(t))
		keep(t.Context(), 2500)
		r, ok, err := st.ImportRate(t.Context(), instance)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, state.ImportRate{RowsPerSec: 2500, MeasuredAt: now}, r)
		keep(t.Context(), -1) // refused by the store: a warning, and nothing changes
		r, _, err = st.ImportRate(t.Context(), instance)
		require.NoError(t, err)
		require.Equal(t, 2500.0, r.RowsPerSec)
	})
}
