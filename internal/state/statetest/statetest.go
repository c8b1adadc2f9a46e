// Package statetest is the conformance suite every [state.Store] backend
// passes: the same behaviour, down to key order, from SQLite and Postgres.
package statetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	stdsync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/state"
)

// OpenFunc returns a new Store on the backend's test database. Every call
// within one Exercise opens the same database, so that two Stores returned by
// it stand for two workers sharing the state.
type OpenFunc func(t *testing.T) state.Store

// Exercise runs the suite against the Stores open returns. Subtests use
// distinct sync names, so they may share the database.
func Exercise(t *testing.T, open OpenFunc) {
	t.Helper()
	s := open(t)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	tests := []struct {
		name string
		fn   func(t *testing.T, s state.Store, open OpenFunc)
	}{
		{"BindList", testBindList},
		{"KeyOrderIsBytewise", testKeyOrder},
		{"ApplyBatch", testApplyBatch},
		{"PendingMembers", testPending},
		{"BatchValidation", testBatchValidation},
		{"RejectBackoff", testRejectBackoff},
		{"ReplaceMembers", testReplaceMembers},
		{"ReplaceMembersRollsBack", testReplaceRollback},
		{"Reset", testReset},
		{"Runs", testRuns},
		{"AbandonedRuns", testAbandoned},
		{"SkippedRuns", testSkipped},
		{"Lock", testLock},
		{"LockAcrossStores", testLockAcrossStores},
		{"ClaimTick", testClaimTick},
		{"ScanStopsOnError", testScanStops},
		{"ConcurrentSyncs", testConcurrentSyncs},
		{"LargeBatch", testLargeBatch},
		{"Isolation", testIsolation},
		{"DigestRandom", testDigestRandom},
		{"DigestLarge", testDigestLarge},
		{"DigestConcurrent", testDigestConcurrent},
		{"DigestLargeDelta", testDigestLargeDelta},
		{"DigestScanStopsOnError", testDigestScanStops},
		{"DigestUnknownSync", testDigestUnknownSync},
		{"DigestIsolation", testDigestIsolation},
		{"ImportRate", testImportRate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, s, open)
		})
	}
}

// at is a fixed instant with microsecond precision, which both backends keep.
var at = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

// ctx bounds a case, so that a hung store fails it rather than the whole
// test binary. The bound is generous: under the race detector the SQLite
// driver runs about ten times slower, and LargeBatch alone (20,000 members,
// written to the members and the digest) then takes about 40 s, more while
// the other cases run beside it.
func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return c
}

func members(t *testing.T, s state.Store, syncName string) []state.Member {
	t.Helper()
	var out []state.Member
	require.NoError(t, s.ScanMembers(ctx(t), syncName, func(m state.Member) error {
		out = append(out, m)
		return nil
	}))
	return out
}

func rejects(t *testing.T, s state.Store, syncName string) []state.Reject {
	t.Helper()
	var out []state.Reject
	require.NoError(t, s.ScanRejects(ctx(t), syncName, func(r state.Reject) error {
		out = append(out, r)
		return nil
	}))
	return out
}

func keysOf(ms []state.Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Key
	}
	return out
}

func confirm(keys ...string) state.Batch {
	b := state.Batch{At: at}
	for i, k := range keys {
		b.Confirmed = append(b.Confirmed, state.Member{Key: k, LeadID: int64(i + 1), FieldsHash: []byte("h-" + k)})
	}
	return b
}

func testBindList(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	_, ok, err := s.Binding(c, "bind")
	require.NoError(t, err)
	require.False(t, ok, "a new sync has no binding")

	changed, err := s.BindList(c, "bind", "id 10", 10)
	require.NoError(t, err)
	require.True(t, changed, "the first binding is a change")
	b, ok, err := s.Binding(c, "bind")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "id 10", b.ListRef)
	require.EqualValues(t, 10, b.ListID)
	require.False(t, b.BoundAt.IsZero())
	require.True(t, b.NeedsResync, "a new binding needs the list's membership read")

	// A failed resync leaves it needed; a successful one clears it.
	require.Error(t, s.ReplaceMembers(c, "bind", at, func(func([]state.Member) error) error { return errors.New("network") }))
	b, _, err = s.Binding(c, "bind")
	require.NoError(t, err)
	require.True(t, b.NeedsResync)
	require.NoError(t, s.ReplaceMembers(c, "bind", at, func(func([]state.Member) error) error { return nil }))
	b, _, err = s.Binding(c, "bind")
	require.NoError(t, err)
	require.False(t, b.NeedsResync)

	require.NoError(t, s.ApplyBatch(c, "bind", confirm("a@x.com", "b@x.com")))
	require.NoError(t, s.ApplyBatch(c, "bind", state.Batch{At: at, Rejected: []state.Rejection{{Key: "c@x.com", Op: state.OpAdd, Code: "1004", Reason: "nope"}}}))
	require.NoError(t, s.CompactDigest(c, "bind"))

	changed, err = s.BindList(c, "bind", `"List" in folder "F"`, 10)
	require.NoError(t, err)
	require.False(t, changed, "same list ID under another description is the same list")
	require.Len(t, members(t, s, "bind"), 2, "an unchanged binding keeps the ledger")
	require.Len(t, rejects(t, s, "bind"), 1)
	b, _, err = s.Binding(c, "bind")
	require.NoError(t, err)
	require.Equal(t, `"List" in folder "F"`, b.ListRef)
	require.False(t, b.NeedsResync, "an unchanged binding keeps its resync")
	CheckDigest(t, s, "bind")

	changed, err = s.BindList(c, "bind", "id 11", 11)
	require.NoError(t, err)
	require.True(t, changed)
	require.Empty(t, members(t, s, "bind"), "members confirmed on one list are never assumed on another")
	require.Empty(t, rejects(t, s, "bind"))
	b, _, err = s.Binding(c, "bind")
	require.NoError(t, err)
	require.True(t, b.NeedsResync)
	n, err := s.CountMembers(c, "bind")
	require.NoError(t, err)
	require.Zero(t, n)
	require.Empty(t, digest(t, s, "bind"), "a new binding clears the digest")
	require.NoError(t, s.ApplyBatch(c, "bind", confirm("d@x.com")))
	checkDigestCompacted(t, s, "bind")
}

