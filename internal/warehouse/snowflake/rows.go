package snowflake

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	sf "github.com/snowflakedb/gosnowflake"

	"github.com/listsync/listsync/internal/warehouse"
)

// fetchAhead is how many result chunks are downloaded and decoded ahead of
// the one being read. Memory holds at most fetchAhead+2 chunks: the one
// being read, the ones waiting, and the one being downloaded.
const fetchAhead = 1

// column is what rows needs to know of a result column.
type column struct {
	name   string
	dbType string // Snowflake's type, e.g. "FIXED", "TIMESTAMP_TZ"
	scale  int64  // FIXED's scale
}

// fetched is one result chunk, decoded into Arrow records by gosnowflake.
type fetched struct {
	recs []arrow.RecordBatch
	err  error
}

// rows streams a result chunk by chunk. gosnowflake logs in, runs the query,
// downloads each chunk and decodes Snowflake's Arrow encoding (scaled
// integers, timestamp structs) into plain Arrow arrays; rows fetches the
// chunks in order, a bounded number ahead, and turns each row into Go
// values.
type rows struct {
	ctx    context.Context
	cancel context.CancelFunc
	p      *warehouse.QueryParams
	conn   *sql.Conn
	drows  driver.Rows

	cols    []column
	names   []string
	chunks  chan fetched
	fetcher chan struct{} // closed when the fetching goroutine has ended

	recs    []arrow.RecordBatch // the chunk being read
	recIdx  int                 // next record of recs
	cur     arrow.RecordBatch   // the record being read
	row     int                 // next row of cur
	readers []func(int) (any, error)
	vals    []any
	err     error
	done    bool
}

func newRows(ctx context.Context, cancel context.CancelFunc, p *warehouse.QueryParams, conn *sql.Conn, drows driver.Rows, batches []*sf.ArrowBatch) *rows {
	names := drows.Columns()
	r := &rows{
		ctx:     ctx,
		cancel:  cancel,
		p:       p,
		conn:    conn,
		drows:   drows,
		cols:    make([]column, len(names)),
		names:   names,
		chunks:  make(chan fetched, fetchAhead),
		fetcher: make(chan struct{}),
		readers: make([]func(int) (any, error), len(names)),
		vals:    make([]any, len(names)),
	}
	typeNames, _ := drows.(driver.RowsColumnTypeDatabaseTypeName)
	scales, _ := drows.(driver.RowsColumnTypePrecisionScale)
	for i, n := range names {
		r.cols[i].name = n
		if typeNames != nil {
			r.cols[i].dbType = typeNames.ColumnTypeDatabaseTypeName(i)
		}
		if scales != nil {
			_, r.cols[i].scale, _ = scales.ColumnTypePrecisionScale(i)
		}
	}
	go r.fetch(batches)
	return r
}

// fetch downloads the chunks in order and hands them to Next, stopping
// when the query's context ends.
func (r *rows) fetch(batches []*sf.ArrowBatch) {
	defer close(r.fetcher)
	defer close(r.chunks)
	for _, b := range batches {
		recs, err := b.WithContext(r.ctx).Fetch()
		f := fetched{err: err}
		if err == nil && recs != nil {
			f.recs = *recs
		}
		select {
		case r.chunks <- f:
		case <-r.ctx.Done():
			release(f.recs)
			return
		}
		if err != nil {
			return
		}
	}
}

func release(recs []arrow.RecordBatch) {
	for _, rec := range recs {
		rec.Release()
	}
}

func (r *rows) Columns() []string { return r.names }

func (r *rows) Next() bool {
	for !r.done {
		if r.ctx.Err() != nil {
			r.finish(nil)
			return false
		}
		if r.cur != nil && r.row < int(r.cur.NumRows()) {
			for c, read := range r.readers {
				v, err := read(r.row)
				if err != nil {
					r.err = warehouse.NewError(warehouse.ErrSQL, name, r.p,
						fmt.Sprintf("column %q (#%d, %s): %v", r.cols[c].name, c+1, r.cols[c].dbType, err), err)
					r.close()
					return false
				}
				r.vals[c] = v
			}
			r.row++
			return true
		}
		if r.recIdx < len(r.recs) {
			if err := r.bind(r.recs[r.recIdx]); err != nil {
				r.err = err
				r.close()
				return false
			}
			r.recIdx++
			continue
		}
		// The chunk is read: free it before waiting for the next.
		release(r.recs)
		r.recs, r.recIdx, r.cur = nil, 0, nil
		select {
		case f, ok := <-r.chunks:
			if !ok {
				r.finish(nil)
				return false
			}
			if f.err != nil {
				release(f.recs)
				r.finish(f.err)
				return false
			}
			r.recs = f.recs
		case <-r.ctx.Done():
		}
	}
	return false
}

// bind makes rec the record being read and picks a reader for each of its
// columns.
func (r *rows) bind(rec arrow.RecordBatch) error {
	if int(rec.NumCols()) != len(r.cols) {
		return warehouse.NewError(warehouse.ErrConnect, name, r.p,
			fmt.Sprintf("a result chunk has %d columns, the result %d", rec.NumCols(), len(r.cols)), nil)
	}
	for c := range r.cols {
		read, err := reader(rec.Column(c), r.cols[c])
		if err != nil {
			return warehouse.NewError(warehouse.ErrSQL, name, r.p,
				fmt.Sprintf("column %q (#%d, %s): %v; cast it in the model to a text, number, boolean, date or timestamp type", r.cols[c].name, c+1, r.cols[c].dbType, err), err)
		}
		r.readers[c] = read
	}
	r.cur, r.row = rec, 0
	return nil
}

