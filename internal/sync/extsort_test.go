package sync

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSorterSpillsAndMergesStably(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{1, 4 << 10, 64 << 20} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			rng := rand.New(rand.NewPCG(7, uint64(limit)))
			s := newSorter(dir, limit)
			type in struct {
				key string
				seq int
			}
			var want []in
			for i := range 3000 {
				k := fmt.Sprintf("k%04d", rng.IntN(1500))
				if i%7 == 0 {
					k = "ü" + k // multi-byte keys sort after ASCII
				}
				want = append(want, in{k, i})
				require.NoError(t, s.add(record{key: k, leadID: int64(i), values: []string{k, ""}, hash: fieldsHash{byte(i)}}))
			}
			if limit == 1 {
				require.Greater(t, len(s.runs), 100, "a tiny budget spills")
			}
			it, err := s.finish()
			require.NoError(t, err)
			slices.SortStableFunc(want, func(a, b in) int { return strings.Compare(a.key, b.key) })
			for _, w := range want {
				r, ok, err := it.next()
				require.NoError(t, err)
				require.True(t, ok)
				require.Equal(t, w.key, r.key)
				require.EqualValues(t, w.seq, r.leadID, "equal keys keep their input order")
				require.Equal(t, []string{w.key, ""}, r.values)
				require.Equal(t, byte(w.seq), r.hash[0])
			}
			_, ok, err := it.next()
			require.NoError(t, err)
			require.False(t, ok)
			require.NoError(t, it.close())
			s.cleanup()
			left, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Empty(t, left, "cleanup removes the runs")
		})
	}
}

func TestRecordFileDetectsTruncation(t *testing.T) {
	t.Parallel()
	w, err := createRecordFile(t.TempDir(), "x-*.bin")
	require.NoError(t, err)
	require.NoError(t, w.write(&record{key: "abc", values: []string{"v"}}))
	path, err := w.finish()
	require.NoError(t, err)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b[:len(b)-1], 0o600))
	rr, err := openRecordFile(path)
	require.NoError(t, err)
	defer rr.close()
	var r record
	err = rr.read(&r)
	require.ErrorContains(t, err, "unexpected EOF")
}
