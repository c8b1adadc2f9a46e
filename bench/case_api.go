package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/listsync/listsync/internal/marketo/emulator"
)

// Marketo's limits and sizes the API case computes its bounds from.
const (
	marketoCallsPer20s   = 100
	marketoBatch         = 300
	marketoImportMax     = 10 << 20 // bytes per import file
	extractMinCalls      = 4        // create, enqueue, one status read, one file read
	segmentBatchMax      = 300      // Segment's batch_size maximum
	segmentBatchDefault  = 250      // Segment's batch_size default
	apiGoalOverMinimum   = 1.05
	apiGoalSegmentRemove = 0.55
	apiGoalWallOverBound = 1.15
)

// ceilDiv returns ⌈a/b⌉.
func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// importBytes is the size of the import file of the people with ids in
// (lo, hi]: the header and one CSV line per person.
func importBytes(lo, hi int64) int64 {
	n := int64(len("email,firstName,lastName,company\n"))
	for id := lo + 1; id <= hi; id++ {
		e, f, l, c := Person(id)
		n += int64(len(e) + len(f) + len(l) + len(c) + 4)
	}
	return n
}

// APIBounds are the arithmetic of the API case: the fewest calls any client
// can spend, Segment's calls, and the wall time Marketo's limits allow.
type APIBounds struct {
	AddMin, RemoveMin           int64
	AddSegment, RemoveSegment   int64
	AddSegmentDefault           int64
	RemoveSegmentDefault        int64
	AddFiles                    int64
	AddBound, RemoveBound       time.Duration
	AddImportTime, AddRateBound time.Duration
}

// ComputeAPIBounds works out the bounds for adds of the people (lo, hi] and
// as many removes, at an import speed of rowsPerSec.
func ComputeAPIBounds(lo, hi int64, rowsPerSec int) APIBounds {
	ops := hi - lo
	var b APIBounds
	b.AddFiles = ceilDiv(importBytes(lo, hi), marketoImportMax)
	// Each import: one submit and at least one status read that sees it
	// Complete.
	b.AddMin = 2 * b.AddFiles
	// Removes: one DELETE per 300 lead ids, plus a bulk extract of the list
	// to learn the lead ids that imports do not return.
	b.RemoveMin = ceilDiv(ops, marketoBatch) + extractMinCalls
	// Segment: one import per batch (no status reads); a Get Leads lookup
	// and a DELETE per batch of removes.
	b.AddSegment = ceilDiv(ops, segmentBatchMax)
	b.AddSegmentDefault = ceilDiv(ops, segmentBatchDefault)
	b.RemoveSegment = 2 * ceilDiv(ops, segmentBatchMax)
	b.RemoveSegmentDefault = 2 * ceilDiv(ops, segmentBatchDefault)
	perCall := 20 * time.Second / marketoCallsPer20s
	b.AddRateBound = time.Duration(b.AddMin) * perCall
	if rowsPerSec > 0 {
		b.AddImportTime = time.Duration(float64(ops) / float64(rowsPerSec) * float64(time.Second))
	}
	b.AddBound = max(b.AddRateBound, b.AddImportTime)
	b.RemoveBound = time.Duration(b.RemoveMin) * perCall
	return b
}