func testKeyOrder(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	keys := []string{
		"b@x.com", "B@x.com", "a@x.com", "A@X.COM", "Z@x.com", "zz@x.com", "é@x.com", "e@x.com", "ä@x.com",
		"ß@x.com", "日本@x.jp", "😀@x.com", "0@x.com", "_@x.com", "~@x.com", "a.b@x.com", "a-b@x.com",
		"a+b@x.com", "ab@x.com", "a@x.co", "Ω@x.com", "\u00a0@x.com", "ｚ@x.com", "a\x01lead:1",
	}
	shuffled := slices.Clone(keys)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	require.NoError(t, s.ApplyBatch(c, "order", confirm(shuffled...)))
	rb := state.Batch{At: at}
	for _, k := range shuffled {
		rb.Rejected = append(rb.Rejected, state.Rejection{Key: "r" + k, Op: state.OpAdd, Code: "1", Reason: "r"})
	}
	require.NoError(t, s.ApplyBatch(c, "order", rb))

	want := slices.Clone(keys)
	sort.Strings(want) // Go's order: bytewise
	require.Equal(t, want, keysOf(members(t, s, "order")), "members must come in bytewise key order")
	var got []string
	for _, r := range rejects(t, s, "order") {
		got = append(got, r.Key[1:])
	}
	require.Equal(t, want, got, "rejects must come in bytewise key order")
	list, err := s.ListRejects(c, "order", 0)
	require.NoError(t, err)
	require.Len(t, list, len(keys))
	list, err = s.ListRejects(c, "order", 3)
	require.NoError(t, err)
	require.Len(t, list, 3)
	require.Equal(t, "r"+want[0], list[0].Key)
	checkDigestCompacted(t, s, "order")
}

func testApplyBatch(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	const sy = "apply"
	require.NoError(t, s.ApplyBatch(c, sy, state.Batch{At: at, Confirmed: []state.Member{
		{Key: "a@x.com", LeadID: 1, FieldsHash: []byte{1, 2, 3}},
		{Key: "b@x.com", LeadID: 0, FieldsHash: nil},
		{Key: "c@x.com", LeadID: 3, FieldsHash: []byte{}},
	}}))
	got := members(t, s, sy)
	require.Len(t, got, 3)
	require.Equal(t, state.Member{Key: "a@x.com", LeadID: 1, FieldsHash: []byte{1, 2, 3}, ConfirmedAt: at}, got[0])
	require.Equal(t, state.Member{Key: "b@x.com", ConfirmedAt: at}, got[1])
	require.Nil(t, got[1].FieldsHash, "an unknown hash stays unknown")
	require.EqualValues(t, 3, got[2].LeadID)
	checkDigestCompacted(t, s, sy)

	// Rejects for keys that are then confirmed or removed disappear.
	require.NoError(t, s.ApplyBatch(c, sy, state.Batch{At: at, Rejected: []state.Rejection{
		{Key: "a@x.com", Op: state.OpRemove, Code: "1", Reason: "r"},
		{Key: "d@x.com", Op: state.OpAdd, Code: "1004", Reason: "Lead not found"},
		{Key: "e@x.com", Op: state.OpAdd, Code: "1004", Reason: "Lead not found"},
	}}))
	require.Len(t, rejects(t, s, sy), 3)

	later := at.Add(time.Hour)
	require.NoError(t, s.ApplyBatch(c, sy, state.Batch{At: later,
		Confirmed: []state.Member{
			{Key: "a@x.com", LeadID: 0, FieldsHash: []byte{9}}, // a zero lead ID keeps the known one
			{Key: "d@x.com", LeadID: 4, FieldsHash: []byte{4}},
		},
		Removed: []string{"b@x.com", "nobody@x.com"},
	}))
	got = members(t, s, sy)
	require.Equal(t, []string{"a@x.com", "c@x.com", "d@x.com"}, keysOf(got))
	require.Equal(t, state.Member{Key: "a@x.com", LeadID: 1, FieldsHash: []byte{9}, ConfirmedAt: later}, got[0])
	require.Equal(t, at, got[1].ConfirmedAt, "untouched members keep their confirmation time")
	rs := rejects(t, s, sy)
	require.Len(t, rs, 1)
	require.Equal(t, "e@x.com", rs[0].Key)

	require.NoError(t, s.ApplyBatch(c, sy, state.Batch{At: later, Forget: []string{"e@x.com", "zzz@x.com"}}))
	require.Empty(t, rejects(t, s, sy))
	n, err := s.CountMembers(c, sy)
	require.NoError(t, err)
	require.EqualValues(t, 3, n)

	require.NoError(t, s.ApplyBatch(c, sy, state.Batch{At: later}), "an empty batch is fine")
	checkDigestCompacted(t, s, sy)
}

