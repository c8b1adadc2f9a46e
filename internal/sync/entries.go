package sync

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/listsync/listsync/internal/state"
)

// The model side of a diff: every valid row becomes a fixed-size entry (the
// key's fingerprint, the fields hash and where the row is kept) that is
// sorted by fingerprint, while the row itself (key and field values) is
// appended to an arena file and read back only for the few rows a diff sends.
// Sorting 40-byte entries by two machine words costs a fraction of sorting
// rows by their key strings, and the ledger's digest comes in the same order
// (state.Store.ScanDigest).

// entry is one model row (or one reject) in fingerprint order.
type entry struct {
	// hi and lo are the fingerprint's two halves, big-endian, so that
	// (hi, lo) order is the fingerprint's bytewise order.
	hi, lo uint64
	hash   fieldsHash
	// off is where the row starts in the arena; it also orders entries of
	// equal fingerprint (a duplicate key) in input order.
	off int64
}

const entrySize = 40

func entryFP(fp [state.FingerprintSize]byte) (hi, lo uint64) {
	return binary.BigEndian.Uint64(fp[:8]), binary.BigEndian.Uint64(fp[8:])
}

// cmpFP orders fingerprints given as halves.
func cmpFP(ahi, alo, bhi, blo uint64) int {
	if c := cmp.Compare(ahi, bhi); c != 0 {
		return c
	}
	return cmp.Compare(alo, blo)
}

func cmpEntry(a, b entry) int {
	if c := cmpFP(a.hi, a.lo, b.hi, b.lo); c != 0 {
		return c
	}
	return cmp.Compare(a.off, b.off)
}

// arena is an append-only file of rows: uvarint length-prefixed byte
// strings, the key first and then the field values.
type arena struct {
	f   *os.File
	w   *bufio.Writer
	off int64
	buf []byte
	// flushed is set once the writer is flushed for reading.
	flushed bool
}

