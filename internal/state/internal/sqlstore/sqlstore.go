package sqlstore

import (
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/listsync/listsync/internal/state"
)

// Migration is one numbered schema migration (NNNN_name.sql).
type Migration struct {
	// Version is the migration's number, NNNN.
	Version int
	// Name is the file's base name.
	Name string
	// SQL is the file's contents.
	SQL string
}

// MigrationFiles returns the numbered migrations (migrations/NNNN_name.sql)
// of fsys in order.
func MigrationFiles(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("listing migrations: %w", err)
	}
	var out []Migration
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s is not named NNNN_name.sql", name)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("reading migration %s: %w", name, err)
		}
		out = append(out, Migration{Version: v, Name: base, SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// AbandonedError is the Error that StartRun gives a run it marks
// [state.RunAbandoned].
const AbandonedError = "abandoned: the process running it stopped before it finished"

// RejectCols are the columns of a reject, in [state.Reject]'s order.
const RejectCols = `lead_key, op, code, reason, attempts, first_attempt_at, last_attempt_at, next_attempt_at`

// RunCols are the columns of a run record, in the order [RunDest] scans
// them.
const RunCols = `id, sync_name, trigger_kind, status, started_at, ended_at, list_id, full_resync, rows_read, invalid,
	invalid_samples, duplicates, adds_planned, removes_planned, updates_planned, deferred, adds_confirmed,
	removes_confirmed, updates_confirmed, rejected, api_calls, error`

// RunDest returns the scan destinations of the [RunCols] of r. The columns
// whose storage differs by backend are scanned into the backend's own
// destinations: status (then given to [ScannedRun]), started, ended and
// samples (the invalid samples).
func RunDest(r *state.Run, status *string, started, ended, samples any) []any {
	return []any{&r.ID, &r.Sync, &r.Trigger, status, started, ended, &r.ListID, &r.FullResync,
		&r.RowsRead, &r.Invalid, samples, &r.Duplicates, &r.AddsPlanned, &r.RemovesPlanned,
		&r.UpdatesPlanned, &r.Deferred, &r.AddsConfirmed, &r.RemovesConfirmed, &r.UpdatesConfirmed,
		&r.Rejected, &r.APICalls, &r.Error}
}

// ScannedRun completes a run scanned with [RunDest] once its backend has
// decoded the times and samples: it sets the status and makes empty samples
// nil.
func ScannedRun(r *state.Run, status string) {
	r.Status = state.RunStatus(status)
	if len(r.InvalidSamples) == 0 {
		r.InvalidSamples = nil
	}
}

// NonNil returns s, or an empty slice when s is nil, so that a run's
// invalid samples are stored as an empty list rather than NULL.
func NonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
