package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	stdsync "sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/listsync/listsync/internal/state"
	"github.com/listsync/listsync/internal/state/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// tickRetention is how long claimed ticks are kept.
const tickRetention = 7 * 24 * time.Hour

// Config configures a [Store].
type Config struct {
	// DSN is the connection string (URL or key=value form).
	DSN string
	// MaxConns bounds the pool (pgxpool's default when 0). Each held lock
	// uses one more connection, outside the pool.
	MaxConns int32
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Logger receives warnings such as a lost lock connection
	// (zap.NewNop() when nil).
	Logger *zap.Logger
	// LockCheckInterval is how often the connection holding a sync's lock
	// is pinged ([LockCheckIntervalDefault] when 0).
	LockCheckInterval time.Duration
}

// Store is a [state.Store] in Postgres.
type Store struct {
	pool   *pgxpool.Pool
	cfg    Config
	logger *zap.Logger

	// schema is the schema the store's tables live in (current_schema()
	// of its connections), which scopes its advisory locks: Postgres
	// keeps those per database, and two listsyncs whose stores are in
	// two schemas of one database must not lock each other's syncs.
	schema string

	mu     stdsync.Mutex
	held   map[*heldLock]struct{}
	closed bool

	// beforeFold, set by tests only, runs in CompactDigest between the
	// reading of a delta page and the deletion of its folded rows.
	beforeFold func(ctx context.Context) error
}

var _ state.Store = (*Store)(nil)

// Open connects to cfg.DSN and applies the schema migrations the database
// lacks.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		// pgconn's ParseConfigError redacts the password it quotes.
		return nil, fmt.Errorf("opening postgres state store: parsing DSN: %w", err)
	}
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = cfg.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("opening postgres state store: %w", err)
	}
	s := &Store{pool: pool, cfg: cfg, logger: cfg.Logger, held: map[*heldLock]struct{}{}}
	var schema *string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("opening postgres state store: %w", err)
	}
	if schema == nil {
		pool.Close()
		return nil, errors.New("opening postgres state store: no schema of the connection's search_path exists; create one, or name one in the DSN (search_path=SCHEMA)")
	}
	s.schema = *schema
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("opening postgres state store: %w", err)
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	files, err := sqlstore.MigrationFiles(migrations)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, advisoryKey("migrations", s.schema, "")); err != nil {
			return fmt.Errorf("locking for migrations: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS listsync_schema_version (
			version integer NOT NULL PRIMARY KEY, applied_at timestamptz NOT NULL)`); err != nil {
			return fmt.Errorf("creating listsync_schema_version: %w", err)
		}
		for _, f := range files {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM listsync_schema_version WHERE version = $1`, f.Version).Scan(&n); err != nil {
				return fmt.Errorf("applying migration %s: %w", f.Name, err)
			}
			if n > 0 {
				continue
			}
			if _, err := tx.Exec(ctx, f.SQL); err != nil {
				return fmt.Errorf("applying migration %s: %w", f.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO listsync_schema_version (version, applied_at) VALUES ($1, $2)`,
				f.Version, s.cfg.Now()); err != nil {
				return fmt.Errorf("applying migration %s: %w", f.Name, err)
			}
		}
		return nil
	})
}

// BindList implements [state.Store].
func (s *Store) BindList(ctx context.Context, syncName, listRef string, listID int64) (bool, error) {
	var changed bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The digest lock comes first, as in every transaction that takes
		// it, so that two of them never wait for each other's rows.
		if err := s.lockDigest(ctx, tx, syncName); err != nil {
			return err
		}
		var cur int64
		err := tx.QueryRow(ctx, `SELECT list_id FROM listsync_bindings WHERE sync_name = $1 FOR UPDATE`, syncName).Scan(&cur)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			changed = true
		case err != nil:
			return err
		default:
			changed = cur != listID
		}
		if !changed {
			_, err := tx.Exec(ctx, `UPDATE listsync_bindings SET list_ref = $2 WHERE sync_name = $1`, syncName, listRef)
			return err
		}
		for _, q := range []string{
			`DELETE FROM listsync_members WHERE sync_name = $1`,
			`DELETE FROM listsync_rejects WHERE sync_name = $1`,
		} {
			if _, err := tx.Exec(ctx, q, syncName); err != nil {
				return err
			}
		}
		if err := clearDigest(ctx, tx, syncName); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO listsync_bindings (sync_name, list_ref, list_id, bound_at, needs_resync)
			VALUES ($1, $2, $3, $4, true)
			ON CONFLICT (sync_name) DO UPDATE SET list_ref = excluded.list_ref, list_id = excluded.list_id,
				bound_at = excluded.bound_at, needs_resync = true`, syncName, listRef, listID, s.cfg.Now())
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
	err := s.pool.QueryRow(ctx, `SELECT list_ref, list_id, bound_at, needs_resync FROM listsync_bindings
		WHERE sync_name = $1`, syncName).Scan(&b.ListRef, &b.ListID, &b.BoundAt, &b.NeedsResync)
	if errors.Is(err, pgx.ErrNoRows) {
		return state.Binding{}, false, nil
	}
	if err != nil {
		return state.Binding{}, false, fmt.Errorf("reading binding of sync %q: %w", syncName, err)
	}
	b.BoundAt = b.BoundAt.UTC()
	return b, true, nil
}

