package sqlstore

import (
	"bufio"
	"container/heap"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/listsync/listsync/internal/state"
)

// SortRunBytesDefault is the default [DigestSorter.RunBytes]: about 16 MiB
// of encoded entries (some 250,000 members) held in memory at a time.
const SortRunBytesDefault = 16 << 20

// DigestSorter builds the chunks of a digest from entries given in any
// order (a store's members in key order, say), with bounded memory: it
// holds up to RunBytes of encoded entries, sorts them by fingerprint and,
// when more come, writes them to a temporary file as a sorted run; the
// runs are then merged. Only one run means no file at all. Close removes
// the files.
type DigestSorter struct {
	// TempDir is where the runs go (os.TempDir() when empty).
	TempDir string
	// RunBytes bounds the encoded entries held in memory
	// ([SortRunBytesDefault] when 0).
	RunBytes int

	arena []byte
	refs  []sortRef
	runs  []*os.File
}

// sortRef is one entry of the run in memory: its fingerprint, and where
// its encoding starts in the arena.
type sortRef struct {
	fp  [state.FingerprintSize]byte
	off int
}

// Add adds e (copying it).
func (s *DigestSorter) Add(e *state.DigestEntry) error {
	if s.RunBytes <= 0 {
		s.RunBytes = SortRunBytesDefault
	}
	if len(s.arena) > 0 && len(s.arena)+entrySizeMax(e) > s.RunBytes {
		if err := s.spill(); err != nil {
			return err
		}
	}
	s.refs = append(s.refs, sortRef{fp: e.FP, off: len(s.arena)})
	s.arena = AppendEntry(s.arena, e)
	return nil
}

func (s *DigestSorter) sortRun() {
	slices.SortFunc(s.refs, func(a, b sortRef) int { return fpCompare(&a.fp, &b.fp) })
}

// spill writes the run in memory to a file, as chunks each preceded by its
// length.
func (s *DigestSorter) spill() error {
	s.sortRun()
	f, err := os.CreateTemp(s.TempDir, "listsync-digest-*.run")
	if err != nil {
		return fmt.Errorf("creating a sort run: %w", err)
	}
	s.runs = append(s.runs, f)
	bw := bufio.NewWriterSize(f, 1<<16)
	if err := s.writeRun(func(data []byte) error {
		if err := binary.Write(bw, binary.LittleEndian, uint32(len(data))); err != nil {
			return err
		}
		_, err := bw.Write(data)
		return err
	}); err != nil {
		return fmt.Errorf("writing a sort run: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing a sort run: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewinding a sort run: %w", err)
	}
	s.arena, s.refs = s.arena[:0], s.refs[:0]
	return nil
}

// writeRun passes the sorted run in memory to write as chunks.
func (s *DigestSorter) writeRun(write func(data []byte) error) error {
	w := ChunkWriter{FlushFunc: write}
	var r ChunkReader
	for _, ref := range s.refs {
		e, err := r.entryAt(s.arena, ref.off)
		if err != nil {
			return err
		}
		if err := w.Add(e); err != nil {
			return err
		}
	}
	return w.Flush()
}

// entryAt decodes the entry encoded at data[off:].
func (r *ChunkReader) entryAt(data []byte, off int) (*state.DigestEntry, error) {
	r.data, r.off, r.left = data, off, 1
	return r.Next()
}

