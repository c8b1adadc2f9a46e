package main

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"time"

	"github.com/listsync/listsync/internal/marketo/emulator"
)

// Goals of the diff case (issue 7).
const (
	diffGoalRatio = 1.5
	diffGoalRSS   = 256 << 20
	// diffRSSGrowth is how much larger the peak RSS at the largest N may be
	// than at the smallest for it to count as "not growing with N".
	diffRSSGrowth = 1.25
)

// warehouseSchema returns the schema holding the generated tables, creating
// it on first use.
func (b *Bench) warehouseSchema(ctx context.Context) (string, error) {
	if b.whSchema != "" {
		return b.whSchema, nil
	}
	s, err := b.newSchema(ctx, "lsbench")
	if err != nil {
		return "", err
	}
	b.whSchema = s
	return s, nil
}

// people creates a table of rows generated people.
func (b *Bench) people(ctx context.Context, table string, rows int64) (*Warehouse, error) {
	schema, err := b.warehouseSchema(ctx)
	if err != nil {
		return nil, err
	}
	t := time.Now()
	w, err := CreatePeople(ctx, b.opt.PGURL, schema, table, rows)
	if err != nil {
		return nil, err
	}
	b.logf("  %s.%s: %s rows in %s", schema, table, fmtInt(rows), time.Since(t).Round(time.Millisecond))
	return w, nil
}

// floorCmd is psql's \copy of a model to /dev/null: the least any reader of
// the model's rows can spend.
func (b *Bench) floorCmd(model string) Cmd {
	return Cmd{Path: "psql", Args: []string{"-X", "-q", "-d", b.opt.PGURL, "-c", `\copy (` + model + `) to /dev/null`}}
}

// fastEmu is an emulator for setup only: no limits, instant bulk jobs.
func fastEmu() (*Emu, error) {
	return StartEmu(emulator.Config{
		CallsPer20s: -1, MaxConcurrency: -1, DailyQuota: -1,
		ImportRowsPerSec: -1, ExportProcessingTime: -1, ExportDailyBytes: -1,
	})
}

// listsync runs the binary with `sub --config <cfg> args...` and measures it.
func (b *Bench) listsync(ctx context.Context, s *Setup, sub string, args ...string) (Measurement, Cmd, error) {
	c := Cmd{Path: b.bin, Args: append([]string{sub, "--config", s.ConfigPath()}, args...), Dir: s.Dir}
	m, err := Measure(ctx, c)
	return m, c, err
}

// setupRun runs a sync once for setup (not measured) and checks that it
// succeeded.
func (b *Bench) setupRun(ctx context.Context, s *Setup, sync string, args ...string) error {
	t := time.Now()
	m, _, err := b.listsync(ctx, s, "run", append([]string{sync, "--json"}, args...)...)
	if err != nil {
		return fmt.Errorf("setting up %s: %w", sync, err)
	}
	b.logf("  setup run of %s: %s, %s peak", sync, time.Since(t).Round(time.Millisecond), fmtMB(m.MaxRSS))
	return nil
}

