package sync

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	stdsync "sync"
	"time"
	"unsafe"

	"github.com/listsync/listsync/internal/state"
	"github.com/listsync/listsync/internal/warehouse"
)

// How the model meets the ledger.
//
// The model's rows are staged as fixed-size entries (key fingerprint, fields
// hash, offset of the row in an arena file) and sorted by fingerprint with a
// bounded memory (EngineConfig.SortMemory), spilling sorted runs when the
// model is large. The ledger comes from the state store's digest
// (state.Store.ScanDigest) in the same order, a few large blobs plus the
// members changed since the last compaction. One merge pass over the two,
// and the sync's rejects sorted the same way, gives the diff; only the rows
// the diff sends are read back from the arena.
//
// This replaced a merge in key order over an external sort of whole rows and
// a row-by-row scan of the ledger: at 1,000,000 rows the string sort and the
// ledger scan (modernc SQLite costs about a microsecond a row) were each
// slower than reading the model from the warehouse (BENCHMARKS.md). The
// alternative of an anti-join in the state store was measured too
// (BenchmarkPlanDiff, staging a snapshot table): slower still, and Plan must
// not write to the state.

// Kinds of diff rows.
const (
	kindAdd    byte = 'a'
	kindUpdate byte = 'u'
	kindRemove byte = 'r'
)

// modelStats counts what staging the model found.
type modelStats struct {
	RowsRead       int64
	Invalid        int64
	InvalidSamples []string
}

// maxSamples bounds the samples kept of each kind.
const maxSamples = 10

// stagedRows is a model staged for the diff: its rows in an arena and their
// entries in a sorter.
type stagedRows struct {
	arena  *arena
	sorter *entrySorter
}

// newStagedRows creates the arena and sorter of a staging in dir.
func newStagedRows(dir string, memory int) (*stagedRows, error) {
	a, err := newArena(dir, "model-*.bin")
	if err != nil {
		return nil, fmt.Errorf("creating temporary file: %w", err)
	}
	return &stagedRows{arena: a, sorter: newEntrySorter(dir, memory)}, nil
}

// cleanup removes the staging's files.
func (s *stagedRows) cleanup() {
	s.sorter.cleanup()
	if s.arena != nil {
		_ = s.arena.f.Close()
		_ = os.Remove(s.arena.f.Name())
		s.arena = nil
	}
}

// rowBatch is a batch of model rows handed from the reading goroutine to
// the staging one. The reader normalises each row's key and fingerprints it
// (head); the mapped fields go as cells. Text (warehouse.TextRows) is copied
// into buf, every other value kept in vals as the warehouse gave it.
type rowBatch struct {
	buf   []byte
	heads []rowHead
	cells []cell // len(heads) × the number of mapped fields
	vals  []any  // the values that are not text
}

// rowHead is a row's key: its bytes in rowBatch.buf and fingerprint, or why
// it is invalid.
type rowHead struct {
	fp         [state.FingerprintSize]byte
	start, end int
	why        string // "" for a valid key
	sample     string // the invalid value, quoted ("" for NULL)
}

// cell is one field value of a rowBatch: text at [start, end) of its buf,
// or, when end is -1, the value vals[start] (nil for NULL). It holds no
// pointer, so that the reader fills cells without write barriers.
type cell struct {
	start, end int
}

// str returns the bytes at [start, end) of the batch's buffer as a string
// that shares the buffer: it is valid only until the batch goes back to the
// reader, and what staging keeps (what it writes to the arena) is copied.
func (b *rowBatch) str(start, end int) string {
	if end == start {
		return ""
	}
	return unsafe.String(&b.buf[start], end-start)
}

// stageBatchRows is the number of rows per rowBatch.
const stageBatchRows = 512

// stageQueueBatches is how many read batches may wait for staging: enough
// rows (64 × 512) for the reader to keep the warehouse streaming through
// the 20–40 ms that staging spends spilling a full sort buffer.
const stageQueueBatches = 64

// stageModel reads the model's rows, normalises their keys and fields, and
// stages the valid ones into s.
func stageModel(ctx context.Context, rows warehouse.Rows, p columnPlan, rule keyRule, s *stagedRows) (modelStats, error) {
	return stageModelProgress(ctx, rows, p, rule, s, nil)
}

