package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	stdsync "sync"
	"time"

	"go.uber.org/zap"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/listsync/listsync/internal/state"
	"github.com/listsync/listsync/internal/state/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// LockTTLDefault is the default [Config.LockTTL].
const LockTTLDefault = 30 * time.Second

// BusyTimeoutDefault is the default [Config.BusyTimeout].
const BusyTimeoutDefault = 10 * time.Second

// The read connections do not memory-map the database file: a map made
// ScanDigest about a third faster, but every page it touched counted in the
// process's resident size, which then grew with the ledger (a 5,000,000-row
// plan peaked at 828 MB instead of staying flat).

// The writer connection keeps SQLite's default page cache (2 MiB). With
// each batch's members upserted in key order, a 1,000,000-member first sync
// took as long with an 8 or 32 MiB cache (measured within 5%): not worth
// the resident memory.

// tickRetention is how long claimed ticks are kept.
const tickRetention = 7 * 24 * time.Hour

// Config configures a [Store].
type Config struct {
	// Path is the database file, created when it does not exist.
	Path string
	// LockTTL is how long a lock outlives its holder's last heartbeat.
	LockTTL time.Duration
	// BusyTimeout is how long a write waits for another process's write.
	BusyTimeout time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Logger receives warnings, such as a lock lost to another process
	// (zap.NewNop() when nil).
	Logger *zap.Logger
}

// Store is a [state.Store] in one SQLite file.
type Store struct {
	w, r   *sql.DB
	cfg    Config
	host   string
	pid    int
	logger *zap.Logger

	mu     stdsync.Mutex
	held   map[string]*heldLock // by owner
	closed bool
}

var _ state.Store = (*Store)(nil)

// Open opens (creating if needed) the database at cfg.Path and applies the
// schema migrations it lacks.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, errors.New("opening sqlite state store: no path given")
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = LockTTLDefault
	}
	if cfg.BusyTimeout <= 0 {
		cfg.BusyTimeout = BusyTimeoutDefault
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	s := &Store{cfg: cfg, host: host, pid: os.Getpid(), logger: cfg.Logger, held: map[string]*heldLock{}}

	base := "file:" + (&url.URL{Path: cfg.Path}).EscapedPath()
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	wq := url.Values{}
	for k, v := range q {
		wq[k] = append([]string(nil), v...)
	}
	wq.Set("_txlock", "immediate")
	s.w, err = sql.Open("sqlite", base+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("opening sqlite state store %s: %w", cfg.Path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetConnMaxIdleTime(0)
	if err := s.migrate(ctx); err != nil {
		_ = s.w.Close()
		return nil, fmt.Errorf("opening sqlite state store %s: %w", cfg.Path, err)
	}
	rq := url.Values{}
	for k, v := range q {
		rq[k] = append([]string(nil), v...)
	}
	rq.Add("_pragma", "query_only(1)")
	s.r, err = sql.Open("sqlite", base+"?"+rq.Encode())
	if err != nil {
		_ = s.w.Close()
		return nil, fmt.Errorf("opening sqlite state store %s: %w", cfg.Path, err)
	}
	s.r.SetMaxOpenConns(4)
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version INTEGER NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("creating schema_version: %w", err)
	}
	files, err := sqlstore.MigrationFiles(migrations)
	if err != nil {
		return err
	}
	for _, f := range files {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_version WHERE version = ?`, f.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, f.SQL); err != nil {
				return err
			}
			if step := migrationStep(f.Version); step != nil {
				if err := step(ctx, tx); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, applied_at) VALUES (?, ?)`, f.Version, micros(s.cfg.Now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("applying migration %s: %w", f.Name, err)
		}
	}
	return nil
}

// migrationStep returns the Go step of a migration, run after its SQL in
// its transaction, for what SQL cannot do in SQLite; nil for most.
func migrationStep(version int) func(context.Context, *sql.Tx) error {
	switch version {
	case 3:
		return backfillDigest
	}
	return nil
}

// tx runs fn in one write transaction.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// BindList implements [state.Store].
func (s *Store) BindList(ctx context.Context, syncName, listRef string, listID int64) (bool, error) {
	var changed bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var cur int64
		err := tx.QueryRowContext(ctx, `SELECT list_id FROM bindings WHERE sync_name = ?`, syncName).Scan(&cur)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			changed = true
		case err != nil:
			return err
		default:
			changed = cur != listID
		}
		if changed {
			for _, q := range []string{`DELETE FROM members WHERE sync_name = ?`, `DELETE FROM rejects WHERE sync_name = ?`} {
				if _, err := tx.ExecContext(ctx, q, syncName); err != nil {
					return err
				}
			}
			if err := clearDigest(ctx, tx, syncName); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO bindings (sync_name, list_ref, list_id, bound_at, needs_resync)
				VALUES (?, ?, ?, ?, 1)
				ON CONFLICT (sync_name) DO UPDATE SET list_ref = excluded.list_ref, list_id = excluded.list_id,
					bound_at = excluded.bound_at, needs_resync = 1`,
				syncName, listRef, listID, micros(s.cfg.Now()))
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE bindings SET list_ref = ? WHERE sync_name = ?`, listRef, syncName)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("binding sync %q to list %d: %w", syncName, listID, err)
	}
	return changed, nil
}

