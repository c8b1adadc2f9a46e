package postgres

import "github.com/listsync/listsync/internal/state/internal/sqlstore"

// LockKeyForTest exposes the advisory lock key of a sync.
func LockKeyForTest(syncName string) int64 { return lockKey(syncName) }

// MigrationCountForTest returns the number of embedded migrations.
func MigrationCountForTest() int {
	files, err := sqlstore.MigrationFiles(migrations)
	if err != nil {
		panic(err)
	}
	return len(files)
}
