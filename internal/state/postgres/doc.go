// Package postgres is the state store for several workers sharing one
// Postgres database (pgx v5). Its tables are prefixed listsync_ and live in
// the connection's search_path; the schema is migrated on [Open] under an
// advisory lock, so workers starting together migrate it once.
//
// The per-sync lock is a session-level advisory lock taken on a connection
// of its own, outside the pool: when the worker dies, Postgres closes the
// session and the lock disappears with it. Members and rejects are written
// with one multi-row statement per table and batch (unnest of arrays), so
// that a batch of 100,000 confirmed rows is a handful of round trips.
package postgres
