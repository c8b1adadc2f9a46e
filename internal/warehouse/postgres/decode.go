package postgres

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/listsync/listsync/internal/warehouse"
)

// decodeFunc turns one non-NULL value, as it arrived on the wire, into one
// of the types warehouse.Rows.Values promises. src is only valid until the
// next row, so a decodeFunc copies what it keeps.
type decodeFunc func(src []byte) (any, error)

// pgEpoch is the zero of Postgres's binary dates and timestamps.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// decoders returns one decodeFunc per column. The common types have fast
// paths over the binary format; every other type goes through pgx's codec
// and, when that gives a value Normalize does not know, back to Postgres's
// text representation (arrays become "{1,2,3}", intervals "1 day 02:00:00").
func decoders(m *pgtype.Map, fields []pgconn.FieldDescription) (fns []decodeFunc, text []bool) {
	fns, text = make([]decodeFunc, len(fields)), make([]bool, len(fields))
	for i, f := range fields {
		fns[i], text[i] = decoderFor(m, f), textWire(m, f)
	}
	return fns, text
}

// textWire reports whether a column's values are their bytes on the wire,
// as a string (decodeString): its text is then handed out without a copy
// (warehouse.TextCursor).
func textWire(m *pgtype.Map, f pgconn.FieldDescription) bool {
	if f.Format == pgtype.TextFormatCode {
		switch f.DataTypeOID {
		case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID, pgtype.JSONOID,
			pgtype.JSONBOID, pgtype.XMLOID, pgtype.UnknownOID, pgtype.UUIDOID:
			return true
		}
		// Enums, domains and other types pgx does not know arrive as text.
		_, known := m.TypeForOID(f.DataTypeOID)
		return !known
	}
	switch f.DataTypeOID {
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID, pgtype.JSONOID, pgtype.XMLOID,
		pgtype.ByteaOID, pgtype.UnknownOID:
		return true
	}
	return false
}

func decoderFor(m *pgtype.Map, f pgconn.FieldDescription) decodeFunc {
	if textWire(m, f) {
		return decodeString
	}
	if f.Format == pgtype.TextFormatCode {
		return decodeGeneric(m, f)
	}
	switch f.DataTypeOID {
	case pgtype.BoolOID:
		return fixed(1, func(b []byte) any { return b[0] != 0 })
	case pgtype.Int2OID:
		return fixed(2, func(b []byte) any { return int64(int16(binary.BigEndian.Uint16(b))) })
	case pgtype.Int4OID:
		return fixed(4, func(b []byte) any { return int64(int32(binary.BigEndian.Uint32(b))) })
	case pgtype.Int8OID:
		return fixed(8, func(b []byte) any { return int64(binary.BigEndian.Uint64(b)) })
	case pgtype.OIDOID:
		return fixed(4, func(b []byte) any { return int64(binary.BigEndian.Uint32(b)) })
	case pgtype.Float4OID:
		return fixed(4, func(b []byte) any {
			v, _ := warehouse.Normalize(math.Float32frombits(binary.BigEndian.Uint32(b)))
			return v
		})
	case pgtype.Float8OID:
		return fixed(8, func(b []byte) any { return math.Float64frombits(binary.BigEndian.Uint64(b)) })
	case pgtype.JSONBOID:
		return decodeJSONB
	case pgtype.UUIDOID:
		return fixed(16, func(b []byte) any { return formatUUID(b) })
	case pgtype.DateOID:
		return decodeDate
	case pgtype.TimestampOID, pgtype.TimestamptzOID:
		return decodeTimestamp
	case pgtype.NumericOID:
		return decodeNumeric(m, f)
	default:
		return decodeGeneric(m, f)
	}
}

func decodeString(src []byte) (any, error) { return string(src), nil }

// fixed returns a decodeFunc for a binary value of exactly n bytes.
func fixed(n int, fn func([]byte) any) decodeFunc {
	return func(src []byte) (any, error) {
		if len(src) != n {
			return nil, fmt.Errorf("invalid binary value: %d bytes, want %d", len(src), n)
		}
		return fn(src), nil
	}
}

func decodeJSONB(src []byte) (any, error) {
	if len(src) == 0 || src[0] != 1 {
		return nil, errors.New("unknown jsonb binary version")
	}
	return string(src[1:]), nil
}

