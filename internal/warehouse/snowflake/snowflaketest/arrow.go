package snowflaketest

import (
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// writeArrow encodes rows [start, end) of res as one Arrow IPC stream, the
// way Snowflake encodes a result chunk: NUMBER columns as the narrowest
// integer that holds the chunk's unscaled values, timestamps as scaled
// integers or (epoch, fraction[, timezone]) structs depending on their scale,
// each field carrying Snowflake's logicalType metadata.
func writeArrow(w io.Writer, res *Result, start, end int) error {
	mem := memory.NewGoAllocator()
	n := end - start
	cols := make([][]any, len(res.Columns))
	for c := range cols {
		cols[c] = make([]any, n)
	}
	row := make([]any, len(res.Columns))
	for i := range n {
		clear(row)
		res.Row(start+i, row)
		for c := range row {
			cols[c][i] = row[c]
		}
	}

	fields := make([]arrow.Field, len(res.Columns))
	arrays := make([]arrow.Array, len(res.Columns))
	defer func() {
		for _, a := range arrays {
			if a != nil {
				a.Release()
			}
		}
	}()
	for c, col := range res.Columns {
		arr, err := buildColumn(mem, col, cols[c])
		if err != nil {
			return fmt.Errorf("encoding column %s: %w", col.Name, err)
		}
		arrays[c] = arr
		fields[c] = arrow.Field{
			Name:     col.Name,
			Type:     arr.DataType(),
			Nullable: !col.NotNull,
			Metadata: fieldMetadata(col, arr.DataType()),
		}
	}
	schema := arrow.NewSchema(fields, nil)
	rec := array.NewRecordBatch(schema, arrays, int64(n))
	defer rec.Release()
	iw := ipc.NewWriter(w, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	if err := iw.Write(rec); err != nil {
		return fmt.Errorf("writing arrow record: %w", err)
	}
	if err := iw.Close(); err != nil {
		return fmt.Errorf("closing arrow stream: %w", err)
	}
	return nil
}

func fieldMetadata(col Column, dt arrow.DataType) arrow.Metadata {
	keys := []string{"logicalType", "precision", "scale", "charLength", "byteLength", "finalType"}
	vals := []string{
		strings.ToUpper(string(col.Type)),
		strconv.Itoa(col.precision()),
		strconv.Itoa(col.scale()),
		"0", "0", "T",
	}
	if col.Type == Text {
		vals[3], vals[4] = "16777216", "16777216"
	}
	if col.Type == Fixed {
		keys = append(keys, "physicalType")
		vals = append(vals, fmt.Sprintf("SB%d", dt.(arrow.FixedWidthDataType).BitWidth()/8))
	}
	return arrow.NewMetadata(keys, vals)
}

func buildColumn(mem memory.Allocator, col Column, vals []any) (arrow.Array, error) {
	switch col.Type {
	case Fixed:
		return buildFixed(mem, col, vals)
	case Real:
		b := array.NewFloat64Builder(mem)
		defer b.Release()
		for i, v := range vals {
			if v == nil {
				b.AppendNull()
				continue
			}
			f, ok := v.(float64)
			if !ok {
				return nil, badValue(i, v)
			}
			b.Append(f)
		}
		return b.NewArray(), nil
	case Text:
		b := array.NewStringBuilder(mem)
		defer b.Release()
		for i, v := range vals {
			if v == nil {
				b.AppendNull()
				continue
			}
			s, ok := v.(string)
			if !ok {
				return nil, badValue(i, v)
			}
			b.Append(s)
		}
		return b.NewArray(), nil
	case Boolean:
		b := array.NewBooleanBuilder(mem)
		defer b.Release()
		for i, v := range vals {
			if v == nil {
				b.AppendNull()
				continue
			}
			x, ok := v.(bool)
			if !ok {
				return nil, badValue(i, v)
			}
			b.Append(x)
		}
		return b.NewArray(), nil
	case Date:
		b := array.NewDate32Builder(mem)
		defer b.Release()
		for i, v := range vals {
			if v == nil {
				b.AppendNull()
				continue
			}
			t, ok := v.(time.Time)
			if !ok {
				return nil, badValue(i, v)
			}
			y, m, d := t.UTC().Date()
			days := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
			b.Append(arrow.Date32(days))
		}
		return b.NewArray(), nil
	case TimestampNTZ, TimestampLTZ, TimestampTZ:
		return buildTimestamp(mem, col, vals)
	}
	return nil, fmt.Errorf("unsupported column type %q", col.Type)
}

func badValue(i int, v any) error {
	return fmt.Errorf("row %d: value %v of Go type %T does not suit the column type", i, v, v)
}

func buildFixed(mem memory.Allocator, col Column, vals []any) (arrow.Array, error) {
	scale := col.scale()
	ints := make([]int64, len(vals))
	bigs := make([]*big.Int, len(vals))
	valid := make([]bool, len(vals))
	lo, hi := int64(0), int64(0)
	wide := false
	mult := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)
	for i, v := range vals {
		if v == nil {
			continue
		}
		var x *big.Int
		switch v := v.(type) {
		case int64, int:
			n := asInt64(v)
			if scale == 0 {
				// The common case, kept free of big numbers.
				valid[i], ints[i] = true, n
				lo, hi = min(lo, n), max(hi, n)
				continue
			}
			x = big.NewInt(n)
			x.Mul(x, mult)
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, badValue(i, v)
			}
			// Rounded to the scale, as Snowflake stores it.
			r, _ := new(big.Rat).SetString(strconv.FormatFloat(v, 'f', scale, 64))
			x = r.Mul(r, new(big.Rat).SetInt(mult)).Num()
		case string:
			// Decimal text, for values beyond float64's precision.
			r, ok := new(big.Rat).SetString(v)
			if !ok {
				return nil, badValue(i, v)
			}
			r.Mul(r, new(big.Rat).SetInt(mult))
			if !r.IsInt() {
				return nil, fmt.Errorf("row %d: %s has more than %d decimals", i, v, scale)
			}
			x = r.Num()
		default:
			return nil, badValue(i, v)
		}
		valid[i] = true
		bigs[i] = x
		if !x.IsInt64() {
			wide = true
			continue
		}
		ints[i] = x.Int64()
		lo, hi = min(lo, ints[i]), max(hi, ints[i])
	}
	// Snowflake sends the narrowest signed integer that holds every
	// unscaled value of the chunk (physical types SB1, SB2, SB4, SB8), and
	// a 128-bit decimal (SB16) when one does not fit in 64 bits.
	switch {
	case wide:
		b := array.NewDecimal128Builder(mem, &arrow.Decimal128Type{Precision: int32(col.precision()), Scale: int32(scale)})
		defer b.Release()
		for i, x := range bigs {
			switch {
			case !valid[i]:
				b.AppendNull()
			case x == nil:
				b.Append(decimal128.FromI64(ints[i]))
			default:
				b.Append(decimal128.FromBigInt(x))
			}
		}
		return b.NewArray(), nil
	case lo >= math.MinInt8 && hi <= math.MaxInt8:
		b := array.NewInt8Builder(mem)
		defer b.Release()
		return appendNulls(b, ints, valid, func(x int64) { b.Append(int8(x)) })
	case lo >= math.MinInt16 && hi <= math.MaxInt16:
		b := array.NewInt16Builder(mem)
		defer b.Release()
		return appendNulls(b, ints, valid, func(x int64) { b.Append(int16(x)) })
	case lo >= math.MinInt32 && hi <= math.MaxInt32:
		b := array.NewInt32Builder(mem)
		defer b.Release()
		return appendNulls(b, ints, valid, func(x int64) { b.Append(int32(x)) })
	default:
		b := array.NewInt64Builder(mem)
		defer b.Release()
		return appendNulls(b, ints, valid, func(x int64) { b.Append(x) })
	}
}

