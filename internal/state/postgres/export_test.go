package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/listsync/listsync/internal/state/internal/sqlstore"
)

// LockKeyForTest exposes the advisory lock key of a sync of s.
func LockKeyForTest(s *Store, syncName string) int64 { return advisoryKey("sync", s.schema, syncName) }

// SetBeforeFoldForTest makes CompactDigest call fn between the reading of
// each delta page and the deletion of its folded rows.
func SetBeforeFoldForTest(s *Store, fn func(ctx context.Context) error) { s.beforeFold = fn }

// MigrationCountForTest returns the number of embedded migrations.
func MigrationCountForTest() int {
	files, err := sqlstore.MigrationFiles(migrations)
	if err != nil {
		panic(err)
	}
	return len(files)
}

// MigrateToForTest applies the migrations up to version only, as an older
// listsync left the database.
func MigrateToForTest(ctx context.Context, conn *pgx.Conn, version int) error {
	files, err := sqlstore.MigrationFiles(migrations)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TABLE listsync_schema_version (
			version integer NOT NULL PRIMARY KEY, applied_at timestamptz NOT NULL)`); err != nil {
			return err
		}
		for _, f := range files {
			if f.Version > version {
				break
			}
			if _, err := tx.Exec(ctx, f.SQL); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO listsync_schema_version (version, applied_at) VALUES ($1, now())`, f.Version); err != nil {
				return err
			}
		}
		return nil
	})
}

// DigestLockKeyForTest exposes the advisory lock key of a sync's digest in s.
func DigestLockKeyForTest(s *Store, syncName string) int64 {
	return advisoryKey("digest", s.schema, syncName)
}
