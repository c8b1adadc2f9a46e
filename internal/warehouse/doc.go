// Package warehouse is the seam between listsync and the data warehouses that
// run its SQL models.
//
// A model is a single read-only SELECT. A [Warehouse] runs it under a context
// and a timeout and streams its rows through [Rows] without buffering the
// result, with every value normalised to one of a small set of Go types (see
// [Rows.Values]). Each backend lives in its own subpackage (postgres,
// snowflake, bigquery, sqlite) and maps its driver's errors onto the shared
// sentinels of this package, so that the rest of listsync can tell the user
// what to fix without knowing which warehouse answered. The warehousetest
// subpackage holds the conformance suite every backend passes.
package warehouse
