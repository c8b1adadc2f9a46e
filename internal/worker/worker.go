package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/listsync/listsync/internal/config"
	"github.com/listsync/listsync/internal/state"
)

// Defaults of [Config].
const (
	// MaxParallelDefault is how many runs may be in flight at once.
	MaxParallelDefault = 2
	// ShutdownTimeoutDefault is how long runs in flight may take to finish
	// after a shutdown begins, before they are cancelled.
	ShutdownTimeoutDefault = 30 * time.Second
	// StopTimeoutDefault is how long cancelled runs may take to commit what
	// Marketo confirmed and return.
	StopTimeoutDefault = 15 * time.Second
	// JobTimeoutDefault is a run's deadline when its job sets none.
	JobTimeoutDefault = time.Hour
	// RecentRunsDefault is how many runs the status page shows.
	RecentRunsDefault = 50
)

// Reasons of a skipped tick, the reason label of
// listsync_ticks_skipped_total.
const (
	// SkipStillRunning: this worker was still running the previous tick.
	SkipStillRunning = "still_running"
	// SkipLocked: a run elsewhere held the sync's lock.
	SkipLocked = "locked"
	// SkipShuttingDown: the worker began shutting down before a run slot
	// was free.
	SkipShuttingDown = "shutting_down"
)

// skipMessage explains reason in a skipped run's Error, which starts with
// the reason (see state.Run.SkipReason).
func skipMessage(reason string) string {
	switch reason {
	case SkipStillRunning:
		return reason + ": the previous run of the sync was still running"
	case SkipLocked:
		return reason + ": another run held the sync's lock"
	case SkipShuttingDown:
		return reason + ": the worker was shutting down"
	}
	return reason
}

// Store is what the worker needs of the state store: claiming ticks,
// recording the ones skipped, and run history for the status page.
type Store interface {
	ClaimTick(ctx context.Context, sync string, tick time.Time) (bool, error)
	RecordSkipped(ctx context.Context, r state.Run) (state.Run, error)
	ListRuns(ctx context.Context, sync string, limit int) ([]state.Run, error)
}

// Job is one scheduled sync.
type Job struct {
	// Name is the sync's name.
	Name string
	// Schedule is the sync's schedule as written in the config (see
	// config.ParseSchedule). A job without one is shown but never run.
	Schedule string
	// Timeout is the deadline of one run (default JobTimeoutDefault).
	Timeout time.Duration
	// Describe is a short description for the status page, e.g.
	// "analytics → list 1234 (mirror)".
	Describe string
	// Run runs the sync once with trigger "schedule" and returns its record.
	// An error that wraps state.ErrLocked means a run elsewhere holds the
	// sync: the tick is counted as skipped, not failed.
	Run func(ctx context.Context) (state.Run, error)
}

// Config configures a [Worker].
type Config struct {
	Jobs  []Job
	Store Store
	// Listen is the HTTP address; empty disables the HTTP server.
	Listen string
	// MaxParallel bounds the runs in flight.
	MaxParallel int
	// ShutdownTimeout and StopTimeout bound shutdown (see the package
	// documentation).
	ShutdownTimeout time.Duration
	StopTimeout     time.Duration
	// Metrics receives the runs' figures (default: new metrics).
	Metrics *Metrics
	// Logger (default: no logging).
	Logger *zap.Logger
	// Now is the clock of the status page (default time.Now). The scheduler
	// itself runs on the real clock.
	Now func() time.Time
	// Ready reports whether the worker's dependencies are reachable, for
	// /readyz (default: always ready once started).
	Ready func(ctx context.Context) error
	// OnListen, when set, is called with the HTTP server's address once it
	// listens (tests listen on port 0).
	OnListen func(addr net.Addr)
	// Version is shown on the status page.
	Version string
}

// Worker runs jobs on their schedules until its context ends.
type Worker struct {
	cfg     Config
	log     *zap.Logger
	metrics *Metrics
	jobs    []*job
	slots   chan struct{}

	cron      *cron.Cron
	started   time.Time
	ready     atomic.Bool
	stopping  chan struct{}
	runCtx    context.Context
	stopOnce  sync.Once
	inFlight  atomic.Int64
	startedMu sync.Mutex
}

type job struct {
	Job
	sched   cron.Schedule
	entry   cron.EntryID
	running atomic.Bool

	mu       sync.Mutex
	runStart time.Time
	lastRun  *state.Run
	lastErr  string
	skipped  int64
	lastSkip time.Time
	lastTick time.Time
}

