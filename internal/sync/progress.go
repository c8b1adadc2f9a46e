package sync

import "time"

// Phase is a step of a run, as [RunOptions.Progress] reports it.
type Phase string

// The phases of a run, in the order a run goes through them. A run skips
// the phases it has nothing to do in (a resync when the ledger is trusted,
// a push with nothing planned).
const (
	// PhaseReadingModel runs the model and sorts its rows.
	PhaseReadingModel Phase = "reading model"
	// PhaseResync reads the list's membership from Marketo into the ledger.
	PhaseResync Phase = "resync"
	// PhaseDiffing compares the model with the ledger.
	PhaseDiffing Phase = "diffing"
	// PhasePushingRemoves sends removes to Marketo.
	PhasePushingRemoves Phase = "pushing removes"
	// PhasePushingAdds sends adds and field updates to Marketo.
	PhasePushingAdds Phase = "pushing adds"
	// PhaseDone is the last report of a run, whatever its outcome; its
	// counts are the run record's.
	PhaseDone Phase = "done"
)

// ProgressIntervalDefault is how often, at most, a run reports progress
// within one phase. Each phase's start, and the run's end, are always
// reported.
const ProgressIntervalDefault = 250 * time.Millisecond

// progressRowsEvery is how many model rows are read between two looks at
// the clock while a progress hook is set.
const progressRowsEvery = 4096

// Progress is a run's state so far, for a progress display.
type Progress struct {
	// Phase is the run's current step.
	Phase Phase
	// RowsRead counts the model rows read so far.
	RowsRead int64
	// MembersRead counts the list members read from Marketo by a resync.
	MembersRead int64
	// AddsPlanned, UpdatesPlanned and RemovesPlanned are the diff's counts,
	// known from the end of PhaseDiffing.
	AddsPlanned    int64
	UpdatesPlanned int64
	RemovesPlanned int64
	// UpsertsSent counts the adds and field updates handed to Marketo so
	// far, RemovesSent the removes.
	UpsertsSent int64
	RemovesSent int64
	// AddsConfirmed, UpdatesConfirmed, RemovesConfirmed and Rejected count
	// Marketo's answers committed so far.
	AddsConfirmed    int64
	UpdatesConfirmed int64
	RemovesConfirmed int64
	Rejected         int64
}

// setPhase starts a phase and reports it.
func (r *runner) setPhase(p Phase) {
	if r.opts.Progress == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.phase = p
	r.reportLocked(true)
}

// reportLocked calls the progress hook, at most once per interval unless
// force. r.mu must be held, so that hook calls are never concurrent.
func (r *runner) reportLocked(force bool) {
	if r.opts.Progress == nil {
		return
	}
	now := r.e.now()
	if !force && now.Sub(r.progressAt) < r.progressEvery() {
		return
	}
	r.progressAt = now
	run := r.run
	r.opts.Progress(Progress{
		Phase: r.phase, RowsRead: max(r.rowsSoFar, run.RowsRead), MembersRead: r.membersRead,
		AddsPlanned: run.AddsPlanned, UpdatesPlanned: run.UpdatesPlanned, RemovesPlanned: run.RemovesPlanned,
		UpsertsSent: r.upsertsSent, RemovesSent: r.removesSent,
		AddsConfirmed: run.AddsConfirmed, UpdatesConfirmed: run.UpdatesConfirmed,
		RemovesConfirmed: run.RemovesConfirmed, Rejected: run.Rejected,
	})
}

func (r *runner) progressEvery() time.Duration {
	if r.opts.ProgressInterval > 0 {
		return r.opts.ProgressInterval
	}
	return ProgressIntervalDefault
}

// onRows is stageModel's hook while the model is read, or nil without a
// progress hook.
func (r *runner) onRows() func(int64) {
	if r.opts.Progress == nil {
		return nil
	}
	return func(n int64) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.rowsSoFar = n
		r.reportLocked(false)
	}
}