// testPending: a key marked pending before a push keeps its reject (so a
// row rejected again keeps backing off); a refused add deletes a pending
// member but never a confirmed one; an outcome replaces the mark.
func testPending(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	const sy = "pending"
	pending := func(keys ...string) state.Batch {
		b := state.Batch{At: at}
		for _, k := range keys {
			b.Confirmed = append(b.Confirmed, state.Member{Key: k, FieldsHash: []byte(state.PendingHash)})
		}
		return b
	}
	require.NoError(t, s.ApplyBatch(c, sy, state.Batch{At: at,
		Confirmed: []state.Member{{Key: "kept@x.com", LeadID: 7, FieldsHash: []byte{7}}},
		Rejected:  []state.Rejection{{Key: "retry@x.com", Op: state.OpAdd, Code: "1006", Reason: "r"}}}))
	require.NoError(t, s.CompactDigest(c, sy))
	require.NoError(t, s.ApplyBatch(c, sy, pending("kept@x.com", "new@x.com", "retry@x.com", "refused@x.com")))
	checkDigestCompacted(t, s, sy)
	got := members(t, s, sy)
	require.Equal(t, []string{"kept@x.com", "new@x.com", "refused@x.com", "retry@x.com"}, keysOf(got))
	for _, m := range got {
		require.True(t, m.Pending(), m.Key)
	}
	require.EqualValues(t, 7, got[0].LeadID, "marking keeps the lead id")
	rs := rejects(t, s, sy)
	require.Len(t, rs, 1, "marking keeps the reject")

	later := at.Add(2 * time.Hour)
	require.NoError(t, s.ApplyBatch(c, sy, state.Batch{At: later,
		Confirmed: []state.Member{{Key: "new@x.com", LeadID: 8, FieldsHash: []byte{8}}},
		Removed:   []string{"kept@x.com"},
		Rejected: []state.Rejection{
			{Key: "retry@x.com", Op: state.OpAdd, Code: "1006", Reason: "r"},
			{Key: "refused@x.com", Op: state.OpAdd, Code: "1003", Reason: "r"},
		}}))
	got = members(t, s, sy)
	require.Equal(t, []string{"new@x.com"}, keysOf(got), "refused adds made no member")
	require.False(t, got[0].Pending())
	rs = rejects(t, s, sy)
	require.Len(t, rs, 2)
	require.Equal(t, "refused@x.com", rs[0].Key)
	require.Equal(t, 2, rs[1].Attempts, "the reject of a pending key kept counting")

	// A refused add (a field update) never deletes a confirmed member, and
	// a refused removal keeps the pending member for the next run.
	require.NoError(t, s.ApplyBatch(c, sy, state.Batch{At: later,
		Rejected: []state.Rejection{{Key: "new@x.com", Op: state.OpAdd, Code: "1006", Reason: "r"}}}))
	require.NoError(t, s.ApplyBatch(c, sy, pending("gone@x.com")))
	require.NoError(t, s.ApplyBatch(c, sy, state.Batch{At: later,
		Rejected: []state.Rejection{{Key: "gone@x.com", Op: state.OpRemove, Code: "1013", Reason: "r"}}}))
	require.Equal(t, []string{"gone@x.com", "new@x.com"}, keysOf(members(t, s, sy)))
	checkDigestCompacted(t, s, sy)
}

func testBatchValidation(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	for _, tc := range []struct {
		name string
		b    state.Batch
		want string
	}{
		{"dup in confirmed", state.Batch{Confirmed: []state.Member{{Key: "a"}, {Key: "a"}}}, `"a" twice`},
		{"confirmed and removed", state.Batch{Confirmed: []state.Member{{Key: "a"}}, Removed: []string{"a"}}, `"a" twice`},
		{"empty key", state.Batch{Removed: []string{""}}, "empty key"},
		{"bad op", state.Batch{Rejected: []state.Rejection{{Key: "a", Op: "drop"}}}, `unknown op "drop"`},
	} {
		err := s.ApplyBatch(c, "validate", tc.b)
		require.ErrorContains(t, err, tc.want, tc.name)
	}
	require.Empty(t, members(t, s, "validate"), "a refused batch changes nothing")
}

func testRejectBackoff(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	const sy = "backoff"
	bo := state.Backoff{Base: time.Hour, Max: 5 * time.Hour}
	rej := func(when time.Time, op state.Op, code string) state.Reject {
		t.Helper()
		require.NoError(t, s.ApplyBatch(c, sy, state.Batch{At: when, Backoff: bo,
			Rejected: []state.Rejection{{Key: "bad@x.com", Op: op, Code: code, Reason: "reason " + code}}}))
		rs := rejects(t, s, sy)
		require.Len(t, rs, 1)
		return rs[0]
	}
	t1 := at
	r := rej(t1, state.OpAdd, "1001")
	require.Equal(t, state.Reject{Key: "bad@x.com", Op: state.OpAdd, Code: "1001", Reason: "reason 1001", Attempts: 1,
		FirstAttemptAt: t1, LastAttemptAt: t1, NextAttemptAt: t1.Add(time.Hour)}, r)
	wantDelays := []time.Duration{2 * time.Hour, 4 * time.Hour, 5 * time.Hour, 5 * time.Hour}
	when := t1
	for i, d := range wantDelays {
		when = when.Add(d)
		r = rej(when, state.OpAdd, "1002")
		require.Equal(t, i+2, r.Attempts)
		require.Equal(t, t1, r.FirstAttemptAt, "the first attempt is kept")
		require.Equal(t, when, r.LastAttemptAt)
		require.Equal(t, when.Add(d), r.NextAttemptAt, "attempt %d", i+2)
		require.Equal(t, d, bo.Delay(i+2), "Backoff.Delay agrees with the store")
		require.Equal(t, "1002", r.Code)
	}
	// Rejected for the other operation: the count starts over.
	when = when.Add(time.Minute)
	r = rej(when, state.OpRemove, "1013")
	require.Equal(t, 1, r.Attempts)
	require.Equal(t, state.OpRemove, r.Op)
	require.Equal(t, when, r.FirstAttemptAt)
	require.Equal(t, when.Add(time.Hour), r.NextAttemptAt)

	// The zero Backoff is the default one.
	require.NoError(t, s.ApplyBatch(c, "backoff-default", state.Batch{At: at,
		Rejected: []state.Rejection{{Key: "k", Op: state.OpAdd, Code: "1", Reason: "r"}}}))
	rs := rejects(t, s, "backoff-default")
	require.Equal(t, at.Add(state.BackoffDefault.Base), rs[0].NextAttemptAt)
	checkDigestCompacted(t, s, sy)
}

