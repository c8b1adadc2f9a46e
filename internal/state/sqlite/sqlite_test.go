package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/listsync/listsync/internal/state"
	"github.com/listsync/listsync/internal/state/internal/sqlstore"
	"github.com/listsync/listsync/internal/state/sqlite"
	"github.com/listsync/listsync/internal/state/statetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func open(t *testing.T, path string, mod func(*sqlite.Config)) *sqlite.Store {
	t.Helper()
	cfg := sqlite.Config{Path: path, Logger: zaptest.NewLogger(t)}
	if mod != nil {
		mod(&cfg)
	}
	s, err := sqlite.Open(t.Context(), cfg)
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	statetest.Exercise(t, func(t *testing.T) state.Store { return open(t, path, nil) })
}

func TestReopenKeepsLedgerAndMigratesOnce(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := t.Context()
	s := open(t, path, nil)
	require.NoError(t, s.ApplyBatch(ctx, "s", state.Batch{At: time.Now(), Confirmed: []state.Member{{Key: "a@x.com", LeadID: 1}}}))
	require.NoError(t, s.Close())
	s = open(t, path, nil)
	defer s.Close()
	n, err := s.CountMembers(ctx, "s")
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
}

func TestExpiredLockIsTakenOver(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := t.Context()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	// A holder on another host (so its process cannot be probed) that
	// stopped renewing: it holds until its expiry passes.
	a := open(t, path, func(c *sqlite.Config) { c.Now = clock; c.LockTTL = time.Hour })
	defer a.Close()
	_, err := a.Lock(ctx, "s")
	require.NoError(t, err)
	b := open(t, path, func(c *sqlite.Config) { c.Now = func() time.Time { return now.Add(30 * time.Minute) } })
	defer b.Close()
	sqlite.SetHostForTest(b, "other-host")
	_, err = b.Lock(ctx, "s")
	require.ErrorIs(t, err, state.ErrLocked)
	c := open(t, path, func(c *sqlite.Config) { c.Now = func() time.Time { return now.Add(61 * time.Minute) } })
	defer c.Close()
	sqlite.SetHostForTest(c, "other-host")
	unlock, err := c.Lock(ctx, "s")
	require.NoError(t, err, "an expired lock is free")
	require.NoError(t, unlock.Unlock(ctx))
}

// TestTakenOverLockIsLost: a holder whose expired lock another process took
// over finds it at its next heartbeat and marks its lease lost, so that its
// run stops; unlocking it then leaves the new holder's lock alone.
func TestTakenOverLockIsLost(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := t.Context()
	a := open(t, path, func(c *sqlite.Config) { c.LockTTL = 300 * time.Millisecond })
	defer a.Close()
	held, err := a.Lock(ctx, "s")
	require.NoError(t, err)
	// Another process, on another host, after the expiry it saw.
	b := open(t, path, func(c *sqlite.Config) { c.Now = func() time.Time { return time.Now().Add(time.Hour) } })
	defer b.Close()
	sqlite.SetHostForTest(b, "other-host")
	taken, err := b.Lock(ctx, "s")
	require.NoError(t, err, "the lock looks expired to b")
	select {
	case <-held.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("the holder's lease is not marked lost")
	}
	require.ErrorIs(t, held.Err(), state.ErrLockLost)
	require.NoError(t, held.Unlock(ctx))
	_, err = a.Lock(ctx, "s")
	require.ErrorIs(t, err, state.ErrLocked, "the old holder's unlock left the new holder's lock")
	require.NoError(t, taken.Err())
	require.NoError(t, taken.Unlock(ctx))
}

