package postgres

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/listsync/listsync/internal/state"
	"github.com/listsync/listsync/internal/state/internal/sqlstore"
)

// The ledger digest lives in listsync_digest_chunks (the compacted digest)
// and listsync_digest_delta (the keys changed since), as migration 0003
// describes.
//
// Writers of the members (ApplyBatch from any worker) never wait for the
// digest: they insert their keys into the delta, or bump the version of a
// key already there, in their own transaction. The chunks change only under
// the sync's digest lock (a transaction-level advisory lock),
// which CompactDigest takes, and so do ReplaceMembers, Reset and BindList,
// which clear the sync's digest: a compaction never writes chunks merged
// from a base that was cleared meanwhile.

// ScanDigest implements [state.Store]: it reads one snapshot in one
// REPEATABLE READ, READ ONLY transaction.
//
// The delta is usually small (the engine compacts at the end of each run):
// when it holds at most deltaPreloadMax keys, ScanDigest reads it first,
// then reads all the chunks in one query that a goroutine consumes while
// the merge decodes, so that Postgres streams the chunks instead of
// answering one query per chunk. A larger delta is read page by page, in
// turn with the chunks, on the one connection.
func (s *Store) ScanDigest(ctx context.Context, syncName string, fn func(*state.DigestEntry) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("scanning digest of sync %q: %w", syncName, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	src := digestSource(tx, syncName, math.MaxInt64)
	delta := preloadedDelta{cursor: src.DeltaFunc}
	if err := delta.preload(ctx); err != nil {
		return fmt.Errorf("scanning digest of sync %q: %w", syncName, err)
	}
	src.DeltaFunc = delta.next
	if delta.complete {
		chunks := chunkStream{tx: tx, syncName: syncName}
		defer chunks.close()
		src.ChunkFunc, src.ConcurrentChunks = chunks.next, true
	}
	return sqlstore.ScanDigest(ctx, syncName, src, fn)
}

// deltaPreloadMax is the largest delta that ScanDigest holds in memory (in
// whole pages), about 2 MB.
const deltaPreloadMax = 2 * sqlstore.DeltaPageSize

// preloadedDelta serves the pages of a delta read ahead, then the pages its
// cursor reads after them.
type preloadedDelta struct {
	cursor   func(ctx context.Context, after []byte, page []sqlstore.DeltaEntry) ([]sqlstore.DeltaEntry, error)
	pages    [][]sqlstore.DeltaEntry
	complete bool // the pages hold the whole delta
}

func (d *preloadedDelta) preload(ctx context.Context) error {
	for n := 0; n < deltaPreloadMax; n += sqlstore.DeltaPageSize {
		page, err := d.cursor(ctx, nil, nil)
		if err != nil {
			return err
		}
		d.pages = append(d.pages, page)
		if len(page) < sqlstore.DeltaPageSize {
			d.complete = true
			return nil
		}
	}
	return nil
}

func (d *preloadedDelta) next(ctx context.Context, after []byte, page []sqlstore.DeltaEntry) ([]sqlstore.DeltaEntry, error) {
	if len(d.pages) == 0 {
		if d.complete {
			return page[:0], nil
		}
		return d.cursor(ctx, after, page)
	}
	page = append(page[:0], d.pages[0]...)
	d.pages[0] = nil
	d.pages = d.pages[1:]
	return page, nil
}

// chunkStream reads all the chunks of a sync in one query, one chunk a
// call, for a goroutine of its own: nothing else may use the connection
// until close.
type chunkStream struct {
	tx       pgx.Tx
	syncName string
	rows     pgx.Rows
	next1    []byte // the first part of the next chunk, read ahead
	next1Seq int64
	has1     bool
}

func (c *chunkStream) next(ctx context.Context, _ int64, buf []byte) (int64, []byte, bool, error) {
	if c.rows == nil {
		// Reading the chunks in the primary key's order costs nothing;
		// planned from missing or stale statistics, a sort of their 64 MB
		// (a million members) spilled to disk. The setting lasts until the
		// transaction ends.
		if _, err := c.tx.Exec(ctx, `SET LOCAL enable_sort = off`); err != nil {
			return 0, nil, false, err
		}
		rows, err := c.tx.Query(ctx, `SELECT seq, part, data FROM listsync_digest_chunks WHERE sync_name = $1 ORDER BY seq, part`,
			c.syncName)
		if err != nil {
			return 0, nil, false, err
		}
		c.rows = rows
	}
	buf = buf[:0]
	var seq int64
	var parts int32
	if c.has1 {
		seq, buf, parts, c.has1 = c.next1Seq, append(buf, c.next1...), 1, false
	}
	for c.rows.Next() {
		var rowSeq int64
		var part int32
		var data pgtype.DriverBytes // valid until the next row: copied
		if err := c.rows.Scan(&rowSeq, &part, &data); err != nil {
			return 0, nil, false, err
		}
		if parts > 0 && rowSeq != seq {
			c.next1Seq, c.next1, c.has1 = rowSeq, append(c.next1[:0], data...), true
			if part != 0 {
				return 0, nil, false, fmt.Errorf("%w: chunk %d starts with part %d", sqlstore.ErrCorruptDigest, rowSeq, part)
			}
			return seq, buf, true, nil
		}
		if part != parts {
			return 0, nil, false, fmt.Errorf("%w: chunk %d has part %d where part %d belongs", sqlstore.ErrCorruptDigest, rowSeq, part, parts)
		}
		seq, parts, buf = rowSeq, parts+1, append(buf, data...)
	}
	if err := c.rows.Err(); err != nil {
		return 0, nil, false, err
	}
	return seq, buf, parts > 0, nil
}

// close ends the query, reading what is left of it.
func (c *chunkStream) close() {
	if c.rows != nil {
		c.rows.Close()
	}
}

// CompactDigest implements [state.Store]. It writes the merged digest as
// new chunks numbered after the old ones, deletes the old ones and the
// delta rows it folded, in one transaction under the sync's digest lock.
//
// The transaction is READ COMMITTED, and that is enough for a consistent
// result:
//   - the chunks cannot change while it holds the digest lock, so every
//     chunk it reads, each in a statement of its own, belongs to one base;
//   - the delta is read through one cursor, declared after the lock is
//     granted, so in one snapshot: the member state folded for a key goes
//     with the version read for it (a writer changes both in one
//     transaction), and a row inserted after the snapshot is simply not
//     folded and stays for the next compaction;
//   - it deletes a folded row only if its version is still the one read,
//     skipping the rows a writer holds (SKIP LOCKED): a key changed after
//     the snapshot stays in the delta, and its newer state overrides the
//     stale one folded into the chunks. Leaving a folded row is always
//     safe; it is read again from the members. Never waiting for a
//     writer's rows, it cannot deadlock with one.
//
// A REPEATABLE READ transaction would fail its delete of a row a writer
// updated since its snapshot (a serialisation error), and its snapshot
// would start at the lock statement, before the lock is granted: a
// compaction that waited for another would read the chunks that one
// deleted.
func (s *Store) CompactDigest(ctx context.Context, syncName string) error {
	var pending bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM listsync_digest_delta WHERE sync_name = $1)`, syncName).
		Scan(&pending); err != nil {
		return fmt.Errorf("compacting digest of sync %q: %w", syncName, err)
	}
	if !pending {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.lockDigest(ctx, tx, syncName); err != nil {
			return err
		}
		var maxSeq, chunks int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(seq), -1), count(*) FILTER (WHERE part = 0)
			FROM listsync_digest_chunks WHERE sync_name = $1`, syncName).Scan(&maxSeq, &chunks); err != nil {
			return fmt.Errorf("reading the last chunk: %w", err)
		}
		src := digestSource(tx, syncName, maxSeq)
		large, err := deltaIsLarge(ctx, tx, syncName, chunks)
		if err != nil {
			return err
		}
		if large {
			if err := sqlstore.CheckChunks(ctx, src.ChunkFunc); err != nil {
				return err
			}
			return s.rebuildDigest(ctx, tx, syncName, maxSeq)
		}
		src.FoldedFunc = func(ctx context.Context, page []sqlstore.DeltaEntry) error {
			fps := make([][]byte, len(page))
			versions := make([]int64, len(page))
			for i := range page {
				fps[i], versions[i] = page[i].FP[:], page[i].Version
			}
			return s.deleteFolded(ctx, tx, syncName, fps, versions)
		}
		seq := maxSeq
		if err := sqlstore.CompactDigest(ctx, src, func(data []byte) error {
			seq++
			return writeChunk(ctx, tx, syncName, seq, data)
		}); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM listsync_digest_chunks WHERE sync_name = $1 AND seq <= $2`, syncName, maxSeq)
		return err
	})
	if err != nil {
		return fmt.Errorf("compacting digest of sync %q: %w", syncName, err)
	}
	return nil
}

// deleteFolded deletes the sync's delta rows of the fingerprints fps whose
// version is still the one in versions (read when their state was folded),
// skipping those a writer holds.
func (s *Store) deleteFolded(ctx context.Context, tx pgx.Tx, syncName string, fps [][]byte, versions []int64) error {
	if s.beforeFold != nil {
		if err := s.beforeFold(ctx); err != nil {
			return err
		}
	}
	// Each row is looked up by primary key and locked, then deleted by its
	// tuple ID: a plan that holds whatever the statistics say about the
	// delta's size.
	_, err := tx.Exec(ctx, `WITH folded AS (
			SELECT d.ctid AS tid FROM unnest($2::bytea[], $3::bigint[]) AS f(fp, version),
			LATERAL (SELECT ctid FROM listsync_digest_delta
				WHERE sync_name = $1 AND fp = f.fp AND version = f.version
				FOR UPDATE SKIP LOCKED) d)
		DELETE FROM listsync_digest_delta WHERE ctid = ANY (ARRAY(SELECT tid FROM folded))`,
		syncName, fps, versions)
	return err
}

// writeChunk stores chunk seq of the sync, in parts of chunkPartSize.
func writeChunk(ctx context.Context, tx pgx.Tx, syncName string, seq int64, data []byte) error {
	parts := make([][]byte, 0, len(data)/chunkPartSize+1)
	for rest := data; len(rest) > 0; rest = rest[min(len(rest), chunkPartSize):] {
		parts = append(parts, rest[:min(len(rest), chunkPartSize)])
	}
	_, err := tx.Exec(ctx, `INSERT INTO listsync_digest_chunks (sync_name, seq, part, data)
		SELECT $1, $2, p - 1, d FROM unnest($3::bytea[]) WITH ORDINALITY AS t(d, p)`, syncName, seq, parts)
	return err
}

// deltaIsLarge reports whether the sync's delta holds more than
// sqlstore.LargeDeltaLimit rows for its chunks, or there are no chunks. It
// counts at most that many delta rows.
func deltaIsLarge(ctx context.Context, tx pgx.Tx, syncName string, chunks int64) (bool, error) {
	if chunks == 0 {
		return true, nil
	}
	limit := sqlstore.LargeDeltaLimit(chunks)
	var n int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT FROM listsync_digest_delta WHERE sync_name = $1 LIMIT $2) d`,
		syncName, limit+1).Scan(&n); err != nil {
		return false, fmt.Errorf("counting the delta: %w", err)
	}
	return n > limit, nil
}