// Binding implements [state.Store].
func (s *Store) Binding(ctx context.Context, syncName string) (state.Binding, bool, error) {
	var b state.Binding
	var at int64
	err := s.r.QueryRowContext(ctx, `SELECT list_ref, list_id, bound_at, needs_resync FROM bindings WHERE sync_name = ?`, syncName).
		Scan(&b.ListRef, &b.ListID, &at, &b.NeedsResync)
	if errors.Is(err, sql.ErrNoRows) {
		return state.Binding{}, false, nil
	}
	if err != nil {
		return state.Binding{}, false, fmt.Errorf("reading binding of sync %q: %w", syncName, err)
	}
	b.BoundAt = fromMicros(at)
	return b, true, nil
}

// ScanMembers implements [state.Store].
func (s *Store) ScanMembers(ctx context.Context, syncName string, fn func(state.Member) error) error {
	rows, err := s.r.QueryContext(ctx, `SELECT lead_key, lead_id, fields_hash, confirmed_at FROM members
		WHERE sync_name = ? ORDER BY lead_key`, syncName)
	if err != nil {
		return fmt.Errorf("scanning members of sync %q: %w", syncName, err)
	}
	defer rows.Close()
	for rows.Next() {
		var m state.Member
		var id sql.NullInt64
		var at int64
		if err := rows.Scan(&m.Key, &id, &m.FieldsHash, &at); err != nil {
			return fmt.Errorf("scanning members of sync %q: %w", syncName, err)
		}
		m.LeadID = id.Int64
		m.ConfirmedAt = fromMicros(at)
		if err := fn(m); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scanning members of sync %q: %w", syncName, err)
	}
	return nil
}

