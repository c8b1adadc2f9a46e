package bigquerywh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"go.uber.org/zap"
	"google.golang.org/api/iterator"

	"github.com/listsync/listsync/internal/warehouse"
)

// Query runs p.SQL as a standard SQL query job and streams its rows, one
// REST page at a time. The model is refused before it runs when it is not a
// single read-only query. A positive p.Timeout bounds the whole query, rows
// included; the time left before the query's deadline (from p.Timeout or
// ctx) is also sent to BigQuery as the job timeout, so that the service stops
// a runaway job itself.
func (w *Warehouse) Query(ctx context.Context, p *warehouse.QueryParams) (warehouse.Rows, error) {
	if err := warehouse.CheckParams(Name, warehouse.DialectBigQuery, p); err != nil {
		return nil, err
	}
	if w.closed.Load() {
		return nil, errClosed(p)
	}
	var qctx context.Context
	var cancel context.CancelFunc
	if p.Timeout > 0 {
		qctx, cancel = context.WithTimeout(ctx, p.Timeout)
	} else {
		qctx, cancel = context.WithCancel(ctx)
	}
	q := w.client.Query(p.SQL)
	q.Location = w.location
	if dl, ok := qctx.Deadline(); ok {
		// BigQuery stops the job itself when listsync's deadline passes,
		// rather than running (and billing) it to the end. A job timeout
		// takes the client off its jobs.query fast path: it creates the job
		// with jobs.insert and polls jobs.getQueryResults.
		if left := time.Until(dl).Truncate(time.Millisecond); left > 0 {
			q.JobTimeout = left
		}
	}
	log := w.log.With(zap.String("model", p.Model))
	log.Debug("running query", zap.String("location", w.location), zap.Duration("timeout", p.Timeout))
	it, err := q.Read(qctx)
	if err != nil {
		err = mapError(qctx, p, err)
		cancel()
		return nil, err
	}
	if j := it.SourceJob(); j != nil {
		log = log.With(zap.String("job_id", j.ID()), zap.String("job_location", j.Location()))
	}
	r := &rows{it: it, ctx: qctx, cancel: cancel, p: p, log: log}
	// The schema arrives with the first page, which on the fast path is
	// only read by the first call to Next. Read the first row now so that
	// Columns is valid when Query returns; a result without rows still
	// answers its schema.
	err = it.Next(&r.raw)
	empty := errors.Is(err, iterator.Done)
	if err != nil && !empty {
		err = mapError(qctx, p, err)
		cancel()
		return nil, err
	}
	r.buffered = !empty
	r.schema = it.Schema
	cols := make([]string, len(r.schema))
	for i, f := range r.schema {
		cols[i] = f.Name
	}
	r.cols = cols
	s := warehouse.NewStream(qctx, cols, r)
	log.Debug("query result ready", zap.Uint64("total_rows", it.TotalRows), zap.Strings("columns", cols))
	if empty {
		_ = s.Close()
	}
	return s, nil
}

// rows is the warehouse.Cursor of a query's result, read from a
// RowIterator, which holds one page of rows at a time.
type rows struct {
	it     *bigquery.RowIterator
	ctx    context.Context
	cancel context.CancelFunc
	p      *warehouse.QueryParams
	log    *zap.Logger

	schema bigquery.Schema
	cols   []string
	raw    []bigquery.Value

	buffered bool // raw holds the first row, read by Query
}