// caseDiff is case 1: `listsync plan` of N rows with 1% churn against a
// state of N members, next to psql's \copy of the same model.
func (b *Bench) caseDiff(ctx context.Context) (Section, error) {
	sec := Section{
		Title: "1. Diff cost: `listsync plan` against the warehouse floor",
		Text: []string{
			"A model of N people with 1% churn (N/100 members left, N/100 people joined) is planned against a state of N confirmed members " +
				"(SQLite state store, built by a real first `listsync run` against an emulator with instant imports; setup is not measured). " +
				"The floor is `psql -X -c \"\\copy (<the model>) to /dev/null\"` of the same model, run right before each plan. " +
				fmt.Sprintf("Goal: plan ≤ %.1f× the floor, peak RSS < %s and not growing with N.", diffGoalRatio, fmtMB(diffGoalRSS)),
			"CPU columns (medians): the machine's CPU time while the floor or the plan ran (all processes, from /proc/stat: mostly the Postgres " +
				"server process and psql or listsync), and listsync's own (user + system). On a machine of few cores the plan cannot end " +
				"before its machine CPU divided by the cores (last CPU column): that is the bound a plan on this machine meets, next to the floor.",
		},
	}
	tbl := &Table{Header: []string{"N", "floor: psql \\copy", "listsync plan", "plan / floor", "goal ≤ 1.5×",
		"CPU: floor (machine)", "CPU: plan (listsync, machine)", "machine CPU of the plan ÷ cores",
		"plan peak RSS", "goal < 256 MB", "plan found", "reproduce"}}
	sec.Tables = []*Table{tbl}
	type result struct {
		n     int64
		floor Summary
		plan  Summary
	}
	var results []result
	for _, n := range b.opt.DiffNs {
		churn := n / 100
		b.logf(" diff N=%s", fmtInt(n))
		w, err := b.people(ctx, fmt.Sprintf("people_%d", n), n+churn)
		if err != nil {
			return sec, err
		}
		em, err := fastEmu()
		if err != nil {
			return sec, err
		}
		s := &Setup{
			Dir: filepath.Join(b.work, fmt.Sprintf("diff-%d", n)), WarehouseDSN: b.opt.PGURL,
			StateDriver: "sqlite", StateDSN: "state.db", MarketoURL: em.URL,
			CallsPer20s: b.opt.Calls20s, MaxConcurrency: b.opt.MaxConc, DailyQuota: 1_000_000,
			Syncs: []SyncConf{{Name: "diff", Model: "models/diff.sql", ListName: fmt.Sprintf("Diff %d", n),
				Fields: benchFields, SQL: w.ModelSQL(0, n)}},
		}
		err = func() error {
			defer em.Close()
			if err := s.WriteConfig(); err != nil {
				return err
			}
			if err := b.setupRun(ctx, s, "diff"); err != nil {
				return err
			}
			churned := w.ModelSQL(churn, n+churn)
			if err := s.SetModel("diff", churned); err != nil {
				return err
			}
			floorCmd := b.floorCmd(churned)
			var floors, plans []Measurement
			var plan PlanJSON
			var planCmd Cmd
			before := em.Stats()
			for i := range b.opt.Repeats {
				fm, err := Measure(ctx, floorCmd)
				if err != nil {
					return err
				}
				pm, c, err := b.listsync(ctx, s, "plan", "diff", "--json")
				if err != nil {
					return err
				}
				planCmd = c
				if plan, err = ParsePlan(pm.Stdout); err != nil {
					return err
				}
				if plan.Adds != churn || plan.Removes != churn || plan.FieldUpdates != 0 || plan.Invalid != 0 {
					return fmt.Errorf("plan of N=%d found %+v, want %d adds, %d removes, no field updates and no invalid rows", n, plan, churn, churn)
				}
				b.logf("  repeat %d: floor %s, plan %s (%s peak)", i+1, fmtDur(fm.Wall), fmtDur(pm.Wall), fmtMB(pm.MaxRSS))
				floors, plans = append(floors, fm), append(plans, pm)
			}
			if err := b.profiled(ctx, fmt.Sprintf("plan N=%d", n), s, "plan", "diff", "--json"); err != nil {
				return err
			}
			if calls := Since(before, em.Stats()); calls.Total > 0 {
				sec.Notes = append(sec.Notes, fmt.Sprintf("Note: `listsync plan` made %d Marketo API calls at N=%s (%s); a plan should touch neither Marketo nor the state.",
					calls.Total, fmtInt(n), calls.endpointSummary()))
			}
			r := result{n: n, floor: Summarize(floors), plan: Summarize(plans)}
			results = append(results, r)
			ratio := r.plan.Wall.Seconds() / r.floor.Wall.Seconds()
			tbl.Rows = append(tbl.Rows, []string{
				fmtInt(n), fmtSpread(r.floor), fmtSpread(r.plan), fmt.Sprintf("%.2f×", ratio),
				verdict(ratio <= diffGoalRatio),
				fmtDur(r.floor.MachineBusy), fmt.Sprintf("%s, %s", fmtDur(r.plan.CPU), fmtDur(r.plan.MachineBusy)),
				fmtDur(r.plan.MachineBusy / time.Duration(runtime.NumCPU())),
				fmtMB(r.plan.MaxRSS), verdict(r.plan.MaxRSS < diffGoalRSS),
				fmt.Sprintf("%s adds, %s removes", fmtInt(plan.Adds), fmtInt(plan.Removes)),
				b.reproduce("--cases diff", fmt.Sprintf("--n %d", n)),
			})
			sec.Notes = append(sec.Notes, fmt.Sprintf("N=%s measured commands: `%s` then `%s`.", fmtInt(n), floorCmd.String(), planCmd.String()))
			return nil
		}()
		if err != nil {
			return sec, err
		}
	}
	var base []Measurement
	for range 3 {
		m, err := Measure(ctx, Cmd{Path: b.bin, Args: []string{"version"}})
		if err != nil {
			return sec, err
		}
		base = append(base, m)
	}
	sec.Notes = append(sec.Notes, fmt.Sprintf("For scale: `listsync version` alone peaks at %s RSS, almost all of it the binary's own file-backed pages "+
		"(shared and reclaimable, but counted by ru_maxrss); the rest of a plan's peak is its heap.", fmtMB(Summarize(base).MaxRSS)))
	if len(results) >= 2 {
		first, last := results[0], results[len(results)-1]
		growth := float64(last.plan.MaxRSS) / float64(first.plan.MaxRSS)
		sec.Notes = append(sec.Notes, fmt.Sprintf("Peak RSS from N=%s to N=%s: %s → %s (×%.2f): %s (goal: not growing with N, i.e. at most ×%.2f).",
			fmtInt(first.n), fmtInt(last.n), fmtMB(first.plan.MaxRSS), fmtMB(last.plan.MaxRSS), growth,
			verdict(growth <= diffRSSGrowth), diffRSSGrowth))
	}
	return sec, nil
}
