package marketo_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/marketo/emulator"
)

// ledger plays the sync engine: it keeps what Marketo confirmed, and each
// run sends the difference between it and the intended membership.
type ledger struct {
	mu        sync.Mutex
	confirmed map[string]int64 // key -> lead id (0 when unknown)
}

func (l *ledger) diff(intended map[string]bool) (adds []marketo.Lead, removes []marketo.Member) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range slices.Sorted(maps.Keys(intended)) {
		if _, ok := l.confirmed[k]; !ok {
			adds = append(adds, marketo.Lead{Key: k, Values: []string{"F-" + k[:3]}})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(l.confirmed)) {
		if !intended[k] {
			removes = append(removes, marketo.Member{Key: k, LeadID: l.confirmed[k]})
		}
	}
	return adds, removes
}

func (l *ledger) commitAdds(_ context.Context, outs []marketo.Outcome) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range outs {
		if o.Status == marketo.Confirmed {
			l.confirmed[o.Key] = o.LeadID
		}
	}
	return nil
}

func (l *ledger) commitRemoves(_ context.Context, outs []marketo.Outcome) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range outs {
		if o.Status == marketo.Confirmed {
			delete(l.confirmed, o.Key)
		}
	}
	return nil
}

// workload is a list with members and the membership intended for it.
type workload struct {
	list     int64
	ledger   *ledger
	intended map[string]bool
}

// newWorkload seeds a list with keep+drop members (half of them known to the
// ledger with their lead ids, half by key only, as after a bulk import) and
// intends keep plus add new members.
func newWorkload(t *testing.T, em *emulator.Emulator, prefix string, keep, drop, add int) *workload {
	t.Helper()
	keys := emails(prefix+"-old", keep+drop)
	list, ids := seedList(t, em, keys)
	w := &workload{list: list, ledger: &ledger{confirmed: map[string]int64{}}, intended: map[string]bool{}}
	for i, k := range keys {
		id := ids[i]
		if i%2 == 0 {
			id = 0
		}
		w.ledger.confirmed[k] = id
		if i < keep {
			w.intended[k] = true
		}
	}
	for _, k := range emails(prefix+"-new", add) {
		w.intended[k] = true
	}
	return w
}

// run sends one round of adds and removes; it returns the first error.
func (w *workload) run(ctx context.Context, c *marketo.Client) error {
	adds, removes := w.ledger.diff(w.intended)
	var errs []error
	if len(adds) > 0 {
		errs = append(errs, c.AddToList(ctx, marketo.AddParams{ListID: w.list, LookupField: "email", FieldNames: []string{"firstName"}, Leads: adds}, w.ledger.commitAdds))
	}
	if len(removes) > 0 {
		errs = append(errs, c.RemoveFromList(ctx, marketo.RemoveParams{ListID: w.list, LookupField: "email", Members: removes}, w.ledger.commitRemoves))
	}
	return errors.Join(errs...)
}

func (w *workload) done() bool {
	adds, removes := w.ledger.diff(w.intended)
	return len(adds) == 0 && len(removes) == 0
}

func (w *workload) requireExact(t *testing.T, em *emulator.Emulator) {
	t.Helper()
	got := memberEmails(em, w.list)
	require.Len(t, got, len(w.intended))
	for k := range w.intended {
		if _, ok := got[k]; !ok {
			t.Fatalf("%s is not on the list", k)
		}
	}
	require.True(t, w.done(), "the ledger agrees with Marketo")
}

