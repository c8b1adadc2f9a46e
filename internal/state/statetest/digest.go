package statetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/state"
)

// randomBatch returns a valid batch over distinct keys drawn from keys:
// confirmations (with a known, unknown or pending hash, and a known or zero
// lead ID), removals, rejected adds and removals, and forgotten rejects.
// leadID gives each key's lead ID.
func randomBatch(rng *rand.Rand, keys []string, leadID func(string) int64, maxKeys int) state.Batch {
	b := state.Batch{At: at}
	for _, i := range rng.Perm(len(keys))[:1+rng.IntN(maxKeys)] {
		k := keys[i]
		switch rng.IntN(10) {
		case 0, 1, 2:
			m := state.Member{Key: k}
			if rng.IntN(2) == 0 {
				m.LeadID = leadID(k)
			}
			switch rng.IntN(4) {
			case 0:
				m.FieldsHash = []byte(state.PendingHash)
			case 1:
				m.FieldsHash = fmt.Appendf(nil, "h%d", rng.IntN(1000))
			case 2:
				m.FieldsHash = nil
			}
			if rng.IntN(20) == 0 {
				m.FieldsHash = []byte{}
			}
			b.Confirmed = append(b.Confirmed, m)
		case 3:
			b.Confirmed = append(b.Confirmed, state.Member{Key: k, LeadID: leadID(k), FieldsHash: []byte(state.PendingHash)})
		case 4, 5:
			b.Removed = append(b.Removed, k)
		case 6, 7:
			b.Rejected = append(b.Rejected, state.Rejection{Key: k, Op: state.OpAdd, Code: "1004", Reason: "r"})
		case 8:
			b.Rejected = append(b.Rejected, state.Rejection{Key: k, Op: state.OpRemove, Code: "1013", Reason: "r"})
		default:
			b.Forget = append(b.Forget, k)
		}
	}
	return b
}

// testDigestRandom applies random batches, resyncs, rebindings and resets
// over a few hundred keys, compacting at random points, and checks the
// digest against the members after each step.
func testDigestRandom(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	const sy = "digest-random"
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	keys := make([]string, 300)
	ids := make(map[string]int64, len(keys))
	for i := range keys {
		keys[i] = fmt.Sprintf("user%03d@x.com", i)
		if i%7 == 0 {
			keys[i] = fmt.Sprintf("ü%03d@exämple.de", i)
		}
		ids[keys[i]] = int64(1000 + i)
	}
	leadID := func(k string) int64 { return ids[k] }
	var compactions int
	for step := range 200 {
		switch r := rng.IntN(100); {
		case r < 3:
			require.NoError(t, s.ReplaceMembers(c, sy, at, func(put func([]state.Member) error) error {
				for range rng.IntN(4) {
					var page []state.Member
					for _, i := range rng.Perm(len(keys))[:rng.IntN(60)] {
						id := leadID(keys[i])
						if rng.IntN(10) == 0 {
							id++ // a second lead holding the key
						}
						page = append(page, state.Member{Key: keys[i], LeadID: id})
					}
					if err := put(page); err != nil {
						return err
					}
				}
				return nil
			}), "step %d", step)
		case r < 5:
			_, err := s.BindList(c, sy, "list", int64(1+rng.IntN(2)))
			require.NoError(t, err, "step %d", step)
		case r < 6:
			require.NoError(t, s.Reset(c, sy), "step %d", step)
		default:
			require.NoError(t, s.ApplyBatch(c, sy, randomBatch(rng, keys, leadID, 30)), "step %d", step)
		}
		if rng.IntN(4) == 0 {
			require.NoError(t, s.CompactDigest(c, sy), "step %d", step)
			compactions++
		}
		CheckDigest(t, s, sy)
	}
	require.Positive(t, compactions)
	checkDigestCompacted(t, s, sy)
}

