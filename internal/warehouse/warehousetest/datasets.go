package warehousetest

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// typesRows are the rows of the types dataset: every ColumnType at its
// edges, and NULL in every column.
var typesColumns = []Column{
	{Name: "s", Type: TypeString},
	{Name: "i", Type: TypeInt64},
	{Name: "f", Type: TypeFloat64},
	{Name: "b", Type: TypeBool},
	{Name: "ts", Type: TypeTime},
}

func typesRows() [][]any {
	return [][]any{
		{"plain", int64(0), float64(0), false, time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"", int64(1), 3.25, true, time.Date(2024, 2, 29, 13, 45, 30, 123456000, time.UTC)},
		{"ünïcödé ✓ 😀", int64(-1), -0.5, true, time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC)},
		{`it's "quoted"; -- not a comment /* nor this */`, int64(math.MaxInt64), 0.1, false, time.Date(2099, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		{"line1\nline2\ttab \\ backslash $$ dollar", int64(math.MinInt64), 1e300, true, time.Date(2000, 1, 1, 0, 0, 0, 1000, time.UTC)},
		{strings.Repeat("long ", 200), int64(1<<53 + 1), -2.5e-300, false, time.Date(1900, 3, 1, 12, 0, 0, 0, time.UTC)},
		{nil, int64(7), 1.5, true, time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)},
		{"null int", nil, 2.5, false, time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC)},
		{"null float", int64(9), nil, true, time.Date(2025, 6, 3, 8, 0, 0, 0, time.UTC)},
		{"null bool", int64(10), 4.75, nil, time.Date(2025, 6, 4, 8, 0, 0, 0, time.UTC)},
		{"null time", int64(11), 5.125, true, nil},
		{nil, nil, nil, nil, nil},
	}
}

func typesDataset(name string) Dataset {
	rows := typesRows()
	return Dataset{
		Name:    name,
		Columns: typesColumns,
		Rows:    len(rows),
		Row: func(i int) []any {
			return append([]any(nil), rows[i]...)
		},
	}
}

// orderDataset has columns whose names are in no sorted order, to catch a
// backend that returns them sorted or keyed by a map.
func orderDataset(name string) Dataset {
	return Dataset{
		Name: name,
		Columns: []Column{
			{Name: "zeta", Type: TypeString},
			{Name: "alpha", Type: TypeInt64},
			{Name: "mid", Type: TypeBool},
			{Name: "beta", Type: TypeString},
			{Name: "email", Type: TypeString},
		},
		Rows: 3,
		Row: func(i int) []any {
			return []any{fmt.Sprintf("z%d", i), int64(100 + i), i%2 == 0, fmt.Sprintf("b%d", i), fmt.Sprintf("p%d@example.com", i)}
		},
	}
}

// padWidth is the width of the pad column of wide datasets: with it each
// row carries about 550 bytes, so that buffering 100,000 of them shows.
const padWidth = 512

// wideDataset returns rows rows of (id, email, pad, score), generated on
// the fly. The pad is a window into one shared string, so generating a row
// allocates little.
func wideDataset(name string, rows int) Dataset {
	var b strings.Builder
	for b.Len() < 2*padWidth {
		b.WriteString("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
	}
	base := b.String()
	return Dataset{
		Name: name,
		Columns: []Column{
			{Name: "id", Type: TypeInt64},
			{Name: "email", Type: TypeString},
			{Name: "pad", Type: TypeString},
			{Name: "score", Type: TypeFloat64},
		},
		Rows: rows,
		Row: func(i int) []any {
			off := i % padWidth
			return []any{int64(i), fmt.Sprintf("user%07d@example.com", i), base[off : off+padWidth], float64(i) / 4}
		},
	}
}

// benchDataset is the shape BenchmarkRead reads: a typical model's row of
// an email key and a few lead fields.
func benchDataset(name string, rows int) Dataset {
	epoch := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	return Dataset{
		Name: name,
		Columns: []Column{
			{Name: "email", Type: TypeString},
			{Name: "first_name", Type: TypeString},
			{Name: "account_id", Type: TypeInt64},
			{Name: "score", Type: TypeFloat64},
			{Name: "is_trial", Type: TypeBool},
			{Name: "signed_up_at", Type: TypeTime},
		},
		Rows: rows,
		Row: func(i int) []any {
			var first any = fmt.Sprintf("Name%d", i)
			if i%10 == 0 {
				first = nil
			}
			return []any{
				fmt.Sprintf("user%08d@example.com", i),
				first,
				int64(i / 7),
				float64(i%1000) / 8,
				i%3 == 0,
				epoch.Add(time.Duration(i) * time.Second),
			}
		},
	}
}
