package worker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/listsync/listsync/internal/pgtest"
	"github.com/listsync/listsync/internal/state"
	"github.com/listsync/listsync/internal/state/postgres"
	"github.com/listsync/listsync/internal/state/sqlite"
	"github.com/listsync/listsync/internal/worker"
)

func sqliteStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "state.db")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// startWorker runs w until the returned stop function is called; stop
// returns how long Run took to return after the cancellation.
func startWorker(t *testing.T, w *worker.Worker) (stop func() time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	var took time.Duration
	stop = func() time.Duration {
		once.Do(func() {
			start := time.Now()
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(30 * time.Second):
				t.Fatal("worker did not stop within 30s")
			}
			took = time.Since(start)
		})
		return took
	}
	t.Cleanup(func() { stop() })
	return stop
}

// recordingRun returns a Job.Run that records each run in the store so
// that the run history is real.
func recordingRun(st state.Store, name string, body func(ctx context.Context) error) func(ctx context.Context) (state.Run, error) {
	return func(ctx context.Context) (state.Run, error) {
		r, err := st.StartRun(ctx, state.Run{Sync: name, Trigger: state.TriggerSchedule, StartedAt: time.Now()})
		if err != nil {
			return r, err
		}
		err = body(ctx)
		r.EndedAt = time.Now()
		r.Status = state.RunSucceeded
		r.RowsRead, r.AddsConfirmed, r.AddsPlanned = 3, 2, 2
		if err != nil {
			r.Status, r.Error = state.RunFailed, err.Error()
			if errors.Is(err, context.Canceled) {
				r.Status = state.RunCanceled
			}
		}
		if ferr := st.FinishRun(context.WithoutCancel(ctx), r); ferr != nil {
			return r, ferr
		}
		return r, err
	}
}

// TestCronTicks runs a job on a real one-second schedule and checks that
// the ticks fire, run, and are counted.
func TestCronTicks(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	var runs atomic.Int64
	w, err := worker.New(worker.Config{
		Store:  st,
		Logger: zaptest.NewLogger(t),
		Jobs: []worker.Job{{Name: "every_second", Schedule: "@every 1s", Run: recordingRun(st, "every_second", func(context.Context) error {
			runs.Add(1)
			return nil
		})}, {Name: "manual_only", Run: func(context.Context) (state.Run, error) {
			t.Error("a job without a schedule ran")
			return state.Run{}, nil
		}}},
	})
	require.NoError(t, err)
	stop := startWorker(t, w)
	require.Eventually(t, func() bool { return runs.Load() >= 2 }, 10*time.Second, 20*time.Millisecond)
	stop()
	got := runs.Load()
	require.Equal(t, float64(got), metric(t, w.Metrics(), "listsync_runs_total", "sync", "every_second", "status", "succeeded"))
	require.Positive(t, metric(t, w.Metrics(), "listsync_last_success_timestamp_seconds", "sync", "every_second"))
	require.Equal(t, 2*float64(got), metric(t, w.Metrics(), "listsync_adds_total", "sync", "every_second"))
	hist, err := st.ListRuns(t.Context(), "every_second", 0)
	require.NoError(t, err)
	require.Len(t, hist, int(got))
}