// testDigestLarge checks a digest of several chunks and delta pages: read
// from the delta alone, compacted, with 1% of it changed since, and
// compacted again.
func testDigestLarge(t *testing.T, s state.Store, _ OpenFunc) {
	// Minutes, not seconds: the race detector slows SQLite (compiled from
	// C to Go) by an order of magnitude.
	c, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	phase, start := "", time.Now()
	lap := func(next string) {
		if phase != "" {
			t.Logf("%s: %v", phase, time.Since(start))
		}
		phase, start = next, time.Now()
	}
	lap("insert")
	const sy = "digest-large"
	const n = 50_000 // 4 chunks, and 7 delta pages before the first compaction
	key := func(i int) string { return fmt.Sprintf("member%07d@example.com", i) }
	for lo := 0; lo < n; lo += 25_000 {
		b := state.Batch{At: at}
		for i := lo; i < lo+25_000; i++ {
			b.Confirmed = append(b.Confirmed, state.Member{Key: key(i), LeadID: int64(i + 1), FieldsHash: fmt.Appendf(nil, "%016d", i)})
		}
		require.NoError(t, s.ApplyBatch(c, sy, b))
	}
	lap("check delta")
	CheckDigest(t, s, sy)
	lap("compact")
	require.NoError(t, s.CompactDigest(c, sy))
	lap("check compacted")
	CheckDigest(t, s, sy)
	lap("change")

	// 1%: removals, updates (one with an unknown lead ID, which keeps the
	// known one), pending marks and new members.
	b := state.Batch{At: at.Add(time.Hour)}
	for i := 0; i < n; i += 100 {
		switch (i / 100) % 4 {
		case 0:
			b.Removed = append(b.Removed, key(i))
		case 1:
			b.Confirmed = append(b.Confirmed, state.Member{Key: key(i), FieldsHash: []byte("changed")})
		case 2:
			b.Confirmed = append(b.Confirmed, state.Member{Key: key(i), LeadID: int64(i + 1), FieldsHash: []byte(state.PendingHash)})
		default:
			b.Confirmed = append(b.Confirmed, state.Member{Key: key(n + i), LeadID: int64(n + i + 1)})
		}
	}
	require.NoError(t, s.ApplyBatch(c, sy, b))
	lap("check changed")
	CheckDigest(t, s, sy)
	lap("compact changed")
	require.NoError(t, s.CompactDigest(c, sy))
	lap("check")
	CheckDigest(t, s, sy)
	lap("")
	cnt, err := s.CountMembers(c, sy)
	require.NoError(t, err)
	require.EqualValues(t, n, cnt, "as many removed as added")
}

// testDigestConcurrent runs batches from several goroutines, through two
// Stores, while another goroutine compacts the digest in a loop and another
// scans it; the digest then matches the members.
func testDigestConcurrent(t *testing.T, s state.Store, open OpenFunc) {
	c := ctx(t)
	const sy = "digest-concurrent"
	s2 := open(t)
	t.Cleanup(func() { require.NoError(t, s2.Close()) })
	stores := []state.Store{s, s2}
	done := make(chan struct{})
	var compactions, scans atomic.Int64
	var bg stdsync.WaitGroup
	bg.Add(2)
	go func() {
		defer bg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if err := stores[i%2].CompactDigest(c, sy); err != nil {
				t.Errorf("compacting: %v", err)
				return
			}
			compactions.Add(1)
		}
	}()
	go func() {
		defer bg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			var prev []byte
			err := stores[i%2].ScanDigest(c, sy, func(e *state.DigestEntry) error {
				if prev != nil && bytes.Compare(prev, e.FP[:]) >= 0 {
					return fmt.Errorf("fingerprint %x after %x", e.FP, prev)
				}
				if state.FingerprintBytes(e.Key) != e.FP {
					return fmt.Errorf("key %q under fingerprint %x", e.Key, e.FP)
				}
				prev = append(prev[:0], e.FP[:]...)
				return nil
			})
			if err != nil {
				t.Errorf("scanning: %v", err)
				return
			}
			scans.Add(1)
		}
	}()
	var writers stdsync.WaitGroup
	for w := range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			// Each writer has keys of its own, as each sync's batches come
			// from its one run; they are touched again and again.
			rng := rand.New(rand.NewPCG(uint64(w), 2))
			keys := make([]string, 50)
			for i := range keys {
				keys[i] = fmt.Sprintf("w%d-%02d@x.com", w, i)
			}
			leadID := func(string) int64 { return int64(w + 1) }
			for range 25 {
				if err := stores[w%2].ApplyBatch(c, sy, randomBatch(rng, keys, leadID, 20)); err != nil {
					t.Errorf("applying: %v", err)
					return
				}
			}
		}()
	}
	writers.Wait()
	// Let the background loops run at least once after the last write.
	for start := compactions.Load(); compactions.Load() < start+2 && !t.Failed(); {
		time.Sleep(time.Millisecond)
	}
	close(done)
	bg.Wait()
	t.Logf("%d compactions and %d scans alongside the writers", compactions.Load(), scans.Load())
	require.Positive(t, scans.Load())
	CheckDigest(t, s, sy)
	CheckDigest(t, s2, sy)
	checkDigestCompacted(t, s, sy)
}

