package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/listsync/listsync/internal/state"
	"github.com/listsync/listsync/internal/state/internal/sqlstore"
)

// The ledger digest lives in digest_chunks (the compacted digest) and
// digest_delta (the keys changed since), as migration 0003 describes.
// SQLite has one writer at a time and gives each read transaction a
// snapshot (WAL), so ScanDigest is one read transaction and CompactDigest
// one write transaction, which folds and deletes the whole delta.

// ScanDigest implements [state.Store]: it reads one snapshot in one read
// transaction.
func (s *Store) ScanDigest(ctx context.Context, syncName string, fn func(*state.DigestEntry) error) error {
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("scanning digest of sync %q: %w", syncName, err)
	}
	defer func() { _ = tx.Rollback() }()
	src, closeSrc, err := digestSource(ctx, tx, syncName, math.MaxInt64)
	if err != nil {
		return fmt.Errorf("scanning digest of sync %q: %w", syncName, err)
	}
	defer closeSrc()
	return sqlstore.ScanDigest(ctx, syncName, src, fn)
}

// CompactDigest implements [state.Store] in one write transaction: it
// writes the merged digest as new chunks numbered after the old ones,
// deletes the old ones and empties the sync's delta. No other write can
// come between its reads and its writes.
//
// A delta larger than a quarter of the base (a first sync, a resync, or no
// chunks yet) is not merged key by key, which would look each key up in
// the members at random: the chunks are rebuilt from one scan of the
// members instead (rebuildDigest).
func (s *Store) CompactDigest(ctx context.Context, syncName string) error {
	var pending bool
	if err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM digest_delta WHERE sync_name = ?)`, syncName).
		Scan(&pending); err != nil {
		return fmt.Errorf("compacting digest of sync %q: %w", syncName, err)
	}
	if !pending {
		return nil
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var maxSeq, chunks int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), -1), count(*) FROM digest_chunks WHERE sync_name = ?`, syncName).
			Scan(&maxSeq, &chunks); err != nil {
			return err
		}
		src, closeSrc, err := digestSource(ctx, tx, syncName, maxSeq)
		if err != nil {
			return err
		}
		defer closeSrc()
		large, err := deltaIsLarge(ctx, tx, syncName, chunks)
		if err != nil {
			return err
		}
		if large {
			if err := sqlstore.CheckChunks(ctx, src.ChunkFunc); err != nil {
				return err
			}
			return rebuildDigest(ctx, tx, syncName, maxSeq)
		}
		return replaceChunks(ctx, tx, syncName, maxSeq, func(write func([]byte) error) error {
			return sqlstore.CompactDigest(ctx, src, write)
		})
	})
	if err != nil {
		return fmt.Errorf("compacting digest of sync %q: %w", syncName, err)
	}
	return nil
}

