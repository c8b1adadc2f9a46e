package warehouse

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Normalize converts a value decoded by a driver into one of the types
// Rows.Values promises: nil, string, int64, float64, bool or time.Time in
// UTC. Integers of every size become int64 (an unsigned one beyond int64's
// range becomes float64); float32 becomes the float64 with the same decimal
// text; []byte and json.RawMessage become string; time.Time moves to UTC;
// *big.Int, *big.Rat, *big.Float and json.Number follow NormalizeDecimal's
// rule; a driver.Valuer (such as sql.NullString) is normalised through its
// Value. Any other type is an error naming it, which the backend should wrap
// with the column's name.
func Normalize(v any) (any, error) {
	switch x := v.(type) {
	case nil, string, int64, float64, bool:
		return v, nil
	case time.Time:
		return x.UTC(), nil
	case []byte:
		if x == nil {
			return nil, nil
		}
		return string(x), nil
	case json.RawMessage:
		if x == nil {
			return nil, nil
		}
		return string(x), nil
	case int:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint:
		return normalizeUint(uint64(x)), nil
	case uint64:
		return normalizeUint(x), nil
	case float32:
		return strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
	case json.Number:
		return NormalizeDecimal(string(x))
	case *big.Int:
		if x == nil {
			return nil, nil
		}
		if x.IsInt64() {
			return x.Int64(), nil
		}
		f, _ := new(big.Float).SetInt(x).Float64()
		return f, nil
	case *big.Rat:
		if x == nil {
			return nil, nil
		}
		return normalizeRat(x), nil
	case *big.Float:
		if x == nil {
			return nil, nil
		}
		if x.IsInt() {
			if i, acc := x.Int64(); acc == big.Exact {
				return i, nil
			}
		}
		f, _ := x.Float64()
		return f, nil
	case driver.Valuer:
		inner, err := x.Value()
		if err != nil {
			return nil, fmt.Errorf("reading %T: %w", v, err)
		}
		if _, again := inner.(driver.Valuer); again {
			return nil, fmt.Errorf("unsupported value of type %T", v)
		}
		return Normalize(inner)
	default:
		return nil, fmt.Errorf("unsupported value of type %T", v)
	}
}

func normalizeUint(u uint64) any {
	if u <= math.MaxInt64 {
		return int64(u)
	}
	return float64(u)
}

func normalizeRat(r *big.Rat) any {
	if r.IsInt() && r.Num().IsInt64() {
		return r.Num().Int64()
	}
	f, _ := r.Float64()
	return f
}

// NormalizeDecimal converts the text of a decimal number, as warehouses send
// NUMERIC, DECIMAL and NUMBER values ("42", "-3.50", "12.000", "1.5E+3"),
// into int64 when its value is a whole number within int64's range and into
// float64 otherwise (so "12.000" is int64(12) and "12.5" is float64(12.5)).
// "NaN", "Infinity" and "-Infinity" become the float64 special values.
func NormalizeDecimal(s string) (any, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return nil, fmt.Errorf("parsing decimal %q: empty", s)
	}
	if !strings.ContainsAny(t, ".eE") {
		if i, err := strconv.ParseInt(t, 10, 64); err == nil {
			return i, nil
		}
	} else if dot := strings.IndexByte(t, '.'); dot >= 0 && !strings.ContainsAny(t, "eE") && strings.Trim(t[dot+1:], "0") == "" {
		intPart := t[:dot]
		if intPart == "" || intPart == "-" || intPart == "+" {
			intPart += "0"
		}
		if i, err := strconv.ParseInt(intPart, 10, 64); err == nil {
			return i, nil
		}
	}
	if r, ok := new(big.Rat).SetString(t); ok && !strings.ContainsAny(t, "nNiI") {
		return normalizeRat(r), nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return nil, fmt.Errorf("parsing decimal %q: not a number", s)
	}
	return f, nil
}