// waitWindow waits until the emulator's rate window has room for need calls,
// so that a new process (whose limiter cannot know what an earlier process
// spent) starts on an instance that is not already at its limit, as a
// scheduled run 15 minutes after the last one would.
func waitWindow(ctx context.Context, em *Emu, need int64) error {
	need = min(need, marketoCallsPer20s)
	for em.Stats().CallsLast20s+need > marketoCallsPer20s {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}

// apiPhase is one measured run of the API case.
type apiPhase struct {
	m     Measurement
	calls Calls
	cmd   Cmd
}

// caseAPI is case 2: adds and removes of ops people against the emulator
// with Marketo's real limits.
func (b *Bench) caseAPI(ctx context.Context) (Section, error) {
	ops := b.opt.Ops
	const base = 500 // members that stay, so that the removes' model is not empty
	bounds := ComputeAPIBounds(base, base+ops, b.opt.ImportRS)
	sec := Section{
		Title: fmt.Sprintf("2. API economy: %s adds and %s removes", fmtInt(ops), fmtInt(ops)),
		Text: []string{
			fmt.Sprintf("The emulator runs with Marketo's real limits (100 calls per rolling 20 s, 10 concurrent calls, 50,000 calls a day) "+
				"and imports %s rows/s; listsync is configured with calls_per_20s %d and max_concurrency %d. "+
				"A list holding %d members gets %s people added in one run, then the same %s removed in the next (their lead ids unknown, as after any bulk import). "+
				"Calls are the emulator's count; each run starts on an instance whose rate window has room, as a scheduled run would. "+
				"The adds and removes are repeated %d times, each run a new process sharing one state store: the first adds run is the first bulk import the store has seen, so listsync does not know the instance's import rate and reads the import's status once to measure it; "+
				"every later run starts from the rate the run before it measured and kept in the state store (the situation of a scheduled sync), and is the row the goal is checked on.",
				fmtInt(int64(b.opt.ImportRS)), b.opt.Calls20s, b.opt.MaxConc, base, fmtInt(ops), fmtInt(ops), b.opt.APIReps),
			fmt.Sprintf("**Minimum** (any client): adds = %d import file(s) of at most 10 MB × (1 submit + 1 status read) = %d; "+
				"removes = ⌈%s/300⌉ DELETEs + %d calls of one bulk extract (create, enqueue, status, file) = %d. "+
				"**Segment** (`marketo-static-lists`: one bulk import per batch, no status reads; a Get Leads lookup plus a DELETE per batch; batch_size at most 300, default 250): "+
				"adds ⌈%s/300⌉ = %d (%d at the default 250), removes 2 × ⌈%s/300⌉ = %d (%d at 250). "+
				"**Bound**: removes need %d calls at Marketo's 5 calls/s = %s; adds wait for Marketo to import %s rows at %s rows/s = %s.",
				bounds.AddFiles, bounds.AddMin, fmtInt(ops), extractMinCalls, bounds.RemoveMin,
				fmtInt(ops), bounds.AddSegment, bounds.AddSegmentDefault, fmtInt(ops), bounds.RemoveSegment, bounds.RemoveSegmentDefault,
				bounds.RemoveMin, fmtDur(bounds.RemoveBound), fmtInt(ops), fmtInt(int64(b.opt.ImportRS)), fmtDur(bounds.AddBound)),
		},
	}
	reps := b.opt.APIReps
	w, err := b.people(ctx, "people_api", base+ops)
	if err != nil {
		return sec, err
	}
	em, err := StartEmu(emulator.Config{ImportRowsPerSec: b.opt.ImportRS, Latency: b.opt.Latency})
	if err != nil {
		return sec, err
	}
	defer em.Close()
	s := &Setup{
		Dir: filepath.Join(b.work, "api"), WarehouseDSN: b.opt.PGURL,
		StateDriver: "sqlite", StateDSN: "state.db", MarketoURL: em.URL,
		CallsPer20s: b.opt.Calls20s, MaxConcurrency: b.opt.MaxConc, DailyQuota: emulator.DailyQuotaDefault,
		Syncs: []SyncConf{{Name: "api", Model: "models/api.sql", ListName: "API economy", Fields: benchFields, SQL: w.ModelSQL(0, base)}},
	}
	if err := s.WriteConfig(); err != nil {
		return sec, err
	}
	if err := b.setupRun(ctx, s, "api"); err != nil {
		return sec, err
	}
	listID := int64(0)
	for _, l := range em.StaticLists() {
		if l.Name == "API economy" {
			listID = l.ID
		}
	}
	if listID == 0 {
		return sec, fmt.Errorf("the setup run did not create the list %q", "API economy")
	}
	measure := func(model string, want int, need int64, args ...string) (apiPhase, error) {
		if err := s.SetModel("api", model); err != nil {
			return apiPhase{}, err
		}
		if err := waitWindow(ctx, em, need); err != nil {
			return apiPhase{}, err
		}
		before := em.Stats()
		m, c, err := b.listsync(ctx, s, "run", append([]string{"api", "--json"}, args...)...)
		if err != nil {
			return apiPhase{}, err
		}
		p := apiPhase{m: m, calls: Since(before, em.Stats()), cmd: c}
		if got := len(em.ListMemberIDs(listID)); got != want {
			return p, fmt.Errorf("after `%s` the list has %d members, want %d", c.String(), got, want)
		}
		return p, nil
	}
	var adds, removes []apiPhase
	for i := range reps {
		a, err := measure(w.ModelSQL(0, base+ops), int(base+ops), bounds.AddMin+5)
		if err != nil {
			return sec, err
		}
		b.logf("  adds %d: %s, %d calls (%s)", i+1, fmtDur(a.m.Wall), a.calls.Total, a.calls.endpointSummary())
		r, err := measure(w.ModelSQL(0, base), int(base), bounds.RemoveMin+5, "--allow-removals")
		if err != nil {
			return sec, err
		}
		b.logf("  removes %d: %s, %d calls (%s)", i+1, fmtDur(r.m.Wall), r.calls.Total, r.calls.endpointSummary())
		adds, removes = append(adds, a), append(removes, r)
	}
	tbl := &Table{Header: []string{"run", "listsync calls", "minimum", "listsync / minimum", "goal ≤ 1.05×",
		"Segment's calls (batch 300)", "listsync / Segment", "goal ≤ 55% (removes)", "606 + 615", "wall", "bound", "wall / bound", "goal ≤ 1.15×", "peak RSS", "reproduce"}}
	row := func(name string, ps []apiPhase, minimum, segment int64, bound time.Duration, segGoal bool) {
		ms := make([]Measurement, len(ps))
		calls := make([]int64, len(ps))
		var rej int64
		for i, p := range ps {
			ms[i], calls[i] = p.m, p.calls.Total
			rej += p.calls.Rejections606615()
		}
		sum := Summarize(ms)
		c := Median(calls)
		overMin := float64(c) / float64(minimum)
		overSeg := float64(c) / float64(segment)
		overBound := sum.Wall.Seconds() / bound.Seconds()
		segCell := "–"
		if segGoal {
			segCell = verdict(overSeg <= apiGoalSegmentRemove)
		}
		tbl.Rows = append(tbl.Rows, []string{
			name, fmtInt(c), fmtInt(minimum), fmt.Sprintf("%.3f×", overMin), verdict(overMin <= apiGoalOverMinimum),
			fmtInt(segment), fmt.Sprintf("%.0f%%", 100*overSeg), segCell, fmt.Sprintf("%d %s", rej, verdict(rej == 0)),
			fmtSpread(sum), fmtDur(bound), fmt.Sprintf("%.2f×", overBound), verdict(overBound <= apiGoalWallOverBound),
			fmtMB(sum.MaxRSS), b.reproduce("--cases api", fmt.Sprintf("--ops %d", ops)),
		})
		sec.Notes = append(sec.Notes, fmt.Sprintf("%s calls by endpoint (last repeat): %s. Command: `%s`.", name, ps[len(ps)-1].calls.endpointSummary(), ps[len(ps)-1].cmd.String()))
	}
	// The first adds run is the store's first import: the rate unknown.
	// Later ones start from the rate kept by the run before.
	if len(adds) > 1 {
		row(fmt.Sprintf("%s adds, first import (rate unknown)", fmtInt(ops)), adds[:1], bounds.AddMin, bounds.AddSegment, bounds.AddBound, false)
		row(fmt.Sprintf("%s adds (rate kept)", fmtInt(ops)), adds[1:], bounds.AddMin, bounds.AddSegment, bounds.AddBound, false)
	} else {
		row(fmt.Sprintf("%s adds, first import (rate unknown)", fmtInt(ops)), adds, bounds.AddMin, bounds.AddSegment, bounds.AddBound, false)
	}
	row(fmt.Sprintf("%s removes", fmtInt(ops)), removes, bounds.RemoveMin, bounds.RemoveSegment, bounds.RemoveBound, true)
	// Both together, as one sync that adds and removes would spend them
	// (the runs with the rate kept, when there are any).
	from := 0
	if len(adds) > 1 {
		from = 1
	}
	both := make([]apiPhase, 0, len(adds))
	for i := from; i < len(adds); i++ {
		both = append(both, apiPhase{
			m:     Measurement{Wall: adds[i].m.Wall + removes[i].m.Wall, MaxRSS: max(adds[i].m.MaxRSS, removes[i].m.MaxRSS)},
			calls: Calls{Total: adds[i].calls.Total + removes[i].calls.Total, Rejected: mergeCounts(adds[i].calls.Rejected, removes[i].calls.Rejected), ByEndpoint: mergeCounts(adds[i].calls.ByEndpoint, removes[i].calls.ByEndpoint)},
			cmd:   removes[i].cmd,
		})
	}
	row("adds + removes", both, bounds.AddMin+bounds.RemoveMin, bounds.AddSegment+bounds.RemoveSegment, bounds.AddBound+bounds.RemoveBound, false)
	sec.Notes = sec.Notes[:len(sec.Notes)-1] // the combined row repeats the removes' command
	sec.Tables = []*Table{tbl}
	return sec, nil
}

func mergeCounts(a, b map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(a)+len(b))
	for k, v := range a {
		out[k] += v
	}
	for k, v := range b {
		out[k] += v
	}
	return out
}
