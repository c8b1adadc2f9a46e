package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/listsync/listsync/internal/marketo/emulator"
)

// e2eRun is one measured run of the end-to-end cases.
type e2eRun struct {
	m     Measurement
	calls Calls
	cmd   Cmd
	// floor is psql's \copy of the same model, run right before.
	floor time.Duration
}

// e2eTable is the table of the end-to-end and scale cases.
func e2eTable(caption string) *Table {
	return &Table{Caption: caption, Header: []string{"run", "wall", "bound", "wall / bound", "API calls", "606 + 615", "peak RSS", "reproduce"}}
}

// e2eBound is the least wall time a run can take: reading the model (the
// psql floor), its calls at Marketo's 5 a second, or the import of its adds
// at the emulator's speed, whichever is longest.
func e2eBound(floor time.Duration, calls, imported int64, rowsPerSec int) (time.Duration, string) {
	rate := time.Duration(calls) * (20 * time.Second / marketoCallsPer20s)
	imp := time.Duration(0)
	if rowsPerSec > 0 {
		imp = time.Duration(float64(imported) / float64(rowsPerSec) * float64(time.Second))
	}
	switch {
	case imp >= rate && imp >= floor:
		return imp, fmt.Sprintf("%s (Marketo importing %s rows)", fmtDur(imp), fmtInt(imported))
	case rate >= floor:
		return rate, fmt.Sprintf("%s (%d calls at 5/s)", fmtDur(rate), calls)
	default:
		return floor, fmt.Sprintf("%s (psql reading the model)", fmtDur(floor))
	}
}

// e2eRow renders the runs of one kind.
func (b *Bench) e2eRow(tbl *Table, name string, runs []e2eRun, imported int64, repro string) {
	ms := make([]Measurement, len(runs))
	calls := make([]int64, len(runs))
	floors := make([]time.Duration, len(runs))
	var rej int64
	for i, r := range runs {
		ms[i], calls[i], floors[i] = r.m, r.calls.Total, r.floor
		rej += r.calls.Rejections606615()
	}
	sum := Summarize(ms)
	c := Median(calls)
	bound, boundText := e2eBound(Median(floors), c, imported, b.opt.E2EImpRS)
	ratio := "–"
	if bound > 0 {
		ratio = fmt.Sprintf("%.2f×", sum.Wall.Seconds()/bound.Seconds())
	}
	tbl.Rows = append(tbl.Rows, []string{name, fmtSpread(sum), boundText, ratio, fmtInt(c), fmt.Sprintf("%d %s", rej, verdict(rej == 0)), fmtMB(sum.MaxRSS), repro})
}

