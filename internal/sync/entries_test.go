package sync

import (
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/state"
)

// TestEntrySorterSpillsAndMergesInOrder sorts the same entries with budgets
// that keep them in memory and that spill every few entries: both must give
// fingerprint order, equal fingerprints in input (offset) order.
func TestEntrySorterSpillsAndMergesInOrder(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	var in []entry
	for i := range 5000 {
		// Few distinct keys, so that many entries share a fingerprint.
		e := entry{off: int64(i)}
		e.hi, e.lo = entryFP(state.Fingerprint(strconv.Itoa(rng.IntN(700))))
		in = append(in, e)
	}
	want := slices.Clone(in)
	slices.SortStableFunc(want, func(a, b entry) int { return cmpFP(a.hi, a.lo, b.hi, b.lo) })
	for _, memory := range []int{1 << 20, 64 * entrySize, 100 * entrySize} {
		t.Run(strconv.Itoa(memory), func(t *testing.T) {
			t.Parallel()
			s := newEntrySorter(t.TempDir(), memory)
			defer s.cleanup()
			for _, e := range in {
				require.NoError(t, s.add(e))
			}
			it, err := s.finish()
			require.NoError(t, err)
			defer it.close()
			var got []entry
			for {
				e, ok, err := it.next()
				require.NoError(t, err)
				if !ok {
					break
				}
				got = append(got, e)
			}
			require.Equal(t, want, got)
		})
	}
}

func TestEntrySorterDetectsTruncatedRun(t *testing.T) {
	t.Parallel()
	s := newEntrySorter(t.TempDir(), 64*entrySize)
	defer s.cleanup()
	for i := range 200 {
		require.NoError(t, s.add(entry{hi: uint64(i), off: int64(i)}))
	}
	require.NotEmpty(t, s.runs)
	require.NoError(t, s.spill())
	st, err := os.Stat(s.runs[0])
	require.NoError(t, err)
	require.NoError(t, os.Truncate(s.runs[0], st.Size()-3))
	it, err := s.finish()
	if err == nil {
		defer it.close()
		for err == nil {
			var ok bool
			_, ok, err = it.next()
			if !ok && err == nil {
				t.Fatal("a truncated run read to its end without an error")
			}
		}
	}
	require.ErrorContains(t, err, "truncated entry")
}

// TestArenaReadsRowsBack writes rows short and long (longer than the first
// read's guess) and reads them back by offset, in another order.
func TestArenaReadsRowsBack(t *testing.T) {
	t.Parallel()
	a, err := newArena(t.TempDir(), "arena-*")
	require.NoError(t, err)
	defer func() { _ = a.f.Close() }()
	rows := [][]string{
		{"a@x.com", "Ann", ""},
		{"b@x.com", strings.Repeat("long ", 300), "é\x00\n"},
		{"", "", ""},
		{"c@x.com", "x", strings.Repeat("y", 5000)},
	}
	var offs []int64
	for _, r := range rows {
		off, err := a.add(r...)
		require.NoError(t, err)
		offs = append(offs, off)
	}
	require.NoError(t, a.flush())
	rd := &arenaReader{f: a.f}
	for _, i := range []int{3, 1, 0, 2, 3} {
		got := make([]string, 3)
		require.NoError(t, rd.row(offs[i], got))
		require.Equal(t, rows[i], got)
	}
	// Asking for more strings than the last row holds runs off the file.
	require.ErrorContains(t, rd.row(offs[3], make([]string, 4)), "unexpected EOF")
}

func TestAppendSampleKeepsTheSmallestInOrder(t *testing.T) {
	t.Parallel()
	var s []string
	rng := rand.New(rand.NewPCG(3, 4))
	var all []string
	for i := range 1000 {
		k := strconv.Itoa(rng.IntN(1_000_000)) + "@x" + strconv.Itoa(i)
		all = append(all, k)
		s = appendSample(s, k)
	}
	slices.Sort(all)
	require.Equal(t, all[:maxSamples], s)
}

// TestSortEntries checks the radix sort against a stable comparison sort,
// on uniform fingerprints and on inputs dominated by one key (a bucket far
// larger than insertion sort suits).
func TestSortEntries(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		name     string
		n, keys  int
		hotShare float64
	}{
		{"few", 100, 50, 0},
		{"uniform", 200_000, 150_000, 0},
		{"one hot key", 20_000, 5_000, 0.5},
		{"all one key", 3_000, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			es := make([]entry, tc.n)
			for i := range es {
				k := rng.IntN(tc.keys)
				if rng.Float64() < tc.hotShare {
					k = 0
				}
				es[i].hi, es[i].lo = entryFP(state.Fingerprint(strconv.Itoa(k)))
				es[i].off = int64(i)
			}
			want := slices.Clone(es)
			slices.SortStableFunc(want, func(a, b entry) int { return cmpFP(a.hi, a.lo, b.hi, b.lo) })
			sortEntries(es, make([]entry, len(es)))
			require.Equal(t, want, es)
		})
	}
}
