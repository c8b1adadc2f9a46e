package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	stdsync "sync"
	"time"

	"go.uber.org/zap"

	"github.com/listsync/listsync/internal/state"
)

// heldLock is a lock this Store holds, kept alive by a heartbeat goroutine.
type heldLock struct {
	s        *Store
	syncName string
	owner    string
	base     context.Context // outlives the Lock call's cancellation
	stop     context.CancelFunc
	done     chan struct{}
	once     stdsync.Once
	err      error
	lease    *state.Lease
}

// Lock implements [state.Store]. See the package documentation for how a
// dead holder's lock is freed.
//
// The heartbeat marks the lease lost when it finds the lock row taken over
// by another process (possible only once the lock expired: the heartbeat
// could not renew it for a whole LockTTL).
func (s *Store) Lock(ctx context.Context, syncName string) (*state.Lease, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("locking sync %q: store is closed", syncName)
	}
	owner := randomOwner()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := s.cfg.Now()
		var curOwner, curHost string
		var curPID int
		var expires int64
		err := tx.QueryRowContext(ctx, `SELECT owner, host, pid, expires_at FROM locks WHERE sync_name = ?`, syncName).
			Scan(&curOwner, &curHost, &curPID, &expires)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			dead := curHost == s.host && curPID != s.pid && !processAlive(curPID)
			if expires > micros(now) && !dead {
				return fmt.Errorf("%w (held by process %d on %s until %s)", state.ErrLocked, curPID, curHost,
					fromMicros(expires).Format(time.RFC3339))
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO locks (sync_name, owner, host, pid, expires_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (sync_name) DO UPDATE SET owner = excluded.owner, host = excluded.host, pid = excluded.pid,
				expires_at = excluded.expires_at`,
			syncName, owner, s.host, s.pid, micros(now.Add(s.cfg.LockTTL)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("locking sync %q: %w", syncName, err)
	}
	base, stop := context.WithCancel(context.WithoutCancel(ctx))
	h := &heldLock{s: s, syncName: syncName, owner: owner, base: base, stop: stop, done: make(chan struct{})}
	h.lease = state.NewLease(h.unlock)
	s.mu.Lock()
	s.held[owner] = h
	s.mu.Unlock()
	go h.heartbeat()
	return h.lease, nil
}

func (h *heldLock) heartbeat() {
	defer close(h.done)
	ttl := h.s.cfg.LockTTL
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-h.base.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(h.base, ttl/3)
		res, err := h.s.w.ExecContext(ctx, `UPDATE locks SET expires_at = ? WHERE sync_name = ? AND owner = ?`,
			micros(h.s.cfg.Now().Add(ttl)), h.syncName, h.owner)
		cancel()
		if err != nil {
			// Not renewed (the file busy with a long write, say): the lock
			// is only lost if another process takes the expired row, which
			// the next renewal finds.
			if h.base.Err() == nil {
				h.s.logger.Warn("renewing sync lock", zap.String("sync", h.syncName), zap.Error(err))
			}
			continue
		}
		if n, _ := res.RowsAffected(); n == 0 {
			h.lease.SetLost(fmt.Errorf("%w %q: another process took it over after it expired", state.ErrLockLost, h.syncName))
			h.s.logger.Warn("sync lock was taken over by another process after expiring; its run stops", zap.String("sync", h.syncName))
			return
		}
	}
}

// unlock stops the heartbeat and deletes the lock row. It is idempotent.
func (h *heldLock) unlock(ctx context.Context) error {
	h.once.Do(func() {
		h.stop()
		<-h.done
		h.s.mu.Lock()
		delete(h.s.held, h.owner)
		h.s.mu.Unlock()
		_, err := h.s.w.ExecContext(ctx, `DELETE FROM locks WHERE sync_name = ? AND owner = ?`, h.syncName, h.owner)
		if err != nil {
			h.err = fmt.Errorf("unlocking sync %q: %w", h.syncName, err)
		}
	})
	return h.err
}
