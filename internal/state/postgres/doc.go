// Package postgres is the state store for several workers sharing one
// Postgres database (pgx v5). Its tables are prefixed listsync_ and live in
// the connection's search_path; the schema is migrated on [Open] under an
// advisory lock, so workers starting together migrate it once.
//
// The per-sync lock is a session-level advisory lock taken on a connection
// of its own, outside the pool: when the worker dies, Postgres closes the
// session and the lock disappears with it. That connection is pinged every
// Config.LockCheckInterval; a failed ping marks the run's lease lost (see
// [state.Lease]), and the run stops. The keys of this lock, and of the
// migration and digest locks, name the schema the tables live in
// (current_schema()): Postgres keeps advisory locks per database, and two
// stores in two schemas of one database are two stores. Members and rejects are written
// with one multi-row statement per table and batch (unnest of arrays), so
// that a batch of 100,000 confirmed rows is a handful of round trips.
//
// The ledger's digest ([state.Store.ScanDigest]) is kept in
// listsync_digest_chunks, chunks of about 16,384 members in fingerprint
// order stored in rows that stay in their heap page, and
// listsync_digest_delta, the keys changed since the last compaction, which
// every write to the members adds to (or bumps the version of) in its
// transaction. Writers never wait for a compaction; compactions of a sync,
// and the methods that clear its digest, are serialised by a transaction
// advisory lock (see [Store.CompactDigest]). A delta larger than a quarter
// of the chunks (a first sync), and a full resync, rebuild the chunks from
// the members sorted by a fingerprint Postgres computes, instead of merging
// key by key; the rebuild copies the delta's versions into a temporary
// table, so the role needs the TEMPORARY privilege (granted by default).
package postgres
