package cli

import (
	"cmp"
	"context"
	"flag"
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/listsync/listsync/internal/state"
	listsync "github.com/listsync/listsync/internal/sync"
	"github.com/listsync/listsync/internal/worker"
)

const workerHelp = `
Runs every sync that has a schedule, on that schedule (cron expressions in
UTC unless prefixed by CRON_TZ=), until SIGINT or SIGTERM. One run of a sync
at a time: a tick that comes while the sync still runs is skipped and
counted. Several workers may share one Postgres state store; each scheduled
run then happens once across them.

It serves, on --listen (loopback by default):
  /         a status page: syncs, their next run, recent runs with counts
  /metrics  Prometheus metrics
  /healthz  200 while the process runs
  /readyz   200 while the worker is scheduling and its state store answers

On shutdown no new run starts, runs in flight get worker.shutdown_timeout
to finish, and are then cancelled after committing what Marketo confirmed.
Logs are JSON lines (--log-format console for a terminal).`

type workerFlags struct {
	*commonFlags
	listen string
}

func newWorkerFlags(fs *flag.FlagSet) *workerFlags {
	f := &workerFlags{commonFlags: newCommonFlags(fs)}
	fs.StringVar(&f.listen, "listen", "", "the HTTP `address` (default worker.listen of the config, 127.0.0.1:9464)")
	return f
}

func cmdWorker(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	f := newWorkerFlags(fs)
	pos, err := e.parse("worker", fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("worker takes no arguments")
	}
	l, err := e.loadConfig(f.config)
	if err != nil {
		return err
	}
	defer l.Close()
	cfg := l.cfg
	log, err := e.newLogger(f.commonFlags, zapcore.InfoLevel, true)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	metrics := worker.NewMetrics(e.now)
	a, err := e.openApp(ctx, l, log, appOptions{withEngine: true, onCall: metrics.ObserveAPICall})
	if err != nil {
		return err
	}
	defer a.Close()

	var jobs []worker.Job
	scheduled := 0
	for i := range cfg.Syncs {
		s := &cfg.Syncs[i]
		if s.Schedule != "" {
			scheduled++
		}
		jobs = append(jobs, worker.Job{
			Name:     s.Name,
			Schedule: s.Schedule,
			Timeout:  s.Timeout,
			Describe: fmt.Sprintf("%s on %s → %s (%s)", s.Model, s.Warehouse, describeList(cfg, s), s.Mode),
			Run: func(ctx context.Context) (state.Run, error) {
				spec, err := a.spec(ctx, s)
				if err != nil {
					return state.Run{Sync: s.Name, Trigger: state.TriggerSchedule, Status: state.RunFailed, Error: err.Error()}, err
				}
				return a.engine.Run(ctx, spec, listsyncRunOptions())
			},
		})
	}
	if scheduled == 0 {
		log.Warn("no sync has a schedule: the worker will only serve its status page")
	}
	w, err := worker.New(worker.Config{
		Jobs:            jobs,
		Store:           a.store,
		Listen:          cmp.Or(f.listen, cfg.Worker.Listen),
		MaxParallel:     cfg.Worker.MaxParallel,
		ShutdownTimeout: cfg.Worker.ShutdownTimeout,
		Metrics:         metrics,
		Logger:          log.Named("worker"),
		Now:             e.now,
		OnListen:        e.onListen,
		Version:         Version,
		Ready: func(ctx context.Context) error {
			if _, err := a.store.ListRuns(ctx, "", 1); err != nil {
				return fmt.Errorf("state store: %w", err)
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	log.Info("listsync worker starting", zap.String("config", l.path), zap.Int("syncs", len(jobs)), zap.Int("scheduled", scheduled))
	return w.Run(ctx)
}

func listsyncRunOptions() listsync.RunOptions {
	return listsync.RunOptions{Trigger: state.TriggerSchedule}
}