// TestSkipWhileRunning checks that a tick arriving while the previous run
// of the same sync still runs is skipped and recorded, and that a slow sync
// does not hold another one.
func TestSkipWhileRunning(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	release := make(chan struct{})
	var slowRuns, fastRuns atomic.Int64
	w, err := worker.New(worker.Config{
		Store:       st,
		Logger:      zaptest.NewLogger(t),
		MaxParallel: 2,
		Jobs: []worker.Job{
			{Name: "slow", Schedule: "@every 1s", Run: recordingRun(st, "slow", func(ctx context.Context) error {
				slowRuns.Add(1)
				select {
				case <-release:
				case <-ctx.Done():
				}
				return nil
			})},
			{Name: "fast", Schedule: "@every 1s", Run: recordingRun(st, "fast", func(context.Context) error {
				fastRuns.Add(1)
				return nil
			})},
		},
	})
	require.NoError(t, err)
	stop := startWorker(t, w)
	require.Eventually(t, func() bool {
		return metric(t, w.Metrics(), "listsync_ticks_skipped_total", "sync", "slow", "reason", worker.SkipStillRunning) >= 2
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, int64(1), slowRuns.Load(), "the slow sync must not run twice at once")
	require.GreaterOrEqual(t, fastRuns.Load(), int64(2), "the slow sync must not hold the fast one")

	// The skips are in the run history, each once, with no counts, and
	// the run they made way for is still running.
	hist, err := st.ListRuns(t.Context(), "slow", 0)
	require.NoError(t, err)
	var skipped []state.Run
	running := 0
	for _, r := range hist {
		switch r.Status {
		case state.RunSkipped:
			skipped = append(skipped, r)
		case state.RunRunning:
			running++
		}
	}
	require.Equal(t, 1, running, "a skipped tick must not abandon the run in progress: %+v", hist)
	require.GreaterOrEqual(t, len(skipped), 2)
	ticks := map[time.Time]bool{}
	for _, r := range skipped {
		require.Equal(t, worker.SkipStillRunning, r.SkipReason())
		require.Equal(t, state.TriggerSchedule, r.Trigger)
		require.Zero(t, r.RowsRead+r.AddsConfirmed+r.APICalls)
		require.False(t, ticks[r.StartedAt], "tick %s recorded twice", r.StartedAt)
		ticks[r.StartedAt] = true
	}

	// The skips show on the status page too, but not as the last run.
	rec := httpGet(t, w.Handler(), "/")
	require.Contains(t, rec, `data-sync="slow"`)
	require.Contains(t, rec, "running")
	require.Contains(t, rec, `<span class="status skipped">skipped</span>`)
	require.Contains(t, rec, "still_running: the previous run of the sync was still running")
	row := regexp.MustCompile(`(?s)<tr data-sync="slow">.*?</tr>`).FindString(rec)
	require.NotEmpty(t, row)
	require.NotContains(t, row, "skipped</span>", "a skipped tick is not the sync's last run")
	require.Contains(t, row, "last ", "the row shows when a tick was last skipped")
	close(release)
	stop()
}

// TestTwoWorkersShareTicks runs two workers against one Postgres state
// store on a one-second schedule: every tick runs exactly once across them.
func TestTwoWorkersShareTicks(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	open := func() *postgres.Store {
		st, err := postgres.Open(t.Context(), postgres.Config{DSN: dsn})
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	var mu sync.Mutex
	bySecond := map[int64][]string{}
	newWorker := func(id string, st *postgres.Store) *worker.Worker {
		w, err := worker.New(worker.Config{
			Store:  st,
			Logger: zaptest.NewLogger(t).Named(id),
			Jobs: []worker.Job{{Name: "shared", Schedule: "@every 1s", Run: recordingRun(st, "shared", func(context.Context) error {
				mu.Lock()
				defer mu.Unlock()
				sec := time.Now().Unix()
				bySecond[sec] = append(bySecond[sec], id)
				return nil
			})}},
		})
		require.NoError(t, err)
		return w
	}
	stA := startWorker(t, newWorker("a", open()))
	stB := startWorker(t, newWorker("b", open()))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(bySecond) >= 4
	}, 15*time.Second, 20*time.Millisecond)
	stA()
	stB()
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for sec, ids := range bySecond {
		require.Len(t, ids, 1, "tick at %d ran on %v", sec, ids)
		total += len(ids)
	}
	st := open()
	runs, err := st.ListRuns(t.Context(), "shared", 0)
	require.NoError(t, err)
	ran := 0
	ticks := map[time.Time]bool{}
	for _, r := range runs {
		if r.Status != state.RunSkipped {
			ran++
			continue
		}
		// A tick skipped (say, at shutdown) is recorded by one worker.
		require.False(t, ticks[r.StartedAt], "skipped tick %s recorded twice", r.StartedAt)
		ticks[r.StartedAt] = true
	}
	require.Equal(t, total, ran, "the store holds one run per tick")
}