// readKey normalises the key of the current row into b.
func readKey(b *rowBatch, rows warehouse.Rows, tr warehouse.TextRows, col int, rule keyRule) {
	var h rowHead
	var t []byte
	text := false
	if tr != nil {
		t, text = tr.Text(col)
	}
	start := len(b.buf)
	if text {
		// The string shares the warehouse's buffer, valid until the next
		// row: appendKey copies the key, Quote the sample.
		raw := unsafe.String(unsafe.SliceData(t), len(t))
		if b.buf, h.why = rule.appendKey(b.buf, raw); h.why != "" {
			h.sample = sampleText(raw)
		}
	} else {
		var v any
		if tr == nil {
			v = rows.Values()[col]
		} else {
			v = tr.Value(col)
		}
		var key string
		if key, h.why = rule.normalize(v); h.why != "" {
			if v != nil {
				h.sample = sampleText(renderValue(v))
			}
		} else {
			b.buf = append(b.buf, key...)
		}
	}
	if h.why == "" {
		h.start, h.end = start, len(b.buf)
		h.fp = state.FingerprintBytes(b.buf[h.start:h.end])
	}
	b.heads = append(b.heads, h)
}

// stageModelProgress is stageModel that tells onRows, when not nil, the
// rows read so far every progressRowsEvery rows.
//
// Reading the warehouse (decoding its wire format, normalising and
// fingerprinting keys) and staging (rendering and hashing fields, writing the
// arena, sorting) run on two goroutines, so that a plan uses both cores while
// the warehouse streams; the rows go between them in batches.
func stageModelProgress(ctx context.Context, rows warehouse.Rows, p columnPlan, rule keyRule, s *stagedRows, onRows func(int64)) (modelStats, error) {
	width := len(rows.Columns())
	nf := len(p.fieldCols)
	// The queue between the goroutines holds up to stageQueueBatches
	// batches (about 2 MB of rows), so that the reader, and the warehouse
	// behind it, go on while staging spills a sorted run.
	full := make(chan *rowBatch, stageQueueBatches)
	free := make(chan *rowBatch, stageQueueBatches+2)
	for range cap(free) {
		free <- &rowBatch{heads: make([]rowHead, 0, stageBatchRows), cells: make([]cell, 0, stageBatchRows*nf)}
	}
	done := make(chan struct{})
	var readErr error
	var wg stdsync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(full)
		tr, _ := rows.(warehouse.TextRows)
		var b *rowBatch
		for rows.Next() {
			if b == nil {
				select {
				case b = <-free:
				case <-done:
					return
				}
				b.buf, b.heads, b.cells, b.vals = b.buf[:0], b.heads[:0], b.cells[:0], b.vals[:0]
			}
			if tr == nil {
				if vals := rows.Values(); len(vals) != width {
					readErr = fmt.Errorf("row has %d values for %d columns", len(vals), width)
					return
				}
			}
			readKey(b, rows, tr, p.keyCol, rule)
			for _, c := range p.fieldCols {
				switch {
				case tr == nil:
					b.cells = append(b.cells, cell{start: len(b.vals), end: -1})
					b.vals = append(b.vals, rows.Values()[c])
				case tr.IsText(c):
					t, _ := tr.Text(c) // nil for NULL, which renders as ""
					start := len(b.buf)
					b.buf = append(b.buf, t...)
					b.cells = append(b.cells, cell{start: start, end: len(b.buf)})
				default:
					b.cells = append(b.cells, cell{start: len(b.vals), end: -1})
					b.vals = append(b.vals, tr.Value(c))
				}
			}
			if len(b.heads) == stageBatchRows {
				select {
				case full <- b:
				case <-done:
					return
				}
				b = nil
			}
		}
		if b != nil && len(b.heads) > 0 {
			select {
			case full <- b:
			case <-done:
			}
		}
	}()
	stop := func() {
		close(done)
		for range full { // let the reader finish its send
		}
		wg.Wait()
	}

	var st modelStats
	values := make([]string, nf)
	seed := fieldsSeed(p.fieldNames)
	var enc []byte
	for b := range full {
		for i := range b.heads {
			h := &b.heads[i]
			st.RowsRead++
			if st.RowsRead%progressRowsEvery == 0 {
				if err := ctx.Err(); err != nil {
					stop()
					return st, err
				}
				if onRows != nil {
					onRows(st.RowsRead)
				}
			}
			if h.why != "" {
				st.Invalid++
				if len(st.InvalidSamples) < maxSamples {
					if h.sample == "" {
						st.InvalidSamples = append(st.InvalidSamples, fmt.Sprintf("row %d: %s", st.RowsRead, h.why))
					} else {
						st.InvalidSamples = append(st.InvalidSamples, fmt.Sprintf("row %d: %s: %s", st.RowsRead, h.sample, h.why))
					}
				}
				continue
			}
			enc = appendString(enc[:0], b.str(h.start, h.end))
			valuesAt := len(enc)
			e := entry{}
			e.hi, e.lo = entryFP(h.fp)
			for j, c := range b.cells[i*nf : (i+1)*nf] {
				if c.end >= 0 {
					values[j] = sanitizeField(b.str(c.start, c.end))
				} else {
					values[j] = renderField(b.vals[c.start])
				}
				enc = appendString(enc, values[j])
			}
			e.hash = hashFieldValues(seed, enc[valuesAt:])
			off, err := s.arena.addRaw(enc)
			if err != nil {
				stop()
				return st, fmt.Errorf("staging rows: %w", err)
			}
			e.off = off
			if err := s.sorter.add(e); err != nil {
				stop()
				return st, err
			}
		}
		clear(values) // they may share the batch's buffer
		clear(b.vals) // drop the values for the collector
		free <- b
	}
	wg.Wait()
	if readErr != nil {
		return st, readErr
	}
	if err := rows.Err(); err != nil {
		return st, err
	}
	if err := s.arena.flush(); err != nil {
		return st, fmt.Errorf("staging rows: %w", err)
	}
	return st, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// diffParams configures the merge join.