// TestAcceptanceTightLimits: the emulator's limits are set tight (10 calls
// per 20 s, 3 at once) and the client is configured to use all of it; four
// syncs share one client and run a large add and remove workload at once
// (REST adds, a bulk import, lookups and DELETEs). Not one call is refused
// with 606 or 615.
func TestAcceptanceTightLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, options{
		em: emulator.Config{CallsPer20s: 10, MaxConcurrency: 3, Latency: 25 * time.Millisecond},
		client: func(c *marketo.Config) {
			c.CallsPer20s = 10
			c.MaxConcurrency = 3
			c.BulkAddMinRows = 2000
			c.ExtractMinRows = 1_000_000
		},
	})
	ws := []*workload{
		newWorkload(t, b.em, "a", 200, 1800, 1500), // 5 REST batches, 6 lookups, 7 DELETEs
		newWorkload(t, b.em, "b", 100, 900, 2500),  // a bulk import
		newWorkload(t, b.em, "c", 0, 1200, 600),
		newWorkload(t, b.em, "d", 50, 50, 50),
	}
	b.em.ResetStats()
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.run(t.Context(), b.c); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	st := b.em.Stats()
	t.Logf("calls %d, rejected %v, max concurrency %d", st.CallsTotal, st.Rejected, st.MaxConcurrencySeen)
	require.Zero(t, st.Rejected["606"], "rate limit")
	require.Zero(t, st.Rejected["615"], "concurrency limit")
	require.LessOrEqual(t, st.MaxConcurrencySeen, int64(3))
	require.GreaterOrEqual(t, st.CallsTotal, int64(40), "the workload spans several rate windows")
	require.Greater(t, st.MaxConcurrencySeen, int64(1), "calls overlapped")
	for _, w := range ws {
		w.requireExact(t, b.em)
	}
}

// TestAcceptanceFaultsConverge: 20% of calls fail (604, 608, 611, 713, HTTP
// 502/503, slow answers), 5% of calls meet an expired token besides tokens
// that live 0.3 real seconds, a fifth of the imports fail. Three syncs share
// the client; repeated runs, as the engine makes them, converge to exactly
// the intended membership, and the ledger of confirmed outcomes agrees with
// Marketo.
func TestAcceptanceFaultsConverge(t *testing.T) {
	t.Parallel()
	b := setup(t, options{
		em: emulator.Config{
			TokenTTL: 30 * time.Second, // 0.3 s of real time
			Faults: emulator.Faults{
				Rate: 0.2, Seed: 42, SlowDelay: 20 * time.Millisecond,
				TokenExpiryRate: 0.05, ImportFailureRate: 0.2,
			},
		},
		client: func(c *marketo.Config) {
			c.BulkAddMinRows = 1000
			c.ExtractMinRows = 2000
		},
	})
	ws := []*workload{
		newWorkload(t, b.em, "a", 500, 3000, 800),  // REST adds; 1,500 lookups
		newWorkload(t, b.em, "b", 300, 5000, 3000), // a bulk import; removal ids from an extract
		newWorkload(t, b.em, "c", 0, 600, 2400),    // a bulk import; lookups
	}
	b.em.ResetStats()
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for run := 1; !w.done(); run++ {
				if run > 5 {
					t.Errorf("list %d did not converge in 5 runs", w.list)
					return
				}
				if err := w.run(t.Context(), b.c); err != nil {
					t.Logf("run %d: %v", run, err)
				}
			}
		}()
	}
	wg.Wait()
	for _, w := range ws {
		w.requireExact(t, b.em)
	}
	st := b.em.Stats()
	t.Logf("calls %d, identity %d, rejected %v, imports %v", st.CallsTotal, st.IdentityCalls, st.Rejected, st.Imports)
	require.Positive(t, st.Rejected["602"], "tokens expired under the client")
	require.Positive(t, st.Rejected["713"]+st.Rejected["604"]+st.Rejected["502"], "faults were injected")
	require.Zero(t, st.Rejected["606"])
	require.Zero(t, st.Rejected["615"])
}

