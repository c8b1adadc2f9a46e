package cli_test

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/cli"
	"github.com/listsync/listsync/internal/state"
	"github.com/listsync/listsync/internal/state/sqlite"
)

// TestHistoryShowsSkippedTicks: a tick the worker skipped is in the
// history with its reason and without counts, which would read as a run
// that did nothing.
func TestHistoryShowsSkippedTicks(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.insert("trial", person{"a@example.com", "A", "X"})
	code, _, stderr := h.run("run", "trial_users")
	require.Equal(t, cli.ExitOK, code, stderr)

	st, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(h.dir, "state.db")})
	require.NoError(t, err)
	tick := time.Now().UTC().Truncate(time.Second)
	_, err = st.RecordSkipped(t.Context(), state.Run{Sync: "trial_users", Trigger: state.TriggerSchedule,
		StartedAt: tick, Error: "locked: another run held the sync's lock"})
	require.NoError(t, err)
	require.NoError(t, st.Close())

	code, stdout, _ := h.run("history", "trial_users")
	require.Equal(t, cli.ExitOK, code)
	require.Regexp(t, regexp.MustCompile(`(?m)^2\s+trial_users\s+schedule\s+skipped\s+\S+\s+\S+(\s+-){8}\s+locked: another run held the sync's lock$`), stdout)
	require.Regexp(t, regexp.MustCompile(`(?m)^1\s+trial_users\s+manual\s+succeeded\s.*\s1/1\s`), stdout)

	code, stdout, _ = h.run("history", "--json")
	require.Equal(t, cli.ExitOK, code)
	var hist []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &hist))
	require.Len(t, hist, 2)
	require.Equal(t, "skipped", hist[0]["status"])
	require.Equal(t, "locked: another run held the sync's lock", hist[0]["error"])
}