// testDigestLargeDelta folds a delta larger than a quarter of the
// compacted digest (the stores rebuild their chunks from the members
// then, rather than merge key by key), first alone, then while writers
// change members of the same sync through two Stores, and checks the digest
// against the members after each.
func testDigestLargeDelta(t *testing.T, s state.Store, open OpenFunc) {
	c := ctx(t)
	const sy = "digest-large-delta"
	s2 := open(t)
	t.Cleanup(func() { require.NoError(t, s2.Close()) })
	const n = 5000 // one chunk: a delta of more than 4,096 keys is large
	key := func(i int) string { return fmt.Sprintf("large-delta%05d@example.com", i) }
	b := state.Batch{At: at}
	for i := range n {
		b.Confirmed = append(b.Confirmed, state.Member{Key: key(i), LeadID: int64(i + 1), FieldsHash: fmt.Appendf(nil, "%08d", i)})
	}
	require.NoError(t, s.ApplyBatch(c, sy, b))
	require.NoError(t, s.CompactDigest(c, sy))
	CheckDigest(t, s, sy)

	// The rounds' deltas, each larger than the threshold: removals,
	// updates (unknown and empty hashes, pending marks, an unknown lead ID
	// that keeps the known one) and new members.
	next := n
	change := func(round int) state.Batch {
		b := state.Batch{At: at.Add(time.Duration(round) * time.Hour)}
		for i := range n {
			if (i+round)%10 == 0 {
				continue // the writers' keys
			}
			switch (i + round) % 7 {
			case 0:
				b.Removed = append(b.Removed, key(i))
			case 1:
				b.Confirmed = append(b.Confirmed, state.Member{Key: key(i), FieldsHash: []byte("changed")})
			case 2:
				b.Confirmed = append(b.Confirmed, state.Member{Key: key(i), LeadID: int64(i + 1)})
			case 3:
				b.Confirmed = append(b.Confirmed, state.Member{Key: key(i), LeadID: int64(i + 1), FieldsHash: []byte{}})
			case 4:
				b.Confirmed = append(b.Confirmed, state.Member{Key: key(i), LeadID: int64(i + 1), FieldsHash: []byte(state.PendingHash)})
			default:
				b.Confirmed = append(b.Confirmed, state.Member{Key: key(next), LeadID: int64(next + 1)})
				next++
			}
		}
		return b
	}
	require.NoError(t, s.ApplyBatch(c, sy, change(1)))
	require.NoError(t, s.CompactDigest(c, sy))
	CheckDigest(t, s, sy)

	// Again, with writers changing the keys the round leaves alone while
	// the compaction runs.
	require.NoError(t, s.ApplyBatch(c, sy, change(2)))
	var writers stdsync.WaitGroup
	start := make(chan struct{})
	for w := range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 3))
			var keys []string
			for i := 8 + w*10; i < n; i += 40 { // (i+2)%10 == 0, a quarter each
				keys = append(keys, key(i))
			}
			leadID := func(string) int64 { return int64(w + 1) }
			<-start
			for range 10 {
				if err := []state.Store{s, s2}[w%2].ApplyBatch(c, sy, randomBatch(rng, keys, leadID, 20)); err != nil {
					t.Errorf("applying: %v", err)
					return
				}
			}
		}()
	}
	close(start)
	require.NoError(t, s2.CompactDigest(c, sy))
	writers.Wait()
	CheckDigest(t, s, sy)
	checkDigestCompacted(t, s2, sy)
}