// deltaIsLarge reports whether the sync's delta holds more than
// sqlstore.LargeDeltaLimit rows for its chunks, or there are no chunks. It
// counts at most that many delta rows.
func deltaIsLarge(ctx context.Context, tx *sql.Tx, syncName string, chunks int64) (bool, error) {
	if chunks == 0 {
		return true, nil
	}
	limit := sqlstore.LargeDeltaLimit(chunks)
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM digest_delta WHERE sync_name = ? LIMIT ?)`,
		syncName, limit+1).Scan(&n); err != nil {
		return false, err
	}
	return n > limit, nil
}

// rebuildDigest replaces the sync's chunks (those numbered up to maxSeq)
// with chunks built from its members, and empties its delta, in the write
// transaction tx. It reads the members in key order, one sequential scan,
// and sorts them by fingerprint with bounded memory (sqlstore.DigestSorter:
// about 16 MiB in memory, the rest in temporary files).
func rebuildDigest(ctx context.Context, tx *sql.Tx, syncName string, maxSeq int64) error {
	var sorter sqlstore.DigestSorter
	defer func() { _ = sorter.Close() }()
	rows, err := tx.QueryContext(ctx, `SELECT lead_key, coalesce(lead_id, 0), fields_hash FROM members
		WHERE sync_name = ? ORDER BY lead_key`, syncName)
	if err != nil {
		return err
	}
	defer rows.Close()
	var e state.DigestEntry
	for rows.Next() {
		var key, hash sql.RawBytes // valid until the next row: Add copies them
		if err := rows.Scan(&key, &e.LeadID, &hash); err != nil {
			return err
		}
		if len(key) == 0 {
			return fmt.Errorf("%w: member with an empty key", sqlstore.ErrCorruptDigest)
		}
		e.FP, e.Key, e.FieldsHash = state.FingerprintBytes(key), key, hash
		if hash != nil && len(hash) == 0 {
			e.FieldsHash = []byte{}
		}
		if err := sorter.Add(&e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := rows.Close(); err != nil {
		return err
	}
	return replaceChunks(ctx, tx, syncName, maxSeq, func(write func([]byte) error) error {
		return sorter.WriteChunks(ctx, write)
	})
}

// replaceChunks stores the chunks that build passes to its write function,
// numbered after maxSeq, then deletes the sync's chunks up to maxSeq and its
// whole delta, in the write transaction tx.
func replaceChunks(ctx context.Context, tx *sql.Tx, syncName string, maxSeq int64, build func(write func([]byte) error) error) error {
	ins, err := tx.PrepareContext(ctx, `INSERT INTO digest_chunks (sync_name, seq, data) VALUES (?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	seq := maxSeq
	if err := build(func(data []byte) error {
		seq++
		_, err := ins.ExecContext(ctx, syncName, seq, data)
		return err
	}); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM digest_chunks WHERE sync_name = ? AND seq <= ?`, syncName, maxSeq); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM digest_delta WHERE sync_name = ?`, syncName)
	return err
}

// digestSource reads the sync's digest as tx sees it, the chunks numbered up
// to maxSeq only (a compaction's own new chunks follow). closeSrc releases
// its statements.
func digestSource(ctx context.Context, tx *sql.Tx, syncName string, maxSeq int64) (src sqlstore.DigestSource, closeSrc func(), err error) {
	chunk, err := tx.PrepareContext(ctx, `SELECT seq, data FROM digest_chunks
		WHERE sync_name = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT 1`)
	if err != nil {
		return src, nil, err
	}
	delta, err := tx.PrepareContext(ctx, `SELECT d.fp, d.lead_key, m.lead_key IS NOT NULL, coalesce(m.lead_id, 0), m.fields_hash
		FROM digest_delta d LEFT JOIN members m ON m.sync_name = d.sync_name AND m.lead_key = d.lead_key
		WHERE d.sync_name = ? AND d.fp > ? ORDER BY d.fp LIMIT ?`)
	if err != nil {
		_ = chunk.Close()
		return src, nil, err
	}
	src.ChunkFunc = func(ctx context.Context, after int64, buf []byte) (int64, []byte, bool, error) {
		rows, err := chunk.QueryContext(ctx, syncName, after, maxSeq)
		if err != nil {
			return 0, nil, false, err
		}
		defer rows.Close()
		if !rows.Next() {
			return 0, nil, false, rows.Err()
		}
		var seq int64
		var data sql.RawBytes
		if err := rows.Scan(&seq, &data); err != nil {
			return 0, nil, false, err
		}
		buf = append(buf[:0], data...)
		return seq, buf, true, rows.Close()
	}
	src.DeltaFunc = func(ctx context.Context, after []byte, page []sqlstore.DeltaEntry) ([]sqlstore.DeltaEntry, error) {
		rows, err := delta.QueryContext(ctx, syncName, after, sqlstore.DeltaPageSize)
		if err != nil {
			return page, err
		}
		defer rows.Close()
		for rows.Next() {
			var d sqlstore.DeltaEntry
			var fp []byte
			if err := rows.Scan(&fp, &d.Key, &d.Member, &d.LeadID, &d.FieldsHash); err != nil {
				return page, err
			}
			if d.FP, err = sqlstore.FPOf(fp, "delta"); err != nil {
				return page, err
			}
			page = append(page, d)
		}
		return page, rows.Err()
	}
	// database/sql serialises the statements of a transaction on its
	// connection, and SQLite steps several statements of one connection
	// in turn: the chunks can be read ahead while a delta page is.
	src.ConcurrentChunks = true
	return src, func() { _, _ = chunk.Close(), delta.Close() }, nil
}