// finish ends the iteration with err (mapped onto the seam's errors) or,
// when err is nil, with the context's error if it ended the query.
func (r *rows) finish(err error) {
	if err != nil {
		r.err = mapError(r.ctx, r.p, err)
	} else if cerr := warehouse.ContextError(r.ctx, name, r.p); cerr != nil {
		r.err = cerr
	}
	r.close()
}

func (r *rows) Values() []any { return r.vals }

func (r *rows) Err() error { return r.err }

func (r *rows) Close() error {
	r.close()
	return nil
}

// close stops the downloads, frees the chunks and returns the session to
// the pool. It waits for the fetching goroutine, so nothing uses the
// session once it is back in the pool.
func (r *rows) close() {
	if r.done {
		return
	}
	r.done = true
	r.cancel()
	for f := range r.chunks {
		release(f.recs)
	}
	<-r.fetcher
	release(r.recs)
	r.recs, r.cur = nil, nil
	_ = r.drows.Close()
	_ = r.conn.Close()
}

// reader returns a function reading row i of arr as one of the Go types
// warehouse.Rows promises. gosnowflake has already turned Snowflake's
// encodings into plain Arrow: NUMBER arrives as integers (8 to 64 bits)
// holding the unscaled value, or Decimal128 when a value needs more,
// timestamps as microseconds since the epoch, DATE as days, TIME as
// nanoseconds of the day.
func reader(arr arrow.Array, col column) (func(int) (any, error), error) {
	null := arr.IsNull
	switch a := arr.(type) {
	case *array.Int8:
		return fixed(null, col.scale, func(i int) int64 { return int64(a.Value(i)) }), nil
	case *array.Int16:
		return fixed(null, col.scale, func(i int) int64 { return int64(a.Value(i)) }), nil
	case *array.Int32:
		return fixed(null, col.scale, func(i int) int64 { return int64(a.Value(i)) }), nil
	case *array.Int64:
		return fixed(null, col.scale, a.Value), nil
	case *array.Decimal128:
		scale := int32(col.scale)
		return func(i int) (any, error) {
			if null(i) {
				return nil, nil
			}
			return warehouse.NormalizeDecimal(a.Value(i).ToString(scale))
		}, nil
	case *array.Float64:
		return func(i int) (any, error) {
			if null(i) {
				return nil, nil
			}
			return a.Value(i), nil
		}, nil
	case *array.String:
		return func(i int) (any, error) {
			if null(i) {
				return nil, nil
			}
			// Copy: the value must outlive the chunk it came in.
			return strings.Clone(a.Value(i)), nil
		}, nil
	case *array.Binary:
		return func(i int) (any, error) {
			if null(i) {
				return nil, nil
			}
			return string(a.Value(i)), nil
		}, nil
	case *array.Boolean:
		return func(i int) (any, error) {
			if null(i) {
				return nil, nil
			}
			return a.Value(i), nil
		}, nil
	case *array.Date32:
		return func(i int) (any, error) {
			if null(i) {
				return nil, nil
			}
			return time.Unix(int64(a.Value(i))*86400, 0).UTC(), nil
		}, nil
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		return func(i int) (any, error) {
			if null(i) {
				return nil, nil
			}
			return a.Value(i).ToTime(unit).UTC(), nil
		}, nil
	case *array.Time64:
		unit := a.DataType().(*arrow.Time64Type).Unit
		return func(i int) (any, error) {
			if null(i) {
				return nil, nil
			}
			return a.Value(i).ToTime(unit).Format("15:04:05.999999999"), nil
		}, nil
	}
	return nil, fmt.Errorf("listsync cannot read Arrow type %s", arr.DataType())
}

// fixed reads a NUMBER(p, scale) column whose unscaled values value(i)
// returns: whole numbers become int64, others float64, as
// warehouse.NormalizeDecimal decides for every backend.
func fixed(null func(int) bool, scale int64, value func(int) int64) func(int) (any, error) {
	if scale == 0 {
		return func(i int) (any, error) {
			if null(i) {
				return nil, nil
			}
			return value(i), nil
		}
	}
	if scale < 0 || scale > 18 {
		return func(i int) (any, error) {
			if null(i) {
				return nil, nil
			}
			return warehouse.NormalizeDecimal(strconv.FormatInt(value(i), 10) + "e-" + strconv.FormatInt(scale, 10))
		}
	}
	div := int64(1)
	for range scale {
		div *= 10
	}
	return func(i int) (any, error) {
		if null(i) {
			return nil, nil
		}
		v := value(i)
		if v%div == 0 {
			return v / div, nil
		}
		if v > -(1<<53) && v < 1<<53 {
			// Both operands are exact, so the quotient is the float64
			// nearest the decimal, as parsing its text would give.
			return float64(v) / float64(div), nil
		}
		return warehouse.NormalizeDecimal(strconv.FormatInt(v, 10) + "e-" + strconv.FormatInt(scale, 10))
	}
}