// CountMembers implements [state.Store].
func (s *Store) CountMembers(ctx context.Context, syncName string) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM members WHERE sync_name = ?`, syncName).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting members of sync %q: %w", syncName, err)
	}
	return n, nil
}

func scanReject(rows *sql.Rows) (state.Reject, error) {
	var r state.Reject
	var op string
	var first, last, next int64
	if err := rows.Scan(&r.Key, &op, &r.Code, &r.Reason, &r.Attempts, &first, &last, &next); err != nil {
		return r, err
	}
	r.Op = state.Op(op)
	r.FirstAttemptAt, r.LastAttemptAt, r.NextAttemptAt = fromMicros(first), fromMicros(last), fromMicros(next)
	return r, nil
}

// ScanRejects implements [state.Store].
func (s *Store) ScanRejects(ctx context.Context, syncName string, fn func(state.Reject) error) error {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sqlstore.RejectCols+` FROM rejects WHERE sync_name = ? ORDER BY lead_key`, syncName)
	if err != nil {
		return fmt.Errorf("scanning rejects of sync %q: %w", syncName, err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanReject(rows)
		if err != nil {
			return fmt.Errorf("scanning rejects of sync %q: %w", syncName, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scanning rejects of sync %q: %w", syncName, err)
	}
	return nil
}

// ListRejects implements [state.Store].
func (s *Store) ListRejects(ctx context.Context, syncName string, limit int) ([]state.Reject, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+sqlstore.RejectCols+` FROM rejects WHERE sync_name = ? ORDER BY lead_key LIMIT ?`, syncName, limit)
	if err != nil {
		return nil, fmt.Errorf("listing rejects of sync %q: %w", syncName, err)
	}
	defer rows.Close()
	var out []state.Reject
	for rows.Next() {
		r, err := scanReject(rows)
		if err != nil {
			return nil, fmt.Errorf("listing rejects of sync %q: %w", syncName, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing rejects of sync %q: %w", syncName, err)
	}
	return out, nil
}

// ApplyBatch implements [state.Store].
func (s *Store) ApplyBatch(ctx context.Context, syncName string, b state.Batch) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("applying batch to sync %q: %w", syncName, err)
	}
	at := micros(b.At)
	bo := b.Backoff.WithDefaults()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// Most syncs have no rejects: then confirmed and removed keys need
		// no reject deleted, which halves the statements of a batch.
		var hasRejects bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM rejects WHERE sync_name = ?)`, syncName).
			Scan(&hasRejects); err != nil {
			return err
		}
		delRejectStmt, err := tx.PrepareContext(ctx, `DELETE FROM rejects WHERE sync_name = ? AND lead_key = ?`)
		if err != nil {
			return err
		}
		defer delRejectStmt.Close()
		delReject := func(key string) error {
			if !hasRejects {
				return nil
			}
			_, err := delRejectStmt.ExecContext(ctx, syncName, key)
			return err
		}
		// Every key whose member row this batch inserts, changes or
		// deletes goes to the digest's delta.
		delta := deltaWriter{syncName: syncName}
		if len(b.Confirmed) > 0 {
			// In key order, the members' B-tree is walked once instead of
			// at random: batches come in fingerprint order.
			confirmed := slices.Clone(b.Confirmed)
			slices.SortFunc(confirmed, func(x, y state.Member) int { return strings.Compare(x.Key, y.Key) })
			up := memberUpserter{syncName: syncName, at: at}
			defer up.close()
			for rest := confirmed; len(rest) > 0; {
				n := min(len(rest), memberUpsertRows)
				if err := up.exec(ctx, tx, rest[:n]); err != nil {
					return err
				}
				rest = rest[n:]
			}
			for _, m := range confirmed {
				delta.touch(m.Key)
				if m.Pending() {
					continue // a key in doubt keeps its reject
				}
				if err := delReject(m.Key); err != nil {
					return err
				}
			}
		}
		if len(b.Removed) > 0 {
			del, err := tx.PrepareContext(ctx, `DELETE FROM members WHERE sync_name = ? AND lead_key = ?`)
			if err != nil {
				return err
			}
			defer del.Close()
			removed := slices.Clone(b.Removed)
			slices.Sort(removed)
			for _, k := range removed {
				res, err := del.ExecContext(ctx, syncName, k)
				if err != nil {
					return err
				}
				if n, err := res.RowsAffected(); err != nil {
					return err
				} else if n > 0 {
					delta.touch(k)
				}
				if err := delReject(k); err != nil {
					return err
				}
			}
		}
		if len(b.Rejected) > 0 {
			// A row rejected again for the same op backs off further; a
			// row rejected for the other op starts over.
			up, err := tx.PrepareContext(ctx, `INSERT INTO rejects (sync_name, lead_key, op, code, reason, attempts,
					first_attempt_at, last_attempt_at, next_attempt_at)
				VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6, ?6 + ?7)
				ON CONFLICT (sync_name, lead_key) DO UPDATE SET
					code = excluded.code,
					reason = excluded.reason,
					attempts = CASE WHEN rejects.op = excluded.op THEN rejects.attempts + 1 ELSE 1 END,
					first_attempt_at = CASE WHEN rejects.op = excluded.op THEN rejects.first_attempt_at ELSE excluded.first_attempt_at END,
					last_attempt_at = excluded.last_attempt_at,
					next_attempt_at = excluded.last_attempt_at + CASE WHEN rejects.op = excluded.op
						THEN min(?7 << min(rejects.attempts, ?8), ?9) ELSE ?7 END,
					op = excluded.op`)
			if err != nil {
				return err
			}
			defer up.Close()
			// A refused add made no member of a key in doubt.
			delPending, err := tx.PrepareContext(ctx, `DELETE FROM members WHERE sync_name = ? AND lead_key = ? AND fields_hash = ?`)
			if err != nil {
				return err
			}
			defer delPending.Close()
			for _, r := range b.Rejected {
				if _, err := up.ExecContext(ctx, syncName, r.Key, string(r.Op), r.Code, r.Reason, at,
					bo.Base.Microseconds(), bo.MaxDoublings(), bo.Max.Microseconds()); err != nil {
					return err
				}
				if r.Op != state.OpAdd {
					continue
				}
				res, err := delPending.ExecContext(ctx, syncName, r.Key, []byte(state.PendingHash))
				if err != nil {
					return err
				}
				if n, err := res.RowsAffected(); err != nil {
					return err
				} else if n > 0 {
					delta.touch(r.Key)
				}
			}
		}
		for _, k := range b.Forget {
			if _, err := delRejectStmt.ExecContext(ctx, syncName, k); err != nil {
				return err
			}
		}
		return delta.flush(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("applying batch to sync %q: %w", syncName, err)
	}
	return nil
}