// e2eSetup prepares the people table, the emulator and the config of an
// end-to-end case.
func (b *Bench) e2eSetup(ctx context.Context, name, stateDriver, stateDSN string) (*Warehouse, *Emu, *Setup, error) {
	n := b.opt.E2EN
	w, err := b.e2ePeople(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	em, err := StartEmu(emulator.Config{ImportRowsPerSec: b.opt.E2EImpRS, Latency: b.opt.Latency})
	if err != nil {
		return nil, nil, nil, err
	}
	s := &Setup{
		Dir: filepath.Join(b.work, name), WarehouseDSN: b.opt.PGURL,
		StateDriver: stateDriver, StateDSN: stateDSN, MarketoURL: em.URL,
		CallsPer20s: b.opt.Calls20s, MaxConcurrency: b.opt.MaxConc, DailyQuota: emulator.DailyQuotaDefault,
		Syncs: []SyncConf{{Name: name, Model: "models/" + name + ".sql", ListName: "Bench " + name, Fields: benchFields, SQL: w.ModelSQL(0, n)}},
	}
	if err := s.WriteConfig(); err != nil {
		em.Close()
		return nil, nil, nil, err
	}
	return w, em, s, nil
}

// e2ePeople returns the table of the end-to-end cases, creating it once.
func (b *Bench) e2ePeople(ctx context.Context) (*Warehouse, error) {
	if b.e2eWH != nil {
		return b.e2eWH, nil
	}
	n := b.opt.E2EN
	w, err := b.people(ctx, "people_e2e", n+n/100)
	if err != nil {
		return nil, err
	}
	b.e2eWH = w
	return w, nil
}

// e2eRuns runs a first sync and then reps steady-state runs with 1% churn,
// alternating the model between two windows of N people that differ by 1%.
// lo is where the last model's window starts.
func (b *Bench) e2eRuns(ctx context.Context, w *Warehouse, em *Emu, s *Setup, sync string) (first e2eRun, steady []e2eRun, lo int64, err error) {
	n := b.opt.E2EN
	churn := n / 100
	listSize := func() int {
		for _, l := range em.StaticLists() {
			if l.Name == s.Syncs[0].ListName {
				return len(em.ListMemberIDs(l.ID))
			}
		}
		return -1
	}
	one := func(model string, need int64) (e2eRun, error) {
		if err := s.SetModel(sync, model); err != nil {
			return e2eRun{}, err
		}
		if err := waitWindow(ctx, em, need); err != nil {
			return e2eRun{}, err
		}
		fm, err := Measure(ctx, b.floorCmd(model))
		if err != nil {
			return e2eRun{}, err
		}
		before := em.Stats()
		m, c, err := b.listsync(ctx, s, "run", sync, "--json")
		r := e2eRun{m: m, calls: Since(before, em.Stats()), cmd: c, floor: fm.Wall}
		if err != nil {
			return r, err
		}
		if got := listSize(); got != int(n) {
			return r, fmt.Errorf("after `%s` the list has %d members, want %d", c.String(), got, n)
		}
		return r, nil
	}
	first, err = one(w.ModelSQL(0, n), 20)
	if err != nil {
		return first, nil, 0, err
	}
	b.logf("  first sync of %s: %s, %d calls (%s), %s peak", fmtInt(n), fmtDur(first.m.Wall), first.calls.Total, first.calls.endpointSummary(), fmtMB(first.m.MaxRSS))
	for i := range b.opt.E2EReps {
		lo = churn
		if i%2 == 1 {
			lo = 0
		}
		r, err := one(w.ModelSQL(lo, lo+n), 2*ceilDiv(churn, marketoBatch)+20)
		if err != nil {
			return first, steady, lo, err
		}
		b.logf("  steady run %d: %s, %d calls (%s), %s peak", i+1, fmtDur(r.m.Wall), r.calls.Total, r.calls.endpointSummary(), fmtMB(r.m.MaxRSS))
		steady = append(steady, r)
	}
	if b.opt.Profile && len(steady) > 0 {
		// One more change, profiled (not one of the measured runs).
		lo = churn - lo
		if err := s.SetModel(sync, w.ModelSQL(lo, lo+n)); err != nil {
			return first, steady, lo, err
		}
		if err := waitWindow(ctx, em, 2*ceilDiv(churn, marketoBatch)+20); err != nil {
			return first, steady, lo, err
		}
		if err := b.profiled(ctx, fmt.Sprintf("%s steady run N=%d", sync, n), s, "run", sync, "--json"); err != nil {
			return first, steady, lo, err
		}
	}
	return first, steady, lo, nil
}

// caseE2E is case 3: a first sync of N members and steady-state runs with 1%
// churn, SQLite state.
func (b *Bench) caseE2E(ctx context.Context) (Section, error) {
	n := b.opt.E2EN
	sec := Section{
		Title: fmt.Sprintf("3. End to end: first sync of %s members, then 1%% churn (SQLite state)", fmtInt(n)),
		Text: []string{fmt.Sprintf("`listsync run` of a model of %s people into an empty list, then runs whose model differs by 1%% "+
			"(%s members leave, %s join; removes need the lead ids a bulk import does not return). The emulator keeps Marketo's limits "+
			"but imports %s rows/s (the API-economy case uses the realistic %s rows/s) so that the first sync fits the run. "+
			"The bound is the longest of: psql's \\copy of the same model run right before (the warehouse floor), the run's calls at 5 a second, "+
			"and Marketo importing the run's adds at the emulator's speed.",
			fmtInt(n), fmtInt(n/100), fmtInt(n/100), fmtInt(int64(b.opt.E2EImpRS)), fmtInt(int64(b.opt.ImportRS)))},
	}
	w, em, s, err := b.e2eSetup(ctx, "e2e", "sqlite", "state.db")
	if err != nil {
		return sec, err
	}
	defer em.Close()
	first, steady, _, err := b.e2eRuns(ctx, w, em, s, "e2e")
	tbl := e2eTable("")
	sec.Tables = []*Table{tbl}
	repro := b.reproduce("--cases e2e", fmt.Sprintf("--e2e-n %d", n))
	if first.m.Wall > 0 {
		b.e2eRow(tbl, "first sync", []e2eRun{first}, n, repro)
		sec.Notes = append(sec.Notes, fmt.Sprintf("First sync calls: %s. Command: `%s`.", first.calls.endpointSummary(), first.cmd.String()))
	}
	if len(steady) > 0 {
		b.e2eRow(tbl, "steady state, 1% churn", steady, n/100, repro)
		sec.Notes = append(sec.Notes, fmt.Sprintf("Steady-state calls (last run): %s.", steady[len(steady)-1].calls.endpointSummary()))
	}
	return sec, err
}
