package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/listsync/listsync/internal/state"
)

// runJSON is the --json shape of a run record: stable snake_case keys.
type runJSON struct {
	ID               int64      `json:"id"`
	Sync             string     `json:"sync"`
	Trigger          string     `json:"trigger"`
	Status           string     `json:"status"`
	StartedAt        time.Time  `json:"started_at"`
	EndedAt          *time.Time `json:"ended_at"`
	DurationSeconds  float64    `json:"duration_seconds"`
	ListID           int64      `json:"list_id"`
	FullResync       bool       `json:"full_resync"`
	RowsRead         int64      `json:"rows_read"`
	Invalid          int64      `json:"invalid"`
	InvalidSamples   []string   `json:"invalid_samples"`
	Duplicates       int64      `json:"duplicates"`
	AddsPlanned      int64      `json:"adds_planned"`
	RemovesPlanned   int64      `json:"removes_planned"`
	UpdatesPlanned   int64      `json:"field_updates_planned"`
	Deferred         int64      `json:"deferred"`
	AddsConfirmed    int64      `json:"adds_confirmed"`
	RemovesConfirmed int64      `json:"removes_confirmed"`
	UpdatesConfirmed int64      `json:"field_updates_confirmed"`
	Rejected         int64      `json:"rejected"`
	APICalls         int64      `json:"api_calls"`
	Error            string     `json:"error,omitempty"`
}

func toRunJSON(r state.Run) runJSON {
	j := runJSON{
		ID: r.ID, Sync: r.Sync, Trigger: r.Trigger, Status: string(r.Status), StartedAt: r.StartedAt.UTC(),
		ListID: r.ListID, FullResync: r.FullResync, RowsRead: r.RowsRead, Invalid: r.Invalid,
		InvalidSamples: r.InvalidSamples, Duplicates: r.Duplicates, AddsPlanned: r.AddsPlanned,
		RemovesPlanned: r.RemovesPlanned, UpdatesPlanned: r.UpdatesPlanned, Deferred: r.Deferred,
		AddsConfirmed: r.AddsConfirmed, RemovesConfirmed: r.RemovesConfirmed, UpdatesConfirmed: r.UpdatesConfirmed,
		Rejected: r.Rejected, APICalls: r.APICalls, Error: r.Error,
	}
	if j.InvalidSamples == nil {
		j.InvalidSamples = []string{}
	}
	if !r.EndedAt.IsZero() {
		end := r.EndedAt.UTC()
		j.EndedAt = &end
		j.DurationSeconds = r.EndedAt.Sub(r.StartedAt).Seconds()
	}
	return j
}

// rejectJSON is the --json shape of a rejected row.
type rejectJSON struct {
	Key            string    `json:"key"`
	Op             string    `json:"op"`
	Code           string    `json:"code"`
	Reason         string    `json:"reason"`
	Attempts       int       `json:"attempts"`
	FirstAttemptAt time.Time `json:"first_attempt_at"`
	LastAttemptAt  time.Time `json:"last_attempt_at"`
	NextAttemptAt  time.Time `json:"next_attempt_at"`
}

func toRejectJSON(r state.Reject) rejectJSON {
	return rejectJSON{Key: r.Key, Op: string(r.Op), Code: r.Code, Reason: r.Reason, Attempts: r.Attempts,
		FirstAttemptAt: r.FirstAttemptAt.UTC(), LastAttemptAt: r.LastAttemptAt.UTC(), NextAttemptAt: r.NextAttemptAt.UTC()}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// summary is one line about a finished run, for people.
func summary(r state.Run) string {
	var b strings.Builder
	took := ""
	if !r.EndedAt.IsZero() {
		took = " in " + r.EndedAt.Sub(r.StartedAt).Round(10*time.Millisecond).String()
	}
	fmt.Fprintf(&b, "%s: %s%s (run %d)", r.Sync, r.Status, took, r.ID)
	fmt.Fprintf(&b, ": %d rows read", r.RowsRead)
	if r.Invalid > 0 {
		fmt.Fprintf(&b, ", %d invalid", r.Invalid)
	}
	if r.Duplicates > 0 {
		fmt.Fprintf(&b, ", %d duplicate", r.Duplicates)
	}
	fmt.Fprintf(&b, "; added %d of %d, removed %d of %d, updated %d of %d",
		r.AddsConfirmed, r.AddsPlanned, r.RemovesConfirmed, r.RemovesPlanned, r.UpdatesConfirmed, r.UpdatesPlanned)
	if r.Rejected > 0 {
		fmt.Fprintf(&b, ", %d rejected (listsync rejects %s)", r.Rejected, r.Sync)
	}
	if r.Deferred > 0 {
		fmt.Fprintf(&b, ", %d rejected earlier and not yet due for retry", r.Deferred)
	}
	if r.FullResync {
		b.WriteString("; full resync")
	}
	fmt.Fprintf(&b, "; %d API calls", r.APICalls)
	return b.String()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func truncate(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