// asInt64 returns v, an int64 or an int, as an int64.
func asInt64(v any) int64 {
	if n, ok := v.(int); ok {
		return int64(n)
	}
	return v.(int64)
}

func appendNulls(b array.Builder, ints []int64, valid []bool, appendInt func(int64)) (arrow.Array, error) {
	for i, x := range ints {
		if valid[i] {
			appendInt(x)
		} else {
			b.AppendNull()
		}
	}
	return b.NewArray(), nil
}

func buildTimestamp(mem memory.Allocator, col Column, vals []any) (arrow.Array, error) {
	scale := col.scale()
	times := make([]time.Time, len(vals))
	valid := make([]bool, len(vals))
	for i, v := range vals {
		if v == nil {
			continue
		}
		t, ok := v.(time.Time)
		if !ok {
			return nil, badValue(i, v)
		}
		if col.Type == TimestampNTZ {
			// NTZ has no zone: Snowflake sends the wall clock as if UTC.
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
		}
		times[i], valid[i] = t, true
	}
	div := int64(math.Pow10(9 - scale))
	scaled := func(t time.Time) int64 {
		return t.Unix()*int64(math.Pow10(scale)) + int64(t.Nanosecond())/div
	}
	fraction := func(t time.Time) int32 {
		return int32(int64(t.Nanosecond()) / div * div)
	}
	tzIndex := func(t time.Time) int32 {
		_, off := t.Zone()
		return int32(off/60 + 1440)
	}
	switch {
	case col.Type != TimestampTZ && scale <= 7:
		b := array.NewInt64Builder(mem)
		defer b.Release()
		for i, t := range times {
			if valid[i] {
				b.Append(scaled(t))
			} else {
				b.AppendNull()
			}
		}
		return b.NewArray(), nil
	case col.Type != TimestampTZ:
		st := arrow.StructOf(
			arrow.Field{Name: "epoch", Type: arrow.PrimitiveTypes.Int64},
			arrow.Field{Name: "fraction", Type: arrow.PrimitiveTypes.Int32},
		)
		b := array.NewStructBuilder(mem, st)
		defer b.Release()
		epoch := b.FieldBuilder(0).(*array.Int64Builder)
		frac := b.FieldBuilder(1).(*array.Int32Builder)
		for i, t := range times {
			// A null struct gets null children from Append itself.
			b.Append(valid[i])
			if valid[i] {
				epoch.Append(t.Unix())
				frac.Append(fraction(t))
			}
		}
		return b.NewArray(), nil
	case scale <= 3:
		st := arrow.StructOf(
			arrow.Field{Name: "epoch", Type: arrow.PrimitiveTypes.Int64},
			arrow.Field{Name: "timezone", Type: arrow.PrimitiveTypes.Int32},
		)
		b := array.NewStructBuilder(mem, st)
		defer b.Release()
		epoch := b.FieldBuilder(0).(*array.Int64Builder)
		tz := b.FieldBuilder(1).(*array.Int32Builder)
		for i, t := range times {
			// A null struct gets null children from Append itself.
			b.Append(valid[i])
			if valid[i] {
				epoch.Append(scaled(t))
				tz.Append(tzIndex(t))
			}
		}
		return b.NewArray(), nil
	default:
		st := arrow.StructOf(
			arrow.Field{Name: "epoch", Type: arrow.PrimitiveTypes.Int64},
			arrow.Field{Name: "fraction", Type: arrow.PrimitiveTypes.Int32},
			arrow.Field{Name: "timezone", Type: arrow.PrimitiveTypes.Int32},
		)
		b := array.NewStructBuilder(mem, st)
		defer b.Release()
		epoch := b.FieldBuilder(0).(*array.Int64Builder)
		frac := b.FieldBuilder(1).(*array.Int32Builder)
		tz := b.FieldBuilder(2).(*array.Int32Builder)
		for i, t := range times {
			// A null struct gets null children from Append itself.
			b.Append(valid[i])
			if valid[i] {
				epoch.Append(t.Unix())
				frac.Append(fraction(t))
				tz.Append(tzIndex(t))
			}
		}
		return b.NewArray(), nil
	}
}
