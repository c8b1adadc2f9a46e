package sqlstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/listsync/listsync/internal/state"
)

// The compacted digest of a sync's ledger is a sequence of chunks, each a
// blob of entries sorted by fingerprint, the chunks in sequence-number order
// continuing that order. A chunk is:
//
//	format byte (chunkFormat) | entry count (uint32, little endian) | entries
//
// and an entry is:
//
//	FP (16 bytes)
//	uvarint (length of the fields hash + 1), then the hash: 0 is a nil
//	  (unknown) hash, 1 an empty one
//	varint lead ID (0: unknown)
//	uvarint length of the key (never 0), then the key
//
// The hash length is offset by one so that the digest keeps a nil hash apart
// from an empty one, as the members table does.
const (
	chunkFormat = 1
	chunkHeader = 5
)

// ChunkEntriesMax and ChunkBytesMax bound a chunk: a [ChunkWriter] starts a
// new chunk before either is exceeded (a single entry larger than
// ChunkBytesMax still gets a chunk of its own).
const (
	ChunkEntriesMax = 16384
	ChunkBytesMax   = 1 << 20
)

// LargeDeltaLimit is the most delta rows a compaction folds key by key into
// a base of chunks chunks: a quarter of the entries they hold when full
// (an estimate that errs high when long keys fill chunks by size first). A
// larger delta is cheaper to fold by rebuilding the chunks from one scan of
// the members than by looking each of its keys up.
func LargeDeltaLimit(chunks int64) int64 { return chunks * ChunkEntriesMax / 4 }

// DeltaPageSize is the number of delta entries a [DigestSource] reads at a
// time.
const DeltaPageSize = 8192

// ErrCorruptDigest is wrapped by the errors of a digest whose stored bytes or
// order are not what the stores write.
var ErrCorruptDigest = errors.New("corrupt ledger digest")

// AppendEntry appends the encoding of e to dst.
func AppendEntry(dst []byte, e *state.DigestEntry) []byte {
	dst = append(dst, e.FP[:]...)
	if e.FieldsHash == nil {
		dst = append(dst, 0)
	} else {
		dst = binary.AppendUvarint(dst, uint64(len(e.FieldsHash))+1)
		dst = append(dst, e.FieldsHash...)
	}
	dst = binary.AppendVarint(dst, e.LeadID)
	dst = binary.AppendUvarint(dst, uint64(len(e.Key)))
	return append(dst, e.Key...)
}

// FPOf returns fp, a fingerprint read from a store, as an array, or an
// error wrapping [ErrCorruptDigest] that names what it fingerprints (a
// "delta" row, a "member") when it is not [state.FingerprintSize] bytes.
func FPOf(fp []byte, what string) ([state.FingerprintSize]byte, error) {
	if len(fp) != state.FingerprintSize {
		return [state.FingerprintSize]byte{}, fmt.Errorf("%w: %s fingerprint of %d bytes", ErrCorruptDigest, what, len(fp))
	}
	return [state.FingerprintSize]byte(fp), nil
}

// ChunkReader decodes the entries of one chunk without allocating: the
// entry it fills aliases the chunk's bytes.
type ChunkReader struct {
	data  []byte
	off   int
	left  uint32
	entry state.DigestEntry
}

// Reset starts reading the chunk data, checking its header.
func (r *ChunkReader) Reset(data []byte) error {
	*r = ChunkReader{}
	if len(data) < chunkHeader {
		return fmt.Errorf("%w: chunk of %d bytes has no header", ErrCorruptDigest, len(data))
	}
	if data[0] != chunkFormat {
		return fmt.Errorf("%w: unknown chunk format %d", ErrCorruptDigest, data[0])
	}
	r.data, r.off, r.left = data, chunkHeader, binary.LittleEndian.Uint32(data[1:chunkHeader])
	return nil
}

// Next decodes the next entry, returning it, or nil at the end of the chunk.
// The entry and its slices are valid until the next call of Next or Reset,
// and as long as the chunk's bytes are not changed.
func (r *ChunkReader) Next() (*state.DigestEntry, error) {
	if r.left == 0 {
		if r.off != len(r.data) {
			return nil, fmt.Errorf("%w: %d bytes after the last entry of a chunk", ErrCorruptDigest, len(r.data)-r.off)
		}
		return nil, nil
	}
	d := r.data[r.off:]
	if len(d) < state.FingerprintSize+4 { // hash length, lead ID, key length, one key byte
		return nil, r.truncated()
	}
	e := &r.entry
	e.FP = [state.FingerprintSize]byte(d[:state.FingerprintSize])
	n, i := uvarint(d, state.FingerprintSize)
	if i < 0 {
		return nil, r.truncated()
	}
	if n == 0 {
		e.FieldsHash = nil
	} else {
		if n-1 > uint64(len(d)-i) {
			return nil, r.truncated()
		}
		end := i + int(n-1)
		e.FieldsHash = d[i:end:end]
		i = end
	}
	var id uint64
	if id, i = uvarint(d, i); i < 0 {
		return nil, r.truncated()
	}
	e.LeadID = int64(id>>1) ^ -int64(id&1) // zigzag, as binary.PutVarint
	if n, i = uvarint(d, i); i < 0 || n > uint64(len(d)-i) {
		return nil, r.truncated()
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: entry with an empty key", ErrCorruptDigest)
	}
	end := i + int(n)
	e.Key = d[i:end:end]
	r.off += end
	r.left--
	return e, nil
}