// TestShutdownLetsTheRunFinish cancels the worker while a run is in the
// middle of a batch: the run finishes and commits before Run returns.
func TestShutdownLetsTheRunFinish(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	started := make(chan struct{})
	var committed atomic.Bool
	var once sync.Once
	w, err := worker.New(worker.Config{
		Store:           st,
		Logger:          zaptest.NewLogger(t),
		ShutdownTimeout: 10 * time.Second,
		Jobs: []worker.Job{{Name: "batch", Schedule: "@every 1s", Run: recordingRun(st, "batch", func(ctx context.Context) error {
			first := false
			once.Do(func() { first = true; close(started) })
			if !first {
				return nil
			}
			time.Sleep(400 * time.Millisecond) // the batch in flight
			committed.Store(true)
			return ctx.Err()
		})}},
	})
	require.NoError(t, err)
	stop := startWorker(t, w)
	<-started
	took := stop()
	require.True(t, committed.Load(), "the batch in flight was not finished")
	require.Less(t, took, 5*time.Second)
	runs, err := st.ListRuns(t.Context(), "batch", 0)
	require.NoError(t, err)
	require.NotEmpty(t, runs)
	require.Equal(t, state.RunSucceeded, runs[len(runs)-1].Status, "the first run ended normally")
}

// TestShutdownCancelsAfterTimeout checks the bound: a run that does not
// finish within ShutdownTimeout is cancelled, may still commit on a context
// that outlives the cancellation, and the worker exits within the bound.
func TestShutdownCancelsAfterTimeout(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	started := make(chan struct{})
	var committedAfterCancel atomic.Bool
	var once sync.Once
	w, err := worker.New(worker.Config{
		Store:           st,
		Logger:          zaptest.NewLogger(t),
		ShutdownTimeout: 300 * time.Millisecond,
		StopTimeout:     5 * time.Second,
		Jobs: []worker.Job{{Name: "stuck", Schedule: "@every 1s", Run: recordingRun(st, "stuck", func(ctx context.Context) error {
			once.Do(func() { close(started) })
			<-ctx.Done()
			// The confirmed batch is committed on a context that survives
			// the cancellation, as the engine does.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			if _, err := st.CountMembers(cctx, "stuck"); err == nil {
				committedAfterCancel.Store(true)
			}
			return ctx.Err()
		})}},
	})
	require.NoError(t, err)
	stop := startWorker(t, w)
	<-started
	took := stop()
	require.True(t, committedAfterCancel.Load())
	require.GreaterOrEqual(t, took, 300*time.Millisecond)
	require.Less(t, took, 5*time.Second)
	require.Equal(t, 1.0, metric(t, w.Metrics(), "listsync_runs_total", "sync", "stuck", "status", "canceled"))
}

// TestLockedElsewhereIsASkip: a run that finds the sync locked by another
// process counts as a skipped tick, not a failure.
func TestLockedElsewhereIsASkip(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	var calls atomic.Int64
	w, err := worker.New(worker.Config{
		Store: st, Logger: zaptest.NewLogger(t),
		Jobs: []worker.Job{{Name: "locked", Schedule: "@every 1s", Run: func(context.Context) (state.Run, error) {
			calls.Add(1)
			return state.Run{}, fmt.Errorf("running sync: %w", state.ErrLocked)
		}}},
	})
	require.NoError(t, err)
	stop := startWorker(t, w)
	require.Eventually(t, func() bool { return calls.Load() >= 1 }, 10*time.Second, 20*time.Millisecond)
	stop()
	require.GreaterOrEqual(t, metric(t, w.Metrics(), "listsync_ticks_skipped_total", "sync", "locked", "reason", worker.SkipLocked), 1.0)
	require.Equal(t, 0.0, metric(t, w.Metrics(), "listsync_runs_total", "sync", "locked", "status", "failed"))
}

func TestNewRejectsBadJobs(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	run := func(context.Context) (state.Run, error) { return state.Run{}, nil }
	for name, cfg := range map[string]worker.Config{
		"no store":     {Jobs: []worker.Job{{Name: "a", Run: run}}},
		"bad schedule": {Store: st, Jobs: []worker.Job{{Name: "a", Schedule: "every day", Run: run}}},
		"duplicate":    {Store: st, Jobs: []worker.Job{{Name: "a", Run: run}, {Name: "a", Run: run}}},
		"no run":       {Store: st, Jobs: []worker.Job{{Name: "a"}}},
	} {
		_, err := worker.New(cfg)
		require.Error(t, err, name)
	}
}

func TestListenError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	w, err := worker.New(worker.Config{Store: sqliteStore(t), Listen: ln.Addr().String()})
	require.NoError(t, err)
	err = w.Run(t.Context())
	require.ErrorContains(t, err, "listening on")
}