func testReplaceMembers(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	const sy = "replace"
	require.NoError(t, s.ApplyBatch(c, sy, confirm("old@x.com", "kept@x.com")))
	require.NoError(t, s.ApplyBatch(c, sy, state.Batch{At: at, Rejected: []state.Rejection{{Key: "r@x.com", Op: state.OpAdd, Code: "1", Reason: "r"}}}))
	require.NoError(t, s.CompactDigest(c, sy))
	later := at.Add(time.Minute)
	require.NoError(t, s.ReplaceMembers(c, sy, later, func(put func([]state.Member) error) error {
		if err := put([]state.Member{{Key: "kept@x.com", LeadID: 7}, {Key: "dup@x.com", LeadID: 8}, {Key: "same@x.com", LeadID: 5}}); err != nil {
			return err
		}
		if err := put(nil); err != nil {
			return err
		}
		// dup@x.com is held by two leads; same@x.com appears twice with one.
		return put([]state.Member{{Key: "dup@x.com", LeadID: 9}, {Key: "same@x.com", LeadID: 5},
			{Key: "twice@x.com", LeadID: 1}, {Key: "twice@x.com", LeadID: 2}, {Key: "dup@x.com", LeadID: 8},
			{Key: "noid@x.com"}})
	}))
	got := members(t, s, sy)
	require.Equal(t, []state.Member{
		{Key: "dup@x.com", LeadID: 0, ConfirmedAt: later},
		{Key: "kept@x.com", LeadID: 7, ConfirmedAt: later},
		{Key: "noid@x.com", LeadID: 0, ConfirmedAt: later},
		{Key: "same@x.com", LeadID: 5, ConfirmedAt: later},
		{Key: "twice@x.com", LeadID: 0, ConfirmedAt: later},
	}, got, "old members are gone, hashes are unknown, keys of several leads have no single lead ID")
	require.Len(t, rejects(t, s, sy), 1, "rejects are kept")
	checkDigestCompacted(t, s, sy)

	require.NoError(t, s.ReplaceMembers(c, sy, later, func(func([]state.Member) error) error { return nil }))
	require.Empty(t, members(t, s, sy), "an empty list empties the ledger")
	checkDigestCompacted(t, s, sy)
}