// rebuildDigest replaces the sync's chunks (those numbered up to maxSeq)
// with chunks built from its members, and deletes the delta rows it
// folded, in tx, which holds the digest lock: no delta key is looked up in
// the members (writeMemberChunks).
//
// Writers do not take the digest lock, so the folded rows are chosen as
// CompactDigest's merge chooses them. The delta's keys and versions are
// copied into a temporary table before the members' cursor is declared, so
// in a snapshot no later than the members': a row still at the version
// copied was not changed since the members were read either, and its state
// is in the new chunks. Any other row (changed since, inserted since, or
// held by a writer: SKIP LOCKED) stays for the next compaction, and
// overrides the chunks with the state it names. The deletion is one join of
// the delta with that table, not a statement per page of keys.
func (s *Store) rebuildDigest(ctx context.Context, tx pgx.Tx, syncName string, maxSeq int64) error {
	if _, err := tx.Exec(ctx, `CREATE TEMPORARY TABLE listsync_digest_folded ON COMMIT DROP AS
		SELECT fp, version FROM listsync_digest_delta WHERE sync_name = $1`, syncName); err != nil {
		return fmt.Errorf("reading the delta: %w", err)
	}
	if err := writeMemberChunks(ctx, tx, syncName, maxSeq); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM listsync_digest_chunks WHERE sync_name = $1 AND seq <= $2`, syncName, maxSeq); err != nil {
		return err
	}
	if s.beforeFold != nil {
		if err := s.beforeFold(ctx); err != nil {
			return err
		}
	}
	// A hash join whatever the statistics say: planned from a delta
	// counted empty, a nested loop would scan it once per key. The setting
	// lasts until the transaction ends, which follows.
	if _, err := tx.Exec(ctx, `SET LOCAL enable_nestloop = off`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `WITH folded AS (
			SELECT d.ctid AS tid FROM listsync_digest_delta d
			JOIN listsync_digest_folded f ON d.fp = f.fp AND d.version = f.version
			WHERE d.sync_name = $1
			FOR UPDATE OF d SKIP LOCKED)
		DELETE FROM listsync_digest_delta WHERE ctid = ANY (ARRAY(SELECT tid FROM folded))`, syncName); err != nil {
		return fmt.Errorf("deleting the folded delta: %w", err)
	}
	return nil
}

// writeMemberChunks writes the digest of the sync's members, as tx sees
// them, as chunks numbered after afterSeq. Postgres computes each member's
// fingerprint and sorts the members by it: one sequential scan, and a sort
// that spills to disk rather than to this process's memory.
func writeMemberChunks(ctx context.Context, tx pgx.Tx, syncName string, afterSeq int64) error {
	if _, err := tx.Exec(ctx, `DECLARE listsync_digest_members NO SCROLL CURSOR FOR
		SELECT substring(sha256(convert_to(lead_key, 'UTF8')) from 1 for 16) AS fp, lead_key, coalesce(lead_id, 0), fields_hash
		FROM listsync_members WHERE sync_name = $1
		ORDER BY fp`, syncName); err != nil {
		return fmt.Errorf("reading the members: %w", err)
	}
	src := sqlstore.DigestSource{
		ChunkFunc: func(context.Context, int64, []byte) (int64, []byte, bool, error) { return 0, nil, false, nil },
		// The members come as delta entries over no chunks: the merge checks
		// their order and fingerprints as it does a delta's.
		DeltaFunc: func(ctx context.Context, _ []byte, page []sqlstore.DeltaEntry) ([]sqlstore.DeltaEntry, error) {
			rows, err := tx.Query(ctx, fmt.Sprintf(`FETCH %d FROM listsync_digest_members`, sqlstore.DeltaPageSize))
			if err != nil {
				return page, err
			}
			defer rows.Close()
			for rows.Next() {
				d := sqlstore.DeltaEntry{Member: true}
				var fp []byte
				if err := rows.Scan(&fp, &d.Key, &d.LeadID, &d.FieldsHash); err != nil {
					return page, err
				}
				if d.FP, err = sqlstore.FPOf(fp, "member"); err != nil {
					return page, err
				}
				page = append(page, d)
			}
			return page, rows.Err()
		},
	}
	seq := afterSeq
	if err := sqlstore.CompactDigest(ctx, src, func(data []byte) error {
		seq++
		return writeChunk(ctx, tx, syncName, seq, data)
	}); err != nil {
		return err
	}
	return nil
}

// chunkPartSize is the size of the parts a chunk is stored in, one row
// each: small enough that a row stays in its heap page (the table's
// toast_tuple_target is 8160), which Postgres reads several times faster
// than the 2 KB slices of a TOASTed value.
const chunkPartSize = 7900

// digestSource reads the sync's digest as tx sees it, the chunks numbered up
// to maxSeq only (a compaction's own new chunks follow).
func digestSource(tx pgx.Tx, syncName string, maxSeq int64) sqlstore.DigestSource {
	var declared bool
	return sqlstore.DigestSource{
		ChunkFunc: func(ctx context.Context, after int64, buf []byte) (int64, []byte, bool, error) {
			rows, err := tx.Query(ctx, `SELECT seq, part, data FROM listsync_digest_chunks
				WHERE sync_name = $1 AND seq = (SELECT min(seq) FROM listsync_digest_chunks
					WHERE sync_name = $1 AND seq > $2 AND seq <= $3)
				ORDER BY part`, syncName, after, maxSeq)
			if err != nil {
				return 0, nil, false, err
			}
			defer rows.Close()
			buf = buf[:0]
			var seq int64
			var n int32
			for ; rows.Next(); n++ {
				var part int32
				var data pgtype.DriverBytes // valid until the next row: copied into buf
				if err := rows.Scan(&seq, &part, &data); err != nil {
					return 0, nil, false, err
				}
				if part != n {
					return 0, nil, false, fmt.Errorf("%w: chunk %d has part %d where part %d belongs", sqlstore.ErrCorruptDigest, seq, part, n)
				}
				buf = append(buf, data...)
			}
			if err := rows.Err(); err != nil {
				return 0, nil, false, err
			}
			return seq, buf, n > 0, nil
		},
		// The delta is read through a cursor rather than by keyset pages,
		// and each key's member is looked up by primary key (the LIMIT
		// keeps the planner from flattening the lookup into a join). The
		// plans are made from statistics that a large delta (a resync, a
		// migration) leaves out of date until the next ANALYZE: a keyset
		// page hashing the whole delta each time, or a join scanning the
		// members for each key, would be quadratic. The cursor reads the
		// delta once, in the snapshot of its DECLARE.
		DeltaFunc: func(ctx context.Context, _ []byte, page []sqlstore.DeltaEntry) ([]sqlstore.DeltaEntry, error) {
			if !declared {
				if _, err := tx.Exec(ctx, `DECLARE listsync_digest_delta NO SCROLL CURSOR FOR
					SELECT d.fp, d.lead_key, d.version, m.lead_key IS NOT NULL, coalesce(m.lead_id, 0), m.fields_hash
					FROM listsync_digest_delta d
					LEFT JOIN LATERAL (SELECT lead_key, lead_id, fields_hash FROM listsync_members
						WHERE sync_name = d.sync_name AND lead_key = d.lead_key LIMIT 1) m ON true
					WHERE d.sync_name = $1
					ORDER BY d.fp`, syncName); err != nil {
					return page, err
				}
				declared = true
			}
			rows, err := tx.Query(ctx, fmt.Sprintf(`FETCH %d FROM listsync_digest_delta`, sqlstore.DeltaPageSize))
			if err != nil {
				return page, err
			}
			defer rows.Close()
			for rows.Next() {
				var d sqlstore.DeltaEntry
				var fp []byte
				if err := rows.Scan(&fp, &d.Key, &d.Version, &d.Member, &d.LeadID, &d.FieldsHash); err != nil {
					return page, err
				}
				if d.FP, err = sqlstore.FPOf(fp, "delta"); err != nil {
					return page, err
				}
				page = append(page, d)
			}
			return page, rows.Err()
		},
	}
}

// touchDigest records in the sync's digest delta that the member rows of
// keys changed, in the transaction that changed them. keys must be
// distinct. The rows go in in fingerprint order (unnest keeps the arrays'
// order), so that a large batch fills the delta's index page after page:
// in random order, each row dirtied a page of its own, and 100,000 of them
// took twice as long as the batch's members.
func touchDigest(ctx context.Context, tx pgx.Tx, syncName string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	type touched struct {
		fp  [state.FingerprintSize]byte
		key string
	}
	ts := make([]touched, len(keys))
	for i, k := range keys {
		ts[i] = touched{state.Fingerprint(k), k}
	}
	slices.SortFunc(ts, func(a, b touched) int { return bytes.Compare(a.fp[:], b.fp[:]) })
	fps := make([][]byte, len(ts))
	sorted := make([]string, len(ts))
	for i := range ts {
		fps[i], sorted[i] = ts[i].fp[:], ts[i].key
	}
	if _, err := tx.Exec(ctx, `INSERT INTO listsync_digest_delta AS d (sync_name, fp, lead_key)
		SELECT $1, f, k FROM unnest($2::bytea[], $3::text[]) AS t(f, k)
		ON CONFLICT (sync_name, fp) DO UPDATE SET version = d.version + 1`, syncName, fps, sorted); err != nil {
		return fmt.Errorf("recording changed members in the digest: %w", err)
	}
	return nil
}

// lockDigest takes the sync's digest lock until tx ends.
func (s *Store) lockDigest(ctx context.Context, tx pgx.Tx, syncName string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, advisoryKey("digest", s.schema, syncName)); err != nil {
		return fmt.Errorf("locking the digest: %w", err)
	}
	return nil
}

// clearDigest deletes the sync's digest, in a transaction that deletes its
// members and holds its digest lock.
func clearDigest(ctx context.Context, tx pgx.Tx, syncName string) error {
	for _, q := range []string{
		`DELETE FROM listsync_digest_chunks WHERE sync_name = $1`,
		`DELETE FROM listsync_digest_delta WHERE sync_name = $1`,
	} {
		if _, err := tx.Exec(ctx, q, syncName); err != nil {
			return fmt.Errorf("clearing the digest: %w", err)
		}
	}
	return nil
}