// New checks cfg and returns a worker. Every job's schedule must parse.
func New(cfg Config) (*Worker, error) {
	if cfg.Store == nil {
		return nil, errors.New("configuring worker: no state store")
	}
	cfg.MaxParallel = cmp.Or(cfg.MaxParallel, MaxParallelDefault)
	cfg.ShutdownTimeout = cmp.Or(cfg.ShutdownTimeout, ShutdownTimeoutDefault)
	cfg.StopTimeout = cmp.Or(cfg.StopTimeout, StopTimeoutDefault)
	if cfg.MaxParallel < 1 || cfg.ShutdownTimeout < 0 || cfg.StopTimeout < 0 {
		return nil, errors.New("configuring worker: max parallel, shutdown and stop timeouts must be positive")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(cfg.Now)
	}
	w := &Worker{
		cfg:      cfg,
		log:      cfg.Logger,
		metrics:  cfg.Metrics,
		slots:    make(chan struct{}, cfg.MaxParallel),
		stopping: make(chan struct{}),
	}
	seen := map[string]bool{}
	for _, j := range cfg.Jobs {
		if j.Name == "" || seen[j.Name] {
			return nil, fmt.Errorf("configuring worker: job name %q is empty or repeated", j.Name)
		}
		seen[j.Name] = true
		if j.Run == nil {
			return nil, fmt.Errorf("configuring worker: job %q has no Run", j.Name)
		}
		jj := &job{Job: j}
		jj.Timeout = cmp.Or(jj.Timeout, JobTimeoutDefault)
		if j.Schedule != "" {
			s, err := config.ParseSchedule(j.Schedule)
			if err != nil {
				return nil, fmt.Errorf("configuring worker: job %q: %w", j.Name, err)
			}
			jj.sched = s
		}
		w.metrics.InitSync(j.Name)
		w.jobs = append(w.jobs, jj)
	}
	return w, nil
}

// Metrics returns the worker's metrics.
func (w *Worker) Metrics() *Metrics { return w.metrics }

// Run schedules the jobs and serves HTTP until ctx ends, then shuts down as
// the package documentation says. It returns an error only when it cannot
// start (the address is taken, say); runs that fail are logged and counted.
func (w *Worker) Run(ctx context.Context) error {
	// Runs outlive ctx by design: shutdown lets them finish, then cancels
	// them through cancelRuns.
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	w.runCtx = runCtx

	var srv *http.Server
	srvDone := make(chan struct{})
	if w.cfg.Listen != "" {
		ln, err := net.Listen("tcp", w.cfg.Listen)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", w.cfg.Listen, err)
		}
		srv = &http.Server{
			Handler:           w.Handler(),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return runCtx },
		}
		w.log.Info("serving http", zap.String("addr", ln.Addr().String()))
		if w.cfg.OnListen != nil {
			w.cfg.OnListen(ln.Addr())
		}
		go func() {
			defer close(srvDone)
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				w.log.Error("http server stopped", zap.Error(err))
			}
		}()
	} else {
		close(srvDone)
	}

	c := cron.New(cron.WithLocation(time.UTC), cron.WithLogger(cronLogger{w.log.Named("cron")}),
		cron.WithChain(cron.Recover(cronLogger{w.log.Named("cron")})))
	for _, j := range w.jobs {
		if j.sched == nil {
			continue
		}
		j.entry = c.Schedule(j.sched, cron.FuncJob(func() { w.tick(j) }))
	}
	w.startedMu.Lock()
	w.cron = c
	w.started = w.cfg.Now()
	w.startedMu.Unlock()
	c.Start()
	w.ready.Store(true)
	w.log.Info("worker started", zap.Int("syncs", len(w.jobs)), zap.Int("max_parallel", w.cfg.MaxParallel))

	<-ctx.Done()
	w.ready.Store(false)
	w.stopOnce.Do(func() { close(w.stopping) })
	w.log.Info("shutting down: no new runs", zap.Int64("runs_in_flight", w.inFlight.Load()),
		zap.Duration("shutdown_timeout", w.cfg.ShutdownTimeout))
	stopped := c.Stop()
	soft := time.NewTimer(w.cfg.ShutdownTimeout)
	defer soft.Stop()
	select {
	case <-stopped.Done():
	case <-soft.C:
		w.log.Warn("runs still in flight after the shutdown timeout; cancelling them",
			zap.Int64("runs_in_flight", w.inFlight.Load()))
		cancelRuns()
		hard := time.NewTimer(w.cfg.StopTimeout)
		defer hard.Stop()
		select {
		case <-stopped.Done():
		case <-hard.C:
			w.log.Error("runs did not stop after cancellation; exiting anyway",
				zap.Int64("runs_in_flight", w.inFlight.Load()))
		}
	}
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
		<-srvDone
	}
	w.log.Info("worker stopped")
	return nil
}