func formatUUID(b []byte) string {
	var buf [36]byte
	hex.Encode(buf[0:8], b[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], b[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], b[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], b[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], b[10:16])
	return string(buf[:])
}

func decodeDate(src []byte) (any, error) {
	if len(src) != 4 {
		return nil, fmt.Errorf("invalid binary date: %d bytes", len(src))
	}
	days := int32(binary.BigEndian.Uint32(src))
	if days == math.MaxInt32 || days == math.MinInt32 {
		return nil, errors.New("an infinite date cannot be represented; filter it out or cast it to text")
	}
	return pgEpoch.AddDate(0, 0, int(days)), nil
}

func decodeTimestamp(src []byte) (any, error) {
	if len(src) != 8 {
		return nil, fmt.Errorf("invalid binary timestamp: %d bytes", len(src))
	}
	us := int64(binary.BigEndian.Uint64(src))
	if us == math.MaxInt64 || us == math.MinInt64 {
		return nil, errors.New("an infinite timestamp cannot be represented; filter it out or cast it to text")
	}
	// Split into seconds and microseconds so that dates far from 2000 do
	// not overflow a time.Duration.
	sec, rem := us/1_000_000, us%1_000_000
	return time.Unix(pgEpoch.Unix()+sec, rem*1000).UTC(), nil
}

// decodeNumeric converts numeric to int64 when the value is whole and fits,
// and to float64 otherwise, as warehouse.NormalizeDecimal does for text.
func decodeNumeric(m *pgtype.Map, f pgconn.FieldDescription) decodeFunc {
	plan := pgtype.NumericCodec{}.PlanScan(m, f.DataTypeOID, f.Format, &pgtype.Numeric{})
	return func(src []byte) (any, error) {
		var n pgtype.Numeric
		if err := plan.Scan(src, &n); err != nil {
			return nil, err
		}
		switch {
		case n.NaN:
			return math.NaN(), nil
		case n.InfinityModifier == pgtype.Infinity:
			return math.Inf(1), nil
		case n.InfinityModifier == pgtype.NegativeInfinity:
			return math.Inf(-1), nil
		}
		return numericValue(n.Int, n.Exp), nil
	}
}

// numericValue returns i×10^exp as int64 when it is whole and fits, and as
// the nearest float64 otherwise.
func numericValue(i *big.Int, exp int32) any {
	if i == nil {
		return int64(0)
	}
	if exp >= 0 {
		if exp == 0 && i.IsInt64() {
			return i.Int64()
		}
		if exp <= 18 {
			v := new(big.Int).Mul(i, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil))
			if v.IsInt64() {
				return v.Int64()
			}
		}
		r := new(big.Rat).SetInt(i)
		r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil)))
		f, _ := r.Float64()
		return f
	}
	den := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-exp)), nil)
	q, rem := new(big.Int).QuoRem(i, den, new(big.Int))
	if rem.Sign() == 0 && q.IsInt64() {
		return q.Int64()
	}
	f, _ := new(big.Rat).SetFrac(i, den).Float64()
	return f
}

// decodeGeneric decodes through pgx's codec for the type, normalises the
// result, and falls back to Postgres's text representation of the value.
func decodeGeneric(m *pgtype.Map, f pgconn.FieldDescription) decodeFunc {
	typ, ok := m.TypeForOID(f.DataTypeOID)
	if !ok {
		return func(src []byte) (any, error) {
			if f.Format == pgtype.TextFormatCode {
				return string(src), nil
			}
			return nil, fmt.Errorf("unsupported type (OID %d) in binary format; cast it to text", f.DataTypeOID)
		}
	}
	return func(src []byte) (any, error) {
		v, err := typ.Codec.DecodeValue(m, f.DataTypeOID, f.Format, src)
		if err != nil {
			return nil, err
		}
		if n, err := warehouse.Normalize(v); err == nil {
			return n, nil
		}
		buf, err := m.Encode(f.DataTypeOID, pgtype.TextFormatCode, v, nil)
		if err != nil {
			return nil, fmt.Errorf("unsupported type %s; cast it to text", typ.Name)
		}
		return string(buf), nil
	}
}