// WriteChunks passes the chunks of the sorted entries to write, in order,
// and fails with [ErrCorruptDigest] if two entries share a fingerprint.
func (s *DigestSorter) WriteChunks(ctx context.Context, write func(data []byte) error) error {
	s.sortRun()
	if len(s.runs) == 0 {
		var prev *[state.FingerprintSize]byte
		for i := range s.refs {
			if prev != nil && !fpLess(prev, &s.refs[i].fp) {
				return fmt.Errorf("%w: two entries share the fingerprint %x", ErrCorruptDigest, *prev)
			}
			prev = &s.refs[i].fp
		}
		return s.writeRun(write)
	}
	if len(s.refs) > 0 {
		if err := s.spill(); err != nil {
			return err
		}
	}
	m := runMerge{}
	for _, f := range s.runs {
		it := &runIter{r: bufio.NewReaderSize(f, 1<<16)}
		if err := it.next(); err != nil {
			return err
		}
		if it.cur != nil {
			m = append(m, it)
		}
	}
	heap.Init(&m)
	w := ChunkWriter{FlushFunc: write}
	var prev [state.FingerprintSize]byte
	for n := 0; len(m) > 0; n++ {
		if n%ChunkEntriesMax == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		it := m[0]
		if n > 0 && !fpLess(&prev, &it.cur.FP) {
			return fmt.Errorf("%w: two entries share the fingerprint %x", ErrCorruptDigest, prev)
		}
		prev = it.cur.FP
		if err := w.Add(it.cur); err != nil {
			return err
		}
		if err := it.next(); err != nil {
			return err
		}
		if it.cur == nil {
			heap.Pop(&m)
		} else {
			heap.Fix(&m, 0)
		}
	}
	return w.Flush()
}

// Close removes the sorter's files.
func (s *DigestSorter) Close() error {
	var first error
	for _, f := range s.runs {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
		if err := os.Remove(f.Name()); err != nil && first == nil {
			first = err
		}
	}
	s.runs, s.arena, s.refs = nil, nil, nil
	return first
}

// runIter reads the entries of a run file, one chunk in memory at a time.
type runIter struct {
	r   *bufio.Reader
	buf []byte
	cr  ChunkReader
	cur *state.DigestEntry // nil at the end
}

func (it *runIter) next() error {
	for {
		if it.buf != nil {
			e, err := it.cr.Next()
			if err != nil {
				return fmt.Errorf("reading a sort run: %w", err)
			}
			if e != nil {
				it.cur = e
				return nil
			}
		}
		var n uint32
		if err := binary.Read(it.r, binary.LittleEndian, &n); err == io.EOF {
			it.cur = nil
			return nil
		} else if err != nil {
			return fmt.Errorf("reading a sort run: %w", err)
		}
		it.buf = slices.Grow(it.buf[:0], int(n))[:n]
		if _, err := io.ReadFull(it.r, it.buf); err != nil {
			return fmt.Errorf("reading a sort run: %w", err)
		}
		if err := it.cr.Reset(it.buf); err != nil {
			return fmt.Errorf("reading a sort run: %w", err)
		}
	}
}

// runMerge is a min-heap of runs by their current entry's fingerprint.
type runMerge []*runIter

func (m runMerge) Len() int           { return len(m) }
func (m runMerge) Less(i, j int) bool { return fpLess(&m[i].cur.FP, &m[j].cur.FP) }
func (m runMerge) Swap(i, j int)      { m[i], m[j] = m[j], m[i] }
func (m *runMerge) Push(x any)        { *m = append(*m, x.(*runIter)) }
func (m *runMerge) Pop() any {
	old := *m
	x := old[len(old)-1]
	*m = old[:len(old)-1]
	return x
}

// CheckChunks reads every chunk that chunkFunc gives (as
// [DigestSource.ChunkFunc]) and checks them as [MergeDigest] does, failing
// with [ErrCorruptDigest] on a damaged or misordered chunk: a store that
// rebuilds its chunks from its members checks the old ones first, so that
// damage is reported rather than silently replaced.
func CheckChunks(ctx context.Context, chunkFunc func(ctx context.Context, after int64, buf []byte) (int64, []byte, bool, error)) error {
	src := DigestSource{
		ChunkFunc: chunkFunc,
		DeltaFunc: func(_ context.Context, _ []byte, page []DeltaEntry) ([]DeltaEntry, error) { return page[:0], nil },
	}
	return MergeDigest(ctx, src, func(*state.DigestEntry) error { return nil })
}