// memberUpsertRows is the number of members one INSERT statement of
// memberUpserter adds or changes: many rows a statement cost far less than
// one each.
const memberUpsertRows = 256

// memberUpserter inserts or updates confirmed members within a write
// transaction, up to memberUpsertRows a statement.
type memberUpserter struct {
	syncName string
	at       int64
	full     *sql.Stmt // the statement of memberUpsertRows rows, once prepared
	args     []any
}

// memberUpsertSQL returns the statement upserting n members, each as its
// sync, key, lead ID, hash and confirmation time. (Numbered parameters
// would spare repeating the sync and the time, but the driver looks up
// each one's name in a list as long as the statement's: quadratic.)
func memberUpsertSQL(n int) string {
	return `INSERT INTO members (sync_name, lead_key, lead_id, fields_hash, confirmed_at) VALUES (?, ?, ?, ?, ?)` +
		strings.Repeat(`, (?, ?, ?, ?, ?)`, n-1) + ` ON CONFLICT (sync_name, lead_key) DO UPDATE SET
		lead_id = coalesce(excluded.lead_id, members.lead_id),
		fields_hash = excluded.fields_hash,
		confirmed_at = excluded.confirmed_at`
}

// exec upserts ms, at most memberUpsertRows of them.
func (u *memberUpserter) exec(ctx context.Context, tx *sql.Tx, ms []state.Member) error {
	u.args = u.args[:0]
	for _, m := range ms {
		u.args = append(u.args, u.syncName, m.Key, nullID(m.LeadID), m.FieldsHash, u.at)
	}
	if len(ms) < memberUpsertRows {
		_, err := tx.ExecContext(ctx, memberUpsertSQL(len(ms)), u.args...)
		return err
	}
	if u.full == nil {
		var err error
		if u.full, err = tx.PrepareContext(ctx, memberUpsertSQL(memberUpsertRows)); err != nil {
			return err
		}
	}
	_, err := u.full.ExecContext(ctx, u.args...)
	return err
}

func (u *memberUpserter) close() {
	if u.full != nil {
		_ = u.full.Close()
	}
}

