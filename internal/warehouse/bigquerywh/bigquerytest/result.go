package bigquerytest

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"
	"unicode/utf8"
)

// Field describes one column of a registered result, as BigQuery reports it
// in a query response's schema.
type Field struct {
	// Name is the column name.
	Name string
	// Type is BigQuery's legacy type name, the one the REST API reports:
	// STRING, BYTES, INTEGER, FLOAT, NUMERIC, BIGNUMERIC, BOOLEAN,
	// TIMESTAMP, DATE, TIME, DATETIME, GEOGRAPHY, JSON, INTERVAL or RECORD.
	Type string
	// Mode is NULLABLE (the default when empty), REQUIRED or REPEATED.
	Mode string
	// Fields is the schema of a RECORD column.
	Fields []Field
}

// knownTypes are the type names the REST API puts in a query's schema.
// Standard SQL aliases such as INT64 or BOOL never appear there, and the Go
// client rejects them, so registering one is a mistake in the test.
var knownTypes = map[string]bool{
	"STRING": true, "BYTES": true, "INTEGER": true, "FLOAT": true,
	"NUMERIC": true, "BIGNUMERIC": true, "BOOLEAN": true, "TIMESTAMP": true,
	"DATE": true, "TIME": true, "DATETIME": true, "GEOGRAPHY": true,
	"JSON": true, "INTERVAL": true, "RECORD": true,
}

// Result is a result set registered for one SQL text. Its rows are produced
// on demand by Row, so a result of millions of rows costs no memory.
type Result struct {
	// Schema lists the result's columns in order.
	Schema []Field
	// NumRows is the number of rows in the result.
	NumRows int64
	// Row fills dst (of length len(Schema)) with the values of row i,
	// 0 <= i < NumRows. Row may be called concurrently and more than once
	// for the same row. Values are encoded per column type:
	//   - nil is SQL NULL;
	//   - a string is sent verbatim as the cell's text (any type);
	//   - int, int64, float64, bool, *big.Rat and []byte in the obvious way;
	//   - time.Time as TIMESTAMP, DATE, DATETIME or TIME per the column;
	//   - []any for a REPEATED column, one element per entry;
	//   - []any for a RECORD column, one element per sub-field.
	Row func(i int64, dst []any)
	// Pending is how many status checks (the jobs.query answer itself, then
	// each jobs.getQueryResults or jobs.get) report the job as still running
	// before it is done.
	Pending int
	// PageDelay delays every page of rows, to let tests cancel or time out
	// a query while it streams. The delay ends early when the request's
	// context is done.
	PageDelay time.Duration
}

// Rows returns a Result that serves the given rows.
func Rows(schema []Field, rows [][]any) Result {
	return Result{
		Schema:  schema,
		NumRows: int64(len(rows)),
		Row: func(i int64, dst []any) {
			copy(dst, rows[i])
		},
	}
}

// validate reports a mistake in a registered result.
func (r *Result) validate() error {
	if len(r.Schema) == 0 {
		return fmt.Errorf("result has no columns")
	}
	if r.NumRows < 0 {
		return fmt.Errorf("result has %d rows", r.NumRows)
	}
	if r.NumRows > 0 && r.Row == nil {
		return fmt.Errorf("result has %d rows but no Row function", r.NumRows)
	}
	return validateFields(r.Schema)
}

func validateFields(fields []Field) error {
	for _, f := range fields {
		if f.Name == "" {
			return fmt.Errorf("column has no name")
		}
		if !knownTypes[f.Type] {
			return fmt.Errorf("column %q: type %q is not one the REST API reports (use e.g. INTEGER, FLOAT, BOOLEAN)", f.Name, f.Type)
		}
		switch f.Mode {
		case "", "NULLABLE", "REQUIRED", "REPEATED":
		default:
			return fmt.Errorf("column %q: unknown mode %q", f.Name, f.Mode)
		}
		if (f.Type == "RECORD") != (len(f.Fields) > 0) {
			return fmt.Errorf("column %q: a RECORD column, and only a RECORD column, has sub-fields", f.Name)
		}
		if err := validateFields(f.Fields); err != nil {
			return fmt.Errorf("column %q: %w", f.Name, err)
		}
	}
	return nil
}