// TestHTTPEndpoints serves the worker on a real port and checks each
// endpoint.
func TestHTTPEndpoints(t *testing.T) {
	t.Parallel()
	st := sqliteStore(t)
	addrCh := make(chan net.Addr, 1)
	readyErr := atomic.Pointer[error]{}
	w, err := worker.New(worker.Config{
		Store:    st,
		Listen:   "127.0.0.1:0",
		OnListen: func(a net.Addr) { addrCh <- a },
		Ready: func(context.Context) error {
			if p := readyErr.Load(); p != nil {
				return *p
			}
			return nil
		},
		Jobs: []worker.Job{{Name: "trial_users", Schedule: "*/15 * * * *", Describe: "analytics → list 1234 (mirror)", Run: recordingRun(st, "trial_users", func(context.Context) error { return nil })}},
	})
	require.NoError(t, err)
	// One real run in the history.
	_, err = recordingRun(st, "trial_users", func(context.Context) error { return nil })(t.Context())
	require.NoError(t, err)
	w.Metrics().ObserveAPICall("POST /rest/v1/lists/{id}/leads.json", "ok")
	w.Metrics().ObserveAPICall("GET /identity/oauth/token", "ok")

	stop := startWorker(t, w)
	base := "http://" + (<-addrCh).String()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	require.Eventually(t, func() bool { code, _ := get("/readyz"); return code == 200 }, 5*time.Second, 10*time.Millisecond)
	code, body := get("/healthz")
	require.Equal(t, 200, code)
	require.Equal(t, "ok\n", body)

	boom := errors.New("state store unreachable")
	readyErr.Store(&boom)
	code, body = get("/readyz")
	require.Equal(t, 503, code)
	require.Contains(t, body, "state store unreachable")
	readyErr.Store(nil)

	code, body = get("/metrics")
	require.Equal(t, 200, code)
	for _, want := range []string{
		`listsync_runs_total{status="succeeded",sync="trial_users"} 0`,
		`listsync_marketo_api_calls_total{code="ok",endpoint="POST /rest/v1/lists/{id}/leads.json"} 1`,
		`listsync_marketo_daily_quota_used 1`,
		`listsync_run_duration_seconds_count{sync="trial_users"} 0`, "listsync_rows_read_total",
		"listsync_adds_total", "listsync_removes_total", "listsync_rejects_total", "go_goroutines",
	} {
		require.Contains(t, body, want)
	}

	code, body = get("/")
	require.Equal(t, 200, code)
	require.Contains(t, body, "trial_users")
	require.Contains(t, body, "*/15 * * * *")
	require.Contains(t, body, "analytics → list 1234 (mirror)")
	require.Contains(t, body, `<span class="status succeeded">succeeded</span>`)
	require.NotContains(t, body, "<script")

	code, _ = get("/nope")
	require.Equal(t, 404, code)
	stop()
}

func httpGet(t *testing.T, h http.Handler, path string) string {
	t.Helper()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	resp, err := http.Get("http://" + ln.Addr().String() + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestQuotaGaugeResetsAtMarketoMidnight(t *testing.T) {
	t.Parallel()
	cst := time.FixedZone("CST", -6*60*60)
	now := time.Date(2025, 5, 1, 23, 59, 0, 0, cst)
	m := worker.NewMetrics(func() time.Time { return now })
	m.ObserveAPICall("GET /rest/v1/lists/{id}.json", "ok")
	m.ObserveAPICall("GET /rest/v1/lists/{id}.json", "606")
	m.ObserveAPICall("GET /identity/oauth/token", "ok")
	require.Equal(t, 2.0, metric(t, m, "listsync_marketo_daily_quota_used"))
	now = now.Add(2 * time.Minute)
	m.ObserveAPICall("GET /rest/v1/lists/{id}.json", "ok")
	require.Equal(t, 1.0, metric(t, m, "listsync_marketo_daily_quota_used"))
	require.Equal(t, 2.0, metric(t, m, "listsync_marketo_api_calls_total", "endpoint", "GET /rest/v1/lists/{id}.json", "code", "ok"))
}

// metric returns the value of the series of name with the given label
// pairs, failing when there is no such series.
func metric(t *testing.T, m *worker.Metrics, name string, labels ...string) float64 {
	t.Helper()
	fams, err := m.Registry.Gather()
	require.NoError(t, err)
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, mm := range f.GetMetric() {
			if len(mm.GetLabel()) != len(want) {
				continue
			}
			for _, l := range mm.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			switch {
			case mm.Counter != nil:
				return mm.GetCounter().GetValue()
			case mm.Gauge != nil:
				return mm.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}
