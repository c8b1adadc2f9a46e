package postgres_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/listsync/listsync/internal/pgtest"
	"github.com/listsync/listsync/internal/state"
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

func TestDeadSessionReleasesLock(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	a := open(t, dsn)
	defer a.Close()
	b := open(t, dsn)
	defer b.Close()
	_, err := a.Lock(ctx, "s")
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
		  AND ((classid::bigint << 32) | objid::bigint) = $1`, postgres.LockKeyForTest("s")).Scan(&killed))
	require.True(t, killed)
	require.Eventually(t, func() bool {
		unlock, err := b.Lock(ctx, "s")
		if err != nil {
			return false
		}
		require.NoError(t, unlock(ctx))
		return true
	}, 10*time.Second, 50*time.Millisecond, "the lock dies with its session")
}
