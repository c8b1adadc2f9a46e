package warehouse_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/warehouse"
)

// sliceCursor reads rows from a slice, then fails with err if it is set.
type sliceCursor struct {
	rows     [][]any
	err      error
	mapped   []error
	releases int
	complete bool
	n        int64
	endErr   error
}

func (c *sliceCursor) Read(vals []any) (bool, error) {
	if len(c.rows) == 0 {
		return false, c.err
	}
	copy(vals, c.rows[0])
	c.rows = c.rows[1:]
	return true, nil
}

func (c *sliceCursor) MapError(err error, n int64) error {
	c.mapped = append(c.mapped, err)
	return warehouse.NewError(warehouse.ErrConnect, "test", nil, "mapped after "+string(rune('0'+n)), err)
}

func (c *sliceCursor) Release(complete bool, n int64, err error) {
	c.releases++
	c.complete, c.n, c.endErr = complete, n, err
}

func TestStream(t *testing.T) {
	t.Parallel()
	sqlErr := warehouse.NewError(warehouse.ErrSQL, "test", nil, "bad value", nil)
	driverErr := errors.New("unexpected EOF")
	for _, tc := range []struct {
		name      string
		cur       *sliceCursor
		cancel    bool
		wantRows  int
		wantErr   string
		mapped    int
		completed bool
	}{
		{name: "end", cur: &sliceCursor{rows: [][]any{{"a"}, {"b"}}}, wantRows: 2, completed: true},
		{name: "driver error is mapped with the row count", cur: &sliceCursor{rows: [][]any{{"a"}}, err: driverErr}, wantRows: 1, wantErr: "mapped after 1", mapped: 1},
		{name: "seam error is kept", cur: &sliceCursor{err: sqlErr}, wantErr: "bad value"},
		{name: "canceled context ends the rows", cur: &sliceCursor{rows: [][]any{{"a"}}}, cancel: true, wantErr: "mapped after 0", mapped: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			s := warehouse.NewStream(ctx, []string{"email"}, tc.cur)
			if tc.cancel {
				cancel()
			}
			n := 0
			for s.Next() {
				n++
			}
			require.False(t, s.Next())
			require.NoError(t, s.Close())
			require.Equal(t, tc.wantRows, n)
			require.Equal(t, 1, tc.cur.releases)
			require.Equal(t, tc.completed, tc.cur.complete)
			require.Equal(t, int64(tc.wantRows), tc.cur.n)
			require.Len(t, tc.cur.mapped, tc.mapped)
			require.Equal(t, s.Err(), tc.cur.endErr)
			if tc.wantErr == "" {
				require.NoError(t, s.Err())
				return
			}
			require.ErrorContains(t, s.Err(), tc.wantErr)
			if tc.cancel {
				require.ErrorIs(t, tc.cur.mapped[0], context.Canceled)
			}
		})
	}
}

func TestStreamPeek(t *testing.T) {
	t.Parallel()
	cur := &sliceCursor{rows: [][]any{{"a"}, {"b"}}}
	s := warehouse.NewStream(t.Context(), []string{"email"}, cur)
	require.NoError(t, s.Peek())
	require.Equal(t, []string{"email"}, s.Columns())
	var got []any
	for s.Next() {
		got = append(got, s.Values()[0])
	}
	require.Equal(t, []any{"a", "b"}, got)
	require.Equal(t, int64(2), cur.n)

	failing := &sliceCursor{err: errors.New("division by zero")}
	s = warehouse.NewStream(t.Context(), []string{"x"}, failing)
	require.ErrorContains(t, s.Peek(), "mapped after 0")
	require.Equal(t, 1, failing.releases)
	require.NoError(t, s.Close())
	require.Equal(t, 1, failing.releases)
}
