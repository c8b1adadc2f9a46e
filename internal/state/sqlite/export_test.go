package sqlite

import (
	"context"
	"os/exec"
	"testing"
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
