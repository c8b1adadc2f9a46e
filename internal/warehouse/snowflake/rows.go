package snowflake

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/listsync/listsync/internal/warehouse"
)

// rows streams a query's result through database/sql. gosnowflake decodes
// the result one chunk at a time (prefetching a bounded number of chunks),
// so memory does not grow with the row count.
type rows struct {
	ctx    context.Context
	cancel context.CancelFunc
	p      *warehouse.QueryParams
	rs     *sql.Rows

	names []string
	kinds []columnKind
	raw   []any
	dest  []any
	vals  []any
	err   error
	done  bool
}

// columnKind is how a column's driver values are normalised, chosen once
// from the column's Snowflake type.
type columnKind uint8

const (
	kindOther     columnKind = iota // warehouse.Normalize
	kindFixed                       // NUMBER: decimal text (or int64) → int64 or float64
	kindReal                        // FLOAT: float64
	kindText                        // VARCHAR and semi-structured: string
	kindBoolean                     // BOOLEAN: bool
	kindTime                        // DATE, TIMESTAMP_*: time.Time in UTC
	kindTimeOfDay                   // TIME: "15:04:05.999999999"
)

func kindOf(dbType string) columnKind {
	switch dbType {
	case "FIXED":
		return kindFixed
	case "REAL":
		return kindReal
	case "TEXT", "VARIANT", "OBJECT", "ARRAY", "GEOGRAPHY", "GEOMETRY":
		return kindText
	case "BOOLEAN":
		return kindBoolean
	case "DATE", "TIMESTAMP_NTZ", "TIMESTAMP_LTZ", "TIMESTAMP_TZ":
		return kindTime
	case "TIME":
		return kindTimeOfDay
	}
	return kindOther
}

func newRows(ctx context.Context, cancel context.CancelFunc, p *warehouse.QueryParams, rs *sql.Rows, types []*sql.ColumnType) *rows {
	n := len(types)
	r := &rows{
		ctx:    ctx,
		cancel: cancel,
		p:      p,
		rs:     rs,
		names:  make([]string, n),
		kinds:  make([]columnKind, n),
		raw:    make([]any, n),
		dest:   make([]any, n),
		vals:   make([]any, n),
	}
	for i, t := range types {
		r.names[i] = t.Name()
		r.kinds[i] = kindOf(t.DatabaseTypeName())
		r.dest[i] = &r.raw[i]
	}
	return r
}

func (r *rows) Columns() []string { return r.names }

func (r *rows) Next() bool {
	if r.done {
		return false
	}
	if !r.rs.Next() {
		r.finish(r.rs.Err())
		return false
	}
	if err := r.rs.Scan(r.dest...); err != nil {
		r.finish(err)
		return false
	}
	for i, v := range r.raw {
		nv, err := normalize(r.kinds[i], v)
		if err != nil {
			r.err = warehouse.NewError(warehouse.ErrSQL, name, r.p,
				fmt.Sprintf("column %q (#%d): %v; cast it in the model to a text, number, boolean or timestamp type", r.names[i], i+1, err), err)
			r.close()
			return false
		}
		r.vals[i] = nv
	}
	return true
}

// finish ends the iteration with the driver's error, if any.
func (r *rows) finish(err error) {
	if err != nil {
		r.err = mapError(r.ctx, r.p, err)
	} else if cerr := warehouse.ContextError(r.ctx, name, r.p); cerr != nil {
		// database/sql can end a canceled iteration without an error.
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

// close releases the result: closing the database/sql rows returns the
// session to the pool, and canceling the query context stops chunk
// downloads still in flight.
func (r *rows) close() {
	if r.done {
		return
	}
	r.done = true
	_ = r.rs.Close()
	r.cancel()
}

// normalize converts what gosnowflake decoded for a column of kind k into
// one of the types warehouse.Rows promises. With Arrow results gosnowflake
// gives NUMBER values as decimal text, FLOAT as float64, BOOLEAN as bool,
// dates and timestamps as time.Time, and text as string.
func normalize(k columnKind, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch k {
	case kindFixed:
		if s, ok := v.(string); ok {
			return warehouse.NormalizeDecimal(s)
		}
	case kindReal:
		if s, ok := v.(string); ok {
			return strconv.ParseFloat(s, 64)
		}
	case kindBoolean:
		if s, ok := v.(string); ok {
			return strconv.ParseBool(strings.ToLower(s))
		}
	case kindTimeOfDay:
		if t, ok := v.(time.Time); ok {
			return t.Format("15:04:05.999999999"), nil
		}
	}
	return warehouse.Normalize(v)
}