// ReplaceMembers implements [state.Store]. The write transaction stays open
// while fill runs, so fill should read from local storage rather than from
// the network: other syncs' writes wait for it.
func (s *Store) ReplaceMembers(ctx context.Context, syncName string, at time.Time, fill func(put func([]state.Member) error) error) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM members WHERE sync_name = ?`, syncName); err != nil {
			return err
		}
		// The digest starts over, built from the members once they are all
		// put (the write transaction keeps out every other writer).
		if err := clearDigest(ctx, tx, syncName); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE bindings SET needs_resync = 0 WHERE sync_name = ?`, syncName); err != nil {
			return err
		}
		up, err := tx.PrepareContext(ctx, `INSERT INTO members (sync_name, lead_key, lead_id, fields_hash, confirmed_at)
			VALUES (?, ?, ?, NULL, ?)
			ON CONFLICT (sync_name, lead_key) DO UPDATE SET
				lead_id = CASE WHEN members.lead_id = excluded.lead_id THEN members.lead_id ELSE NULL END`)
		if err != nil {
			return err
		}
		defer up.Close()
		ts := micros(at)
		err = fill(func(page []state.Member) error {
			for _, m := range page {
				if m.Key == "" {
					return errors.New("member with an empty key")
				}
				if _, err := up.ExecContext(ctx, syncName, m.Key, nullID(m.LeadID), ts); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		return rebuildDigest(ctx, tx, syncName, -1)
	})
	if err != nil {
		return fmt.Errorf("replacing members of sync %q: %w", syncName, err)
	}
	return nil
}

// Reset implements [state.Store].
func (s *Store) Reset(ctx context.Context, syncName string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM members WHERE sync_name = ?`,
			`DELETE FROM rejects WHERE sync_name = ?`,
			`DELETE FROM bindings WHERE sync_name = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, syncName); err != nil {
				return err
			}
		}
		return clearDigest(ctx, tx, syncName)
	})
	if err != nil {
		return fmt.Errorf("resetting sync %q: %w", syncName, err)
	}
	return nil
}