func testDigestScanStops(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	const sy = "digest-stop"
	require.NoError(t, s.ApplyBatch(c, sy, confirm("a", "b", "c", "d")))
	require.NoError(t, s.CompactDigest(c, sy))
	require.NoError(t, s.ApplyBatch(c, sy, confirm("e", "f", "g")))
	stop := errors.New("stop")
	for _, stopAt := range []int{1, 3, 7} {
		var n int
		err := s.ScanDigest(c, sy, func(*state.DigestEntry) error {
			n++
			if n == stopAt {
				return stop
			}
			return nil
		})
		require.Same(t, stop, err, "fn's error is returned as is")
		require.Equal(t, stopAt, n, "the scan stops at fn's error")
	}

	cc, cancel := context.WithCancel(c)
	cancel()
	err := s.ScanDigest(cc, sy, func(*state.DigestEntry) error { return nil })
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, s.CompactDigest(cc, sy), context.Canceled)
	CheckDigest(t, s, sy)
}

func testDigestUnknownSync(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	const sy = "digest-nobody"
	require.Empty(t, digest(t, s, sy))
	require.NoError(t, s.CompactDigest(c, sy), "compacting an unknown sync does nothing")
	require.Empty(t, digest(t, s, sy))
	// A sync whose every member is gone has an empty digest too.
	require.NoError(t, s.ApplyBatch(c, sy, confirm("a@x.com")))
	require.NoError(t, s.CompactDigest(c, sy))
	require.NoError(t, s.ApplyBatch(c, sy, state.Batch{At: at, Removed: []string{"a@x.com"}}))
	require.Empty(t, digest(t, s, sy))
	checkDigestCompacted(t, s, sy)
}

func testDigestIsolation(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	const a, b = "digest-iso-a", "digest-iso-b"
	require.NoError(t, s.ApplyBatch(c, a, confirm("x@x.com", "y@x.com", "z@x.com")))
	require.NoError(t, s.ApplyBatch(c, b, state.Batch{At: at, Confirmed: []state.Member{
		{Key: "y@x.com", LeadID: 99, FieldsHash: []byte("other")}, {Key: "w@x.com", LeadID: 98}}}))
	require.NoError(t, s.CompactDigest(c, a))
	CheckDigest(t, s, a)
	CheckDigest(t, s, b)
	require.NoError(t, s.ApplyBatch(c, b, state.Batch{At: at, Removed: []string{"x@x.com", "y@x.com"}}))
	require.NoError(t, s.CompactDigest(c, b))
	checkDigestCompacted(t, s, a)
	checkDigestCompacted(t, s, b)
	want := digest(t, s, a)
	require.Len(t, want, 3)

	require.NoError(t, s.ReplaceMembers(c, b, at, func(put func([]state.Member) error) error {
		return put([]state.Member{{Key: "x@x.com", LeadID: 1}})
	}))
	require.Equal(t, want, digest(t, s, a), "another sync's resync leaves the digest alone")
	_, err := s.BindList(c, b, "id 5", 5)
	require.NoError(t, err)
	require.Equal(t, want, digest(t, s, a), "another sync's binding leaves the digest alone")
	require.NoError(t, s.ApplyBatch(c, b, confirm("x@x.com")))
	require.NoError(t, s.Reset(c, b))
	require.Equal(t, want, digest(t, s, a), "another sync's reset leaves the digest alone")
	checkDigestCompacted(t, s, a)
	checkDigestCompacted(t, s, b)
}

// benchKey is the i-th key of the benchmarks' ledgers: about 25 bytes,
// like an email address.
func benchKey(i int) string { return fmt.Sprintf("member%08d@example.com", i) }