// deltaWriter adds keys to the sync's digest delta within a write
// transaction: every change of a member row goes through it. It inserts
// them on flush, sorted by fingerprint, so that a large batch walks the
// delta's B-tree once in order instead of at random.
type deltaWriter struct {
	syncName string
	keys     []deltaKey
}

type deltaKey struct {
	fp  [state.FingerprintSize]byte
	key string
}

// touch records that key's member row changed.
func (w *deltaWriter) touch(key string) {
	w.keys = append(w.keys, deltaKey{fp: state.Fingerprint(key), key: key})
}

// deltaInsertRows is the number of keys one INSERT statement of
// deltaWriter.flush adds: many rows a statement cost far less than one each.
const deltaInsertRows = 256

// flush inserts the keys touched so far.
func (w *deltaWriter) flush(ctx context.Context, tx *sql.Tx) error {
	if len(w.keys) == 0 {
		return nil
	}
	slices.SortFunc(w.keys, func(a, b deltaKey) int { return bytes.Compare(a.fp[:], b.fp[:]) })
	var full *sql.Stmt
	defer func() {
		if full != nil {
			_ = full.Close()
		}
	}()
	args := make([]any, 0, 3*deltaInsertRows)
	for rest := w.keys; len(rest) > 0; {
		n := min(len(rest), deltaInsertRows)
		args = args[:0]
		for i := range rest[:n] {
			args = append(args, w.syncName, rest[i].fp[:], rest[i].key)
		}
		q := `INSERT INTO digest_delta (sync_name, fp, lead_key) VALUES (?, ?, ?)` +
			strings.Repeat(`, (?, ?, ?)`, n-1) + ` ON CONFLICT (sync_name, fp) DO NOTHING`
		var err error
		switch {
		case n < deltaInsertRows:
			_, err = tx.ExecContext(ctx, q, args...)
		case full == nil:
			if full, err = tx.PrepareContext(ctx, q); err != nil {
				return err
			}
			fallthrough
		default:
			_, err = full.ExecContext(ctx, args...)
		}
		if err != nil {
			return err
		}
		rest = rest[n:]
	}
	w.keys = w.keys[:0]
	return nil
}

// clearDigest deletes the sync's digest, in a transaction that deletes its
// members.
func clearDigest(ctx context.Context, tx *sql.Tx, syncName string) error {
	for _, q := range []string{`DELETE FROM digest_chunks WHERE sync_name = ?`, `DELETE FROM digest_delta WHERE sync_name = ?`} {
		if _, err := tx.ExecContext(ctx, q, syncName); err != nil {
			return err
		}
	}
	return nil
}

// backfillDigest is the Go step of migration 0003: it adds every existing
// member to the digest delta (SQLite cannot compute a fingerprint in SQL),
// reading the members a page at a time.
func backfillDigest(ctx context.Context, tx *sql.Tx) error {
	const pageSize = 10000
	sel, err := tx.PrepareContext(ctx, `SELECT sync_name, lead_key FROM members
		WHERE (sync_name, lead_key) > (?, ?) ORDER BY sync_name, lead_key LIMIT ?`)
	if err != nil {
		return err
	}
	defer sel.Close()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO digest_delta (sync_name, fp, lead_key) VALUES (?, ?, ?)
		ON CONFLICT (sync_name, fp) DO NOTHING`)
	if err != nil {
		return err
	}
	defer ins.Close()
	type row struct{ sync, key string }
	var last row
	page := make([]row, 0, pageSize)
	for {
		page = page[:0]
		rows, err := sel.QueryContext(ctx, last.sync, last.key, pageSize)
		if err != nil {
			return err
		}
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.sync, &r.key); err != nil {
				_ = rows.Close()
				return err
			}
			page = append(page, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range page {
			fp := state.Fingerprint(r.key)
			if _, err := ins.ExecContext(ctx, r.sync, fp[:], r.key); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		last = page[len(page)-1]
	}
}