func testReplaceRollback(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	const sy = "replace-rollback"
	require.NoError(t, s.ApplyBatch(c, sy, confirm("a@x.com", "b@x.com")))
	require.NoError(t, s.CompactDigest(c, sy))
	require.NoError(t, s.ApplyBatch(c, sy, state.Batch{At: at, Removed: []string{"b@x.com"}}))
	require.NoError(t, s.ApplyBatch(c, sy, confirm("b@x.com")))
	boom := errors.New("boom")
	err := s.ReplaceMembers(c, sy, at, func(put func([]state.Member) error) error {
		if err := put([]state.Member{{Key: "c@x.com", LeadID: 3}}); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.Equal(t, []string{"a@x.com", "b@x.com"}, keysOf(members(t, s, sy)), "a failed replace changes nothing")
	err = s.ReplaceMembers(c, sy, at, func(put func([]state.Member) error) error {
		return put([]state.Member{{Key: ""}})
	})
	require.ErrorContains(t, err, "empty key")
	require.Len(t, members(t, s, sy), 2)
	checkDigestCompacted(t, s, sy)
}

func testReset(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	const sy = "reset"
	_, err := s.BindList(c, sy, "id 1", 1)
	require.NoError(t, err)
	require.NoError(t, s.ApplyBatch(c, sy, confirm("a@x.com")))
	require.NoError(t, s.ApplyBatch(c, sy, state.Batch{At: at, Rejected: []state.Rejection{{Key: "r@x.com", Op: state.OpAdd, Code: "1", Reason: "r"}}}))
	run, err := s.StartRun(c, state.Run{Sync: sy, Trigger: state.TriggerManual, StartedAt: at})
	require.NoError(t, err)
	run.Status, run.EndedAt = state.RunSucceeded, at.Add(time.Second)
	require.NoError(t, s.FinishRun(c, run))
	require.NoError(t, s.ApplyBatch(c, sy+"-other", confirm("a@x.com")))
	require.NoError(t, s.CompactDigest(c, sy))
	require.NoError(t, s.ApplyBatch(c, sy, confirm("b@x.com")))

	require.NoError(t, s.Reset(c, sy))
	require.Empty(t, digest(t, s, sy), "a reset clears the digest")
	checkDigestCompacted(t, s, sy+"-other")
	require.Empty(t, members(t, s, sy))
	require.Empty(t, rejects(t, s, sy))
	_, ok, err := s.Binding(c, sy)
	require.NoError(t, err)
	require.False(t, ok)
	runs, err := s.ListRuns(c, sy, 10)
	require.NoError(t, err)
	require.Len(t, runs, 1, "the run history is kept")
	require.Len(t, members(t, s, sy+"-other"), 1, "other syncs are untouched")
	changed, err := s.BindList(c, sy, "id 1", 1)
	require.NoError(t, err)
	require.True(t, changed, "after a reset the next binding starts over")
	require.NoError(t, s.ApplyBatch(c, sy, confirm("c@x.com")))
	checkDigestCompacted(t, s, sy)
}

func testRuns(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	const sy = "runs"
	r1, err := s.StartRun(c, state.Run{Sync: sy, Trigger: state.TriggerSchedule, StartedAt: at})
	require.NoError(t, err)
	require.NotZero(t, r1.ID)
	require.Equal(t, state.RunRunning, r1.Status)
	runs, err := s.ListRuns(c, sy, 0)
	require.NoError(t, err)
	require.Equal(t, []state.Run{r1}, runs)

	full := state.Run{ID: r1.ID, Sync: sy, Trigger: state.TriggerSchedule, Status: state.RunFailed,
		StartedAt: at, EndedAt: at.Add(90 * time.Second), ListID: 1234, FullResync: true,
		RowsRead: 1000, Invalid: 3, InvalidSamples: []string{`row 4: "nope": not an email address`, "row 9: NULL key"},
		Duplicates: 2, AddsPlanned: 10, RemovesPlanned: 11, UpdatesPlanned: 12, Deferred: 13,
		AddsConfirmed: 9, RemovesConfirmed: 8, UpdatesConfirmed: 7, Rejected: 6, APICalls: 42,
		Error: "pushing adds: daily quota reached"}
	require.NoError(t, s.FinishRun(c, full))
	runs, err = s.ListRuns(c, sy, 0)
	require.NoError(t, err)
	require.Equal(t, []state.Run{full}, runs, "every field of a run round-trips")

	r2, err := s.StartRun(c, state.Run{Sync: sy, Trigger: state.TriggerManual, StartedAt: at.Add(time.Hour)})
	require.NoError(t, err)
	require.Greater(t, r2.ID, r1.ID)
	r2.Status, r2.EndedAt = state.RunSucceeded, at.Add(2*time.Hour)
	require.NoError(t, s.FinishRun(c, r2))
	_, err = s.StartRun(c, state.Run{Sync: sy + "-b", Trigger: state.TriggerManual, StartedAt: at})
	require.NoError(t, err)

	runs, err = s.ListRuns(c, sy, 0)
	require.NoError(t, err)
	require.Len(t, runs, 2)
	require.Equal(t, r2.ID, runs[0].ID, "newest first")
	require.Nil(t, runs[0].InvalidSamples)
	runs, err = s.ListRuns(c, sy, 1)
	require.NoError(t, err)
	require.Len(t, runs, 1)
	all, err := s.ListRuns(c, "", 1000)
	require.NoError(t, err)
	var mine int
	for _, r := range all {
		if r.Sync == sy || r.Sync == sy+"-b" {
			mine++
		}
	}
	require.Equal(t, 3, mine, "an empty sync name lists every sync's runs")

	err = s.FinishRun(c, state.Run{ID: 1 << 40, Status: state.RunFailed})
	require.ErrorIs(t, err, state.ErrRunNotFound)
}

func testAbandoned(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	const sy = "abandoned"
	r1, err := s.StartRun(c, state.Run{Sync: sy, Trigger: state.TriggerSchedule, StartedAt: at})
	require.NoError(t, err)
	other, err := s.StartRun(c, state.Run{Sync: sy + "-other", Trigger: state.TriggerSchedule, StartedAt: at})
	require.NoError(t, err)
	// r1's process died; the next run of the sync finds it still running.
	r2, err := s.StartRun(c, state.Run{Sync: sy, Trigger: state.TriggerSchedule, StartedAt: at.Add(time.Hour)})
	require.NoError(t, err)
	runs, err := s.ListRuns(c, sy, 0)
	require.NoError(t, err)
	require.Len(t, runs, 2)
	require.Equal(t, r2.ID, runs[0].ID)
	require.Equal(t, state.RunRunning, runs[0].Status)
	require.Equal(t, r1.ID, runs[1].ID)
	require.Equal(t, state.RunAbandoned, runs[1].Status)
	require.Equal(t, at.Add(time.Hour), runs[1].EndedAt)
	require.Contains(t, runs[1].Error, "abandoned")
	runs, err = s.ListRuns(c, sy+"-other", 0)
	require.NoError(t, err)
	require.Equal(t, other.ID, runs[0].ID)
	require.Equal(t, state.RunRunning, runs[0].Status, "other syncs' runs are not touched")
}

func testSkipped(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	const sy = "skipped"
	running, err := s.StartRun(c, state.Run{Sync: sy, Trigger: state.TriggerSchedule, StartedAt: at})
	require.NoError(t, err)
	// The next tick comes while the run is in progress: it is skipped, and
	// the run in progress is neither abandoned nor changed.
	tick := at.Add(time.Minute)
	sk, err := s.RecordSkipped(c, state.Run{Sync: sy, Trigger: state.TriggerSchedule, StartedAt: tick,
		EndedAt: tick.Add(time.Second), Error: "still_running: the previous run is still running",
		RowsRead: 5, AddsConfirmed: 3})
	require.NoError(t, err)
	require.Greater(t, sk.ID, running.ID)
	want := state.Run{ID: sk.ID, Sync: sy, Trigger: state.TriggerSchedule, Status: state.RunSkipped,
		StartedAt: tick, EndedAt: tick.Add(time.Second), Error: "still_running: the previous run is still running"}
	require.Equal(t, want, sk, "a skipped run has no counts")
	require.Equal(t, "still_running", sk.SkipReason())
	runs, err := s.ListRuns(c, sy, 0)
	require.NoError(t, err)
	require.Equal(t, []state.Run{want, running}, runs)

	running.Status, running.EndedAt, running.AddsConfirmed = state.RunSucceeded, at.Add(2*time.Minute), 7
	require.NoError(t, s.FinishRun(c, running))
	locked, err := s.RecordSkipped(c, state.Run{Sync: sy, Trigger: state.TriggerSchedule, StartedAt: at.Add(3 * time.Minute),
		Error: "locked: another run holds the sync"})
	require.NoError(t, err)
	require.Equal(t, locked.StartedAt, locked.EndedAt, "a zero end is the tick itself")
	next, err := s.StartRun(c, state.Run{Sync: sy, Trigger: state.TriggerSchedule, StartedAt: at.Add(4 * time.Minute)})
	require.NoError(t, err)
	runs, err = s.ListRuns(c, sy, 0)
	require.NoError(t, err)
	require.Len(t, runs, 4)
	require.Equal(t, []int64{next.ID, locked.ID, sk.ID, running.ID}, []int64{runs[0].ID, runs[1].ID, runs[2].ID, runs[3].ID})
	require.Equal(t, state.RunRunning, runs[0].Status)
	require.Equal(t, []state.RunStatus{state.RunSkipped, state.RunSkipped, state.RunSucceeded},
		[]state.RunStatus{runs[1].Status, runs[2].Status, runs[3].Status}, "StartRun abandons only runs still running")
	require.Equal(t, "locked", runs[1].SkipReason())
	require.Empty(t, runs[3].SkipReason())
}

func testLock(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	lease, err := s.Lock(c, "lock")
	require.NoError(t, err)
	_, err = s.Lock(c, "lock")
	require.ErrorIs(t, err, state.ErrLocked, "a held lock is refused at once, in the same process too")
	other, err := s.Lock(c, "lock-other")
	require.NoError(t, err, "locks are per sync")
	require.NoError(t, other.Unlock(c))
	select {
	case <-lease.Lost():
		t.Fatal("a held lock is reported lost")
	default:
	}
	require.NoError(t, lease.Err())
	require.NoError(t, lease.Unlock(c))
	require.NoError(t, lease.Unlock(c), "unlock is idempotent")
	require.NoError(t, lease.Err(), "an unlocked lease is not lost")
	lease, err = s.Lock(c, "lock")
	require.NoError(t, err, "a released lock can be taken again")
	require.NoError(t, lease.Unlock(c))

	// A lock taken under a context that is then canceled stays held until
	// unlocked: the run's context ending does not free it behind its back.
	lc, cancel := context.WithCancel(c)
	lease, err = s.Lock(lc, "lock-ctx")
	require.NoError(t, err)
	cancel()
	_, err = s.Lock(c, "lock-ctx")
	require.ErrorIs(t, err, state.ErrLocked)
	require.NoError(t, lease.Err(), "a canceled context does not lose the lock")
	require.NoError(t, lease.Unlock(c))
}

func testLockAcrossStores(t *testing.T, s state.Store, open OpenFunc) {
	c := ctx(t)
	s2 := open(t)
	lease, err := s.Lock(c, "lock-across")
	require.NoError(t, err)
	_, err = s2.Lock(c, "lock-across")
	require.ErrorIs(t, err, state.ErrLocked, "a second worker cannot take a held lock")
	require.NoError(t, lease.Unlock(c))
	lease2, err := s2.Lock(c, "lock-across")
	require.NoError(t, err)
	_ = lease2
	// Closing a store releases what it holds.
	require.NoError(t, s2.Close())
	require.NoError(t, s2.Close(), "Close is idempotent")
	lease, err = s.Lock(c, "lock-across")
	require.NoError(t, err)
	require.NoError(t, lease.Unlock(c))
}

func testClaimTick(t *testing.T, s state.Store, open OpenFunc) {
	c := ctx(t)
	s2 := open(t)
	t.Cleanup(func() { require.NoError(t, s2.Close()) })
	tick := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ok, err := s.ClaimTick(c, "tick", tick)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s2.ClaimTick(c, "tick", tick)
	require.NoError(t, err)
	require.False(t, ok, "another worker's claim of the same tick loses")
	ok, err = s.ClaimTick(c, "tick", tick.In(time.FixedZone("X", 3600)))
	require.NoError(t, err)
	require.False(t, ok, "the same instant in another zone is the same tick")
	ok, err = s2.ClaimTick(c, "tick", tick.Add(time.Minute))
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s2.ClaimTick(c, "tick-other", tick)
	require.NoError(t, err)
	require.True(t, ok, "ticks are per sync")

	// Racing claims: exactly one wins.
	var wins int
	var mu stdsync.Mutex
	var wg stdsync.WaitGroup
	race := tick.Add(time.Hour)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := s
			if i%2 == 1 {
				st = s2
			}
			ok, err := st.ClaimTick(c, "tick", race)
			if err != nil {
				t.Errorf("claiming: %v", err)
				return
			}
			if ok {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 1, wins)
}

func testScanStops(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	const sy = "scan-stop"
	require.NoError(t, s.ApplyBatch(c, sy, confirm("a", "b", "c")))
	require.NoError(t, s.ApplyBatch(c, sy, state.Batch{At: at, Rejected: []state.Rejection{
		{Key: "x", Op: state.OpAdd, Code: "1", Reason: "r"}, {Key: "y", Op: state.OpAdd, Code: "1", Reason: "r"}}}))
	stop := errors.New("stop")
	var n int
	err := s.ScanMembers(c, sy, func(state.Member) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 2, n)
	err = s.ScanRejects(c, sy, func(state.Reject) error { return stop })
	require.ErrorIs(t, err, stop)

	cc, cancel := context.WithCancel(c)
	cancel()
	err = s.ScanMembers(cc, sy, func(state.Member) error { return nil })
	require.ErrorIs(t, err, context.Canceled)
}

func testConcurrentSyncs(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	var wg stdsync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sy := fmt.Sprintf("concurrent-%d", i)
			for j := range 10 {
				b := state.Batch{At: at}
				for k := range 50 {
					b.Confirmed = append(b.Confirmed, state.Member{Key: fmt.Sprintf("%02d-%03d@x.com", j, k), LeadID: int64(k + 1)})
				}
				if err := s.ApplyBatch(c, sy, b); err != nil {
					t.Errorf("applying: %v", err)
					return
				}
				// Scanning while other syncs write.
				if err := s.ScanMembers(c, sy, func(state.Member) error { return nil }); err != nil {
					t.Errorf("scanning: %v", err)
					return
				}
				if err := s.ScanDigest(c, sy, func(*state.DigestEntry) error { return nil }); err != nil {
					t.Errorf("scanning digest: %v", err)
					return
				}
				if j%3 == 0 {
					if err := s.CompactDigest(c, sy); err != nil {
						t.Errorf("compacting: %v", err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	for i := range 4 {
		n, err := s.CountMembers(c, fmt.Sprintf("concurrent-%d", i))
		require.NoError(t, err)
		require.EqualValues(t, 500, n)
		checkDigestCompacted(t, s, fmt.Sprintf("concurrent-%d", i))
	}
}

func testLargeBatch(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	const sy = "large"
	const n = 20000
	b := state.Batch{At: at}
	want := make([]string, 0, n)
	for i := range n {
		k := fmt.Sprintf("user%07d@example.com", (i*7919)%n)
		b.Confirmed = append(b.Confirmed, state.Member{Key: k, LeadID: int64(i + 1), FieldsHash: []byte{byte(i)}})
		want = append(want, k)
	}
	require.NoError(t, s.ApplyBatch(c, sy, b))
	sort.Strings(want)
	require.Equal(t, want, keysOf(members(t, s, sy)))
	CheckDigest(t, s, sy) // from the delta alone, several pages of it
	require.NoError(t, s.CompactDigest(c, sy))
	rm := state.Batch{At: at, Removed: want[:n/2]}
	require.NoError(t, s.ApplyBatch(c, sy, rm))
	CheckDigest(t, s, sy)
	cnt, err := s.CountMembers(c, sy)
	require.NoError(t, err)
	require.EqualValues(t, n/2, cnt)
	require.NoError(t, s.ReplaceMembers(c, sy, at, func(put func([]state.Member) error) error {
		for i := 0; i < n; i += 5000 {
			page := make([]state.Member, 0, 5000)
			for _, k := range want[i : i+5000] {
				page = append(page, state.Member{Key: k, LeadID: 1})
			}
			if err := put(page); err != nil {
				return err
			}
		}
		return nil
	}))
	cnt, err = s.CountMembers(c, sy)
	require.NoError(t, err)
	require.EqualValues(t, n, cnt)
	checkDigestCompacted(t, s, sy)
}

func testIsolation(t *testing.T, s state.Store, _ OpenFunc) {
	c := ctx(t)
	require.NoError(t, s.ApplyBatch(c, "iso-a", confirm("a@x.com", "b@x.com")))
	require.NoError(t, s.CompactDigest(c, "iso-a"))
	require.NoError(t, s.ApplyBatch(c, "iso-b", confirm("b@x.com")))
	require.NoError(t, s.CompactDigest(c, "iso-b"))
	require.NoError(t, s.ApplyBatch(c, "iso-b", state.Batch{At: at, Removed: []string{"a@x.com"}}))
	require.NoError(t, s.ReplaceMembers(c, "iso-b", at, func(func([]state.Member) error) error { return nil }))
	require.Equal(t, []string{"a@x.com", "b@x.com"}, keysOf(members(t, s, "iso-a")), "syncs never see each other's rows")
	checkDigestCompacted(t, s, "iso-a")
	checkDigestCompacted(t, s, "iso-b")
}

func testImportRate(t *testing.T, s state.Store, open OpenFunc) {
	c := ctx(t)
	const a, b = "rate-a.mktorest.com", "rate-b.mktorest.com"
	get := func(st state.Store, instance string) (state.ImportRate, bool) {
		t.Helper()
		r, ok, err := st.ImportRate(c, instance)
		require.NoError(t, err)
		return r, ok
	}
	_, ok := get(s, a)
	require.False(t, ok, "an instance never measured has no rate")

	first := state.ImportRate{RowsPerSec: 1234.5, MeasuredAt: at}
	require.NoError(t, s.SetImportRate(c, a, first))
	r, ok := get(s, a)
	require.True(t, ok)
	require.Equal(t, first, r)
	_, ok = get(s, b)
	require.False(t, ok, "instances are independent")

	s2 := open(t)
	t.Cleanup(func() { require.NoError(t, s2.Close()) })
	r, ok = get(s2, a)
	require.True(t, ok, "another worker (a new process) reads the rate")
	require.Equal(t, first, r)

	newer := state.ImportRate{RowsPerSec: 987.25, MeasuredAt: at.Add(time.Hour)}
	require.NoError(t, s2.SetImportRate(c, a, newer))
	r, _ = get(s, a)
	require.Equal(t, newer, r, "a newer measurement replaces the rate")
	require.NoError(t, s.SetImportRate(c, a, state.ImportRate{RowsPerSec: 5, MeasuredAt: at.Add(time.Minute)}))
	r, _ = get(s, a)
	require.Equal(t, newer, r, "an older measurement does not replace a newer one")
	same := state.ImportRate{RowsPerSec: 2000, MeasuredAt: newer.MeasuredAt}
	require.NoError(t, s.SetImportRate(c, a, same))
	r, _ = get(s, a)
	require.Equal(t, same, r, "one measured at the same time does")

	other := state.ImportRate{RowsPerSec: 3, MeasuredAt: at}
	require.NoError(t, s.SetImportRate(c, b, other))
	r, _ = get(s, b)
	require.Equal(t, other, r)
	r, _ = get(s, a)
	require.Equal(t, same, r, "setting one instance leaves the other")

	for _, tc := range []struct {
		name     string
		instance string
		rate     state.ImportRate
		errMsg   string
	}{
		{"zero", a, state.ImportRate{RowsPerSec: 0, MeasuredAt: at}, "not a positive, finite number"},
		{"negative", a, state.ImportRate{RowsPerSec: -10, MeasuredAt: at}, "not a positive, finite number"},
		{"NaN", a, state.ImportRate{RowsPerSec: math.NaN(), MeasuredAt: at}, "not a positive, finite number"},
		{"infinite", a, state.ImportRate{RowsPerSec: math.Inf(1), MeasuredAt: at}, "not a positive, finite number"},
		{"no time", a, state.ImportRate{RowsPerSec: 10}, "no measurement time"},
		{"no instance", "", state.ImportRate{RowsPerSec: 10, MeasuredAt: at}, "instance is empty"},
	} {
		err := s.SetImportRate(c, tc.instance, tc.rate)
		require.ErrorContains(t, err, tc.errMsg, tc.name)
	}
	r, _ = get(s, a)
	require.Equal(t, same, r, "a refused rate changes nothing")
}

// BenchApplyBatch100k benchmarks s committing one batch of 100,000 confirmed
// adds, the engine's default chunk, each iteration to a new sync. Both
// backends' BenchmarkApplyBatch100k run it.
func BenchApplyBatch100k(b *testing.B, s state.Store) {
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

// CheckDigest asserts that s.ScanDigest gives exactly the members
// s.ScanMembers gives (key, lead ID and fields hash, nil apart from empty),
// in strictly increasing fingerprint order, each under its key's
// fingerprint.
func CheckDigest(t *testing.T, s state.Store, syncName string) {
	t.Helper()
	var want []state.DigestEntry
	for _, m := range members(t, s, syncName) {
		want = append(want, state.DigestEntry{FP: state.Fingerprint(m.Key), Key: []byte(m.Key), LeadID: m.LeadID, FieldsHash: m.FieldsHash})
	}
	slices.SortFunc(want, func(a, b state.DigestEntry) int { return bytes.Compare(a.FP[:], b.FP[:]) })
	got := digest(t, s, syncName)
	for i := range got {
		require.Equal(t, state.Fingerprint(string(got[i].Key)), got[i].FP, "entry %d (%q) is not under its key's fingerprint", i, got[i].Key)
		if i > 0 {
			require.Negative(t, bytes.Compare(got[i-1].FP[:], got[i].FP[:]), "entry %d (%q) breaks the fingerprint order", i, got[i].Key)
		}
	}
	if !equalDigests(want, got) {
		require.Equal(t, want, got, "the digest of sync %q differs from its members", syncName)
	}
}

// equalDigests compares as require.Equal does, only faster on large
// digests.
func equalDigests(a, b []state.DigestEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := &a[i], &b[i]
		if x.FP != y.FP || !bytes.Equal(x.Key, y.Key) || x.LeadID != y.LeadID || !bytes.Equal(x.FieldsHash, y.FieldsHash) ||
			(x.FieldsHash == nil) != (y.FieldsHash == nil) {
			return false
		}
	}
	return true
}

// checkDigestCompacted checks the digest of the sync before and after a
// compaction, and after a second one (which finds nothing to fold).
func checkDigestCompacted(t *testing.T, s state.Store, syncName string) {
	t.Helper()
	CheckDigest(t, s, syncName)
	require.NoError(t, s.CompactDigest(ctx(t), syncName))
	CheckDigest(t, s, syncName)
	require.NoError(t, s.CompactDigest(ctx(t), syncName))
	CheckDigest(t, s, syncName)
}

// digest returns the sync's digest, each entry copied out of the scan.
func digest(t *testing.T, s state.Store, syncName string) []state.DigestEntry {
	t.Helper()
	var out []state.DigestEntry
	require.NoError(t, s.ScanDigest(ctx(t), syncName, func(e *state.DigestEntry) error {
		out = append(out, state.DigestEntry{FP: e.FP, Key: bytes.Clone(e.Key), LeadID: e.LeadID, FieldsHash: bytes.Clone(e.FieldsHash)})
		return nil
	}))
	return out
}