// FillCompacted gives sync n confirmed members (keys k00000@x.com on, lead
// IDs from 1, a 16-byte fields hash), compacts its digest and checks it: the
// starting point of the backends' tests that damage a digest.
func FillCompacted(t *testing.T, s state.Store, syncName string, n int) {
	t.Helper()
	b := state.Batch{At: time.Now()}
	for i := range n {
		b.Confirmed = append(b.Confirmed, state.Member{Key: fmt.Sprintf("k%05d@x.com", i), LeadID: int64(i + 1), FieldsHash: []byte("0123456789abcdef")})
	}
	require.NoError(t, s.ApplyBatch(t.Context(), syncName, b))
	require.NoError(t, s.CompactDigest(t.Context(), syncName))
	CheckDigest(t, s, syncName)
}

// fillBench gives the sync n members (keys of benchKey, 16-byte hashes and
// lead IDs) in batches of 100,000, and compacts its digest.
func fillBench(b *testing.B, s state.Store, syncName string, n int) {
	b.Helper()
	c := context.Background()
	start := time.Now()
	for lo := 0; lo < n; lo += 100_000 {
		batch := state.Batch{At: at}
		for i := lo; i < min(lo+100_000, n); i++ {
			batch.Confirmed = append(batch.Confirmed, state.Member{Key: benchKey(i), LeadID: int64(1_000_000 + i),
				FieldsHash: fmt.Appendf(nil, "%016x", i)})
		}
		if err := s.ApplyBatch(c, syncName, batch); err != nil {
			b.Fatal(err)
		}
	}
	filled := time.Now()
	if err := s.CompactDigest(c, syncName); err != nil {
		b.Fatal(err)
	}
	b.Logf("filled %d members in %v, compacted them in %v", n, filled.Sub(start), time.Since(filled))
}