// ScanMembers implements [state.Store].
func (s *Store) ScanMembers(ctx context.Context, syncName string, fn func(state.Member) error) error {
	rows, err := s.pool.Query(ctx, `SELECT lead_key, coalesce(lead_id, 0), fields_hash, confirmed_at
		FROM listsync_members WHERE sync_name = $1 ORDER BY lead_key`, syncName)
	if err != nil {
		return fmt.Errorf("scanning members of sync %q: %w", syncName, err)
	}
	defer rows.Close()
	for rows.Next() {
		var m state.Member
		if err := rows.Scan(&m.Key, &m.LeadID, &m.FieldsHash, &m.ConfirmedAt); err != nil {
			return fmt.Errorf("scanning members of sync %q: %w", syncName, err)
		}
		m.ConfirmedAt = m.ConfirmedAt.UTC()
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
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM listsync_members WHERE sync_name = $1`, syncName).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting members of sync %q: %w", syncName, err)
	}
	return n, nil
}

func scanReject(rows pgx.Rows) (state.Reject, error) {
	var r state.Reject
	var op string
	if err := rows.Scan(&r.Key, &op, &r.Code, &r.Reason, &r.Attempts, &r.FirstAttemptAt, &r.LastAttemptAt, &r.NextAttemptAt); err != nil {
		return r, err
	}
	r.Op = state.Op(op)
	r.FirstAttemptAt, r.LastAttemptAt, r.NextAttemptAt = r.FirstAttemptAt.UTC(), r.LastAttemptAt.UTC(), r.NextAttemptAt.UTC()
	return r, nil
}

// ScanRejects implements [state.Store].
func (s *Store) ScanRejects(ctx context.Context, syncName string, fn func(state.Reject) error) error {
	rows, err := s.pool.Query(ctx, `SELECT `+sqlstore.RejectCols+` FROM listsync_rejects WHERE sync_name = $1 ORDER BY lead_key`, syncName)
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
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := s.pool.Query(ctx, `SELECT `+sqlstore.RejectCols+` FROM listsync_rejects WHERE sync_name = $1
		ORDER BY lead_key LIMIT $2`, syncName, lim)
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
	bo := b.Backoff.WithDefaults()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Most syncs have no rejects: then confirmed and removed keys need
		// no reject deleted.
		var hasRejects bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM listsync_rejects WHERE sync_name = $1)`, syncName).
			Scan(&hasRejects); err != nil {
			return fmt.Errorf("checking rejects: %w", err)
		}
		// The keys whose member row this batch inserts, changes or
		// deletes, for the digest's delta.
		touched := make([]string, 0, len(b.Confirmed))
		if n := len(b.Confirmed); n > 0 {
			// In key order (unnest keeps the arrays' order), the upsert
			// walks the members' index page after page instead of at
			// random: batches come in fingerprint order.
			confirmed := slices.Clone(b.Confirmed)
			slices.SortFunc(confirmed, func(x, y state.Member) int { return strings.Compare(x.Key, y.Key) })
			keys := make([]string, n)
			ids := make([]int64, n)
			hashes := make([][]byte, n)
			for i, m := range confirmed {
				keys[i], ids[i], hashes[i] = m.Key, m.LeadID, m.FieldsHash
			}
			if _, err := tx.Exec(ctx, `INSERT INTO listsync_members (sync_name, lead_key, lead_id, fields_hash, confirmed_at)
				SELECT $1, k, nullif(l, 0), h, $5 FROM unnest($2::text[], $3::bigint[], $4::bytea[]) AS t(k, l, h)
				ON CONFLICT (sync_name, lead_key) DO UPDATE SET
					lead_id = coalesce(excluded.lead_id, listsync_members.lead_id),
					fields_hash = excluded.fields_hash,
					confirmed_at = excluded.confirmed_at`, syncName, keys, ids, hashes, b.At); err != nil {
				return fmt.Errorf("upserting members: %w", err)
			}
			touched = append(touched, keys...)
			if hasRejects {
				// A key marked pending (in doubt) keeps its reject.
				settled := make([]string, 0, n)
				for _, m := range b.Confirmed {
					if !m.Pending() {
						settled = append(settled, m.Key)
					}
				}
				if _, err := tx.Exec(ctx, `DELETE FROM listsync_rejects WHERE sync_name = $1 AND lead_key = ANY($2::text[])`,
					syncName, settled); err != nil {
					return fmt.Errorf("deleting rejects: %w", err)
				}
			}
		}
		if len(b.Removed) > 0 {
			deleted, err := deleteMembers(ctx, tx, `DELETE FROM listsync_members WHERE sync_name = $1 AND lead_key = ANY($2::text[])
				RETURNING lead_key`, syncName, b.Removed)
			if err != nil {
				return fmt.Errorf("deleting removed members: %w", err)
			}
			touched = append(touched, deleted...)
			if hasRejects {
				if _, err := tx.Exec(ctx, `DELETE FROM listsync_rejects WHERE sync_name = $1 AND lead_key = ANY($2::text[])`,
					syncName, b.Removed); err != nil {
					return fmt.Errorf("deleting rejects of removed members: %w", err)
				}
			}
		}
		if n := len(b.Rejected); n > 0 {
			keys := make([]string, n)
			ops := make([]string, n)
			codes := make([]string, n)
			reasons := make([]string, n)
			for i, r := range b.Rejected {
				keys[i], ops[i], codes[i], reasons[i] = r.Key, string(r.Op), r.Code, r.Reason
			}
			// A row rejected again for the same op backs off further; a
			// row rejected for the other op starts over.
			if _, err := tx.Exec(ctx, `INSERT INTO listsync_rejects AS r (sync_name, lead_key, op, code, reason, attempts,
					first_attempt_at, last_attempt_at, next_attempt_at)
				SELECT $1, k, o, c, m, 1, $6::timestamptz, $6::timestamptz, $6::timestamptz + $7::bigint * interval '1 microsecond'
				FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS t(k, o, c, m)
				ON CONFLICT (sync_name, lead_key) DO UPDATE SET
					code = excluded.code,
					reason = excluded.reason,
					attempts = CASE WHEN r.op = excluded.op THEN r.attempts + 1 ELSE 1 END,
					first_attempt_at = CASE WHEN r.op = excluded.op THEN r.first_attempt_at ELSE excluded.first_attempt_at END,
					last_attempt_at = excluded.last_attempt_at,
					next_attempt_at = excluded.last_attempt_at + (CASE WHEN r.op = excluded.op
						THEN least($7::bigint << least(r.attempts, $8::integer), $9::bigint) ELSE $7::bigint END)
						* interval '1 microsecond',
					op = excluded.op`,
				syncName, keys, ops, codes, reasons, b.At, bo.Base.Microseconds(), bo.MaxDoublings(), bo.Max.Microseconds()); err != nil {
				return fmt.Errorf("upserting rejects: %w", err)
			}
			// A refused add made no member of a key in doubt.
			var adds []string
			for _, r := range b.Rejected {
				if r.Op == state.OpAdd {
					adds = append(adds, r.Key)
				}
			}
			if len(adds) > 0 {
				deleted, err := deleteMembers(ctx, tx, `DELETE FROM listsync_members
					WHERE sync_name = $1 AND lead_key = ANY($2::text[]) AND fields_hash = $3 RETURNING lead_key`,
					syncName, adds, []byte(state.PendingHash))
				if err != nil {
					return fmt.Errorf("deleting pending members of rejected adds: %w", err)
				}
				touched = append(touched, deleted...)
			}
		}
		if len(b.Forget) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM listsync_rejects WHERE sync_name = $1 AND lead_key = ANY($2::text[])`,
				syncName, b.Forget); err != nil {
				return fmt.Errorf("forgetting rejects: %w", err)
			}
		}
		return touchDigest(ctx, tx, syncName, touched)
	})
	if err != nil {
		return fmt.Errorf("applying batch to sync %q: %w", syncName, err)
	}
	return nil
}

// ReplaceMembers implements [state.Store].
func (s *Store) ReplaceMembers(ctx context.Context, syncName string, at time.Time, fill func(put func([]state.Member) error) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.lockDigest(ctx, tx, syncName); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM listsync_members WHERE sync_name = $1`, syncName); err != nil {
			return err
		}
		// The digest starts over, built from the members once they are all
		// put. A writer of another worker that changes them meanwhile adds
		// to the delta as ever, which overrides the chunks.
		if err := clearDigest(ctx, tx, syncName); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE listsync_bindings SET needs_resync = false WHERE sync_name = $1`, syncName); err != nil {
			return err
		}
		err := fill(func(page []state.Member) error {
			// One statement cannot upsert a key twice: fold repeats
			// within the page first, as the statement folds them across
			// pages (two lead IDs for one key make it unknown).
			idx := make(map[string]int, len(page))
			keys := make([]string, 0, len(page))
			ids := make([]int64, 0, len(page))
			for _, m := range page {
				if m.Key == "" {
					return errors.New("member with an empty key")
				}
				if i, ok := idx[m.Key]; ok {
					if ids[i] != m.LeadID {
						ids[i] = 0
					}
					continue
				}
				idx[m.Key] = len(keys)
				keys = append(keys, m.Key)
				ids = append(ids, m.LeadID)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO listsync_members AS m (sync_name, lead_key, lead_id, fields_hash, confirmed_at)
				SELECT $1, k, nullif(l, 0), NULL, $4 FROM unnest($2::text[], $3::bigint[]) AS t(k, l)
				ON CONFLICT (sync_name, lead_key) DO UPDATE SET
					lead_id = CASE WHEN m.lead_id = excluded.lead_id THEN m.lead_id ELSE NULL END`,
				syncName, keys, ids, at); err != nil {
				return err
			}
			return nil
		})
		if err != nil {
			return err
		}
		return writeMemberChunks(ctx, tx, syncName, -1)
	})
	if err != nil {
		return fmt.Errorf("replacing members of sync %q: %w", syncName, err)
	}
	return nil
}

