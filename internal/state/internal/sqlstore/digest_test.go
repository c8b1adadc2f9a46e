package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/state"
)

func entry(key string, leadID int64, hash []byte) state.DigestEntry {
	return state.DigestEntry{FP: state.Fingerprint(key), Key: []byte(key), LeadID: leadID, FieldsHash: hash}
}

// clone copies e out of the buffer it aliases.
func clone(e *state.DigestEntry) state.DigestEntry {
	c := *e
	c.Key = bytes.Clone(e.Key)
	c.FieldsHash = bytes.Clone(e.FieldsHash)
	return c
}

func sortByFP(es []state.DigestEntry) {
	slices.SortFunc(es, func(a, b state.DigestEntry) int { return bytes.Compare(a.FP[:], b.FP[:]) })
}

// encode writes es into chunks and returns them.
func encode(t testing.TB, es []state.DigestEntry) [][]byte {
	t.Helper()
	var chunks [][]byte
	w := ChunkWriter{FlushFunc: func(data []byte) error {
		chunks = append(chunks, bytes.Clone(data))
		return nil
	}}
	for i := range es {
		require.NoError(t, w.Add(&es[i]))
	}
	require.NoError(t, w.Flush())
	return chunks
}

func decode(chunk []byte) ([]state.DigestEntry, error) {
	var r ChunkReader
	if err := r.Reset(chunk); err != nil {
		return nil, err
	}
	var out []state.DigestEntry
	for {
		e, err := r.Next()
		if err != nil || e == nil {
			return out, err
		}
		out = append(out, clone(e))
	}
}

func TestChunkRoundTrip(t *testing.T) {
	t.Parallel()
	es := []state.DigestEntry{
		entry("a@x.com", 1, []byte{1, 2, 3}),
		entry("unknown@x.com", 0, nil),
		entry("empty@x.com", -5, []byte{}),
		entry("pending@x.com", math.MaxInt64, []byte(state.PendingHash)),
		entry("日本@x.jp", math.MinInt64, bytes.Repeat([]byte{0xff}, 300)),
		entry(string(bytes.Repeat([]byte("k"), 1000)), 42, []byte("0123456789abcdef")),
	}
	chunks := encode(t, es)
	require.Len(t, chunks, 1)
	got, err := decode(chunks[0])
	require.NoError(t, err)
	require.Equal(t, es, got, "nil and empty hashes stay apart")
	require.Nil(t, got[1].FieldsHash)
	require.NotNil(t, got[2].FieldsHash)
}

func TestChunkReaderAliasesWithoutAllocating(t *testing.T) { // not parallel: AllocsPerRun
	es := make([]state.DigestEntry, 1000)
	for i := range es {
		es[i] = entry(fmt.Sprintf("user%05d@example.com", i), int64(i), []byte("0123456789abcdef"))
	}
	chunk := encode(t, es)[0]
	var r ChunkReader
	allocs := testing.AllocsPerRun(10, func() {
		if err := r.Reset(chunk); err != nil {
			t.Fatal(err)
		}
		for {
			e, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if e == nil {
				return
			}
		}
	})
	require.Zero(t, allocs)
	require.NoError(t, r.Reset(chunk))
	e, err := r.Next()
	require.NoError(t, err)
	require.Equal(t, len(e.Key), cap(e.Key), "a key cannot be appended to over the next entry")
}

func TestChunkWriterBounds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		n       int
		keyLen  int
		wantMin int
	}{
		{"by entries", 2*ChunkEntriesMax + 1, 10, 3},
		{"by bytes", 3000, 1000, 3},
		{"oversized entry", 2, ChunkBytesMax + 10, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			es := make([]state.DigestEntry, tc.n)
			for i := range es {
				k := fmt.Sprint(i)
				k = strings.Repeat("0", tc.keyLen-len(k)) + k
				es[i] = entry(k, int64(i), nil)
			}
			chunks := encode(t, es)
			require.GreaterOrEqual(t, len(chunks), tc.wantMin)
			var got []state.DigestEntry
			for _, c := range chunks {
				part, err := decode(c)
				require.NoError(t, err)
				require.LessOrEqual(t, len(part), ChunkEntriesMax)
				if len(part) > 1 {
					require.LessOrEqual(t, len(c), ChunkBytesMax)
				}
				got = append(got, part...)
			}
			require.Equal(t, es, got)
		})
	}
}