// appendSchema appends the JSON form of a schema: {"fields":[…]}.
func appendSchema(b []byte, fields []Field) []byte {
	b = append(b, `{"fields":`...)
	b = appendFields(b, fields)
	return append(b, '}')
}

// appendFields appends a JSON array of field descriptions.
func appendFields(b []byte, fields []Field) []byte {
	b = append(b, '[')
	for i, f := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		mode := f.Mode
		if mode == "" {
			mode = "NULLABLE"
		}
		b = append(b, `{"name":`...)
		b = appendString(b, f.Name)
		b = append(b, `,"type":`...)
		b = appendString(b, f.Type)
		b = append(b, `,"mode":`...)
		b = appendString(b, mode)
		if len(f.Fields) > 0 {
			b = append(b, `,"fields":`...)
			b = appendFields(b, f.Fields)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendRow appends one row in the REST form {"f":[{"v":…},…]}.
func appendRow(b []byte, fields []Field, vals []any, int64TS bool) ([]byte, error) {
	b = append(b, `{"f":[`...)
	for i, f := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		b = append(b, `{"v":`...)
		b, err = appendCell(b, f, vals[i], int64TS)
		if err != nil {
			return b, fmt.Errorf("column %q: %w", f.Name, err)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
}

// appendCell appends the JSON value of one cell of column f.
func appendCell(b []byte, f Field, v any, int64TS bool) ([]byte, error) {
	if v == nil {
		return append(b, "null"...), nil
	}
	if f.Mode == "REPEATED" {
		elems, ok := v.([]any)
		if !ok {
			return b, fmt.Errorf("REPEATED value must be []any, got %T", v)
		}
		elem := f
		elem.Mode = "NULLABLE"
		b = append(b, '[')
		for i, e := range elems {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			b = append(b, `{"v":`...)
			if b, err = appendCell(b, elem, e, int64TS); err != nil {
				return b, err
			}
			b = append(b, '}')
		}
		return append(b, ']'), nil
	}
	if f.Type == "RECORD" {
		sub, ok := v.([]any)
		if !ok || len(sub) != len(f.Fields) {
			return b, fmt.Errorf("RECORD value must be []any of %d values, got %T", len(f.Fields), v)
		}
		return appendRow(b, f.Fields, sub, int64TS)
	}
	s, err := cellText(f.Type, v, int64TS)
	if err != nil {
		return b, err
	}
	return appendString(b, s), nil
}

// cellText renders a scalar the way the REST API does: every scalar travels
// as a JSON string.
func cellText(typ string, v any, int64TS bool) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		switch {
		case math.IsNaN(v):
			return "NaN", nil
		case math.IsInf(v, 1):
			return "Infinity", nil
		case math.IsInf(v, -1):
			return "-Infinity", nil
		}
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(v), nil
	case *big.Rat:
		if v.IsInt() {
			return v.Num().String(), nil
		}
		return v.FloatString(9), nil
	case []byte:
		return base64.StdEncoding.EncodeToString(v), nil
	case time.Time:
		switch typ {
		case "TIMESTAMP":
			if int64TS {
				return strconv.FormatInt(v.UnixMicro(), 10), nil
			}
			// Without formatOptions.useInt64Timestamp the service sends
			// seconds as a float in E notation, e.g. "1.7E9".
			return strconv.FormatFloat(float64(v.UnixMicro())/1e6, 'E', -1, 64), nil
		case "DATE":
			return v.Format("2006-01-02"), nil
		case "DATETIME":
			return v.Format("2006-01-02T15:04:05.999999"), nil
		case "TIME":
			return v.Format("15:04:05.999999"), nil
		}
		return "", fmt.Errorf("time.Time is not a %s value", typ)
	}
	return "", fmt.Errorf("cannot encode %T as %s", v, typ)
}

// appendString appends s as a JSON string, replacing invalid UTF-8.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