// TestTokenSharedRefresh: after the token expires, many concurrent callers
// wait for one new token instead of fetching one each.
func TestTokenSharedRefresh(t *testing.T) {
	t.Parallel()
	b := setup(t, options{client: func(c *marketo.Config) { c.MaxConcurrency = 10 }})
	list := b.em.CreateStaticList("L", b.em.CreateFolder("F"))
	resolve := func() {
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := b.c.ResolveList(t.Context(), marketo.ListRef{ID: list})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	resolve()
	require.Equal(t, int64(1), b.em.Stats().IdentityCalls, "20 first calls share one token")
	b.em.ExpireTokens()
	resolve()
	st := b.em.Stats()
	require.Equal(t, int64(2), st.IdentityCalls, "one refresh after 602, not one per caller")
	require.Positive(t, st.Rejected["602"])
}

func TestBadCredentials(t *testing.T) {
	t.Parallel()
	b := setup(t, options{client: func(c *marketo.Config) { c.ClientSecret = "wrong" }})
	_, err := b.c.ResolveList(t.Context(), marketo.ListRef{ID: 1})
	require.ErrorIs(t, err, marketo.ErrAuth)
	require.NotContains(t, err.Error(), "wrong", "the secret is not repeated")
	require.Zero(t, b.em.Stats().CallsTotal)
}

// TestDailyQuota: Marketo's 607 ends the operation with ErrDailyQuota; the
// batches confirmed before it are committed, the rest are not reported.
func TestDailyQuota(t *testing.T) {
	t.Parallel()
	b := setup(t, options{
		speed: 1,
		em:    emulator.Config{DailyQuota: 5},
		client: func(c *marketo.Config) {
			c.MaxConcurrency = 1
			c.BulkAddMinRows = 1_000_000
		},
	})
	list := b.em.CreateStaticList("L", b.em.CreateFolder("F"))
	var col collector
	keys := emails("q", 3000)
	err := b.c.AddToList(t.Context(), marketo.AddParams{ListID: list, Leads: leadsFor(keys), FieldNames: []string{"firstName"}}, col.commit)
	require.ErrorIs(t, err, marketo.ErrDailyQuota)
	require.ErrorContains(t, err, "daily API quota exhausted")
	require.Len(t, col.outs, 600, "two batches of 300 were confirmed before the quota ran out")
	for _, o := range col.outs {
		require.Equal(t, marketo.Confirmed, o.Status)
	}
	require.Len(t, memberEmails(b.em, list), 600)
	require.Equal(t, int64(1), b.em.Stats().Rejected["607"], "607 is not retried")

	// The client's own count stops it before Marketo has to.
	b2 := setup(t, options{speed: 1, client: func(c *marketo.Config) {
		c.DailyQuota = 2
		c.MaxConcurrency = 1
	}})
	list2 := b2.em.CreateStaticList("L", b2.em.CreateFolder("F"))
	var col2 collector
	err = b2.c.AddToList(t.Context(), marketo.AddParams{ListID: list2, Leads: leadsFor(keys[:900]), FieldNames: []string{"firstName"}}, col2.commit)
	require.ErrorIs(t, err, marketo.ErrDailyQuota)
	require.Len(t, col2.outs, 300)
	require.Equal(t, int64(2), b2.em.Stats().CallsTotal)
}

// TestContextCancel: a cancelled context stops an operation between calls;
// nothing unsent is reported.
func TestContextCancel(t *testing.T) {
	t.Parallel()
	b := setup(t, options{client: func(c *marketo.Config) {
		c.MaxConcurrency = 1
		c.BulkAddMinRows = 1_000_000
	}})
	list := b.em.CreateStaticList("L", b.em.CreateFolder("F"))
	ctx, cancel := context.WithCancel(t.Context())
	var col collector
	err := b.c.AddToList(ctx, marketo.AddParams{ListID: list, Leads: leadsFor(emails("x", 1500)), FieldNames: []string{"firstName"}},
		func(ctx context.Context, outs []marketo.Outcome) error {
			cancel()
			return col.commit(ctx, outs)
		})
	require.ErrorIs(t, err, context.Canceled)
	require.Len(t, col.outs, 300)
	require.Len(t, memberEmails(b.em, list), 300)
}

// TestLimitsSharedWithOthers: when other integrations spend the instance's
// budget (here: the client is configured for more than the instance
// allows), Marketo answers 606 and 615; the client backs off, holds its other
// calls back, and still completes the work exactly.
func TestLimitsSharedWithOthers(t *testing.T) {
	t.Parallel()
	b := setup(t, options{
		em: emulator.Config{CallsPer20s: 4, MaxConcurrency: 2, Latency: 10 * time.Millisecond},
		client: func(c *marketo.Config) {
			c.CallsPer20s = 40
			c.MaxConcurrency = 5
			c.MaxAttempts = -1 // until the context ends
			c.BackoffMax = 100 * time.Millisecond
			c.BulkAddMinRows = 1_000_000
			c.ExtractMinRows = 1_000_000
		},
	})
	w := newWorkload(t, b.em, "o", 100, 1500, 1500)
	b.em.ResetStats()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	require.NoError(t, w.run(ctx, b.c))
	w.requireExact(t, b.em)
	st := b.em.Stats()
	t.Logf("calls %d, rejected %v", st.CallsTotal, st.Rejected)
	require.Positive(t, st.Rejected["606"]+st.Rejected["615"], "the instance pushed back")
}