func TestDeadProcessLockIsTakenOver(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := t.Context()
	a := open(t, path, func(c *sqlite.Config) { c.LockTTL = time.Hour })
	defer a.Close()
	_, err := a.Lock(ctx, "s")
	require.NoError(t, err)
	// Pretend the holder was another process of this host that has died.
	require.NoError(t, sqlite.SetLockPIDForTest(ctx, a, "s", sqlite.DeadPIDForTest(t)))
	b := open(t, path, nil)
	defer b.Close()
	unlock, err := b.Lock(ctx, "s")
	require.NoError(t, err, "the lock of a dead process on this host is free at once")
	require.NoError(t, unlock.Unlock(ctx))
}

func TestHeartbeatKeepsLock(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := t.Context()
	a := open(t, path, func(c *sqlite.Config) { c.LockTTL = 300 * time.Millisecond })
	defer a.Close()
	unlock, err := a.Lock(ctx, "s")
	require.NoError(t, err)
	b := open(t, path, nil)
	defer b.Close()
	sqlite.SetHostForTest(b, "other-host")
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		_, err := b.Lock(ctx, "s")
		require.ErrorIs(t, err, state.ErrLocked, "a live holder renews its lock")
		time.Sleep(50 * time.Millisecond)
	}
	require.NoError(t, unlock.Unlock(ctx))
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	_, err := sqlite.Open(context.Background(), sqlite.Config{})
	require.ErrorContains(t, err, "no path")
	_, err = sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "missing-dir", "x", "state.db")})
	require.Error(t, err)
}

// TestMigrationBackfillsDigest opens a ledger written before the digest
// existed (schema version 2): its members must all be in the digest.
func TestMigrationBackfillsDigest(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := t.Context()
	require.NoError(t, sqlite.MigrateToForTest(ctx, path, 2))
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	// More members than a page of the backfill, in two syncs, with every
	// kind of lead ID and hash.
	const n = 25_000
	for i := range n {
		sy, key := "old-a", fmt.Sprintf("user%05d@x.com", i)
		if i%3 == 0 {
			sy, key = "old-b", fmt.Sprintf("ü%05d@exämple.de", i)
		}
		var id, hash any
		switch i % 4 {
		case 0:
			id, hash = int64(i+1), []byte("0123456789abcdef")
		case 1:
			hash = []byte(state.PendingHash)
		case 2:
			id = int64(i + 1)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO members (sync_name, lead_key, lead_id, fields_hash, confirmed_at)
			VALUES (?, ?, ?, ?, 1)`, sy, key, id, hash)
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit())
	require.NoError(t, db.Close())

	s := open(t, path, nil)
	defer s.Close()
	for _, sy := range []string{"old-a", "old-b"} {
		cnt, err := s.CountMembers(ctx, sy)
		require.NoError(t, err)
		require.Positive(t, cnt)
		statetest.CheckDigest(t, s, sy)
		require.NoError(t, s.CompactDigest(ctx, sy))
		statetest.CheckDigest(t, s, sy)
	}
}

// TestScanDigestDetectsCorruption: a damaged chunk is reported, not decoded
// into wrong members.
func TestScanDigestDetectsCorruption(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := t.Context()
	s := open(t, path, nil)
	defer s.Close()
	const sy = "corrupt"
	statetest.FillCompacted(t, s, sy, 20_000)
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	res, err := db.ExecContext(ctx, `UPDATE digest_chunks SET data = substr(data, 1, length(data) - 1)
		WHERE sync_name = ? AND seq = (SELECT max(seq) FROM digest_chunks WHERE sync_name = ?)`, sy, sy)
	require.NoError(t, err)
	n, err := res.RowsAffected()
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	err = s.ScanDigest(ctx, sy, func(*state.DigestEntry) error { return nil })
	require.ErrorIs(t, err, sqlstore.ErrCorruptDigest)
	require.NoError(t, s.ApplyBatch(ctx, sy, state.Batch{At: time.Now(), Removed: []string{"k00001@x.com"}}))
	require.ErrorIs(t, s.CompactDigest(ctx, sy), sqlstore.ErrCorruptDigest, "a compaction never rewrites a damaged digest")
}
