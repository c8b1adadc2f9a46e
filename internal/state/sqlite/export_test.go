package sqlite

import (
	"context"
	"database/sql"
	"os/exec"
	"testing"

	"github.com/listsync/listsync/internal/state/internal/sqlstore"
)

// SetHostForTest makes s act as a process on another host.
func SetHostForTest(s *Store, host string) { s.host = host }

// SetLockPIDForTest rewrites the process ID recorded for a held lock.
func SetLockPIDForTest(ctx context.Context, s *Store, syncName string, pid int) error {
	_, err := s.w.ExecContext(ctx, `UPDATE locks SET pid = ? WHERE sync_name = ?`, pid, syncName)
	return err
}

// DeadPIDForTest returns the ID of a process that has exited.
func DeadPIDForTest(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatalf("running true: %v", err)
	}
	return cmd.Process.Pid
}

// MigrateToForTest creates the database at path with the migrations up to
// version only, as an older listsync left it.
func MigrateToForTest(ctx context.Context, path string, version int) error {
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE schema_version (
		version INTEGER NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return err
	}
	files, err := sqlstore.MigrationFiles(migrations)
	if err != nil {
		return err
	}
	for _, f := range files {
		if f.Version > version {
			break
		}
		if _, err := db.ExecContext(ctx, f.SQL); err != nil {
			return err
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO schema_version (version, applied_at) VALUES (?, 0)`, f.Version); err != nil {
			return err
		}
	}
	return nil
}