// BenchScanDigest1M benchmarks s scanning the compacted digest of a ledger
// of 1,000,000 members. Both backends' BenchmarkScanDigest1M run it.
func BenchScanDigest1M(b *testing.B, s state.Store) {
	const n = 1_000_000
	const sy = "bench-scan-digest"
	fillBench(b, s, sy, n)
	for b.Loop() {
		var got int
		var sum int64
		if err := s.ScanDigest(b.Context(), sy, func(e *state.DigestEntry) error {
			got++
			sum += e.LeadID + int64(len(e.Key)+len(e.FieldsHash))
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		if got != n || sum == 0 {
			b.Fatalf("scanned %d members, want %d", got, n)
		}
	}
	perScan := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perScan/n, "ns/member")
	b.ReportMetric(perScan/1e6, "ms/scan")
}

// BenchCompactDigest1M benchmarks s compacting the digest of a ledger of
// 1,000,000 members after 1% of them changed (a third removed, a third
// updated, a third added). Both backends' BenchmarkCompactDigest1M run it.
func BenchCompactDigest1M(b *testing.B, s state.Store) {
	const n = 1_000_000
	const sy = "bench-compact-digest"
	fillBench(b, s, sy, n)
	next := n
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		batch := state.Batch{At: at}
		for j := 0; j < n/100; j++ {
			k := (i*7919 + j*97) % n
			switch j % 3 {
			case 0:
				batch.Removed = append(batch.Removed, benchKey(k))
			case 1:
				batch.Confirmed = append(batch.Confirmed, state.Member{Key: benchKey(k), LeadID: int64(1_000_000 + k),
					FieldsHash: fmt.Appendf(nil, "%016x", i)})
			default:
				batch.Confirmed = append(batch.Confirmed, state.Member{Key: benchKey(next), LeadID: int64(1_000_000 + next),
					FieldsHash: fmt.Appendf(nil, "%016x", next)})
				next++
			}
		}
		// A key removed and confirmed in one batch is refused: drop
		// repeats (k can come round again within a batch).
		seen := map[string]bool{}
		batch.Confirmed = slices.DeleteFunc(batch.Confirmed, func(m state.Member) bool { r := seen[m.Key]; seen[m.Key] = true; return r })
		batch.Removed = slices.DeleteFunc(batch.Removed, func(k string) bool { r := seen[k]; seen[k] = true; return r })
		if err := s.ApplyBatch(b.Context(), sy, batch); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := s.CompactDigest(b.Context(), sy); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/compaction")
}

// BenchFirstSync1M benchmarks s through the state-store side of a first sync
// of 1,000,000 members, as the engine drives it: pending marks (confirmed
// members under [state.PendingHash]) in batches of 100,000, then the same
// keys confirmed with their lead IDs and hashes in batches of 100,000, then
// the end-of-run compaction of the digest. The batches come in fingerprint
// order, as the engine's plan sends them, so the keys of each are in random
// key order. Each phase's seconds are reported as a metric. Both backends'
// BenchmarkFirstSync1M run it.
func BenchFirstSync1M(b *testing.B, s state.Store) {
	const n, batchSize = 1_000_000, 100_000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = benchKey(i)
	}
	fps := make([][state.FingerprintSize]byte, n)
	for i, k := range keys {
		fps[i] = state.Fingerprint(k)
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int { return bytes.Compare(fps[x][:], fps[y][:]) })
	fps = nil
	var pending, confirm, compact time.Duration
	for i := 0; b.Loop(); i++ {
		sy := fmt.Sprint("bench-first-sync-", i)
		start := time.Now()
		for lo := 0; lo < n; lo += batchSize {
			batch := state.Batch{At: at, Confirmed: make([]state.Member, 0, batchSize)}
			for _, j := range order[lo:min(lo+batchSize, n)] {
				batch.Confirmed = append(batch.Confirmed, state.Member{Key: keys[j], FieldsHash: []byte(state.PendingHash)})
			}
			if err := s.ApplyBatch(b.Context(), sy, batch); err != nil {
				b.Fatal(err)
			}
		}
		marked := time.Now()
		for lo := 0; lo < n; lo += batchSize {
			batch := state.Batch{At: at.Add(time.Minute), Confirmed: make([]state.Member, 0, batchSize)}
			for _, j := range order[lo:min(lo+batchSize, n)] {
				batch.Confirmed = append(batch.Confirmed, state.Member{Key: keys[j], LeadID: int64(1_000_000 + j),
					FieldsHash: fmt.Appendf(nil, "%016x", j)})
			}
			if err := s.ApplyBatch(b.Context(), sy, batch); err != nil {
				b.Fatal(err)
			}
		}
		confirmed := time.Now()
		if err := s.CompactDigest(b.Context(), sy); err != nil {
			b.Fatal(err)
		}
		done := time.Now()
		pending += marked.Sub(start)
		confirm += confirmed.Sub(marked)
		compact += done.Sub(confirmed)
	}
	per := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
	b.ReportMetric(per(pending), "pending-s")
	b.ReportMetric(per(confirm), "confirm-s")
	b.ReportMetric(per(compact), "compact-s")
}

// BenchReplaceMembers1M benchmarks s through the state-store side of a full
// resync of 1,000,000 members: ReplaceMembers with pages of 10,000 members
// in key order (as the engine reads them from Marketo's export, sorted),
// then the end-of-run compaction. Each phase's seconds are reported as a
// metric. Both backends' BenchmarkReplaceMembers1M run it.
func BenchReplaceMembers1M(b *testing.B, s state.Store) {
	const n, pageSize = 1_000_000, 10_000
	var replace, compact time.Duration
	for i := 0; b.Loop(); i++ {
		sy := fmt.Sprint("bench-replace-", i)
		start := time.Now()
		if err := s.ReplaceMembers(b.Context(), sy, at, func(put func([]state.Member) error) error {
			page := make([]state.Member, 0, pageSize)
			for lo := 0; lo < n; lo += pageSize {
				page = page[:0]
				for j := lo; j < min(lo+pageSize, n); j++ {
					page = append(page, state.Member{Key: benchKey(j), LeadID: int64(1_000_000 + j)})
				}
				if err := put(page); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		replaced := time.Now()
		if err := s.CompactDigest(b.Context(), sy); err != nil {
			b.Fatal(err)
		}
		replace += replaced.Sub(start)
		compact += time.Since(replaced)
	}
	per := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
	b.ReportMetric(per(replace), "replace-s")
	b.ReportMetric(per(compact), "compact-s")
}
