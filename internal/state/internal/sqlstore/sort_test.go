package sqlstore

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/state"
)

func TestDigestSorter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		n        int
		runBytes int
	}{
		{"empty", 0, 0},
		{"one run", 5000, 0},
		{"many runs", 40_000, 64 << 10},
		{"a run an entry", 50, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var want []state.DigestEntry
			for i := range tc.n {
				e := entry(fmt.Sprintf("k%06d@x.com", i), int64(i-tc.n/2), fmt.Appendf(nil, "%x", i))
				switch i % 5 {
				case 0:
					e.FieldsHash = nil
				case 1:
					e.FieldsHash = []byte{}
				}
				want = append(want, e)
			}
			rand.Shuffle(len(want), func(i, j int) { want[i], want[j] = want[j], want[i] })
			s := DigestSorter{TempDir: t.TempDir(), RunBytes: tc.runBytes}
			defer func() { require.NoError(t, s.Close()) }()
			for i := range want {
				require.NoError(t, s.Add(&want[i]))
			}
			if tc.runBytes > 0 && tc.n > 0 {
				require.Greater(t, len(s.runs), 1)
			}
			var chunks [][]byte
			require.NoError(t, s.WriteChunks(t.Context(), func(data []byte) error {
				chunks = append(chunks, append([]byte(nil), data...))
				return nil
			}))
			sortByFP(want)
			got, err := scanAll(t, (&memSource{chunks: chunks}).source())
			require.NoError(t, err)
			if len(want) == 0 {
				require.Empty(t, got)
				return
			}
			require.Equal(t, want, got)
		})
	}
}

func TestDigestSorterRepeatedFingerprint(t *testing.T) {
	t.Parallel()
	for _, runBytes := range []int{0, 1} {
		s := DigestSorter{TempDir: t.TempDir(), RunBytes: runBytes}
		for _, k := range []string{"a@x.com", "b@x.com", "a@x.com"} {
			e := entry(k, 1, nil)
			require.NoError(t, s.Add(&e))
		}
		err := s.WriteChunks(t.Context(), func([]byte) error { return nil })
		require.ErrorIs(t, err, ErrCorruptDigest)
		require.NoError(t, s.Close())
	}
}
