package sync_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	stdsync "sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/marketo/emulator"
	"github.com/listsync/listsync/internal/pgtest"
	"github.com/listsync/listsync/internal/state"
	"github.com/listsync/listsync/internal/state/sqlite"
	listsync "github.com/listsync/listsync/internal/sync"
	whpg "github.com/listsync/listsync/internal/warehouse/postgres"
)

// soakSpeed is how much faster than real time the emulator's clock runs in
// the fault soak, so that its 20 s rate window, token lifetimes, bulk jobs
// and quota days pass in milliseconds; the client's rate window is scaled to
// match.
const soakSpeed = 25

// fastClock runs soakSpeed times faster than real time, and can jump ahead.
type fastClock struct {
	start time.Time
	mu    stdsync.Mutex
	skip  time.Duration
}

func (f *fastClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.start.Add(f.skip + time.Since(f.start)*soakSpeed)
}

// Advance jumps the clock ahead by d.
func (f *fastClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.skip += d
}

// TestFaultSoak runs a sync again and again against an emulator with every
// fault on at a high rate (30% of calls fail with 604, 608, 611, 713, HTTP
// 502/503 or answer slowly; 5% meet an expired token besides tokens that
// live 3 real seconds; 30% of bulk imports fail), tight limits (10 calls per
// 20 s, 2 at once, which the client is given and fills) and a daily quota
// of 25 calls that runs out in the middle of runs. The model changes between
// eight rounds. Every round converges: the list equals the model, names
// included, and the ledger agrees. Not one call is refused for listsync's
// own pacing (no 606, no 615), and each exhausted quota fails its run with
// an error and a run record that say so and what is left, after which the
// next Marketo day resumes the work.
func TestFaultSoak(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("soaks for several seconds")
	}
	ctx := t.Context()
	const (
		callsPer20s = 10
		concurrency = 2
		quota       = 25
	)
	fc := &fastClock{start: time.Now()}
	em := emulator.New(emulator.Config{ClientID: "id", ClientSecret: "secret", Now: fc.Now,
		TokenTTL: 75 * time.Second, CallsPer20s: callsPer20s, MaxConcurrency: concurrency, DailyQuota: quota,
		ImportRowsPerSec: 20_000, ExportProcessingTime: 2 * time.Second,
		Faults: emulator.Faults{Rate: 0.3, Seed: 8, SlowDelay: 20 * time.Millisecond,
			TokenExpiryRate: 0.05, ImportFailureRate: 0.3}})
	ts := httptest.NewServer(em)
	defer func() { ts.Close(); _ = em.Close() }()
	client, err := marketo.NewClient(marketo.Config{Endpoint: ts.URL, ClientID: "id", ClientSecret: "secret",
		HTTPClient: ts.Client(), TempDir: t.TempDir(),
		// Within the instance's limits: listsync must never be the cause
		// of a 606 or 615.
		CallsPer20s: callsPer20s, MaxConcurrency: concurrency, RateWindow: 20 * time.Second / soakSpeed,
		DailyQuota:  -1, // Marketo's 607 is what stops the runs here
		BackoffBase: 2 * time.Millisecond, BackoffMax: 40 * time.Millisecond,
		ImportPollInitial: 2 * time.Millisecond, ImportPollMax: 20 * time.Millisecond,
		ExtractPollInitial: 2 * time.Millisecond, ExtractPollMax: 20 * time.Millisecond,
		BulkAddMinRows: 950, ExtractMinRows: 100_000})
	require.NoError(t, err)

	dsn := pgtest.DSN(t)
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, `CREATE TABLE people (email text PRIMARY KEY, first_name text)`)
	require.NoError(t, err)
	wh, err := whpg.New(ctx, whpg.Config{DSN: dsn})
	require.NoError(t, err)
	defer wh.Close()
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "state.db")})
	require.NoError(t, err)
	defer store.Close()
	engine, err := listsync.NewEngine(listsync.EngineConfig{Store: store, Marketo: client, TempDir: t.TempDir(),
		ChunkSize: 1000, Backoff: state.Backoff{Base: time.Millisecond}})
	require.NoError(t, err)

	list := em.CreateStaticList("Soaked", em.CreateFolder("F"))
	// The list starts with 300 strays and 700 of the model's people.
	var seeded []map[string]string
	for _, k := range append(seq("stray", 300), seq("s", 700)...) {
		seeded = append(seeded, map[string]string{"email": k})
	}
	em.AddListMembers(list, em.UpsertLeads(seeded)...)
	spec := listsync.Spec{Name: "soak", Warehouse: wh, Model: "models/soak.sql",
		SQL: "SELECT email, first_name FROM people", List: marketo.ListRef{ID: list},
		Fields: map[string]string{"firstName": "first_name"}, MaxRemoveFraction: 1}

	// The busiest rate window seen, to show that the limits bind.
	var busiest int64
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(time.Millisecond):
				busiest = max(busiest, em.Stats().CallsLast20s)
			}
		}
	}()

	rng := rand.New(rand.NewPCG(8, 8))
	model := map[string]string{}
	for i, k := range seq("s", 4000) {
		model[k] = "N" + strconv.Itoa(i)
	}
	next := 0
	var quotaRuns, failedRuns, runs int
	for round := 1; round <= 8; round++ {
		if round > 1 {
			keys := slices.Sorted(func(yield func(string) bool) {
				for k := range model {
					if !yield(k) {
						return
					}
				}
			})
			rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
			for _, k := range keys[:300] {
				delete(model, k)
			}
			for _, k := range keys[300:500] {
				model[k] = fmt.Sprintf("R%d", round)
			}
			for range 400 {
				model[fmt.Sprintf("t%05d@example.com", next)] = "T"
				next++
			}
		}
		rows := make([][]any, 0, len(model))
		for k, v := range model {
			rows = append(rows, []any{k, v})
		}
		_, err := conn.Exec(ctx, `TRUNCATE people`)
		require.NoError(t, err)
		_, err = conn.CopyFrom(ctx, pgx.Identifier{"people"}, []string{"email", "first_name"}, pgx.CopyFromRows(rows))
		require.NoError(t, err)

		for attempt := 1; ; attempt++ {
			require.LessOrEqual(t, attempt, 20, "round %d does not converge", round)
			runs++
			run, err := engine.Run(ctx, spec, listsync.RunOptions{})
			if err == nil {
				p, err := engine.Plan(ctx, spec)
				require.NoError(t, err)
				if p.Adds+p.Updates+p.Removes+p.Deferred == 0 {
					t.Logf("round %d converged at attempt %d", round, attempt)
					break
				}
				t.Logf("round %d attempt %d succeeded with %d rows rejected; retrying them", round, attempt, run.Rejected)
				continue
			}
			failedRuns++
			require.Equal(t, state.RunFailed, run.Status)
			require.Equal(t, err.Error(), run.Error, "the run record carries the error")
			stored, lerr := store.ListRuns(ctx, spec.Name, 1)
			require.NoError(t, lerr)
			require.Equal(t, run.Error, stored[0].Error)
			if !errors.Is(err, marketo.ErrDailyQuota) {
				// A call that failed on every attempt: the next run resumes.
				t.Logf("round %d attempt %d failed: %v", round, attempt, err)
				continue
			}
			quotaRuns++
			require.ErrorContains(t, err, "daily API quota exhausted")
			require.Contains(t, run.Error, "left for the next run")
			t.Logf("round %d attempt %d ran out of quota (+%d ~%d -%d confirmed): %v", round, attempt,
				run.AddsConfirmed, run.UpdatesConfirmed, run.RemovesConfirmed, err)
			// A run on the same Marketo day fails at once, saying so.
			run, err = engine.Run(ctx, spec, listsync.RunOptions{})
			runs++
			require.ErrorIs(t, err, marketo.ErrDailyQuota)
			require.Zero(t, run.AddsConfirmed+run.UpdatesConfirmed+run.RemovesConfirmed)
			fc.Advance(24 * time.Hour) // the next Marketo day
		}
		keys := make([]string, 0, len(model))
		for k := range model {
			keys = append(keys, k)
		}
		e := &env{t: t, ctx: ctx, em: em, store: store}
		e.requireConverged(spec.Name, list, keys...)
		for _, l := range em.ListMembers(list) {
			require.Equal(t, model[l.Email], l.Fields["firstName"], "the name of %s", l.Email)
		}
	}
	close(stopWatch)
	<-watched
	st := em.Stats()
	t.Logf("busiest rate window: %d calls", busiest)
	t.Logf("%d runs (%d failed, %d of them on the quota); calls %d, identity %d, rejected %v, imports %v, max concurrency %d",
		runs, failedRuns, quotaRuns, st.CallsTotal, st.IdentityCalls, st.Rejected, st.Imports, st.MaxConcurrencySeen)
	require.Zero(t, st.Rejected["606"], "listsync exceeded the rate limit it was given")
	require.Zero(t, st.Rejected["615"], "listsync exceeded the concurrency it was given")
	require.LessOrEqual(t, st.MaxConcurrencySeen, int64(concurrency))
	require.Positive(t, quotaRuns, "the quota ran out mid-run")
	require.Positive(t, st.Rejected["607"])
	require.Positive(t, st.Rejected["602"], "tokens expired under the client")
	require.Positive(t, st.Rejected["604"]+st.Rejected["608"]+st.Rejected["611"]+st.Rejected["713"]+st.Rejected["502"]+st.Rejected["503"],
		"faults were injected")
}
