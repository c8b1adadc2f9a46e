package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/listsync/listsync/internal/config"
	listsync "github.com/listsync/listsync/internal/sync"
)

const planHelp = `
The dry run: runs the sync's model and diffs it with what Marketo has
confirmed, then prints what a run would do (adds, removes, field updates,
invalid rows, with samples of each) without touching Marketo or the state.
Before a sync's first run the plan is against an empty ledger: the first run
reads the list's real membership from Marketo first, so it may do less.`

type planFlags struct {
	*commonFlags
	json bool
}

func newPlanFlags(fs *flag.FlagSet) *planFlags {
	f := &planFlags{commonFlags: newCommonFlags(fs)}
	fs.BoolVar(&f.json, "json", false, "print the plan as JSON")
	return f
}

// planJSON is the --json shape of a plan.
type planJSON struct {
	Sync         string      `json:"sync"`
	Bound        bool        `json:"bound"`
	ListID       int64       `json:"list_id,omitempty"`
	RowsRead     int64       `json:"rows_read"`
	Members      int64       `json:"members"`
	Adds         int64       `json:"adds"`
	Removes      int64       `json:"removes"`
	FieldUpdates int64       `json:"field_updates"`
	Invalid      int64       `json:"invalid"`
	Duplicates   int64       `json:"duplicates"`
	Deferred     int64       `json:"deferred"`
	Samples      planSamples `json:"samples"`
	// Guard is the removal guard a run would stop at, or null.
	Guard *string `json:"guard"`
}

type planSamples struct {
	Adds         []string `json:"adds"`
	Removes      []string `json:"removes"`
	FieldUpdates []string `json:"field_updates"`
	Invalid      []string `json:"invalid"`
	Deferred     []string `json:"deferred"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func toPlanJSON(p *listsync.Plan) planJSON {
	j := planJSON{
		Sync: p.Sync, Bound: p.Bound, RowsRead: p.RowsRead, Members: p.Members,
		Adds: p.Adds, Removes: p.Removes, FieldUpdates: p.Updates, Invalid: p.Invalid,
		Duplicates: p.Duplicates, Deferred: p.Deferred,
		Samples: planSamples{
			Adds: nonNil(p.AddSamples), Removes: nonNil(p.RemoveSamples), FieldUpdates: nonNil(p.UpdateSamples),
			Invalid: nonNil(p.InvalidSamples), Deferred: nonNil(p.DeferredSamples),
		},
	}
	if p.Bound {
		j.ListID = p.Binding.ListID
	}
	if p.Guard != nil {
		g := p.Guard.Error()
		j.Guard = &g
	}
	return j
}

func cmdPlan(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	f := newPlanFlags(fs)
	pos, err := e.parse("plan", fs, args)
	if err != nil {
		return err
	}
	var s *config.Sync
	pick := func(cfg *config.Config) (err error) {
		s, err = oneSync(cfg, pos)
		return err
	}
	return e.withApp(ctx, f.commonFlags, appOptions{withEngine: true}, pick, func(l *loaded, a *app) error {
		spec, err := a.spec(ctx, s)
		if err != nil {
			return err
		}
		_, stop := e.progress(s.Name, f.json)
		p, err := a.engine.Plan(ctx, spec)
		stop()
		if err != nil {
			return err
		}
		if f.json {
			return writeJSON(e.stdout, toPlanJSON(p))
		}
		w := e.stdout
		fmt.Fprintf(w, "Plan for %s (%s, model %s):\n", s.Name, describeList(l.cfg, s), s.Model)
		fmt.Fprintf(w, "  %d rows read, %d invalid, %d duplicate; %d members confirmed on the list\n", p.RowsRead, p.Invalid, p.Duplicates, p.Members)
		section := func(label string, n int64, samples []string) {
			fmt.Fprintf(w, "  %-14s %d", label, n)
			if len(samples) > 0 {
				fmt.Fprintf(w, "   e.g. %s", strings.Join(samples, ", "))
				if int64(len(samples)) < n {
					fmt.Fprint(w, ", …")
				}
			}
			fmt.Fprintln(w)
		}
		section("add:", p.Adds, p.AddSamples)
		section("remove:", p.Removes, p.RemoveSamples)
		section("update fields:", p.Updates, p.UpdateSamples)
		section("invalid:", p.Invalid, p.InvalidSamples)
		if p.Deferred > 0 {
			section("deferred:", p.Deferred, p.DeferredSamples)
		}
		if !p.Bound {
			fmt.Fprintln(w, "  The sync has not run yet (or was reset): its first run reads the list's membership from Marketo first, so it may send less than this.")
		}
		if p.Guard != nil {
			fmt.Fprintf(w, "  A run would stop here: %s\n", explain(p.Guard))
		}
		return nil
	})
}
