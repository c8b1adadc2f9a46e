// Package worker runs syncs on their cron schedules: `listsync worker`.
//
// A [Worker] owns a robfig/cron scheduler (in UTC), a bounded pool of run
// slots and an HTTP server with /healthz, /readyz, /metrics (Prometheus, on
// the worker's own registry) and a server-rendered status page at /.
//
// Scheduling rules:
//   - One run of a sync at a time: a tick that comes while the sync is still
//     running is skipped, logged and counted
//     (listsync_ticks_skipped_total{reason="still_running"}).
//   - Several workers may share one state store: before running a tick, a
//     worker claims it with [TickClaimer.ClaimTick], so each scheduled run
//     happens once across them. The sync's lock in the state store (taken by
//     the engine) keeps a run that outlasts its interval from overlapping
//     with the next tick claimed elsewhere.
//   - At most MaxParallel runs at once; a slow sync holds one slot, not the
//     others.
//   - Each run has its own deadline (the job's Timeout).
//
// Shutdown (the context given to [Worker.Run] ends, on SIGINT or SIGTERM):
// the scheduler stops so no new run starts; runs in flight get
// ShutdownTimeout to finish; then their context is cancelled (the engine
// still commits the batch Marketo has confirmed, on a context that outlives
// the cancellation) and the worker waits at most StopTimeout more.
package worker
