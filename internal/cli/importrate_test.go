package cli_test

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/cli"
	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/marketo/emulator"
	"github.com/listsync/listsync/internal/state"
	statesqlite "github.com/listsync/listsync/internal/state/sqlite"
)

// TestRunKeepsImportRate: the bulk-import rate one `listsync run` measures
// is kept in the state store under the Marketo instance, so that the next
// run, a new process as under cron, reads its import's status once, at the
// end that rate projects, instead of once to measure the rate and once more
// at the end.
func TestRunKeepsImportRate(t *testing.T) {
	t.Parallel()
	const (
		rows       = 1000 // per run, above BulkAddMinRows: a bulk import
		rowsPerSec = 1000 // emulated, in real time: each import takes 1 s
	)
	require.Greater(t, rows, marketo.BulkAddMinRowsDefault)
	h := newHarnessWith(t, emulator.Config{ImportRowsPerSec: rowsPerSec})
	h.opts = append(h.opts, cli.WithMarketoConfigForTest(func(c *marketo.Config) {
		c.ImportPollInitial = 250 * time.Millisecond
		c.ImportPollMax = time.Second
	}))
	instance, err := marketo.InstanceOf(h.ts.URL)
	require.NoError(t, err)

	statusReads := func() int64 { return h.em.Stats().Endpoints["GET /bulk/v1/leads/batch/{id}.json"] }
	keptRate := func() (state.ImportRate, bool) {
		t.Helper()
		st, err := statesqlite.Open(t.Context(), statesqlite.Config{Path: filepath.Join(h.dir, "state.db")})
		require.NoError(t, err)
		defer func() { require.NoError(t, st.Close()) }()
		r, ok, err := st.ImportRate(t.Context(), instance)
		require.NoError(t, err)
		return r, ok
	}
	// run adds rows new people to the model, runs the sync and returns the
	// import's status reads.
	run := func(from int) int64 {
		t.Helper()
		h.exec(`INSERT INTO people (email, first_name, company, plan)
			SELECT 'p' || i || '@example.com', 'F' || i, 'C', 'trial' FROM generate_series($1::int, $2::int) AS i`, from, from+rows-1)
		before := statusReads()
		code, stdout, stderr := h.run("run", "trial_users", "--json")
		require.Equal(t, cli.ExitOK, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
		var runs []map[string]any
		require.NoError(t, json.Unmarshal([]byte(stdout), &runs), stdout)
		require.Len(t, runs, 1)
		require.EqualValues(t, rows, runs[0]["adds_confirmed"])
		return statusReads() - before
	}

	_, ok := keptRate()
	require.False(t, ok, "no rate before any import")
	first := run(0)
	require.GreaterOrEqual(t, first, int64(2), "the first run's import: a read measures the rate, one (or two) at its end")
	r, ok := keptRate()
	require.True(t, ok, "the first run keeps the rate it measured")
	require.InDelta(t, rowsPerSec, r.RowsPerSec, rowsPerSec/2)
	require.WithinDuration(t, time.Now(), r.MeasuredAt, time.Minute)

	second := run(rows)
	t.Logf("status reads: first run %d, second run %d", first, second)
	require.Equal(t, int64(1), second, "the second run's import is read once, at the end the kept rate projects")
	require.Len(t, h.listEmails(h.listID), 2*rows)
}