// Reset implements [state.Store].
func (s *Store) Reset(ctx context.Context, syncName string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.lockDigest(ctx, tx, syncName); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM listsync_members WHERE sync_name = $1`,
			`DELETE FROM listsync_rejects WHERE sync_name = $1`,
			`DELETE FROM listsync_bindings WHERE sync_name = $1`,
		} {
			if _, err := tx.Exec(ctx, q, syncName); err != nil {
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
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE listsync_runs SET status = $1, ended_at = $2, error = $3
			WHERE sync_name = $4 AND status = $5`,
			string(state.RunAbandoned), r.StartedAt, sqlstore.AbandonedError, r.Sync, string(state.RunRunning)); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO listsync_runs (sync_name, trigger_kind, status, started_at, list_id,
				full_resync, rows_read, invalid, invalid_samples, duplicates, adds_planned, removes_planned,
				updates_planned, deferred, adds_confirmed, removes_confirmed, updates_confirmed, rejected, api_calls, error)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
			RETURNING id`,
			r.Sync, r.Trigger, string(r.Status), r.StartedAt, r.ListID, r.FullResync, r.RowsRead, r.Invalid,
			sqlstore.NonNil(r.InvalidSamples), r.Duplicates, r.AddsPlanned, r.RemovesPlanned, r.UpdatesPlanned, r.Deferred,
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
	err := s.pool.QueryRow(ctx, `INSERT INTO listsync_runs (sync_name, trigger_kind, status, started_at, ended_at, error)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		r.Sync, r.Trigger, string(r.Status), r.StartedAt, r.EndedAt, r.Error).Scan(&r.ID)
	if err != nil {
		return r, fmt.Errorf("recording skipped tick of sync %q: %w", r.Sync, err)
	}
	return r, nil
}

