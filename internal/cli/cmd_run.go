package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	stdsync "sync"
	"time"

	"github.com/listsync/listsync/internal/config"
	"github.com/listsync/listsync/internal/state"
	listsync "github.com/listsync/listsync/internal/sync"
)

const runHelp = `
Runs the named syncs once, one after another (all of them when none is
named), and prints one line per run. Each run reads its model, diffs it with
what Marketo has confirmed, and pushes the adds, removes and field updates.
A run that would remove more than the sync's max_remove_fraction of the list,
or that finds the model empty while the list has members, stops before
touching Marketo; --allow-removals lets it through.

Exit status: 0 when every run succeeded, 1 when one failed.`

type runFlags struct {
	*commonFlags
	fullResync    bool
	allowRemovals bool
	json          bool
}

func newRunFlags(fs *flag.FlagSet) *runFlags {
	f := &runFlags{commonFlags: newCommonFlags(fs)}
	fs.BoolVar(&f.fullResync, "full-resync", false, "read each list's membership from Marketo before diffing")
	fs.BoolVar(&f.allowRemovals, "allow-removals", false, "let runs pass the removal guard (empty model, max_remove_fraction)")
	fs.BoolVar(&f.json, "json", false, "print the run records as JSON")
	return f
}

func cmdRun(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	f := newRunFlags(fs)
	pos, err := e.parse("run", fs, args)
	if err != nil {
		return err
	}
	var syncs []*config.Sync
	pick := func(cfg *config.Config) (err error) {
		syncs, err = syncsNamed(cfg, pos)
		return err
	}
	return e.withApp(ctx, f.commonFlags, appOptions{withEngine: true}, pick, func(_ *loaded, a *app) error {
		opts := listsync.RunOptions{Trigger: state.TriggerManual, FullResync: f.fullResync, AllowRemovals: f.allowRemovals}
		var records []runJSON
		failed := 0
		for _, s := range syncs {
			if ctx.Err() != nil {
				break
			}
			start := e.now()
			var run state.Run
			spec, err := a.spec(ctx, s)
			if err == nil {
				update, stop := e.progress(s.Name, f.json)
				o := opts
				o.Progress = update
				run, err = a.engine.Run(ctx, spec, o)
				stop()
			}
			if run.Sync == "" {
				run = state.Run{Sync: s.Name, Trigger: opts.Trigger, Status: state.RunFailed, StartedAt: start, EndedAt: e.now()}
			}
			if err != nil {
				failed++
				if run.Status == "" || run.Status == state.RunSucceeded || run.Status == state.RunRunning {
					run.Status = state.RunFailed
				}
				if run.Error == "" {
					run.Error = err.Error()
				}
			}
			records = append(records, toRunJSON(run))
			if f.json {
				continue
			}
			if err != nil {
				fmt.Fprintf(e.stdout, "%s: %s after %s: %s\n", s.Name, run.Status, e.now().Sub(start).Round(10*time.Millisecond), explain(err))
				continue
			}
			fmt.Fprintln(e.stdout, summary(run))
		}
		if f.json {
			if records == nil {
				records = []runJSON{}
			}
			if err := writeJSON(e.stdout, records); err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			fmt.Fprintln(e.stderr, "listsync run: interrupted; what Marketo confirmed so far is recorded, and the next run resumes from there")
			return errReported
		}
		if failed > 0 {
			fmt.Fprintf(e.stderr, "listsync run: %d of %d syncs failed\n", failed, len(records))
			return errReported
		}
		return nil
	})
}

// explain adds what to do to the errors a person can act on.
func explain(err error) string {
	msg := err.Error()
	var ge *listsync.GuardError
	if errors.As(err, &ge) && !strings.Contains(msg, "--allow-removals") {
		msg += " (run again with --allow-removals if this is intended)"
	}
	if errors.Is(err, state.ErrLocked) {
		msg += " (another listsync process is running this sync)"
	}
	return msg
}

// progress shows, on a terminal, that a long run is still going: the
// sync's name, the run's phase and counts so far (when update is given them)
// and the elapsed time, on one line of stderr redrawn each second and at
// each new phase. The line appears only once the run has taken a second.
// update is nil when nothing is shown, so that the engine does no progress
// work; stop stops the display and clears the line.
func (e *env) progress(name string, quiet bool) (update func(listsync.Progress), stop func()) {
	if quiet || !e.isTerminal(e.stderr) {
		return nil, func() {}
	}
	var (
		mu     stdsync.Mutex
		last   listsync.Progress
		shown  bool // a line is on the screen
		frame  int
		closed bool
	)
	start := time.Now()
	// draw redraws the line; mu must be held.
	draw := func() {
		spin := [...]string{"|", "/", "-", "\\"}
		frame++
		fmt.Fprintf(e.stderr, "\r\033[K%s %s: %s", spin[frame%len(spin)], name, progressText(last, time.Since(start)))
		shown = true
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				mu.Lock()
				draw()
				mu.Unlock()
			}
		}
	}()
	update = func(p listsync.Progress) {
		mu.Lock()
		defer mu.Unlock()
		phaseChanged := p.Phase != last.Phase
		last = p
		if phaseChanged && shown && !closed {
			draw()
		}
	}
	return update, func() {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		closed = true
		if shown {
			fmt.Fprint(e.stderr, "\r\033[K")
		}
	}
}

// progressText describes a run's progress for the terminal line.
func progressText(p listsync.Progress, elapsed time.Duration) string {
	var what string
	switch p.Phase {
	case listsync.PhaseReadingModel:
		what = fmt.Sprintf("reading model, %d rows", p.RowsRead)
	case listsync.PhaseResync:
		what = fmt.Sprintf("full resync, %d list members read from Marketo", p.MembersRead)
	case listsync.PhaseDiffing:
		what = fmt.Sprintf("diffing %d rows with the ledger", p.RowsRead)
	case listsync.PhasePushingAdds:
		what = fmt.Sprintf("pushing adds, %d of %d sent, %d confirmed", p.UpsertsSent, p.AddsPlanned+p.UpdatesPlanned,
			p.AddsConfirmed+p.UpdatesConfirmed)
	case listsync.PhasePushingRemoves:
		what = fmt.Sprintf("pushing removes, %d of %d sent, %d confirmed", p.RemovesSent, p.RemovesPlanned, p.RemovesConfirmed)
	case listsync.PhaseDone:
		what = "recording the run"
	}
	if p.Rejected > 0 {
		what += fmt.Sprintf(", %d rejected", p.Rejected)
	}
	if what == "" {
		return "running for " + elapsed.Round(time.Second).String()
	}
	return what + " · running for " + elapsed.Round(time.Second).String()
}