func newArena(dir, pattern string) (*arena, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &arena{f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

// add appends a row of strings and returns its offset.
func (a *arena) add(fields ...string) (int64, error) {
	b := a.buf[:0]
	for _, s := range fields {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return a.addRaw(b)
}

// addRaw appends an encoded row and returns its offset.
func (a *arena) addRaw(b []byte) (int64, error) {
	a.buf = b
	off := a.off
	n, err := a.w.Write(b)
	a.off += int64(n)
	return off, err
}

// flush makes the rows written so far readable.
func (a *arena) flush() error {
	a.flushed = true
	return a.w.Flush()
}

// arenaReader reads rows of an arena back by offset.
type arenaReader struct {
	f   *os.File
	buf []byte
}

// row reads the row at off, whose strings are n in number, into dst. The
// strings are fresh copies.
func (r *arenaReader) row(off int64, dst []string) error {
	// A row is read in one pread of a guess of its size, more if needed.
	want := 256
	for {
		if cap(r.buf) < want {
			r.buf = make([]byte, want)
		}
		b := r.buf[:want]
		n, err := r.f.ReadAt(b, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading staged row: %w", err)
		}
		b = b[:n]
		complete := true
		p := 0
		for i := range dst {
			l, k := binary.Uvarint(b[p:])
			if k <= 0 || uint64(len(b)-p-k) < l {
				complete = false
				break
			}
			p += k
			dst[i] = string(b[p : p+int(l)])
			p += int(l)
		}
		if complete {
			return nil
		}
		if n < want { // the file ends inside the row
			return fmt.Errorf("reading staged row at %d: %w", off, io.ErrUnexpectedEOF)
		}
		want *= 4
		if want > 1<<30 {
			return fmt.Errorf("reading staged row at %d: row too long", off)
		}
	}
}

// entrySorter is an external sort of entries: it sorts each full buffer and
// spills it to a run file, then merges the runs.
type entrySorter struct {
	dir   string
	limit int // entries per buffer
	buf   []entry
	// tmp is the radix sort's second buffer, as large as buf.
	tmp   []entry
	runs  []string
	added int64
}

// newEntrySorter returns a sorter whose two buffers take at most memory
// bytes together.
func newEntrySorter(dir string, memory int) *entrySorter {
	return &entrySorter{dir: dir, limit: max(memory/2/entrySize, 64)}
}

// radixBits is the number of a fingerprint's leading bits the radix sort
// distributes entries by.
const radixBits = 16

// sortEntries sorts es by fingerprint, equal fingerprints in offset order.
// Fingerprints are uniform (SHA-256), so one counting pass over their
// leading 16 bits leaves buckets of a few entries each, finished by
// insertion sort: linear time, where a comparison sort of a million entries
// took about 0.35 s. es must be in offset order (as entries are added);
// the distribution keeps that order within a bucket. Buckets that are large
// anyway (many rows of one key) get a comparison sort. tmp must be at least
// as long as es.
func sortEntries(es, tmp []entry) {
	if len(es) < 256 {
		slices.SortFunc(es, cmpEntry)
		return
	}
	var starts [1<<radixBits + 1]int
	for i := range es {
		starts[es[i].hi>>(64-radixBits)+1]++
	}
	for b := 1; b < len(starts); b++ {
		starts[b] += starts[b-1]
	}
	next := starts
	tmp = tmp[:len(es)]
	for i := range es {
		b := es[i].hi >> (64 - radixBits)
		tmp[next[b]] = es[i]
		next[b]++
	}
	for b := range 1 << radixBits {
		bucket := tmp[starts[b]:starts[b+1]]
		if len(bucket) > 32 {
			slices.SortFunc(bucket, cmpEntry)
			continue
		}
		// Insertion sort, stable: equal fingerprints keep offset order.
		for i := 1; i < len(bucket); i++ {
			for j := i; j > 0 && cmpFP(bucket[j].hi, bucket[j].lo, bucket[j-1].hi, bucket[j-1].lo) < 0; j-- {
				bucket[j], bucket[j-1] = bucket[j-1], bucket[j]
			}
		}
	}
	copy(es, tmp)
}

// sortBuf sorts the buffer, allocating the second buffer on first use.
func (s *entrySorter) sortBuf() {
	if cap(s.tmp) < len(s.buf) {
		s.tmp = make([]entry, len(s.buf), max(cap(s.buf), len(s.buf)))
	}
	sortEntries(s.buf, s.tmp)
}

// entryBufStart is the capacity the sorter's buffer starts with: a
// small model never takes the whole budget, and a large one grows it once
// to the limit instead of doubling its way there (copying, and faulting in
// fresh pages, about twice the buffer's size).
const entryBufStart = 1 << 16

func (s *entrySorter) add(e entry) error {
	if len(s.buf) == cap(s.buf) {
		s.grow()
	}
	s.buf = append(s.buf, e)
	s.added++
	if len(s.buf) >= s.limit {
		return s.spill()
	}
	return nil
}

// grow makes room in the full buffer: to entryBufStart entries first, then
// to the limit.
func (s *entrySorter) grow() {
	n := min(s.limit, entryBufStart)
	if cap(s.buf) >= n {
		n = s.limit
	}
	if n <= cap(s.buf) {
		return // at the limit: add spills before it fills up
	}
	s.buf = slices.Grow(s.buf, n-len(s.buf))
}

func (s *entrySorter) spill() error {
	s.sortBuf()
	f, err := os.CreateTemp(s.dir, "entries-*.bin")
	if err != nil {
		return fmt.Errorf("spilling sorted rows: %w", err)
	}
	// The entries are encoded a block at a time and each block written in
	// one call, not 40 bytes a call through a buffered writer.
	blk := make([]byte, 0, runBlockEntries*entrySize)
	for es := s.buf; len(es) > 0 && err == nil; {
		n := min(len(es), runBlockEntries)
		blk = blk[:n*entrySize]
		for i := range es[:n] {
			putEntry(blk[i*entrySize:], &es[i])
		}
		_, err = f.Write(blk)
		es = es[n:]
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("spilling sorted rows: %w", err)
	}
	s.runs = append(s.runs, f.Name())
	s.buf = s.buf[:0]
	return nil
}

// runBlockEntries is the number of entries a run file is written and read
// in at a time (a 160 KB block).
const runBlockEntries = 4096

func putEntry(b []byte, e *entry) {
	binary.LittleEndian.PutUint64(b[0:], e.hi)
	binary.LittleEndian.PutUint64(b[8:], e.lo)
	copy(b[16:32], e.hash[:])
	binary.LittleEndian.PutUint64(b[32:], uint64(e.off))
}

func getEntry(b []byte, e *entry) {
	e.hi = binary.LittleEndian.Uint64(b[0:])
	e.lo = binary.LittleEndian.Uint64(b[8:])
	copy(e.hash[:], b[16:32])
	e.off = int64(binary.LittleEndian.Uint64(b[32:]))
}

// finish returns the entries in order. Run files are merged with one open
// file each; a run holds limit entries, so even ten million rows make a few
// dozen runs.
func (s *entrySorter) finish() (entryReader, error) {
	if len(s.runs) == 0 {
		s.sortBuf()
		s.tmp = nil
		return &entrySlice{es: s.buf}, nil
	}
	// The last buffer is merged from memory, not spilled.
	s.sortBuf()
	s.tmp = nil
	m := &entryMerge{}
	for i := range len(s.runs) + 1 {
		r := &entryRun{}
		if i < len(s.runs) {
			f, err := os.Open(s.runs[i])
			if err != nil {
				_ = m.close()
				return nil, fmt.Errorf("merging sorted rows: %w", err)
			}
			r.f = f
			r.blk = make([]byte, runBlockEntries*entrySize)
			r.dec = make([]entry, runBlockEntries)
		} else {
			r.es = s.buf
			s.buf = nil
		}
		m.runs = append(m.runs, r)
		if len(r.es) == 0 {
			ok, err := r.fill()
			if err != nil {
				_ = m.close()
				return nil, err
			}
			if !ok {
				continue
			}
		}
		m.h = append(m.h, r)
	}
	for i := len(m.h)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
	return m, nil
}

// cleanup removes the run files.
func (s *entrySorter) cleanup() {
	for _, p := range s.runs {
		_ = os.Remove(p)
	}
	s.runs, s.buf, s.tmp = nil, nil, nil
}

// entryIter yields entries in order.
type entryIter interface {
	// next returns the next entry, false at the end.
	next() (entry, bool, error)
	close() error
}

type entrySlice struct {
	es []entry
	i  int
}

func (it *entrySlice) next() (entry, bool, error) {
	if it.i >= len(it.es) {
		return entry{}, false, nil
	}
	it.i++
	return it.es[it.i-1], true, nil
}

// read implements entryReader.
func (it *entrySlice) read(dst []entry) (int, error) {
	n := copy(dst, it.es[it.i:])
	it.i += n
	return n, nil
}

func (it *entrySlice) close() error { it.es = nil; return nil }

// entryRun is one sorted run of a merge: a run file, read and decoded a
// block at a time, or the sorted entries left in memory (f nil).
type entryRun struct {
	f   *os.File
	blk []byte  // a block of the file
	dec []entry // the decoded block's backing array
	es  []entry // the entries not yet merged
}

// fill decodes the run's next block, false at the end of the run.
func (r *entryRun) fill() (bool, error) {
	if r.f == nil {
		return false, nil
	}
	n, err := io.ReadFull(r.f, r.blk)
	switch {
	case errors.Is(err, io.EOF):
		return false, nil
	case errors.Is(err, io.ErrUnexpectedEOF):
		if n%entrySize != 0 {
			return false, fmt.Errorf("reading temporary file %s: truncated entry", r.f.Name())
		}
	case err != nil:
		return false, fmt.Errorf("reading temporary file %s: %w", r.f.Name(), err)
	}
	es := r.dec[:n/entrySize]
	for i := range es {
		getEntry(r.blk[i*entrySize:], &es[i])
	}
	r.es = es
	return len(es) > 0, nil
}

// entryMerge is the k-way merge of sorted entry runs. Its heap holds the
// runs with entries left, the run whose next entry comes first on top; the
// heap is written out with the comparison inline, as the merge of a large
// plan moves millions of entries through it.
type entryMerge struct {
	runs []*entryRun
	h    []*entryRun
}

// runBefore orders runs by their next entries: cmpEntry's order, written
// out so that it inlines in the heap (cmpEntry does not).
func runBefore(a, b *entryRun) bool {
	x, y := &a.es[0], &b.es[0]
	if x.hi != y.hi {
		return x.hi < y.hi
	}
	if x.lo != y.lo {
		return x.lo < y.lo
	}
	return x.off < y.off
}

func (m *entryMerge) down(i int) {
	h := m.h
	for {
		j := 2*i + 1
		if j >= len(h) {
			return
		}
		if r := j + 1; r < len(h) && runBefore(h[r], h[j]) {
			j = r
		}
		if !runBefore(h[j], h[i]) {
			return
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}

func (m *entryMerge) next() (entry, bool, error) {
	var one [1]entry
	n, err := m.read(one[:])
	return one[0], n == 1, err
}

// read fills dst with the next entries in order and returns how many it
// gave: fewer than len(dst) only at the end of the merge or with an error.
func (m *entryMerge) read(dst []entry) (int, error) {
	n := 0
	for n < len(dst) && len(m.h) > 0 {
		top := m.h[0]
		if len(m.h) == 1 {
			// The last run left: copy its entries as they are.
			k := copy(dst[n:], top.es)
			n += k
			top.es = top.es[k:]
		} else {
			dst[n] = top.es[0]
			n++
			top.es = top.es[1:]
		}
		if len(top.es) == 0 {
			ok, err := top.fill()
			if err != nil {
				return n, err
			}
			if !ok {
				last := len(m.h) - 1
				m.h[0] = m.h[last]
				m.h[last] = nil
				m.h = m.h[:last]
			}
		}
		m.down(0)
	}
	return n, nil
}

func (m *entryMerge) close() error {
	var errs []error
	for _, r := range m.runs {
		if r.f != nil {
			errs = append(errs, r.f.Close())
		}
	}
	m.runs, m.h = nil, nil
	return errors.Join(errs...)
}

// entryReader is an entryIter that also gives its entries a batch at a
// time.
type entryReader interface {
	entryIter
	// read fills dst with the next entries and returns how many it gave:
	// fewer than len(dst) only at the end or with an error.
	read(dst []entry) (int, error)
}

// aheadBatchEntries is the number of entries in a batch of an aheadIter.
const aheadBatchEntries = 4096

// entryBatch is a batch of entries an aheadIter's goroutine hands over, and
// the error that ended it, if any.
type entryBatch struct {
	es  []entry
	err error
}

// aheadIter runs an entryIter on a goroutine of its own, a few batches ahead
// of its reader. The k-way merge of spilled runs (reading run files, the
// heap) then runs beside the diff's join with the ledger instead of taking
// turns with it: after the model is read the warehouse is done, and the
// second core would otherwise idle through the merge.
type aheadIter struct {
	src  entryReader
	out  chan entryBatch
	free chan []entry
	stop chan struct{}
	done chan struct{}
	cur  []entry
	i    int
	end  bool
	err  error
}

// readAhead starts reading src ahead. The aheadIter owns src: its close
// closes src.
func readAhead(src entryReader) *aheadIter {
	const buffers = 3 // one read, one filled, one filling
	a := &aheadIter{
		src:  src,
		out:  make(chan entryBatch, buffers-1),
		free: make(chan []entry, buffers),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for range buffers {
		a.free <- make([]entry, 0, aheadBatchEntries)
	}
	go a.run()
	return a
}

func (a *aheadIter) run() {
	defer close(a.done)
	defer close(a.out)
	for {
		var es []entry
		select {
		case es = <-a.free:
		case <-a.stop:
			return
		}
		n, err := a.src.read(es[:cap(es)])
		es = es[:n]
		last := err != nil || len(es) < cap(es)
		select {
		case a.out <- entryBatch{es: es, err: err}:
		case <-a.stop:
			return
		}
		if last {
			return
		}
	}
}

func (a *aheadIter) next() (entry, bool, error) {
	for a.i >= len(a.cur) {
		if a.end {
			return entry{}, false, a.err
		}
		if a.cur != nil {
			a.free <- a.cur[:0] // never blocks: free holds every buffer
			a.cur = nil
		}
		b, ok := <-a.out
		if !ok {
			a.end = true
			continue
		}
		if b.err != nil {
			a.end, a.err = true, b.err
			return entry{}, false, b.err
		}
		a.cur, a.i = b.es, 0
	}
	a.i++
	return a.cur[a.i-1], true, nil
}

// close stops the goroutine and closes the source.
func (a *aheadIter) close() error {
	if a.stop == nil {
		return nil
	}
	close(a.stop)
	<-a.done
	a.stop, a.cur = nil, nil
	return a.src.close()
}