// FinishRun implements [state.Store].
func (s *Store) FinishRun(ctx context.Context, r state.Run) error {
	var ended *time.Time
	if !r.EndedAt.IsZero() {
		ended = &r.EndedAt
	}
	tag, err := s.pool.Exec(ctx, `UPDATE listsync_runs SET status = $1, ended_at = $2, list_id = $3, full_resync = $4,
			rows_read = $5, invalid = $6, invalid_samples = $7, duplicates = $8, adds_planned = $9,
			removes_planned = $10, updates_planned = $11, deferred = $12, adds_confirmed = $13,
			removes_confirmed = $14, updates_confirmed = $15, rejected = $16, api_calls = $17, error = $18
		WHERE id = $19`,
		string(r.Status), ended, r.ListID, r.FullResync, r.RowsRead, r.Invalid, sqlstore.NonNil(r.InvalidSamples),
		r.Duplicates, r.AddsPlanned, r.RemovesPlanned, r.UpdatesPlanned, r.Deferred, r.AddsConfirmed,
		r.RemovesConfirmed, r.UpdatesConfirmed, r.Rejected, r.APICalls, r.Error, r.ID)
	if err != nil {
		return fmt.Errorf("finishing run %d: %w", r.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("finishing run %d: %w", r.ID, state.ErrRunNotFound)
	}
	return nil
}

// ListRuns implements [state.Store].
func (s *Store) ListRuns(ctx context.Context, syncName string, limit int) ([]state.Run, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT `+sqlstore.RunCols+` FROM listsync_runs
		WHERE $1 = '' OR sync_name = $1 ORDER BY id DESC LIMIT $2`, syncName, limit)
	if err != nil {
		return nil, fmt.Errorf("listing runs of sync %q: %w", syncName, err)
	}
	defer rows.Close()
	var out []state.Run
	for rows.Next() {
		var r state.Run
		var status string
		var ended *time.Time
		if err := rows.Scan(sqlstore.RunDest(&r, &status, &r.StartedAt, &ended, &r.InvalidSamples)...); err != nil {
			return nil, fmt.Errorf("listing runs of sync %q: %w", syncName, err)
		}
		r.StartedAt = r.StartedAt.UTC()
		if ended != nil {
			r.EndedAt = ended.UTC()
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
	var claimed bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM listsync_ticks WHERE sync_name = $1 AND tick < $2`,
			syncName, tick.Add(-tickRetention)); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO listsync_ticks (sync_name, tick, claimed_at) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, syncName, tick, s.cfg.Now())
		claimed = tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("claiming tick %s of sync %q: %w", tick.UTC().Format(time.RFC3339), syncName, err)
	}
	return claimed, nil
}

// Close implements [state.Store]: it releases the locks this Store holds and
// closes its connections.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	held := make([]*heldLock, 0, len(s.held))
	for h := range s.held {
		held = append(held, h)
	}
	s.mu.Unlock()
	var errs []error
	for _, h := range held {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(h.base), 5*time.Second)
		errs = append(errs, h.unlock(ctx))
		cancel()
	}
	s.pool.Close()
	return errors.Join(errs...)
}

// deleteMembers runs a DELETE of members returning their keys, and returns
// those keys.
func deleteMembers(ctx context.Context, tx pgx.Tx, query string, args ...any) ([]string, error) {
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// advisoryKey maps one of the store's locks onto an advisory lock key: what
// it locks ("migrations", "sync" for a sync's run, "digest" for its
// digest), in the store's schema, of the sync named name (none for the
// migrations).
func advisoryKey(what, schema, name string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("listsync " + what + " lock\x00" + schema + "\x00" + name))
	return int64(h.Sum64())
}
