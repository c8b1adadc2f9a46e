// Package sqlite is the embedded state store: the whole ledger in one SQLite
// file (modernc.org/sqlite, pure Go), the default for a single worker.
//
// The file is opened in WAL mode with one writer connection (every write is
// a short IMMEDIATE transaction) and a small pool of read-only connections,
// so that scans of the ledger run beside the writes of other syncs.
//
// The per-sync lock is a row in the file holding its owner, the owner's host
// and process ID, and an expiry that a goroutine of the holder pushes forward
// every third of [Config.LockTTL]. A lock whose holder died is free again
// when its expiry passes, or at once when the holder ran on the same host and
// its process no longer exists, which is the usual case of a file on a local
// disk. Several processes may share the file (a worker and a manual
// "listsync run"); SQLite's file locking serialises their writes.
//
// The ledger's digest ([state.Store.ScanDigest]) is kept in digest_chunks,
// blobs of about 16,384 members in fingerprint order, and digest_delta, the
// keys changed since the last compaction, which every write to the members
// adds to in its transaction; a scan reads the next blob while it decodes
// one. A compaction merges a small delta into the chunks key by key; a
// delta larger than a quarter of them (a first sync), and a full resync,
// rebuild the chunks from one scan of the members instead, sorted by
// fingerprint in about 16 MiB of memory and temporary files (os.TempDir).
package sqlite
