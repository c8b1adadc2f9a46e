package sync_test

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/state"
	listsync "github.com/listsync/listsync/internal/sync"
)

// TestProgress checks that the progress hook sees every phase of a run in
// order, counts that only grow, and at the end the run record's counts;
// and that within a phase it is called at a bounded rate.
func TestProgress(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{engine: func(c *listsync.EngineConfig) { c.ChunkSize = 2000 }})
	list := e.em.CreateStaticList("L", e.em.CreateFolder("F"))
	model := seq("m", 9000)
	ids := e.em.UpsertLeads([]map[string]string{{"email": model[0]}, {"email": model[1]}, {"email": "gone1@x.com"}, {"email": "gone2@x.com"}})
	e.em.AddListMembers(list, ids...)
	e.setModel(emails(model...)...)
	spec := e.spec(marketo.ListRef{ID: list})

	var got []listsync.Progress
	var inHook atomic.Bool
	opts := listsync.RunOptions{FullResync: true, ProgressInterval: time.Second, Progress: func(p listsync.Progress) {
		require.True(t, inHook.CompareAndSwap(false, true), "progress calls overlap")
		defer inHook.Store(false)
		got = append(got, p)
		e.clock.Advance(time.Second) // let the next report within a phase through
	}}
	run := e.run(spec, opts)
	require.EqualValues(t, 8998, run.AddsConfirmed)
	require.EqualValues(t, 2, run.RemovesConfirmed)

	var phases []listsync.Phase
	for i, p := range got {
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			require.NotContains(t, phases, p.Phase, "phase %q came back", p.Phase)
			phases = append(phases, p.Phase)
		}
		if i > 0 {
			q := got[i-1]
			require.True(t, p.RowsRead >= q.RowsRead && p.MembersRead >= q.MembersRead && p.UpsertsSent >= q.UpsertsSent &&
				p.RemovesSent >= q.RemovesSent && p.AddsConfirmed >= q.AddsConfirmed && p.RemovesConfirmed >= q.RemovesConfirmed,
				"counts went down from %+v to %+v", q, p)
		}
	}
	require.Equal(t, []listsync.Phase{listsync.PhaseReadingModel, listsync.PhaseResync, listsync.PhaseDiffing,
		listsync.PhasePushingRemoves, listsync.PhasePushingAdds, listsync.PhaseDone}, phases)
	require.True(t, slices.ContainsFunc(got, func(p listsync.Progress) bool {
		return p.Phase == listsync.PhaseReadingModel && p.RowsRead > 0 && p.RowsRead < 9000
	}), "rows are reported while the model is read")
	require.True(t, slices.ContainsFunc(got, func(p listsync.Progress) bool {
		return p.Phase == listsync.PhasePushingAdds && p.AddsConfirmed > 0 && p.AddsConfirmed < run.AddsConfirmed
	}), "confirmed adds are reported while they are pushed")
	last := got[len(got)-1]
	require.Equal(t, listsync.Progress{Phase: listsync.PhaseDone, RowsRead: run.RowsRead, MembersRead: 4,
		AddsPlanned: run.AddsPlanned, UpdatesPlanned: run.UpdatesPlanned, RemovesPlanned: run.RemovesPlanned,
		UpsertsSent: run.AddsPlanned + run.UpdatesPlanned, RemovesSent: run.RemovesPlanned,
		AddsConfirmed: run.AddsConfirmed, UpdatesConfirmed: run.UpdatesConfirmed,
		RemovesConfirmed: run.RemovesConfirmed, Rejected: run.Rejected}, last)

	// On a clock that stands still, a run reports each phase once and
	// nothing in between, however many rows it reads.
	got = nil
	opts.FullResync = false
	opts.Progress = func(p listsync.Progress) { got = append(got, p) }
	run = e.run(spec, opts)
	require.Equal(t, state.RunSucceeded, run.Status)
	require.Len(t, got, 3, "%+v", got)
	require.Equal(t, listsync.PhaseReadingModel, got[0].Phase)
	require.Equal(t, listsync.PhaseDiffing, got[1].Phase)
	require.Equal(t, listsync.Progress{Phase: listsync.PhaseDone, RowsRead: 9000}, got[2])
}