type diffParams struct {
	mirror    bool
	hasFields bool
	// fieldNames are the mapped fields of a staged row (their values follow
	// its key in the arena; the names check a legacy hash, see
	// fieldsHashV2).
	fieldNames []string
	// now decides which rejected rows are due for a retry.
	now time.Time
}

// diffSink receives the diff, in fingerprint order.
type diffSink interface {
	emit(r *record) error // kindAdd, kindUpdate or kindRemove
	deferred(key string, op state.Op)
	forget(key string) error
	// rehash gets a member whose fields are unchanged but whose ledger hash
	// is the legacy one (see fieldsHashV2): r holds its key, lead ID and
	// fields hash in the current form, for a run to store.
	rehash(r *record) error
}

// diffStats counts the diff.
type diffStats struct {
	ModelKeys  int64 // distinct valid keys of the model
	Duplicates int64
	Members    int64 // ledger members
	Adds       int64
	Updates    int64
	Removes    int64
	Deferred   int64
	Forgotten  int64
	Rehashed   int64 // unchanged members whose legacy hash went to rehash
}

// digestScan scans a ledger digest in fingerprint order (a
// state.Store.ScanDigest bound to a sync).
type digestScan func(fn func(*state.DigestEntry) error) error

// diffInput is the model side of a diff and the sync's rejects, both staged
// and sorted.
type diffInput struct {
	model     entryIter
	modelRows *os.File // the model's arena
	rejects   entryIter
	// rejectRows is the rejects' arena: key, op, next attempt (Unix
	// microseconds) per row.
	rejectRows *os.File
}

// reject is a staged reject read back.
type reject struct {
	key  string
	op   state.Op
	next time.Time
}

