package warehouse

import (
	"context"
	"time"
)

// Warehouse runs read-only models against one configured data warehouse.
// Implementations are safe for concurrent use.
type Warehouse interface {
	// Query runs p.SQL and returns a stream of its rows. The query is
	// refused before it runs when it is not a single statement. The
	// returned Rows must be closed by the caller.
	Query(ctx context.Context, p *QueryParams) (Rows, error)
	// Ping checks that the warehouse can be reached with the configured
	// credentials.
	Ping(ctx context.Context) error
	// Close releases the warehouse's connections. It is idempotent.
	Close() error
}

// QueryParams describes one run of a model.
type QueryParams struct {
	// SQL is the model's text: a single SELECT (or WITH … SELECT).
	SQL string
	// Model names the model for error messages, e.g. "models/trial_users.sql".
	Model string
	// Timeout bounds the whole query, including streaming its rows. Zero
	// means no bound beyond ctx.
	Timeout time.Duration
}

// Rows streams the result of a query, in the style of pgx.Rows.
//
//	rows, err := wh.Query(ctx, params)
//	if err != nil { … }
//	defer rows.Close()
//	for rows.Next() {
//		vals := rows.Values()
//	}
//	if err := rows.Err(); err != nil { … }
type Rows interface {
	// Columns returns the result's column names in the order the query
	// returned them. It is valid as soon as Query returns.
	Columns() []string
	// Next advances to the next row. It returns false at the end of the
	// result or on error; Err tells which.
	Next() bool
	// Values returns the current row, one value per column. Each value is
	// nil (SQL NULL), string, int64, float64, bool or time.Time (UTC).
	// Decimals that are not whole numbers become float64; byte strings
	// become string. The slice may be reused by the next call to Next.
	Values() []any
	// Err returns the error that ended the iteration, if any, mapped onto
	// this package's errors.
	Err() error
	// Close stops the query and releases its resources. It is idempotent
	// and safe to call before the result is exhausted.
	Close() error
}