// Read implements warehouse.Cursor.
func (r *rows) Read(vals []any) (bool, error) {
	if r.buffered {
		r.buffered = false
	} else {
		err := r.it.Next(&r.raw)
		if errors.Is(err, iterator.Done) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	if len(r.raw) != len(r.schema) {
		return false, warehouse.NewError(warehouse.ErrConnect, Name, r.p,
			fmt.Sprintf("BigQuery sent a row of %d values for %d columns", len(r.raw), len(r.schema)), nil)
	}
	for i, v := range r.raw {
		nv, err := normalize(v, r.schema[i])
		if err != nil {
			return false, warehouse.NewError(warehouse.ErrSQL, Name, r.p,
				fmt.Sprintf("column %q (%s): %v", r.cols[i], r.schema[i].Type, err), err)
		}
		vals[i] = nv
	}
	return true, nil
}

// MapError implements warehouse.Cursor.
func (r *rows) MapError(err error, _ int64) error {
	return mapError(r.ctx, r.p, err)
}

// Release implements warehouse.Cursor. The job itself is complete by the
// time rows are read, so there is nothing to stop on the server.
func (r *rows) Release(_ bool, n int64, err error) {
	r.cancel()
	r.log.Debug("query rows read", zap.Int64("rows", n), zap.Bool("complete", err == nil))
}

// normalize converts a value the client decoded for column f into one of
// the types warehouse.Rows promises. REPEATED and RECORD values become their
// JSON text.
func normalize(v bigquery.Value, f *bigquery.FieldSchema) (any, error) {
	if v == nil {
		return nil, nil
	}
	if f.Repeated || f.Type == bigquery.RecordFieldType {
		j, err := nestedJSON(v, f)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(j)
		if err != nil {
			return nil, fmt.Errorf("encoding as JSON: %w", err)
		}
		return string(b), nil
	}
	return scalar(v)
}

// scalar normalises a non-nested value. DATE and DATETIME become time.Time
// in UTC (a DATETIME has no zone; it is read as UTC), TIME becomes its text
// "15:04:05[.ffffff]", INTERVAL its canonical text "Y-M D H:M:S[.F]" and RANGE
// "[start, end)" with UNBOUNDED for an open end.
func scalar(v bigquery.Value) (any, error) {
	switch x := v.(type) {
	case civil.Date:
		return time.Date(x.Year, x.Month, x.Day, 0, 0, 0, 0, time.UTC), nil
	case civil.DateTime:
		return time.Date(x.Date.Year, x.Date.Month, x.Date.Day,
			x.Time.Hour, x.Time.Minute, x.Time.Second, x.Time.Nanosecond, time.UTC), nil
	case civil.Time:
		return timeOfDay(x), nil
	case *bigquery.IntervalValue:
		return x.String(), nil
	case *bigquery.RangeValue:
		start, err := rangeBound(x.Start)
		if err != nil {
			return nil, err
		}
		end, err := rangeBound(x.End)
		if err != nil {
			return nil, err
		}
		return "[" + start + ", " + end + ")", nil
	}
	return warehouse.Normalize(v)
}

func timeOfDay(t civil.Time) string {
	return time.Date(0, 1, 1, t.Hour, t.Minute, t.Second, t.Nanosecond, time.UTC).Format("15:04:05.999999")
}

// rangeBound renders one end of a RANGE the way BigQuery writes it.
func rangeBound(v bigquery.Value) (string, error) {
	switch x := v.(type) {
	case nil:
		return "UNBOUNDED", nil
	case civil.Date:
		return x.String(), nil
	case civil.DateTime:
		return x.Date.String() + " " + timeOfDay(x.Time), nil
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05.999999 UTC"), nil
	}
	return "", fmt.Errorf("unsupported RANGE bound of type %T", v)
}

// nestedJSON turns a REPEATED or RECORD value into a value encoding/json
// renders: arrays for REPEATED, objects with the fields in schema order for
// RECORD, normalised scalars inside, and NaN and infinities as strings.
func nestedJSON(v bigquery.Value, f *bigquery.FieldSchema) (any, error) {
	if v == nil {
		return nil, nil
	}
	if f.Repeated {
		elems, ok := v.([]bigquery.Value)
		if !ok {
			return nil, fmt.Errorf("unexpected REPEATED value of type %T", v)
		}
		elem := *f
		elem.Repeated = false
		out := make([]any, len(elems))
		for i, e := range elems {
			j, err := nestedJSON(e, &elem)
			if err != nil {
				return nil, err
			}
			out[i] = j
		}
		return out, nil
	}
	if f.Type == bigquery.RecordFieldType {
		fields, ok := v.([]bigquery.Value)
		if !ok || len(fields) != len(f.Schema) {
			return nil, fmt.Errorf("unexpected RECORD value of type %T", v)
		}
		obj := make(object, len(fields))
		for i, sub := range fields {
			j, err := nestedJSON(sub, f.Schema[i])
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", f.Schema[i].Name, err)
			}
			obj[i] = member{f.Schema[i].Name, j}
		}
		return obj, nil
	}
	s, err := scalar(v)
	if err != nil {
		return nil, err
	}
	if x, ok := s.(float64); ok {
		switch {
		case math.IsNaN(x):
			return "NaN", nil
		case math.IsInf(x, 1):
			return "Infinity", nil
		case math.IsInf(x, -1):
			return "-Infinity", nil
		}
	}
	return s, nil
}

// object is a JSON object that keeps its members in order.
type object []member

type member struct {
	name  string
	value any
}

// MarshalJSON implements json.Marshaler.
func (o object) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, m := range o {
		if i > 0 {
			b = append(b, ',')
		}
		k, err := json.Marshal(m.name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(m.value)
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, k...), ':'), v...)
	}
	return append(b, '}'), nil
}
