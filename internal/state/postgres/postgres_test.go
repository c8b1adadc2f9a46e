package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/listsync/listsync/internal/pgtest"
	"github.com/listsync/listsync/internal/state"
	"github.com/listsync/listsync/internal/state/internal/sqlstore"
	"github.com/listsync/listsync/internal/state/postgres"
	"github.com/listsync/listsync/internal/state/statetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func open(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), postgres.Config{DSN: dsn, Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	statetest.Exercise(t, func(t *testing.T) state.Store { return open(t, dsn) })
}

func TestConcurrentOpenMigratesOnce(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	errs := make(chan error, 4)
	stores := make(chan *postgres.Store, 4)
	for range 4 {
		go func() {
			s, err := postgres.Open(t.Context(), postgres.Config{DSN: dsn})
			errs <- err
			stores <- s
		}()
	}
	for range 4 {
		require.NoError(t, <-errs)
		s := <-stores
		require.NoError(t, s.Close())
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	defer conn.Close(t.Context())
	var n int
	require.NoError(t, conn.QueryRow(t.Context(), `SELECT count(*) FROM listsync_schema_version`).Scan(&n))
	require.Equal(t, postgres.MigrationCountForTest(), n, "each migration applied once")
}

// TestDeadSessionReleasesLock: when the session holding a sync's lock dies,
// another worker can take the lock, and the holder's lease is marked lost
// (so that its run stops) at its next check.
func TestDeadSessionReleasesLock(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	a, err := postgres.Open(ctx, postgres.Config{DSN: dsn, Logger: zaptest.NewLogger(t), LockCheckInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	defer a.Close()
	b := open(t, dsn)
	defer b.Close()
	held, err := a.Lock(ctx, "s")
	require.NoError(t, err)
	_, err = b.Lock(ctx, "s")
	require.ErrorIs(t, err, state.ErrLocked)

	// The holder's session dies (as when its process is killed).
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var killed bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT bool_or(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()
		  AND ((classid::bigint << 32) | objid::bigint) = $1`, postgres.LockKeyForTest(a, "s")).Scan(&killed))
	require.True(t, killed)
	require.Eventually(t, func() bool {
		unlock, err := b.Lock(ctx, "s")
		if err != nil {
			return false
		}
		require.NoError(t, unlock.Unlock(ctx))
		return true
	}, 10*time.Second, 50*time.Millisecond, "the lock dies with its session")
	select {
	case <-held.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("the holder's lease is not marked lost")
	}
	require.ErrorIs(t, held.Err(), state.ErrLockLost)
	require.Contains(t, held.Err().Error(), `"s"`)
	require.NoError(t, held.Unlock(ctx), "unlocking a lost lease is harmless")
}

// TestMigrationBackfillsDigest opens a ledger written before the digest
// existed (schema version 2): its members must all be in the digest, under
// the fingerprints Postgres computes in SQL.
func TestMigrationBackfillsDigest(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.NoError(t, postgres.MigrateToForTest(ctx, conn, 2))
	// Two syncs, non-ASCII keys, and every kind of lead ID and hash.
	const n = 25_000
	var syncs, keys []string
	var ids []*int64
	var hashes [][]byte
	for i := range n {
		sy, key := "old-a", fmt.Sprintf("user%05d@x.com", i)
		if i%3 == 0 {
			sy, key = "old-b", fmt.Sprintf("ü%05d@exämple.de", i)
		}
		var id *int64
		var hash []byte
		switch i % 4 {
		case 0:
			id, hash = new(int64(i+1)), []byte("0123456789abcdef")
		case 1:
			hash = []byte(state.PendingHash)
		case 2:
			id = new(int64(i + 1))
		}
		syncs, keys, ids, hashes = append(syncs, sy), append(keys, key), append(ids, id), append(hashes, hash)
	}
	_, err = conn.Exec(ctx, `INSERT INTO listsync_members (sync_name, lead_key, lead_id, fields_hash, confirmed_at)
		SELECT * , now() FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[])`, syncs, keys, ids, hashes)
	require.NoError(t, err)

	s := open(t, dsn)
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

// TestCompactionKeepsKeysChangedMeanwhile changes members while a
// compaction is between reading the delta and deleting what it folded: a
// writer that committed (a newer version of the key), one still holding
// its rows (which the compaction must not wait for), and a new key. Each
// change stays in the delta and the digest shows it.
func TestCompactionKeepsKeysChangedMeanwhile(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	s := open(t, dsn)
	defer s.Close()
	other := open(t, dsn)
	defer other.Close()
	const sy = "meanwhile"
	b := state.Batch{At: time.Now()}
	for i := range 100 {
		b.Confirmed = append(b.Confirmed, state.Member{Key: fmt.Sprintf("k%03d@x.com", i), LeadID: int64(i + 1), FieldsHash: []byte("old")})
	}
	require.NoError(t, s.ApplyBatch(ctx, sy, b))

	held, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer held.Close(ctx)
	var heldTx pgx.Tx
	postgres.SetBeforeFoldForTest(s, func(ctx context.Context) error {
		// A batch committed after the compaction read the delta.
		if err := other.ApplyBatch(ctx, sy, state.Batch{At: time.Now(),
			Confirmed: []state.Member{{Key: "k001@x.com", LeadID: 2, FieldsHash: []byte("new")}, {Key: "new@x.com", LeadID: 500}},
			Removed:   []string{"k002@x.com"}}); err != nil {
			return err
		}
		// A batch in flight, holding its delta row until after the
		// compaction: done by hand, as ApplyBatch would.
		var err error
		if heldTx, err = held.Begin(ctx); err != nil {
			return err
		}
		fp := state.Fingerprint("k003@x.com")
		if _, err := heldTx.Exec(ctx, `UPDATE listsync_members SET fields_hash = 'held' WHERE sync_name = $1 AND lead_key = 'k003@x.com'`, sy); err != nil {
			return err
		}
		_, err = heldTx.Exec(ctx, `UPDATE listsync_digest_delta SET version = version + 1 WHERE sync_name = $1 AND fp = $2`, sy, fp[:])
		return err
	})
	done := make(chan error, 1)
	go func() { done <- s.CompactDigest(ctx, sy) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the compaction waited for a writer's rows")
	}
	postgres.SetBeforeFoldForTest(s, nil)
	require.NoError(t, heldTx.Commit(ctx))

	var left []string
	rows, err := held.Query(ctx, `SELECT lead_key FROM listsync_digest_delta WHERE sync_name = $1 ORDER BY lead_key`, sy)
	require.NoError(t, err)
	left, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"k001@x.com", "k002@x.com", "k003@x.com", "new@x.com"}, left,
		"the keys changed during the compaction stay in the delta, and only they")
	statetest.CheckDigest(t, s, sy)
	got := map[string]string{}
	require.NoError(t, s.ScanDigest(ctx, sy, func(e *state.DigestEntry) error {
		got[string(e.Key)] = string(e.FieldsHash)
		return nil
	}))
	require.Equal(t, "new", got["k001@x.com"])
	require.NotContains(t, got, "k002@x.com")
	require.Equal(t, "held", got["k003@x.com"])
	require.Contains(t, got, "new@x.com")
	require.Len(t, got, 100)
	require.NoError(t, s.CompactDigest(ctx, sy))
	statetest.CheckDigest(t, s, sy)
}

// TestScanDigestDetectsCorruption: a chunk missing a part is reported, not
// decoded into wrong members, whether the chunks are streamed (small delta)
// or read one by one (large delta).
func TestScanDigestDetectsCorruption(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	s := open(t, dsn)
	defer s.Close()
	const sy = "corrupt"
	statetest.FillCompacted(t, s, sy, 20_000)
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	tag, err := conn.Exec(ctx, `DELETE FROM listsync_digest_chunks WHERE sync_name = $1 AND part = 3`, sy)
	require.NoError(t, err)
	require.Positive(t, tag.RowsAffected())
	scan := func() error {
		return s.ScanDigest(ctx, sy, func(*state.DigestEntry) error { return nil })
	}
	require.ErrorIs(t, scan(), sqlstore.ErrCorruptDigest, "streamed")
	// A delta of more than two pages is read in turn with the chunks.
	b := state.Batch{At: time.Now()}
	for i := range 20_000 {
		b.Removed = append(b.Removed, fmt.Sprintf("k%05d@x.com", i))
	}
	require.NoError(t, s.ApplyBatch(ctx, sy, b))
	require.ErrorIs(t, scan(), sqlstore.ErrCorruptDigest, "read chunk by chunk")
	require.ErrorIs(t, s.CompactDigest(ctx, sy), sqlstore.ErrCorruptDigest)
}

// TestLocksAreScopedToTheSchema: Postgres keeps advisory locks per
// database, so the stores of two listsyncs in two schemas of one database
// must each lock their own syncs of the same name, while two stores of one
// schema still exclude each other; and their migrations and digests do not
// wait for each other either.
func TestLocksAreScopedToTheSchema(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsnA, dsnB := pgtest.DSN(t), pgtest.DSN(t)
	a, a2, b := open(t, dsnA), open(t, dsnA), open(t, dsnB)
	defer a.Close()
	defer a2.Close()
	defer b.Close()

	leaseA, err := a.Lock(ctx, "trial_users")
	require.NoError(t, err)
	_, err = a2.Lock(ctx, "trial_users")
	require.ErrorIs(t, err, state.ErrLocked, "one schema: one run of a sync at a time")
	leaseB, err := b.Lock(ctx, "trial_users")
	require.NoError(t, err, "another schema's sync of the same name is another sync")
	require.NotEqual(t, postgres.LockKeyForTest(a, "trial_users"), postgres.LockKeyForTest(b, "trial_users"))
	require.Equal(t, postgres.LockKeyForTest(a, "trial_users"), postgres.LockKeyForTest(a2, "trial_users"))

	// A store whose digest lock is held in one schema does not wait in
	// the other: a transaction holds a's digest lock while b compacts.
	conn, err := pgx.Connect(ctx, dsnA)
	require.NoError(t, err)
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, postgres.DigestLockKeyForTest(a, "trial_users"))
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = b.BindList(wctx, "trial_users", "list 1", 1)
	require.NoError(t, err)
	require.NoError(t, b.ApplyBatch(wctx, "trial_users", state.Batch{At: time.Now(), Confirmed: []state.Member{{Key: "a@x.com", LeadID: 1}}}))
	require.NoError(t, b.CompactDigest(wctx, "trial_users"))

	require.NoError(t, leaseA.Unlock(ctx))
	require.NoError(t, leaseB.Unlock(ctx))
}

// TestOpenWithoutASchema: a search_path none of whose schemas exists says
// so, instead of failing on the first table.
func TestOpenWithoutASchema(t *testing.T) {
	t.Parallel()
	dsn := pgtest.WithSearchPath(t, pgtest.BaseURL(t), "lstest_no_such_schema")
	_, err := postgres.Open(t.Context(), postgres.Config{DSN: dsn})
	require.ErrorContains(t, err, "no schema of the connection's search_path exists")
}