// tick runs one scheduled tick of j, from a cron goroutine.
func (w *Worker) tick(j *job) {
	tick := w.cron.Entry(j.entry).Prev
	if tick.IsZero() {
		tick = time.Now().UTC().Truncate(time.Second)
	}
	log := w.log.With(zap.String("sync", j.Name), zap.Time("tick", tick))
	if !j.running.CompareAndSwap(false, true) {
		j.mu.Lock()
		started := j.runStart
		j.mu.Unlock()
		log.Warn("tick skipped: the previous run is still running", zap.Time("running_since", started))
		w.skip(j, tick, SkipStillRunning, false, log)
		return
	}
	defer j.running.Store(false)

	select {
	case w.slots <- struct{}{}:
	case <-w.stopping:
		log.Info("tick skipped: the worker is shutting down")
		w.skip(j, tick, SkipShuttingDown, false, log)
		return
	}
	defer func() { <-w.slots }()
	select {
	case <-w.stopping:
		log.Info("tick skipped: the worker is shutting down")
		w.skip(j, tick, SkipShuttingDown, false, log)
		return
	default:
	}

	claimed, err := w.cfg.Store.ClaimTick(w.runCtx, j.Name, tick)
	if err != nil {
		log.Error("claiming tick failed; not running it", zap.Error(err))
		w.metrics.runs.WithLabelValues(j.Name, string(state.RunFailed)).Inc()
		return
	}
	if !claimed {
		log.Debug("tick claimed by another worker")
		return
	}
	j.mu.Lock()
	j.lastTick = tick
	j.mu.Unlock()
	w.runJob(j, tick, log)
}

// skip counts a tick of j that does not run, and records it in the run
// history. Of several workers sharing the store only the one that claims
// the tick records it: a tick another worker claimed was run, or skipped
// and recorded, by that worker. claimed says this worker claimed it
// already. Claiming a tick this worker skips takes nothing from the others:
// a tick skipped as still running could not run anywhere (this worker holds
// the sync's lock), and one skipped at shutdown waited for a run slot
// past its time.
func (w *Worker) skip(j *job, tick time.Time, reason string, claimed bool, log *zap.Logger) {
	j.mu.Lock()
	j.skipped++
	j.lastSkip = tick
	j.mu.Unlock()
	w.metrics.ObserveSkip(j.Name, reason)
	if !claimed {
		ok, err := w.cfg.Store.ClaimTick(w.runCtx, j.Name, tick)
		if err != nil {
			log.Error("claiming a skipped tick failed; not recording it", zap.Error(err))
			return
		}
		if !ok {
			log.Debug("skipped tick claimed by another worker; it records what became of it")
			return
		}
	}
	_, err := w.cfg.Store.RecordSkipped(w.runCtx, state.Run{Sync: j.Name, Trigger: state.TriggerSchedule,
		StartedAt: tick, EndedAt: w.cfg.Now(), Error: skipMessage(reason)})
	if err != nil {
		log.Error("recording a skipped tick failed", zap.Error(err))
	}
}

func (w *Worker) runJob(j *job, tick time.Time, log *zap.Logger) {
	start := time.Now()
	j.mu.Lock()
	j.runStart = w.cfg.Now()
	j.mu.Unlock()
	w.inFlight.Add(1)
	w.metrics.inFlight.Inc()
	defer func() {
		w.inFlight.Add(-1)
		w.metrics.inFlight.Dec()
		j.mu.Lock()
		j.runStart = time.Time{}
		j.mu.Unlock()
	}()

	ctx, cancel := context.WithTimeout(w.runCtx, j.Timeout)
	defer cancel()
	run, err := j.Run(ctx)
	took := time.Since(start)
	if errors.Is(err, state.ErrLocked) {
		log.Info("tick skipped: another run holds the sync")
		w.skip(j, tick, SkipLocked, true, log)
		return
	}
	if run.Sync == "" {
		run.Sync = j.Name
	}
	if err != nil && (run.Status == "" || run.Status == state.RunRunning || run.Status == state.RunSucceeded) {
		run.Status = state.RunFailed
		if errors.Is(err, context.Canceled) {
			run.Status = state.RunCanceled
		}
	}
	w.metrics.ObserveRun(run, took)
	j.mu.Lock()
	j.lastRun = &run
	j.lastErr = ""
	if err != nil {
		j.lastErr = err.Error()
	}
	j.mu.Unlock()
	// The run's own lines (with its run id) come from the engine; this is
	// the worker's summary.
	fields := []zap.Field{zap.Int64("run_id", run.ID), zap.String("status", string(run.Status)), zap.Duration("took", took)}
	switch {
	case err == nil:
		log.Info("run finished", fields...)
	case errors.Is(err, context.Canceled):
		log.Info("run cancelled by shutdown", fields...)
	default:
		log.Error("run failed", append(fields, zap.Error(err))...)
	}
}

// cronLogger adapts zap to cron's logger: cron's chatter goes to debug,
// its errors (a panicking job) to error.
type cronLogger struct{ log *zap.Logger }

func (l cronLogger) Info(msg string, kv ...any) {
	if ce := l.log.Check(zap.DebugLevel, msg); ce != nil {
		ce.Write(zap.Any("details", kv))
	}
}

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error(msg, zap.Error(err), zap.Any("details", kv))
}
