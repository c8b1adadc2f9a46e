package sync

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// record is one row flowing through the pipeline: a model row (key, fields
// and their hash), a member read from Marketo (key, lead ID), or a diff row.
type record struct {
	key    string
	leadID int64
	kind   byte
	// seq is the record's index in the sorter's buffer, the tie-break that
	// keeps equal keys in input order (it fits the padding after kind, so
	// a record stays 72 bytes). It is not written to run files.
	seq    uint32
	hash   fieldsHash
	values []string
}

// recordOverhead approximates the memory a record takes beyond its strings.
const recordOverhead = 96

func (r *record) size() int {
	n := recordOverhead + len(r.key)
	for _, v := range r.values {
		n += 16 + len(v)
	}
	return n
}

// recordWriter writes records to a file in a compact binary form.
type recordWriter struct {
	f   *os.File
	w   *bufio.Writer
	buf []byte
	n   int64
}

func createRecordFile(dir, pattern string) (*recordWriter, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &recordWriter{f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

func (w *recordWriter) write(r *record) error {
	b := w.buf[:0]
	b = append(b, r.kind)
	b = binary.AppendUvarint(b, uint64(len(r.key)))
	b = append(b, r.key...)
	b = binary.AppendVarint(b, r.leadID)
	b = append(b, r.hash[:]...)
	b = binary.AppendUvarint(b, uint64(len(r.values)))
	for _, v := range r.values {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	w.buf = b
	w.n++
	_, err := w.w.Write(b)
	return err
}

// finish flushes and closes the file, returning its path.
func (w *recordWriter) finish() (string, error) {
	err := w.w.Flush()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return w.f.Name(), err
}

// abort closes and removes the file.
func (w *recordWriter) abort() {
	_ = w.f.Close()
	_ = os.Remove(w.f.Name())
}

// recordReader reads a file written by recordWriter.
type recordReader struct {
	f    *os.File
	r    *bufio.Reader
	name string
	buf  []byte
}

func openRecordFile(path string) (*recordReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &recordReader{f: f, r: bufio.NewReaderSize(f, 256<<10), name: filepath.Base(path)}, nil
}

// read reads the next record into r; it returns io.EOF at the end.
func (rr *recordReader) read(r *record) error {
	kind, err := rr.r.ReadByte()
	if err != nil {
		return err // io.EOF at a record boundary
	}
	r.kind = kind
	if r.key, err = rr.readString(); err != nil {
		return rr.corrupt(err)
	}
	if r.leadID, err = binary.ReadVarint(rr.r); err != nil {
		return rr.corrupt(err)
	}
	if _, err = io.ReadFull(rr.r, r.hash[:]); err != nil {
		return rr.corrupt(err)
	}
	n, err := binary.ReadUvarint(rr.r)
	if err != nil {
		return rr.corrupt(err)
	}
	if n > 1<<20 {
		return rr.corrupt(fmt.Errorf("%d values", n))
	}
	r.values = make([]string, n)
	for i := range r.values {
		if r.values[i], err = rr.readString(); err != nil {
			return rr.corrupt(err)
		}
	}
	return nil
}

func (rr *recordReader) readString() (string, error) {
	n, err := binary.ReadUvarint(rr.r)
	if err != nil {
		return "", err
	}
	if n > 1<<30 {
		return "", fmt.Errorf("string of %d bytes", n)
	}
	if cap(rr.buf) < int(n) {
		rr.buf = make([]byte, n)
	}
	b := rr.buf[:n]
	if _, err := io.ReadFull(rr.r, b); err != nil {
		return "", err
	}
	return string(b), nil
}

func (rr *recordReader) corrupt(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("reading temporary file %s: %w", rr.name, err)
}

func (rr *recordReader) close() error { return rr.f.Close() }

// recordIter yields records in key order.
type recordIter interface {
	// next returns the next record, false at the end.
	next() (record, bool, error)
	close() error
}

// sorter is an external sort of records by key: it buffers records up to a
// memory budget, sorts each full buffer and spills it to a file (a run), and
// finally merges the runs. Records with equal keys keep their input order.
type sorter struct {
	dir   string
	limit int
	buf   []record
	size  int
	runs  []string
	added int64
}

func newSorter(dir string, limit int) *sorter {
	return &sorter{dir: dir, limit: limit}
}

func (s *sorter) add(r record) error {
	r.seq = uint32(len(s.buf))
	s.buf = append(s.buf, r)
	s.added++
	s.size += r.size()
	if s.size >= s.limit || int64(len(s.buf)) >= math.MaxUint32 { // seq must not wrap
		return s.spill()
	}
	return nil
}

// sortBuf sorts the buffer by key, equal keys in input order. pdqsort with
// the buffer index as tie-break gives the stable sort's order with far
// fewer moves of the 72-byte records than a stable merge sort.
func (s *sorter) sortBuf() {
	slices.SortFunc(s.buf, func(a, b record) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
}

func (s *sorter) spill() error {
	s.sortBuf()
	w, err := createRecordFile(s.dir, "run-*.bin")
	if err != nil {
		return fmt.Errorf("spilling sorted rows: %w", err)
	}
	for i := range s.buf {
		if err := w.write(&s.buf[i]); err != nil {
			w.abort()
			return fmt.Errorf("spilling sorted rows: %w", err)
		}
	}
	path, err := w.finish()
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("spilling sorted rows: %w", err)
	}
	s.runs = append(s.runs, path)
	clear(s.buf) // drop the strings for the collector
	s.buf = s.buf[:0]
	s.size = 0
	return nil
}

// finish returns the records in key order. When nothing was spilled they
// are served from memory.
func (s *sorter) finish() (recordIter, error) {
	if len(s.runs) == 0 {
		s.sortBuf()
		return &sliceIter{recs: s.buf}, nil
	}
	if len(s.buf) > 0 {
		if err := s.spill(); err != nil {
			return nil, err
		}
	}
	s.buf = nil
	// Keep the number of open files bounded: merge runs in groups until
	// few enough are left for the final merge.
	for len(s.runs) > maxFanIn {
		var merged []string
		for i := 0; i < len(s.runs); i += maxFanIn {
			group := s.runs[i:min(i+maxFanIn, len(s.runs))]
			path, err := s.mergeToFile(group)
			if err != nil {
				return nil, err
			}
			for _, p := range group {
				_ = os.Remove(p)
			}
			merged = append(merged, path)
		}
		s.runs = merged
	}
	return openMerge(s.runs)
}

// maxFanIn bounds the runs merged at once (each is an open file).
const maxFanIn = 64

// mergeToFile merges runs into one new run file, keeping equal keys in run
// order.
func (s *sorter) mergeToFile(runs []string) (string, error) {
	it, err := openMerge(runs)
	if err != nil {
		return "", err
	}
	defer it.close()
	w, err := createRecordFile(s.dir, "run-*.bin")
	if err != nil {
		return "", fmt.Errorf("merging sorted rows: %w", err)
	}
	for {
		r, ok, err := it.next()
		if err != nil {
			w.abort()
			return "", fmt.Errorf("merging sorted rows: %w", err)
		}
		if !ok {
			break
		}
		if err := w.write(&r); err != nil {
			w.abort()
			return "", fmt.Errorf("merging sorted rows: %w", err)
		}
	}
	path, err := w.finish()
	if err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("merging sorted rows: %w", err)
	}
	return path, nil
}

// openMerge opens a k-way merge of sorted run files.
func openMerge(runs []string) (*mergeIter, error) {
	m := &mergeIter{h: runHeap[*cursor]{less: cursorBefore}}
	for i, path := range runs {
		rr, err := openRecordFile(path)
		if err != nil {
			_ = m.close()
			return nil, fmt.Errorf("merging sorted rows: %w", err)
		}
		m.readers = append(m.readers, rr)
		c := &cursor{rr: rr, run: i}
		ok, err := c.advance()
		if err != nil {
			_ = m.close()
			return nil, fmt.Errorf("merging sorted rows: %w", err)
		}
		if ok {
			m.h.cs = append(m.h.cs, c)
		}
	}
	m.h.init()
	return m, nil
}

// cleanup removes the sorter's run files.
func (s *sorter) cleanup() {
	for _, p := range s.runs {
		_ = os.Remove(p)
	}
	s.runs = nil
	s.buf = nil
}

type sliceIter struct {
	recs []record
	i    int
}

func (it *sliceIter) next() (record, bool, error) {
	if it.i >= len(it.recs) {
		return record{}, false, nil
	}
	r := it.recs[it.i]
	it.recs[it.i] = record{}
	it.i++
	return r, true, nil
}

func (it *sliceIter) close() error { it.recs = nil; return nil }

type cursor struct {
	rr  *recordReader
	run int
	cur record
}

func (c *cursor) advance() (bool, error) {
	err := c.rr.read(&c.cur)
	if errors.Is(err, io.EOF) {
		return false, nil
	}
	return err == nil, err
}

// cursorBefore orders the cursors of a record merge: by key, earlier input
// first among equal keys.
func cursorBefore(a, b *cursor) bool {
	if d := strings.Compare(a.cur.key, b.cur.key); d != 0 {
		return d < 0
	}
	return a.run < b.run
}

// runHeap is the heap of a k-way merge's cursors (container/heap), the
// cursor whose current item comes first (by less) on top. The record sorter
// uses it; the entry sorter's merge (entryMerge) writes its own out, with
// the comparison inline.
type runHeap[C any] struct {
	cs   []C
	less func(a, b C) bool
}

// The heap's operations are written out rather than taken from
// container/heap: its interface calls cost a tenth of a plan's merge.

// init orders the heap.
func (h *runHeap[C]) init() {
	for i := len(h.cs)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// fixTop restores the order after the smallest cursor moved on.
func (h *runHeap[C]) fixTop() { h.down(0) }

// popTop removes the smallest cursor (one that is exhausted).
func (h *runHeap[C]) popTop() {
	n := len(h.cs) - 1
	h.cs[0] = h.cs[n]
	var zero C
	h.cs[n] = zero
	h.cs = h.cs[:n]
	h.down(0)
}

func (h *runHeap[C]) down(i int) {
	cs := h.cs
	for {
		j := 2*i + 1
		if j >= len(cs) {
			return
		}
		if r := j + 1; r < len(cs) && h.less(cs[r], cs[j]) {
			j = r
		}
		if !h.less(cs[j], cs[i]) {
			return
		}
		cs[i], cs[j] = cs[j], cs[i]
		i = j
	}
}

// mergeIter is the k-way merge of sorted runs.
type mergeIter struct {
	h       runHeap[*cursor]
	readers []*recordReader
}

func (m *mergeIter) next() (record, bool, error) {
	if len(m.h.cs) == 0 {
		return record{}, false, nil
	}
	c := m.h.cs[0]
	r := c.cur
	c.cur = record{}
	ok, err := c.advance()
	if err != nil {
		return record{}, false, err
	}
	if ok {
		m.h.fixTop()
	} else {
		m.h.popTop()
	}
	return r, true, nil
}

func (m *mergeIter) close() error {
	var errs []error
	for _, rr := range m.readers {
		errs = append(errs, rr.close())
	}
	m.readers, m.h.cs = nil, nil
	return errors.Join(errs...)
}
