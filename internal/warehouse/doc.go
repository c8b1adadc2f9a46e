// Package warehouse is the seam between listsync and the data warehouses that
// run its SQL models.
//
// A model is a single read-only SELECT. A [Warehouse] runs it under a context
// and a timeout and streams its rows through [Rows] without buffering the
// result, with every value normalised to one of a small set of Go types (see
// [Rows.Values]). Each backend lives in its own subpackage (postgres,
// snowflake, bigquerywh, sqlite) and maps its driver's errors onto the shared
// sentinels of this package, so that the rest of listsync can tell the user
// what to fix without knowing which warehouse answered. The warehousetest
// subpackage holds the conformance suite every backend passes.
//
// # Errors
//
// Failures are reported as an [*Error] whose Kind is one of [ErrConnect],
// [ErrAuth], [ErrSQL], [ErrTimeout], [ErrPermission] or [ErrInvalidModel], so
// errors.Is(err, warehouse.ErrSQL) works, and whose Error method names the
// warehouse, the model, the position in the SQL when known, and the
// warehouse's own message:
//
//	postgres: SQL error in models/x.sql at line 3, column 8: syntax error at or near "FORM"
//
// Cancellation is not a failure and has no kind of its own: when the query's
// context is canceled the error satisfies errors.Is(err, context.Canceled).
// A deadline, whether QueryParams.Timeout or the context's, gives
// ErrTimeout (and context.DeadlineExceeded). Backends build their errors with
// [NewError], [ContextError] and the [Error.AtPosition] and [Error.AtLine]
// helpers, in one interpretError function each.
//
// # Models
//
// Each backend calls [CheckParams] before sending anything, which refuses SQL
// that is not a single query, in the lexical rules of the backend's
// [Dialect]. That check catches mistakes early with a clear message; the
// guarantee that a model cannot write comes from the warehouse itself (a READ
// ONLY transaction on Postgres, a read-only file on SQLite, read-only grants
// on Snowflake and BigQuery).
//
// # Values
//
// [Normalize] and [NormalizeDecimal] convert driver values into the promised
// types, so that every backend agrees: whole decimals become int64, other
// decimals float64, byte strings string, times UTC.
package warehouse
