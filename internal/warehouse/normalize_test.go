package warehouse_test

import (
	"database/sql"
	"encoding/json"
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/warehouse"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	paris := time.FixedZone("CET", 3600)
	huge, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	for _, tc := range []struct {
		name string
		in   any
		want any
	}{
		{"nil", nil, nil},
		{"string", "a", "a"},
		{"bytes", []byte("hi"), "hi"},
		{"nil bytes", []byte(nil), nil},
		{"raw json", json.RawMessage(`{"a":1}`), `{"a":1}`},
		{"int", 7, int64(7)},
		{"int8", int8(-8), int64(-8)},
		{"int16", int16(16), int64(16)},
		{"int32", int32(-32), int64(-32)},
		{"uint8", uint8(255), int64(255)},
		{"uint32", uint32(math.MaxUint32), int64(math.MaxUint32)},
		{"uint64 in range", uint64(math.MaxInt64), int64(math.MaxInt64)},
		{"uint64 beyond int64", uint64(math.MaxUint64), float64(math.MaxUint64)},
		{"float32 keeps its decimal text", float32(0.1), 0.1},
		{"float64", 2.5, 2.5},
		{"bool", true, true},
		{"time moves to UTC", time.Date(2024, 1, 1, 1, 0, 0, 0, paris), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"json number whole", json.Number("42"), int64(42)},
		{"json number fraction", json.Number("4.25"), 4.25},
		{"big int", big.NewInt(-5), int64(-5)},
		{"huge big int", huge, 1.2345678901234568e29},
		{"big rat whole", big.NewRat(10, 2), int64(5)},
		{"big rat fraction", big.NewRat(1, 4), 0.25},
		{"big float whole", big.NewFloat(3), int64(3)},
		{"big float fraction", big.NewFloat(3.5), 3.5},
		{"valuer", sql.NullString{String: "x", Valid: true}, "x"},
		{"null valuer", sql.NullInt64{}, nil},
		{"valuer of int", sql.NullInt32{Int32: 3, Valid: true}, int64(3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := warehouse.Normalize(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			if tm, ok := got.(time.Time); ok {
				require.Equal(t, time.UTC, tm.Location())
			}
		})
	}

	_, err := warehouse.Normalize(struct{ X int }{})
	require.ErrorContains(t, err, "unsupported value of type struct { X int }")
	_, err = warehouse.Normalize([]int{1})
	require.ErrorContains(t, err, "unsupported value of type []int")
}

func TestNormalizeDecimal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want any
	}{
		{"42", int64(42)},
		{"-42", int64(-42)},
		{"+7", int64(7)},
		{"12.000", int64(12)},
		{"-0.0", int64(0)},
		{".0", int64(0)},
		{"12.", int64(12)},
		{"12.5", 12.5},
		{"-3.50", -3.5},
		{"0.1", 0.1},
		{"1.5E+3", int64(1500)},
		{"1e-3", 0.001},
		{"9223372036854775807", int64(math.MaxInt64)},
		{"9223372036854775808", 9223372036854775808.0},
		{"123456789012345678901234567890.000", 1.2345678901234568e29},
		{" 5 ", int64(5)},
		{"Infinity", math.Inf(1)},
		{"-Infinity", math.Inf(-1)},
	} {
		got, err := warehouse.NormalizeDecimal(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
	got, err := warehouse.NormalizeDecimal("NaN")
	require.NoError(t, err)
	require.True(t, math.IsNaN(got.(float64)))
	for _, bad := range []string{"", "abc", "1.2.3", "--1"} {
		_, err := warehouse.NormalizeDecimal(bad)
		require.ErrorContains(t, err, "parsing decimal", bad)
	}
}
