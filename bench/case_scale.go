package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"

	"github.com/listsync/listsync/internal/state"
	pgstate "github.com/listsync/listsync/internal/state/postgres"
)

// caseScale is case 4: case 3 with the Postgres state store, then the
// steady-state runs done by two `listsync worker` processes sharing it.
func (b *Bench) caseScale(ctx context.Context) (Section, error) {
	n := b.opt.E2EN
	sec := Section{
		Title: fmt.Sprintf("4. Scale: Postgres state store, and two workers sharing it (%s members)", fmtInt(n)),
		Text: []string{"The runs of case 3 with `state: {driver: postgres}` (a private schema of the same server). " +
			"Then two `listsync worker` processes share that state store and the sync's schedule; the model changes by 1% between ticks, " +
			"and the table reports the runs the workers recorded (their duration from the run record, since a worker does not exit)."},
	}
	stSchema, err := b.newSchema(ctx, "lsbench_state")
	if err != nil {
		return sec, err
	}
	stateDSN, err := SchemaURL(b.opt.PGURL, stSchema)
	if err != nil {
		return sec, err
	}
	w, em, s, err := b.e2eSetup(ctx, "scale", "postgres", stateDSN)
	if err != nil {
		return sec, err
	}
	defer em.Close()
	tbl := e2eTable("")
	sec.Tables = []*Table{tbl}
	repro := b.reproduce("--cases scale", fmt.Sprintf("--e2e-n %d", n))
	first, steady, lastLo, err := b.e2eRuns(ctx, w, em, s, "scale")
	if first.m.Wall > 0 {
		b.e2eRow(tbl, "first sync, Postgres state", []e2eRun{first}, n, repro)
	}
	if len(steady) > 0 {
		b.e2eRow(tbl, "steady state, 1% churn, Postgres state", steady, n/100, repro)
	}
	if err != nil {
		return sec, err
	}

	// Two workers.
	st, err := pgstate.Open(ctx, pgstate.Config{DSN: stateDSN})
	if err != nil {
		return sec, err
	}
	defer st.Close()
	every := 20 * time.Second
	if b.opt.Quick {
		every = 5 * time.Second
	}
	s.Syncs[0].Schedule = fmt.Sprintf("@every %s", every)
	if err := s.WriteConfig(); err != nil {
		return sec, err
	}
	runsBefore, err := st.ListRuns(ctx, "scale", 1000)
	if err != nil {
		return sec, err
	}
	var workers []*exec.Cmd
	var logs []*bytes.Buffer
	var hwms []*hwmPoller
	stopAll := func() []Measurement {
		var ms []Measurement
		for i, c := range workers {
			// The peak RSS is the worker's VmHWM, read until it stops (not
			// its rusage, which the harness's own size inflates; see
			// Measure).
			_ = c.Process.Signal(syscall.SIGTERM)
			start := time.Now()
			_ = c.Wait()
			ms = append(ms, Measurement{Wall: time.Since(start), Stderr: logs[i].Bytes(), MaxRSS: hwms[i].stop()})
		}
		workers = nil
		return ms
	}
	defer stopAll()
	before := em.Stats()
	for range 2 {
		addr, err := freeAddr()
		if err != nil {
			return sec, err
		}
		c := exec.CommandContext(ctx, b.bin, "worker", "--config", s.ConfigPath(), "--listen", addr)
		c.Dir = s.Dir
		c.Env = os.Environ()
		var buf bytes.Buffer
		c.Stdout, c.Stderr = &buf, &buf
		c.Cancel = func() error { return c.Process.Signal(syscall.SIGTERM) }
		if err := c.Start(); err != nil {
			return sec, fmt.Errorf("starting a worker: %w", err)
		}
		var hwm hwmPoller
		hwm.start(c.Process.Pid)
		workers, logs, hwms = append(workers, c), append(logs, &buf), append(hwms, &hwm)
		// Start the second worker part of a period later, so their
		// own schedules do not line up by accident.
		time.Sleep(every / 3)
	}
	churn := n / 100
	var durations []Measurement
	seen := map[int64]bool{}
	for _, r := range runsBefore {
		seen[r.ID] = true
	}
	var changed []state.Run
	lo := lastLo
	for i := range b.opt.E2EReps + 1 {
		// Flip the window: each change is 1% churn from the last.
		if lo == 0 {
			lo = churn
		} else {
			lo = 0
		}
		if err := s.SetModel("scale", w.ModelSQL(lo, lo+n)); err != nil {
			return sec, err
		}
		// A tick, then the run: generous, but bounded so a stuck worker
		// fails the case instead of the whole harness.
		r, err := waitRun(ctx, st, "scale", seen, 3*every+2*time.Minute+time.Duration(n/2000)*time.Second)
		if err != nil {
			return sec, fmt.Errorf("waiting for the workers to run the change: %w (worker logs: %s)", err, head(logs[0].Bytes(), 2000))
		}
		b.logf("  worker run %d: %s, %d calls, +%d −%d", r.ID, r.EndedAt.Sub(r.StartedAt).Round(time.Millisecond), r.APICalls, r.AddsConfirmed, r.RemovesConfirmed)
		if i == 0 {
			// The first change may have been half-seen by a tick that
			// started before it; measure from the second on.
			continue
		}
		changed = append(changed, r)
		durations = append(durations, Measurement{Wall: r.EndedAt.Sub(r.StartedAt)})
	}
	// Let a few more ticks come, unchanged, to see what idle ticks cost.
	idleFrom := time.Now()
	select {
	case <-ctx.Done():
		return sec, ctx.Err()
	case <-time.After(2*every + time.Second):
	}
	ms := stopAll()
	calls := Since(before, em.Stats())
	all, err := st.ListRuns(ctx, "scale", 1000)
	if err != nil {
		return sec, err
	}
	var mine []state.Run
	skipped := 0
	for _, r := range all {
		if seenBefore(runsBefore, r.ID) {
			continue
		}
		// A skipped tick ran nothing: it neither failed nor overlapped.
		if r.Status == state.RunSkipped {
			skipped++
			continue
		}
		mine = append(mine, r)
	}
	slices.SortFunc(mine, func(a, b state.Run) int { return a.StartedAt.Compare(b.StartedAt) })
	overlaps, failed, idle := 0, 0, 0
	for i, r := range mine {
		if i > 0 && r.StartedAt.Before(mine[i-1].EndedAt) {
			overlaps++
		}
		if r.Status != state.RunSucceeded {
			failed++
		}
		if r.StartedAt.After(idleFrom) {
			idle++
		}
	}
	var callsChanged []int64
	for _, r := range changed {
		callsChanged = append(callsChanged, r.APICalls)
	}
	sum := Summarize(durations)
	peak := int64(0)
	for _, m := range ms {
		peak = max(peak, m.MaxRSS)
	}
	var floors []time.Duration
	for _, r := range steady {
		floors = append(floors, r.floor)
	}
	bound, boundText := e2eBound(Median(floors), Median(callsChanged), churn, b.opt.E2EImpRS)
	ratio := "–"
	if bound > 0 {
		ratio = fmt.Sprintf("%.2f×", sum.Wall.Seconds()/bound.Seconds())
	}
	tbl.Rows = append(tbl.Rows, []string{"steady state, 1% churn, two workers", fmtSpread(sum), boundText, ratio,
		fmtInt(Median(callsChanged)) + " (run record)", fmt.Sprintf("%d %s", calls.Rejections606615(), verdict(calls.Rejections606615() == 0)),
		fmtMB(peak) + " (larger worker)", repro})
	sec.Notes = append(sec.Notes, fmt.Sprintf("Two workers, schedule `@every %s`: %d runs recorded while they ran (%d failed, %d overlapping another, %d on idle ticks after the last change) "+
		"and %d ticks skipped because the sync was still running; %d API calls in all (%s).", every, len(mine), failed, overlaps, idle, skipped, calls.Total, calls.endpointSummary()))
	if failed > 0 || overlaps > 0 {
		return sec, fmt.Errorf("two workers: %d failed and %d overlapping runs", failed, overlaps)
	}
	return sec, nil
}

func seenBefore(runs []state.Run, id int64) bool {
	return slices.ContainsFunc(runs, func(r state.Run) bool { return r.ID == id })
}

// waitRun waits for a finished run not in seen that confirmed adds or
// removes, marking every finished run it meets as seen.
func waitRun(ctx context.Context, st state.Store, sync string, seen map[int64]bool, timeout time.Duration) (state.Run, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		runs, err := st.ListRuns(ctx, sync, 100)
		if err != nil {
			return state.Run{}, err
		}
		slices.SortFunc(runs, func(a, b state.Run) int { return a.StartedAt.Compare(b.StartedAt) })
		for _, r := range runs {
			if seen[r.ID] || r.Status == state.RunRunning || r.Status == state.RunSkipped {
				continue
			}
			seen[r.ID] = true
			if r.Status != state.RunSucceeded {
				return r, fmt.Errorf("run %d ended %s: %s", r.ID, r.Status, r.Error)
			}
			if r.AddsConfirmed+r.RemovesConfirmed > 0 {
				return r, nil
			}
		}
		select {
		case <-ctx.Done():
			return state.Run{}, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return state.Run{}, errors.New("timed out")
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