func TestChunkReaderCorrupt(t *testing.T) {
	t.Parallel()
	good := encode(t, []state.DigestEntry{entry("a@x.com", 1, []byte{1}), entry("b@x.com", 2, nil)})[0]
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"short header", good[:3]},
		{"unknown format", append([]byte{9}, good[1:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing bytes", append(bytes.Clone(good), 0)},
		{"count too high", append([]byte{chunkFormat, 3, 0, 0, 0}, good[chunkHeader:]...)},
		{"empty key", AppendEntry([]byte{chunkFormat, 1, 0, 0, 0}, &state.DigestEntry{})},
		{"huge hash length", append([]byte{chunkFormat, 1, 0, 0, 0}, append(make([]byte, 16), 0xff, 0xff, 0xff, 0xff, 0x0f)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := decode(tc.data)
			require.ErrorIs(t, err, ErrCorruptDigest)
		})
	}
}

// FuzzChunkReader checks that decoding stored bytes never panics, and that
// what decodes re-encodes to the same entries.
func FuzzChunkReader(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{chunkFormat, 0, 0, 0, 0})
	for _, c := range encode(f, []state.DigestEntry{
		entry("a@x.com", 1, []byte{1, 2}), entry("b@x.com", 0, nil), entry("c@x.com", -1, []byte{}),
	}) {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := decode(data)
		if err != nil {
			require.ErrorIs(t, err, ErrCorruptDigest)
			return
		}
		var again []state.DigestEntry
		for _, c := range encode(t, es) {
			part, err := decode(c)
			require.NoError(t, err)
			again = append(again, part...)
		}
		require.Equal(t, es, again)
	})
}

// memSource is a DigestSource over chunks and a delta held in memory.
type memSource struct {
	chunks [][]byte
	delta  []DeltaEntry
	folded []DeltaEntry
	pages  int
}

func (m *memSource) source() DigestSource {
	return DigestSource{
		ChunkFunc: func(_ context.Context, after int64, buf []byte) (int64, []byte, bool, error) {
			next := after + 1
			if next >= int64(len(m.chunks)) {
				return 0, nil, false, nil
			}
			return next, append(buf[:0], m.chunks[next]...), true, nil
		},
		DeltaFunc: func(_ context.Context, after []byte, page []DeltaEntry) ([]DeltaEntry, error) {
			m.pages++
			for _, d := range m.delta {
				if bytes.Compare(d.FP[:], after) > 0 && len(page) < DeltaPageSize {
					page = append(page, d)
				}
			}
			return page, nil
		},
		FoldedFunc: func(_ context.Context, page []DeltaEntry) error {
			m.folded = append(m.folded, page...)
			return nil
		},
	}
}

func member(key string, leadID int64, hash []byte) DeltaEntry {
	return DeltaEntry{FP: state.Fingerprint(key), Key: []byte(key), Member: true, LeadID: leadID, FieldsHash: hash}
}

func gone(key string) DeltaEntry {
	return DeltaEntry{FP: state.Fingerprint(key), Key: []byte(key)}
}

func scanAll(t *testing.T, src DigestSource) ([]state.DigestEntry, error) {
	t.Helper()
	var out []state.DigestEntry
	err := MergeDigest(t.Context(), src, func(e *state.DigestEntry) error {
		out = append(out, clone(e))
		return nil
	})
	return out, err
}