// StartRun implements [state.Store].
func (s *Store) StartRun(ctx context.Context, r state.Run) (state.Run, error) {
	r.Status = state.RunRunning
	r.EndedAt = time.Time{}
	samples, err := json.Marshal(sqlstore.NonNil(r.InvalidSamples))
	if err != nil {
		return r, fmt.Errorf("starting run of sync %q: %w", r.Sync, err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET status = ?, ended_at = ?, error = ?
			WHERE sync_name = ? AND status = ?`,
			string(state.RunAbandoned), micros(r.StartedAt), sqlstore.AbandonedError, r.Sync, string(state.RunRunning)); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO runs (sync_name, trigger_kind, status, started_at, list_id, full_resync,
				rows_read, invalid, invalid_samples, duplicates, adds_planned, removes_planned, updates_planned, deferred,
				adds_confirmed, removes_confirmed, updates_confirmed, rejected, api_calls, error)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			r.Sync, r.Trigger, string(r.Status), micros(r.StartedAt), r.ListID, r.FullResync,
			r.RowsRead, r.Invalid, string(samples), r.Duplicates, r.AddsPlanned, r.RemovesPlanned, r.UpdatesPlanned, r.Deferred,
			r.AddsConfirmed, r.RemovesConfirmed, r.UpdatesConfirmed, r.Rejected, r.APICalls, r.Error).Scan(&r.ID)
	})
	if err != nil {
		return r, fmt.Errorf("starting run of sync %q: %w", r.Sync, err)
	}
	return r, nil
}

// RecordSkipped implements [state.Store].
func (s *Store) RecordSkipped(ctx context.Context, r state.Run) (state.Run, error) {
	r = state.SkippedRun(r)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO runs (sync_name, trigger_kind, status, started_at, ended_at, error)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			r.Sync, r.Trigger, string(r.Status), micros(r.StartedAt), micros(r.EndedAt), r.Error).Scan(&r.ID)
	})
	if err != nil {
		return r, fmt.Errorf("recording skipped tick of sync %q: %w", r.Sync, err)
	}
	return r, nil
}

// FinishRun implements [state.Store].
func (s *Store) FinishRun(ctx context.Context, r state.Run) error {
	samples, err := json.Marshal(sqlstore.NonNil(r.InvalidSamples))
	if err != nil {
		return fmt.Errorf("finishing run %d: %w", r.ID, err)
	}
	var ended sql.NullInt64
	if !r.EndedAt.IsZero() {
		ended = sql.NullInt64{Int64: micros(r.EndedAt), Valid: true}
	}
	var n int64
	err = s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE runs SET status = ?, ended_at = ?, list_id = ?, full_resync = ?,
				rows_read = ?, invalid = ?, invalid_samples = ?, duplicates = ?, adds_planned = ?, removes_planned = ?,
				updates_planned = ?, deferred = ?, adds_confirmed = ?, removes_confirmed = ?, updates_confirmed = ?,
				rejected = ?, api_calls = ?, error = ?
			WHERE id = ?`,
			string(r.Status), ended, r.ListID, r.FullResync,
			r.RowsRead, r.Invalid, string(samples), r.Duplicates, r.AddsPlanned, r.RemovesPlanned,
			r.UpdatesPlanned, r.Deferred, r.AddsConfirmed, r.RemovesConfirmed, r.UpdatesConfirmed,
			r.Rejected, r.APICalls, r.Error, r.ID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("finishing run %d: %w", r.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("finishing run %d: %w", r.ID, state.ErrRunNotFound)
	}
	return nil
}

// ListRuns implements [state.Store].
func (s *Store) ListRuns(ctx context.Context, syncName string, limit int) ([]state.Run, error) {
	if limit <= 0 {
		limit = 100
	}
	q := `SELECT ` + sqlstore.RunCols + ` FROM runs WHERE sync_name = ? ORDER BY id DESC LIMIT ?`
	args := []any{syncName, limit}
	if syncName == "" {
		q = `SELECT ` + sqlstore.RunCols + ` FROM runs ORDER BY id DESC LIMIT ?`
		args = []any{limit}
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing runs of sync %q: %w", syncName, err)
	}
	defer rows.Close()
	var out []state.Run
	for rows.Next() {
		var r state.Run
		var status, samples string
		var started int64
		var ended sql.NullInt64
		if err := rows.Scan(sqlstore.RunDest(&r, &status, &started, &ended, &samples)...); err != nil {
			return nil, fmt.Errorf("listing runs of sync %q: %w", syncName, err)
		}
		r.StartedAt = fromMicros(started)
		if ended.Valid {
			r.EndedAt = fromMicros(ended.Int64)
		}
		if err := json.Unmarshal([]byte(samples), &r.InvalidSamples); err != nil {
			return nil, fmt.Errorf("listing runs of sync %q: decoding invalid samples of run %d: %w", syncName, r.ID, err)
		}
		sqlstore.ScannedRun(&r, status)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing runs of sync %q: %w", syncName, err)
	}
	return out, nil
}

// ClaimTick implements [state.Store].
func (s *Store) ClaimTick(ctx context.Context, syncName string, tick time.Time) (bool, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM ticks WHERE sync_name = ? AND tick < ?`,
			syncName, micros(tick.Add(-tickRetention))); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO ticks (sync_name, tick, claimed_at) VALUES (?, ?, ?)
			ON CONFLICT DO NOTHING`, syncName, micros(tick), micros(s.cfg.Now()))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("claiming tick %s of sync %q: %w", tick.UTC().Format(time.RFC3339), syncName, err)
	}
	return n == 1, nil
}

// Close implements [state.Store]: it releases the locks this Store holds and
// closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	held := make([]*heldLock, 0, len(s.held))
	for _, h := range s.held {
		held = append(held, h)
	}
	s.mu.Unlock()
	var errs []error
	for _, h := range held {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(h.base), s.cfg.BusyTimeout)
		errs = append(errs, h.unlock(ctx))
		cancel()
	}
	errs = append(errs, s.r.Close(), s.w.Close())
	return errors.Join(errs...)
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func nullID(id int64) sql.NullInt64 {
	return sql.NullInt64{Int64: id, Valid: id != 0}
}

func randomOwner() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
