// Package warehousetest is the conformance suite every listsync warehouse
// passes: the same cases run against real engines (Postgres, SQLite) and
// against protocol fakes (Snowflake, BigQuery) that cannot run SQL and serve
// registered result sets instead.
//
// A backend's test implements [Harness] and calls [Exercise]:
//
//	func TestConformance(t *testing.T) {
//		warehousetest.Exercise(t, &harness{…})
//	}
//
// and may reuse the same Harness for benchmarks through [BenchmarkRead].
//
// # The Harness contract
//
// Warehouse(t) returns a new, open warehouse.Warehouse each time it is
// called. The harness closes it when t ends (t.Cleanup); the suite may close
// it earlier, which is why Close must be idempotent. Warehouses from the same
// harness see the same datasets.
//
// Dataset(t, ds) makes the rows that ds describes available and returns SQL
// that, run through a warehouse from Warehouse, returns exactly those rows:
// the columns of ds.Columns in that order, under those names (compared
// case-insensitively, since Snowflake folds unquoted names to upper case),
// and the rows ds.Row(0) … ds.Row(ds.Rows-1) in that order (use an ORDER BY
// on a hidden row-number column, or serve them in order). ds.Name is a
// lower-case identifier ([a-z][a-z0-9_]*), unique within one Exercise call,
// to use as the table name; engines that create tables must create it under
// that name, because the suite checks, by issuing a refused
// "DELETE FROM <name>", that refused models never reach the warehouse. Rows
// can be many (100,000 in the suite, 1,000,000 in benchmarks) and ds.Row
// generates them on the fly: do not hold them all in memory at once while
// the query streams, or the memory case fails. Loading them before
// Dataset returns (COPY, a transaction of INSERTs) is fine; a fake should
// generate each result chunk or page from ds.Row when it is requested.
// Resources live until t ends. Each value ds.Row returns is nil (SQL NULL) or
// the Go type of its column's ColumnType:
//
//	TypeString   string      text, varchar, STRING, VARCHAR
//	TypeInt64    int64       bigint, INTEGER / INT64, NUMBER(38,0)
//	TypeFloat64  float64     double precision, FLOAT64, FLOAT / DOUBLE
//	TypeBool     bool        boolean, BOOL, BOOLEAN (SQLite: 0/1 in a BOOLEAN column)
//	TypeTime     time.Time   timestamptz, TIMESTAMP, TIMESTAMP_TZ or _NTZ
//
// Times are in UTC with at most microsecond precision, and the warehouse
// must give back the same instant as a time.Time in UTC. Strings may hold
// any Unicode text, including quotes, semicolons, backslashes and newlines,
// and the empty string, which is not NULL.
//
// BadSQL(t) returns a query that passes CheckModel but that the warehouse
// rejects with a SQL error (a fake registers an error answer for it), with
// a substring of the warehouse's own message that the *warehouse.Error must
// carry in Message, and the line and column of the error when the warehouse
// reports one (0 to skip that check).
//
// A harness that can provide a query that runs for a long time (at least
// ten seconds before its first row) also implements [SlowQuerier]; the
// suite then checks that QueryParams.Timeout stops it with ErrTimeout.
//
// # What the suite checks
//
//   - Ping succeeds.
//   - Types and NULLs: every ColumnType round-trips, with NULL in every
//     column, and values have exactly the promised Go types.
//   - Column order and names are preserved; an empty result still has its
//     columns.
//   - 100,000 rows stream in order, and the live heap while streaming them
//     grows by less than 20 MiB more than while streaming 10,000 rows of the
//     same shape (each row carries about 550 bytes, so buffering the result
//     would cost about 50 MiB). A driver that prefetches a fixed number of
//     result chunks (gosnowflake fetches up to ten at once) holds them in
//     both runs, but only if the result has that many: keep a fake's chunks
//     or pages small enough (a few thousand rows of this shape) that the
//     prefetch window stays well under the limit.
//   - Cancelling the query's context midway: the next call to Next returns
//     false (backends check ctx.Err in Next), Err satisfies
//     errors.Is(err, context.Canceled), Close returns promptly, and the
//     warehouse then runs another query. Closing Rows early without
//     cancelling is prompt too.
//   - SQL errors: errors.Is(err, warehouse.ErrSQL), an *warehouse.Error with
//     the warehouse's message and the model's name, reported either by Query
//     or by Rows.Err; the warehouse works afterwards.
//   - Refused models (several statements, DELETE, a data-modifying CTE,
//     empty SQL): errors.Is(err, warehouse.ErrInvalidModel) from Query,
//     before anything reaches the warehouse.
//   - Rows.Close and Warehouse.Close are idempotent, and a query on a closed
//     warehouse fails instead of hanging or panicking.
//   - Concurrent queries on one warehouse.
//   - With a SlowQuerier, QueryParams.Timeout gives ErrTimeout.
//
// Backends that start goroutines should run goleak in TestMain, which also
// catches a Rows that leaks a goroutine after cancellation or Close.
package warehousetest