func TestMergeDigest(t *testing.T) {
	t.Parallel()
	base := []state.DigestEntry{
		entry("kept@x.com", 1, []byte{1}),
		entry("changed@x.com", 2, []byte{2}),
		entry("removed@x.com", 3, []byte{3}),
	}
	sortByFP(base)
	m := &memSource{chunks: encode(t, base), delta: []DeltaEntry{
		member("changed@x.com", 2, []byte{22}),
		gone("removed@x.com"),
		member("added@x.com", 4, nil),
		gone("never@x.com"),
	}}
	slices.SortFunc(m.delta, func(a, b DeltaEntry) int { return bytes.Compare(a.FP[:], b.FP[:]) })
	want := []state.DigestEntry{
		entry("kept@x.com", 1, []byte{1}),
		entry("changed@x.com", 2, []byte{22}),
		entry("added@x.com", 4, nil),
	}
	sortByFP(want)
	got, err := scanAll(t, m.source())
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Len(t, m.folded, 4, "every delta entry is folded, tombstones included")

	// Compacting yields chunks that read back the same, with no delta.
	var chunks [][]byte
	require.NoError(t, CompactDigest(t.Context(), m.source(), func(data []byte) error {
		chunks = append(chunks, bytes.Clone(data))
		return nil
	}))
	got, err = scanAll(t, (&memSource{chunks: chunks}).source())
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func TestMergeDigestPages(t *testing.T) {
	t.Parallel()
	// Many chunks and delta pages: every other base key is replaced, every
	// third removed, and new keys come in between.
	const n = 3*ChunkEntriesMax + 100
	var base, want []state.DigestEntry
	m := &memSource{}
	for i := range n {
		k := fmt.Sprintf("user%07d@example.com", i)
		base = append(base, entry(k, int64(i), nil))
		switch i % 6 {
		case 0:
			m.delta = append(m.delta, member(k, int64(i), []byte{1}))
			want = append(want, entry(k, int64(i), []byte{1}))
		case 3:
			m.delta = append(m.delta, gone(k))
		default:
			want = append(want, entry(k, int64(i), nil))
		}
		if i%4 == 0 {
			nk := fmt.Sprintf("new%07d@example.com", i)
			m.delta = append(m.delta, member(nk, 0, nil))
			want = append(want, entry(nk, 0, nil))
		}
	}
	sortByFP(base)
	sortByFP(want)
	slices.SortFunc(m.delta, func(a, b DeltaEntry) int { return bytes.Compare(a.FP[:], b.FP[:]) })
	m.chunks = encode(t, base)
	require.Greater(t, len(m.chunks), 3)
	for _, concurrent := range []bool{false, true} {
		m.pages, m.folded = 0, nil
		src := m.source()
		src.ConcurrentChunks = concurrent
		got, err := scanAll(t, src)
		require.NoError(t, err)
		require.Equal(t, len(want), len(got))
		require.Equal(t, want, got)
		require.Greater(t, m.pages, 2)
		require.Len(t, m.folded, len(m.delta))
	}
}

func TestMergeDigestPrefetchStops(t *testing.T) {
	t.Parallel()
	var es []state.DigestEntry
	for i := range 3 * ChunkEntriesMax {
		es = append(es, entry(fmt.Sprint(i), 1, nil))
	}
	sortByFP(es)
	m := &memSource{chunks: encode(t, es)}
	src := m.source()
	src.ConcurrentChunks = true
	stop := errors.New("stop")
	for _, at := range []int{1, ChunkEntriesMax, ChunkEntriesMax + 1, len(es)} {
		var n int
		err := ScanDigest(t.Context(), "s", src, func(*state.DigestEntry) error {
			if n++; n == at {
				return stop
			}
			return nil
		})
		require.Same(t, stop, err)
	}
	boom := errors.New("boom")
	inner := src.ChunkFunc
	src.ChunkFunc = func(ctx context.Context, after int64, buf []byte) (int64, []byte, bool, error) {
		if after == 1 {
			return 0, nil, false, boom
		}
		return inner(ctx, after, buf)
	}
	_, err := scanAll(t, src)
	require.ErrorIs(t, err, boom)
}

func TestMergeDigestCorrupt(t *testing.T) {
	t.Parallel()
	a, b := entry("a@x.com", 1, nil), entry("b@x.com", 2, nil)
	sorted := []state.DigestEntry{a, b}
	sortByFP(sorted)
	reversed := []state.DigestEntry{sorted[1], sorted[0]}
	other := gone("b@x.com")
	other.FP = a.FP
	for _, tc := range []struct {
		name string
		m    *memSource
		want string
	}{
		{"base out of order", &memSource{chunks: encode(t, reversed)}, "after"},
		{"base out of order across chunks", &memSource{chunks: append(encode(t, sorted[1:]), encode(t, sorted[:1])...)}, "after"},
		{"base repeats a fingerprint", &memSource{chunks: encode(t, []state.DigestEntry{a, a})}, "after"},
		{"delta out of order", &memSource{delta: []DeltaEntry{member(string(reversed[0].Key), 1, nil), member(string(reversed[1].Key), 1, nil)}}, "after"},
		{"delta key off its fingerprint", &memSource{delta: []DeltaEntry{other}}, "under fingerprint"},
		{"base chunk corrupt", &memSource{chunks: [][]byte{{chunkFormat, 1, 0, 0, 0, 1}}}, "truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := tc.m.source()
			if tc.name == "delta out of order" {
				src.DeltaFunc = func(_ context.Context, _ []byte, page []DeltaEntry) ([]DeltaEntry, error) {
					return append(page, tc.m.delta...), nil
				}
			}
			_, err := scanAll(t, src)
			require.ErrorIs(t, err, ErrCorruptDigest)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestScanDigestReturnsFnErrorAsIs(t *testing.T) {
	t.Parallel()
	m := &memSource{chunks: encode(t, []state.DigestEntry{entry("a@x.com", 1, nil)})}
	stop := errors.New("stop")
	err := ScanDigest(t.Context(), "s", m.source(), func(*state.DigestEntry) error { return stop })
	require.Same(t, stop, err)
	boom := errors.New("boom")
	src := m.source()
	src.ChunkFunc = func(context.Context, int64, []byte) (int64, []byte, bool, error) { return 0, nil, false, boom }
	err = ScanDigest(t.Context(), "s", src, func(*state.DigestEntry) error { return nil })
	require.ErrorIs(t, err, boom)
	require.ErrorContains(t, err, `scanning digest of sync "s"`)
}
