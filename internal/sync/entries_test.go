package sync

import (
	"errors"
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
	// Budgets: all in memory; runs of 32 and 50 entries (many runs, each
	// within a block); a run longer than a block (runBlockEntries).
	for _, memory := range []int{1 << 20, 64 * entrySize, 100 * entrySize, 2 * entrySize * (runBlockEntries + 100)} {
		for _, ahead := range []bool{false, true} {
			t.Run(strconv.Itoa(memory)+"/ahead="+strconv.FormatBool(ahead), func(t *testing.T) {
				t.Parallel()
				s := newEntrySorter(t.TempDir(), memory)
				defer s.cleanup()
				for _, e := range in {
					require.NoError(t, s.add(e))
				}
				sorted, err := s.finish()
				require.NoError(t, err)
				var it entryIter = sorted
				if ahead {
					it = readAhead(sorted)
				}
				defer it.close()
				require.Equal(t, want, readAllEntries(t, it))
			})
		}
	}
}

// readAllEntries reads it to its end.
func readAllEntries(t *testing.T, it entryIter) []entry {
	t.Helper()
	var got []entry
	for {
		e, ok, err := it.next()
		require.NoError(t, err)
		if !ok {
			return got
		}
		got = append(got, e)
	}
}

// failingIter yields n entries and then fails.
type failingIter struct {
	n, i   int
	closed bool
}

func (f *failingIter) next() (entry, bool, error) {
	if f.i == f.n {
		return entry{}, false, errors.New("disk on fire")
	}
	f.i++
	return entry{off: int64(f.i)}, true, nil
}

func (f *failingIter) read(dst []entry) (int, error) {
	for i := range dst {
		e, ok, err := f.next()
		if !ok || err != nil {
			return i, err
		}
		dst[i] = e
	}
	return len(dst), nil
}

func (f *failingIter) close() error { f.closed = true; return nil }

// TestReadAhead checks that an aheadIter yields its source's entries in
// order across batch boundaries, passes on the source's error after the
// entries before it, and stops its goroutine when closed early (goleak, in
// TestMain, fails the package on a leaked one).
func TestReadAhead(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, aheadBatchEntries - 1, aheadBatchEntries, aheadBatchEntries + 1, 3*aheadBatchEntries + 5} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			t.Parallel()
			src := make([]entry, n)
			for i := range src {
				src[i] = entry{hi: uint64(i), off: int64(i)}
			}
			it := readAhead(&entrySlice{es: slices.Clone(src)})
			got := readAllEntries(t, it)
			require.Equal(t, len(src), len(got))
			if n > 0 {
				require.Equal(t, src, got)
			}
			_, ok, err := it.next()
			require.False(t, ok, "the end stays the end")
			require.NoError(t, err)
			require.NoError(t, it.close())
			require.NoError(t, it.close(), "close is idempotent")
		})
	}
	t.Run("error", func(t *testing.T) {
		t.Parallel()
		src := &failingIter{n: aheadBatchEntries + 10}
		it := readAhead(src)
		var err error
		read := 0
		for {
			var ok bool
			if _, ok, err = it.next(); !ok || err != nil {
				break
			}
			read++
		}
		require.EqualError(t, err, "disk on fire")
		require.GreaterOrEqual(t, read, aheadBatchEntries, "the entries of whole batches before the error come first")
		_, _, again := it.next()
		require.EqualError(t, again, "disk on fire", "the error stays")
		require.NoError(t, it.close())
		require.True(t, src.closed)
	})
	t.Run("closed early", func(t *testing.T) {
		t.Parallel()
		src := &failingIter{n: 1 << 30}
		it := readAhead(src)
		_, ok, err := it.next()
		require.True(t, ok)
		require.NoError(t, err)
		require.NoError(t, it.close())
		require.True(t, src.closed)
	})
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
			rng := rand.New(rand.NewPCG(5, uint64(tc.n))) // one a subtest: they run in parallel
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
