package warehouse_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/warehouse"
)

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	p := &warehouse.QueryParams{SQL: "SELECT id,\n  email\nFORM users", Model: "models/x.sql"}
	driverErr := errors.New("ERROR: syntax error at or near \"FORM\" (SQLSTATE 42601)")
	for _, tc := range []struct {
		name string
		err  *warehouse.Error
		want string
	}{
		{
			"SQL error with position",
			warehouse.NewError(warehouse.ErrSQL, "postgres", p, `syntax error at or near "FORM"`, driverErr).AtPosition(p.SQL, 20),
			`postgres: SQL error in models/x.sql at line 3, column 1: syntax error at or near "FORM"`,
		},
		{
			"line reported by the warehouse",
			warehouse.NewError(warehouse.ErrSQL, "bigquery", p, "Unrecognized name: emial", nil).AtLine(2, 3),
			"bigquery: SQL error in models/x.sql at line 2, column 3: Unrecognized name: emial",
		},
		{
			"position beyond the SQL",
			warehouse.NewError(warehouse.ErrSQL, "postgres", p, "oops", nil).AtPosition(p.SQL, 999),
			"postgres: SQL error in models/x.sql at character 999: oops",
		},
		{
			"connect error without a model",
			warehouse.NewError(warehouse.ErrConnect, "postgres", nil, "", driverErr),
			`postgres: cannot connect: ERROR: syntax error at or near "FORM" (SQLSTATE 42601)`,
		},
		{
			"auth error while running a model",
			warehouse.NewError(warehouse.ErrAuth, "snowflake", p, "Incorrect username or password was specified.", nil),
			"snowflake: authentication failed running models/x.sql: Incorrect username or password was specified.",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.EqualError(t, tc.err, tc.want)
		})
	}
}

func TestErrorIsAndUnwrap(t *testing.T) {
	t.Parallel()
	driverErr := errors.New("driver says no")
	err := fmt.Errorf("running sync trial: %w",
		warehouse.NewError(warehouse.ErrPermission, "postgres", nil, "permission denied for table users", driverErr))
	require.ErrorIs(t, err, warehouse.ErrPermission)
	require.ErrorIs(t, err, driverErr)
	require.NotErrorIs(t, err, warehouse.ErrSQL)
	var we *warehouse.Error
	require.ErrorAs(t, err, &we)
	require.Equal(t, "permission denied for table users", we.Message)
	require.NotErrorIs(t, &warehouse.Error{}, warehouse.ErrSQL, "an Error without a kind is no kind")
}

func TestLineColumn(t *testing.T) {
	t.Parallel()
	sql := "ab\ncé\n\nd"
	for _, tc := range []struct{ pos, line, col int }{
		{1, 1, 1}, {2, 1, 2}, {3, 1, 3}, {4, 2, 1}, {5, 2, 2}, {6, 2, 3}, {7, 3, 1}, {8, 4, 1}, {9, 4, 2},
		{0, 0, 0}, {-1, 0, 0}, {10, 0, 0},
	} {
		line, col := warehouse.LineColumn(sql, tc.pos)
		require.Equal(t, [2]int{tc.line, tc.col}, [2]int{line, col}, "position %d", tc.pos)
	}
}

func TestContextError(t *testing.T) {
	t.Parallel()
	p := &warehouse.QueryParams{Model: "models/x.sql", Timeout: 1500 * time.Millisecond}
	require.NoError(t, warehouse.ContextError(t.Context(), "postgres", p))

	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	err := warehouse.ContextError(canceled, "postgres", p)
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, warehouse.ErrTimeout)
	require.EqualError(t, err, "postgres: running models/x.sql: context canceled")

	expired, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel2()
	err = warehouse.ContextError(expired, "postgres", p)
	require.ErrorIs(t, err, warehouse.ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.EqualError(t, err, "postgres: timed out running models/x.sql: the query did not finish within its timeout of 1.5s")
}
