package postgres

import (
	"cmp"
	"context"
	"fmt"
	stdsync "sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/listsync/listsync/internal/state"
)

// LockCheckIntervalDefault is how often a held lock's connection is
// checked when Config.LockCheckInterval is 0.
const LockCheckIntervalDefault = 15 * time.Second

// heldLock is an advisory lock held on a connection of its own.
type heldLock struct {
	s        *Store
	syncName string
	key      int64
	base     context.Context
	stop     context.CancelFunc
	done     chan struct{}

	connMu stdsync.Mutex // pgx.Conn is not safe for concurrent use
	conn   *pgx.Conn

	once  stdsync.Once
	err   error
	lease *state.Lease
}

// Lock implements [state.Store] with a session advisory lock on a dedicated
// connection: the lock disappears with the connection when the holder dies.
// The connection is pinged every Config.LockCheckInterval; when a ping
// fails the lock may be gone with it, and the lease is marked lost.
func (s *Store) Lock(ctx context.Context, syncName string) (*state.Lease, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("locking sync %q: store is closed", syncName)
	}
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("locking sync %q: connecting: %w", syncName, err)
	}
	key := advisoryKey("sync", s.schema, syncName)
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		_ = conn.Close(ctx)
		return nil, fmt.Errorf("locking sync %q: %w", syncName, err)
	}
	if !got {
		_ = conn.Close(ctx)
		return nil, fmt.Errorf("locking sync %q: %w", syncName, state.ErrLocked)
	}
	base, stop := context.WithCancel(context.WithoutCancel(ctx))
	h := &heldLock{s: s, syncName: syncName, key: key, base: base, stop: stop, done: make(chan struct{}), conn: conn}
	h.lease = state.NewLease(h.unlock)
	s.mu.Lock()
	s.held[h] = struct{}{}
	s.mu.Unlock()
	go h.watch(cmp.Or(s.cfg.LockCheckInterval, LockCheckIntervalDefault))
	return h.lease, nil
}

// watch pings the lock's connection every interval, and marks the lease
// lost when a ping fails: the session, and the lock with it, may be gone.
func (h *heldLock) watch(interval time.Duration) {
	defer close(h.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-h.base.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(h.base, max(interval, 5*time.Second))
		h.connMu.Lock()
		err := h.conn.Ping(ctx)
		h.connMu.Unlock()
		cancel()
		if err != nil && h.base.Err() == nil {
			h.lease.SetLost(fmt.Errorf("%w %q: the connection holding it failed: %w", state.ErrLockLost, h.syncName, err))
			h.s.logger.Warn("lost the connection holding a sync's lock; its run stops, and another worker may start the sync",
				zap.String("sync", h.syncName), zap.Error(err))
			return
		}
	}
}

// unlock releases the advisory lock and closes its connection. It is
// idempotent.
func (h *heldLock) unlock(ctx context.Context) error {
	h.once.Do(func() {
		h.stop()
		<-h.done
		h.s.mu.Lock()
		delete(h.s.held, h)
		h.s.mu.Unlock()
		h.connMu.Lock()
		defer h.connMu.Unlock()
		if h.lease.Err() != nil {
			// The session, and the lock with it, is gone already.
			_ = h.conn.Close(ctx)
			return
		}
		// Closing the session releases the lock even when the unlock
		// statement fails.
		_, err := h.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, h.key)
		cerr := h.conn.Close(ctx)
		if err == nil {
			err = cerr
		}
		if err != nil {
			h.err = fmt.Errorf("unlocking sync %q: %w", h.syncName, err)
		}
	})
	return h.err
}
