package warehouse

import (
	"context"
	"errors"
)

// Cursor is the part of a streamed result that differs between backends:
// reading and decoding the next row, mapping the driver's errors onto this
// package's, and releasing the result. A [Stream] drives it.
type Cursor interface {
	// Read advances to the next row and stores its values, normalised, in
	// vals. At the end of the result it returns false and a nil error.
	Read(vals []any) (bool, error)
	// MapError maps err, which ended the result after n rows, onto this
	// package's errors. It is not called for an error that is already an
	// *Error. When the query's context has ended, err is the context's
	// error.
	MapError(err error, n int64) error
	// Release frees the result. The Stream calls it exactly once: when
	// Read reports the end of the result (complete is true), when an error
	// ends it (err is that error) or on Close. n is the number of rows
	// Next returned.
	Release(complete bool, n int64, err error)
}

// TextCursor is a [Cursor] that can leave the values of its text columns
// undecoded, so that a reader of single columns (the engine) gets their
// bytes without a string being allocated and boxed for every value.
type TextCursor interface {
	Cursor
	// TextColumns reports the columns whose values Read gives as strings
	// holding exactly their bytes on the wire.
	TextColumns() []bool
	// ReadRaw is Read, except that it does not set the text columns'
	// values: raw[i] holds their bytes instead (nil for NULL), valid until
	// the next call. raw[i] is nil for the other columns.
	ReadRaw(vals []any, raw [][]byte) (bool, error)
}

// TextRows is [Rows] whose single values can be read without converting the
// whole row. [Stream] implements it; over a [TextCursor] it hands out text
// without copying it.
type TextRows interface {
	Rows
	// Text returns the bytes of column i of the current row, and true, when
	// Values would give a string holding exactly them; they are valid until
	// the next call to Next. It returns false when the value is NULL or not
	// such a string: Value has it then.
	Text(i int) ([]byte, bool)
	// Value returns Values()[i] without converting the row's other values.
	Value(i int) any
	// IsText reports whether Text gives the bytes of every non-NULL value
	// of column i.
	IsText(i int) bool
}

// Stream implements [Rows] over a backend's [Cursor]. It keeps what every
// backend's rows share: the row Peek read ahead, the count of rows, the
// error that ended the result, and ending the result exactly once, also when
// the query's context ends between rows.
type Stream struct {
	ctx    context.Context
	cur    Cursor
	cols   []string
	vals   []any
	n      int64
	err    error
	peeked bool
	done   bool

	// Over a TextCursor: tcur, its text columns, the current row's raw
	// text, and whether vals still lacks it.
	tcur       TextCursor
	text       []bool
	raw        [][]byte
	rawPending bool
}

// NewStream returns a Stream of the columns cols, read through cur. ctx is
// the query's context: Next stops at the first row after it ends.
func NewStream(ctx context.Context, cols []string, cur Cursor) *Stream {
	s := &Stream{ctx: ctx, cur: cur, cols: cols, vals: make([]any, len(cols))}
	if tc, ok := cur.(TextCursor); ok && len(tc.TextColumns()) == len(cols) {
		s.tcur, s.text, s.raw = tc, tc.TextColumns(), make([][]byte, len(cols))
	}
	return s
}

// Peek reads the first row ahead, for Query to call before it returns, so
// that errors raised before the query produces a row come from Query. The
// row stays the first that Next returns. Peek returns the error that ended
// the result, if any.
func (s *Stream) Peek() error {
	if s.Next() {
		s.peeked = true
	}
	return s.err
}

// Columns implements Rows.
func (s *Stream) Columns() []string { return s.cols }

// Values implements Rows. The slice is the one Cursor.Read fills.
func (s *Stream) Values() []any {
	if s.rawPending {
		for i, t := range s.text {
			if t {
				s.vals[i] = s.textValue(i)
			}
		}
		s.rawPending = false
	}
	return s.vals
}

// textValue converts text column i of the current row.
func (s *Stream) textValue(i int) any {
	if s.raw[i] == nil {
		return nil
	}
	return string(s.raw[i])
}

// Text implements [TextRows].
func (s *Stream) Text(i int) ([]byte, bool) {
	if s.tcur == nil || !s.text[i] || s.raw[i] == nil {
		return nil, false
	}
	return s.raw[i], true
}

// IsText implements [TextRows].
func (s *Stream) IsText(i int) bool { return s.tcur != nil && s.text[i] }

// Value implements [TextRows].
func (s *Stream) Value(i int) any {
	if s.rawPending && s.text[i] {
		return s.textValue(i)
	}
	return s.vals[i]
}

// Err implements Rows.
func (s *Stream) Err() error { return s.err }

// Next implements Rows.
func (s *Stream) Next() bool {
	if s.done {
		return false
	}
	// Rows already in memory are not returned once the query is canceled
	// or times out either.
	if err := s.ctx.Err(); err != nil {
		s.fail(err)
		return false
	}
	if s.peeked {
		s.peeked = false
		return true
	}
	var ok bool
	var err error
	if s.tcur != nil {
		ok, err = s.tcur.ReadRaw(s.vals, s.raw)
		s.rawPending = ok
	} else {
		ok, err = s.cur.Read(s.vals)
	}
	if err != nil {
		s.fail(err)
		return false
	}
	if !ok {
		s.end(true)
		return false
	}
	s.n++
	return true
}

// Close implements Rows.
func (s *Stream) Close() error {
	s.end(false)
	return nil
}

// fail records err, mapped unless it is already an *Error, and ends the
// result.
func (s *Stream) fail(err error) {
	var we *Error
	if !errors.As(err, &we) {
		err = s.cur.MapError(err, s.n)
	}
	s.err = err
	s.end(false)
}

// end releases the result once.
func (s *Stream) end(complete bool) {
	if s.done {
		return
	}
	s.done = true
	s.cur.Release(complete, s.n, s.err)
}