// uvarint decodes the uvarint at d[i:] as binary.Uvarint does (leniently:
// bits beyond 64 are dropped), returning it and the index after it, or
// -1 when d ends first. Unlike binary.Uvarint it is inlined.
func uvarint(d []byte, i int) (uint64, int) {
	var x uint64
	for s := uint(0); i < len(d) && s < 70; s += 7 {
		b := d[i]
		i++
		if b < 0x80 {
			return x | uint64(b)<<s, i
		}
		x |= uint64(b&0x7f) << s
	}
	return 0, -1
}

func (r *ChunkReader) truncated() error {
	return fmt.Errorf("%w: truncated entry at byte %d of a chunk (%d entries left)", ErrCorruptDigest, r.off, r.left)
}

// ChunkWriter encodes entries into chunks of at most [ChunkEntriesMax]
// entries and about [ChunkBytesMax] bytes.
type ChunkWriter struct {
	// FlushFunc receives each full chunk, and the last one on Flush. data
	// is reused once it returns: it must not keep it.
	FlushFunc func(data []byte) error

	buf []byte
	n   uint32
}

// Add appends e to the current chunk, flushing the chunk first when e would
// not fit.
func (w *ChunkWriter) Add(e *state.DigestEntry) error {
	if w.n > 0 && (w.n >= ChunkEntriesMax || len(w.buf)+entrySizeMax(e) > ChunkBytesMax) {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if w.n == 0 {
		w.buf = append(w.buf[:0], chunkFormat, 0, 0, 0, 0)
	}
	w.buf = AppendEntry(w.buf, e)
	w.n++
	return nil
}

// Flush passes the current chunk, if it has any entry, to FlushFunc.
func (w *ChunkWriter) Flush() error {
	if w.n == 0 {
		return nil
	}
	binary.LittleEndian.PutUint32(w.buf[1:chunkHeader], w.n)
	w.n = 0
	return w.FlushFunc(w.buf)
}

// entrySizeMax bounds the encoded size of e.
func entrySizeMax(e *state.DigestEntry) int {
	return state.FingerprintSize + 3*binary.MaxVarintLen64 + len(e.FieldsHash) + len(e.Key)
}

// DeltaEntry is a key of the digest's delta (a key whose member was
// inserted, changed or deleted since the last compaction) with its member's
// state read in the same snapshot.
type DeltaEntry struct {
	// FP is the fingerprint the delta row is stored under.
	FP [state.FingerprintSize]byte
	// Key is the delta row's key.
	Key []byte
	// Version is the delta row's version (stores that serialise every
	// writer may leave it 0).
	Version int64
	// Member reports that the key has a member row; when false the key is
	// gone from the ledger (a tombstone) and LeadID and FieldsHash are
	// unused.
	Member bool
	// LeadID and FieldsHash are the member's, as ScanMembers gives them.
	LeadID     int64
	FieldsHash []byte
}

// DigestSource reads one consistent snapshot of a sync's digest: its
// compacted chunks and its delta.
type DigestSource struct {
	// ChunkFunc returns the data of the chunk with the lowest sequence
	// number above after (appended to buf[:0]), with that number, or ok
	// false when there is none.
	ChunkFunc func(ctx context.Context, after int64, buf []byte) (seq int64, data []byte, ok bool, err error)
	// DeltaFunc appends to page[:0] the next page of delta entries: those
	// whose fingerprint is bytewise above after (empty for the first page),
	// in fingerprint order, at most DeltaPageSize of them. A page of fewer
	// is the last. The merge calls it for each page in turn, so that a
	// source may ignore after and read on from where it stopped (through
	// a cursor).
	DeltaFunc func(ctx context.Context, after []byte, page []DeltaEntry) ([]DeltaEntry, error)
	// FoldedFunc, when set, receives each page of delta entries once all
	// of them have been merged, before the next page is read.
	FoldedFunc func(ctx context.Context, page []DeltaEntry) error
	// ConcurrentChunks reports that ChunkFunc may run in a goroutine of its
	// own alongside the other functions: the merge then reads the next
	// chunk while it decodes one (holding two chunks in memory).
	ConcurrentChunks bool
}

// errStopped stands for an error of ScanDigest's fn inside MergeDigest.
var errStopped = errors.New("stopped by fn")

// ScanDigest implements [state.Store.ScanDigest] on src: it merges src's
// chunks and delta, calling fn with each member in fingerprint order. An
// error from fn is returned as is; the others are wrapped.
func ScanDigest(ctx context.Context, syncName string, src DigestSource, fn func(*state.DigestEntry) error) error {
	var fnErr error
	err := MergeDigest(ctx, src, func(e *state.DigestEntry) error {
		if err := fn(e); err != nil {
			fnErr = err
			return errStopped
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("scanning digest of sync %q: %w", syncName, err)
	}
	return nil
}

// CompactDigest merges src's chunks and delta into new chunks, which it
// passes to write in order. The caller replaces src's chunks with them and
// deletes the delta rows it folded, in the transaction that src reads.
func CompactDigest(ctx context.Context, src DigestSource, write func(data []byte) error) error {
	w := ChunkWriter{FlushFunc: write}
	if err := MergeDigest(ctx, src, w.Add); err != nil {
		return err
	}
	return w.Flush()
}

// MergeDigest calls emit with each member of src's snapshot in fingerprint
// order: the chunks' entries, where a delta entry replaces the chunk entry
// of the same fingerprint, a delta entry without member drops it, and a
// delta entry with a member and no chunk entry is added. It holds one chunk
// (two with ConcurrentChunks) and one delta page at a time. It checks that the chunks and the delta are
// each in strictly increasing fingerprint order, and that each delta
// entry's fingerprint is its key's, failing with [ErrCorruptDigest]
// otherwise. An error from emit is returned as is.
func MergeDigest(ctx context.Context, src DigestSource, emit func(*state.DigestEntry) error) error {
	base := baseIter{src: src, seq: -1}
	if src.ConcurrentChunks {
		base.pf = startPrefetch(ctx, src.ChunkFunc)
		defer base.pf.close()
	}
	delta := deltaIter{src: src}
	if err := base.next(ctx); err != nil {
		return err
	}
	if err := delta.fill(ctx); err != nil {
		return err
	}
	var out state.DigestEntry
	for {
		b, d := base.cur, delta.cur()
		if b == nil && d == nil {
			return nil
		}
		c := -1 // b comes first
		switch {
		case b == nil:
			c = 1
		case d != nil:
			c = fpCompare(&b.FP, &d.FP)
		}
		if c < 0 {
			if err := emit(b); err != nil {
				return err
			}
			if err := base.next(ctx); err != nil {
				return err
			}
			continue
		}
		if c == 0 && !bytes.Equal(b.Key, d.Key) {
			return fmt.Errorf("%w: keys %q and %q share the fingerprint %x", ErrCorruptDigest, b.Key, d.Key, d.FP)
		}
		if d.Member {
			out = state.DigestEntry{FP: d.FP, Key: d.Key, LeadID: d.LeadID, FieldsHash: d.FieldsHash}
			if err := emit(&out); err != nil {
				return err
			}
		}
		if err := delta.advance(ctx); err != nil {
			return err
		}
		if c == 0 {
			if err := base.next(ctx); err != nil {
				return err
			}
		}
	}
}

// baseIter walks the entries of a snapshot's chunks.
type baseIter struct {
	src     DigestSource
	seq     int64
	buf     []byte
	r       ChunkReader
	cur     *state.DigestEntry // nil at the end
	prev    [state.FingerprintSize]byte
	started bool
	pf      *prefetcher // nil unless src.ConcurrentChunks
}

func (it *baseIter) next(ctx context.Context) error {
	for {
		e, err := it.r.Next()
		if err != nil {
			return fmt.Errorf("reading digest chunk %d: %w", it.seq, err)
		}
		if e != nil {
			if it.started && !fpLess(&it.prev, &e.FP) {
				return fmt.Errorf("%w: chunk %d holds fingerprint %x after %x", ErrCorruptDigest, it.seq, e.FP, it.prev)
			}
			it.prev, it.started, it.cur = e.FP, true, e
			return nil
		}
		var c fetchedChunk
		if it.pf != nil {
			c = it.pf.next(it.buf)
		} else {
			c.seq, c.data, c.ok, c.err = it.src.ChunkFunc(ctx, it.seq, it.buf)
		}
		seq, data, ok, err := c.seq, c.data, c.ok, c.err
		if err != nil {
			return fmt.Errorf("reading digest chunk after %d: %w", it.seq, err)
		}
		if !ok {
			it.cur = nil
			return nil
		}
		it.seq, it.buf = seq, data
		if err := it.r.Reset(data); err != nil {
			return fmt.Errorf("reading digest chunk %d: %w", seq, err)
		}
	}
}

// prefetcher reads a snapshot's chunks one ahead of the merge, in a
// goroutine of its own. Two buffers circulate between them: the merge
// decodes one while the goroutine fills the other.
type prefetcher struct {
	free chan []byte
	out  chan fetchedChunk
	stop chan struct{}
	done chan struct{}
}

type fetchedChunk struct {
	seq  int64
	data []byte
	ok   bool
	err  error
}

func startPrefetch(ctx context.Context, chunkFunc func(context.Context, int64, []byte) (int64, []byte, bool, error)) *prefetcher {
	p := &prefetcher{free: make(chan []byte, 2), out: make(chan fetchedChunk, 1), stop: make(chan struct{}), done: make(chan struct{})}
	p.free <- nil
	go p.run(ctx, chunkFunc)
	return p
}

func (p *prefetcher) run(ctx context.Context, chunkFunc func(context.Context, int64, []byte) (int64, []byte, bool, error)) {
	defer close(p.done)
	after := int64(-1)
	for {
		var buf []byte
		select {
		case buf = <-p.free:
		case <-p.stop:
			return
		}
		var c fetchedChunk
		c.seq, c.data, c.ok, c.err = chunkFunc(ctx, after, buf)
		select {
		case p.out <- c:
		case <-p.stop:
			return
		}
		if !c.ok || c.err != nil {
			return
		}
		after = c.seq
	}
}

// next hands the buffer of the chunk the merge is done with (nil for the
// first) back to the goroutine, and returns the next chunk. It must not be
// called again once it returned the end or an error.
func (p *prefetcher) next(done []byte) fetchedChunk {
	p.free <- done
	return <-p.out
}

// close stops the goroutine and waits for it.
func (p *prefetcher) close() {
	close(p.stop)
	<-p.done
}

// deltaIter walks a snapshot's delta, page by page.
type deltaIter struct {
	src     DigestSource
	page    []DeltaEntry
	i       int
	last    bool // the page is the last one
	prev    [state.FingerprintSize]byte
	started bool
}

func (it *deltaIter) cur() *DeltaEntry {
	if it.i < len(it.page) {
		return &it.page[it.i]
	}
	return nil
}

func (it *deltaIter) advance(ctx context.Context) error {
	it.i++
	if it.i < len(it.page) {
		return nil
	}
	if it.src.FoldedFunc != nil && len(it.page) > 0 {
		if err := it.src.FoldedFunc(ctx, it.page); err != nil {
			return fmt.Errorf("folding digest delta: %w", err)
		}
	}
	if it.last {
		it.page = it.page[:0]
		return nil
	}
	return it.fill(ctx)
}

// fill reads the page after the current one.
func (it *deltaIter) fill(ctx context.Context) error {
	after := []byte{}
	if it.started {
		after = append(after, it.prev[:]...)
	}
	page, err := it.src.DeltaFunc(ctx, after, it.page[:0])
	if err != nil {
		return fmt.Errorf("reading digest delta: %w", err)
	}
	if len(page) > DeltaPageSize {
		return fmt.Errorf("reading digest delta: a page of %d entries (at most %d)", len(page), DeltaPageSize)
	}
	for i := range page {
		d := &page[i]
		if it.started && !fpLess(&it.prev, &d.FP) {
			return fmt.Errorf("%w: delta holds fingerprint %x after %x", ErrCorruptDigest, d.FP, it.prev)
		}
		if len(d.Key) == 0 || state.FingerprintBytes(d.Key) != d.FP {
			return fmt.Errorf("%w: delta holds key %q under fingerprint %x", ErrCorruptDigest, d.Key, d.FP)
		}
		it.prev, it.started = d.FP, true
	}
	it.page, it.i, it.last = page, 0, len(page) < DeltaPageSize
	return nil
}

// fpCompare compares two fingerprints bytewise, as two machine words.
func fpCompare(a, b *[state.FingerprintSize]byte) int {
	a0, b0 := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8])
	if a0 != b0 {
		if a0 < b0 {
			return -1
		}
		return 1
	}
	a1, b1 := binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:])
	switch {
	case a1 < b1:
		return -1
	case a1 > b1:
		return 1
	}
	return 0
}

// fpLess reports whether a comes bytewise before b.
func fpLess(a, b *[state.FingerprintSize]byte) bool { return fpCompare(a, b) < 0 }