// diff merge-joins the staged model with the ledger's digest and the
// rejects, all in fingerprint order, and sends the difference to sink.
func diff(ctx context.Context, in diffInput, ledger digestScan, p diffParams, sink diffSink) (diffStats, error) {
	var st diffStats
	mrows := &arenaReader{f: in.modelRows}
	rrows := &arenaReader{f: in.rejectRows}
	row := make([]string, 1+len(p.fieldNames))
	rrow := make([]string, 3)

	var mcur, rcur entry
	var mok, rok, mbegun bool
	var mhi, mlo uint64 // the last model fingerprint
	advanceModel := func() error {
		for {
			e, ok, err := in.model.next()
			if err != nil {
				return err
			}
			if !ok {
				mok = false
				return nil
			}
			if mbegun && e.hi == mhi && e.lo == mlo {
				st.Duplicates++ // the same key again: the first row counts
				continue
			}
			mhi, mlo, mbegun = e.hi, e.lo, true
			mcur, mok = e, true
			st.ModelKeys++
			return nil
		}
	}
	advanceRejects := func() error {
		e, ok, err := in.rejects.next()
		if err != nil {
			return err
		}
		rcur, rok = e, ok
		return nil
	}
	readReject := func() (*reject, error) {
		if err := rrows.row(rcur.off, rrow); err != nil {
			return nil, err
		}
		micros, err := strconv.ParseInt(rrow[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("reading staged reject: %w", err)
		}
		return &reject{key: rrow[0], op: state.Op(rrow[1]), next: time.UnixMicro(micros).UTC()}, nil
	}
	// modelRecord reads the current model row back as a record.
	modelRecord := func(kind byte, leadID int64) (*record, error) {
		if err := mrows.row(mcur.off, row); err != nil {
			return nil, err
		}
		r := &record{kind: kind, key: row[0], leadID: leadID, hash: mcur.hash}
		if len(p.fieldNames) > 0 {
			r.values = append([]string(nil), row[1:]...)
		}
		return r, nil
	}
	due := func(r *reject, op state.Op) bool {
		return r == nil || r.op != op || !r.next.After(p.now)
	}
	// send hands the record made by rec, the key's op, to the sink and
	// counts it into *n, unless the key's reject for op is not due for a
	// retry yet: then the key is deferred.
	send := func(r *reject, op state.Op, rec func() (*record, error), n *int64) error {
		out, err := rec()
		if err != nil {
			return err
		}
		if !due(r, op) {
			st.Deferred++
			sink.deferred(out.key, op)
			return nil
		}
		if err := sink.emit(out); err != nil {
			return err
		}
		*n++
		return nil
	}

	// step counts a step of the join, and checks ctx every 4096 of them.
	var steps int64
	step := func() error {
		if steps++; steps%4096 == 0 {
			return ctx.Err()
		}
		return nil
	}
	// group handles the smallest fingerprint among the model's head, the
	// rejects' head and m (nil when the ledger is exhausted), and reports
	// whether it consumed m.
	group := func(m *state.DigestEntry, ghi, glo uint64) (bool, error) {
		if err := step(); err != nil {
			return false, err
		}
		hi, lo, set := uint64(0), uint64(0), false
		consider := func(ok bool, h, l uint64) {
			if ok && (!set || cmpFP(h, l, hi, lo) < 0) {
				hi, lo, set = h, l, true
			}
		}
		consider(mok, mcur.hi, mcur.lo)
		consider(rok, rcur.hi, rcur.lo)
		consider(m != nil, ghi, glo)
		inModel := mok && mcur.hi == hi && mcur.lo == lo
		inLedger := m != nil && ghi == hi && glo == lo
		var r *reject
		if rok && rcur.hi == hi && rcur.lo == lo {
			var err error
			if r, err = readReject(); err != nil {
				return false, err
			}
		}
		if inLedger {
			st.Members++
		}
		handled := false // whether the reject still matters
		var err error
		switch {
		case inModel && !inLedger:
			handled = true
			err = send(r, state.OpAdd, func() (*record, error) { return modelRecord(kindAdd, 0) }, &st.Adds)
		case inModel && inLedger && m.Pending():
			// An add or removal whose answer was lost: the lead may or may
			// not be on the list, so it is added again.
			handled = true
			err = send(r, state.OpAdd, func() (*record, error) { return modelRecord(kindAdd, m.LeadID) }, &st.Adds)
		case inModel && inLedger:
			if !p.hasFields || storedIs(m.FieldsHash, mcur.hash) {
				break
			}
			rec, rerr := modelRecord(kindUpdate, m.LeadID)
			if rerr != nil {
				return false, rerr
			}
			if isLegacyHash(m.FieldsHash) && bytes.Equal(m.FieldsHash, legacyFieldsHash(p.fieldNames, rec.values)) {
				// Unchanged, with the hash of an older listsync.
				st.Rehashed++
				err = sink.rehash(rec)
				break
			}
			handled = true
			err = send(r, state.OpAdd, func() (*record, error) { return rec, nil }, &st.Updates)
		case !inModel && inLedger && p.mirror:
			handled = true
			err = send(r, state.OpRemove, func() (*record, error) {
				return &record{kind: kindRemove, key: string(m.Key), leadID: m.LeadID}, nil
			}, &st.Removes)
		}
		if err != nil {
			return false, err
		}
		if r != nil && !handled {
			// The model no longer asks for what was rejected.
			if err := sink.forget(r.key); err != nil {
				return false, err
			}
			st.Forgotten++
		}
		if inModel {
			if err := advanceModel(); err != nil {
				return false, err
			}
		}
		if r != nil {
			if err := advanceRejects(); err != nil {
				return false, err
			}
		}
		return inLedger, nil
	}

	if err := advanceModel(); err != nil {
		return st, err
	}
	if err := advanceRejects(); err != nil {
		return st, err
	}
	var lhi, llo uint64
	lbegun := false
	err := ledger(func(m *state.DigestEntry) error {
		hi, lo := entryFP(m.FP)
		if lbegun && cmpFP(hi, lo, lhi, llo) <= 0 {
			return fmt.Errorf("the state store returned the ledger out of fingerprint order (%x after %016x%016x)", m.FP, lhi, llo)
		}
		lhi, llo, lbegun = hi, lo, true
		// The common member: the model's next key, unchanged, with no
		// reject of its own. group would only count it and move on.
		if mok && mcur.hi == hi && mcur.lo == lo && (!rok || cmpFP(rcur.hi, rcur.lo, hi, lo) > 0) &&
			!m.Pending() && (!p.hasFields || storedIs(m.FieldsHash, mcur.hash)) {
			if err := step(); err != nil {
				return err
			}
			st.Members++
			return advanceModel()
		}
		for {
			consumed, err := group(m, hi, lo)
			if err != nil || consumed {
				return err
			}
		}
	})
	if err != nil {
		return st, err
	}
	for mok || rok {
		if _, err := group(nil, 0, 0); err != nil {
			return st, err
		}
	}
	return st, nil
}
