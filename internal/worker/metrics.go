package worker

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/listsync/listsync/internal/state"
)

// Metrics are the worker's Prometheus metrics, on their own registry (never
// the global one). Create them before the Marketo client, so that its OnCall
// hook can be [Metrics.ObserveAPICall].
type Metrics struct {
	// Registry holds every metric below, plus the Go and process collectors.
	Registry *prometheus.Registry

	runs        *prometheus.CounterVec
	rowsRead    *prometheus.CounterVec
	adds        *prometheus.CounterVec
	removes     *prometheus.CounterVec
	updates     *prometheus.CounterVec
	rejects     *prometheus.CounterVec
	invalid     *prometheus.CounterVec
	apiCalls    *prometheus.CounterVec
	quotaUsed   prometheus.Gauge
	duration    *prometheus.HistogramVec
	lastSuccess *prometheus.GaugeVec
	lastRun     *prometheus.GaugeVec
	skipped     *prometheus.CounterVec
	inFlight    prometheus.Gauge
	now         func() time.Time
	quotaMu     sync.Mutex
	quotaDay    string
	quotaCount  int
}

// NewMetrics registers listsync's metrics on a new registry. now is the
// clock that decides the Marketo day of the quota gauge (nil: time.Now).
func NewMetrics(now func() time.Time) *Metrics {
	if now == nil {
		now = time.Now
	}
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		now:      now,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listsync_runs_total", Help: "Runs of each sync by final status (succeeded, failed, canceled).",
		}, []string{"sync", "status"}),
		rowsRead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listsync_rows_read_total", Help: "Rows read from each sync's model.",
		}, []string{"sync"}),
		adds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listsync_adds_total", Help: "Members added to each sync's list, as confirmed by Marketo.",
		}, []string{"sync"}),
		removes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listsync_removes_total", Help: "Members removed from each sync's list, as confirmed by Marketo.",
		}, []string{"sync"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listsync_field_updates_total", Help: "Members whose fields were re-sent, as confirmed by Marketo.",
		}, []string{"sync"}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listsync_rejects_total", Help: "Rows Marketo rejected, per sync.",
		}, []string{"sync"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listsync_invalid_rows_total", Help: "Model rows with a NULL, empty or invalid key, per sync.",
		}, []string{"sync"}),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listsync_marketo_api_calls_total", Help: "Marketo API calls by endpoint template and outcome code (ok, a Marketo error code, http_NNN, transport).",
		}, []string{"endpoint", "code"}),
		quotaUsed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "listsync_marketo_daily_quota_used", Help: "Marketo API calls this process made in the current Marketo day (midnight to midnight US Central), identity calls excluded.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "listsync_run_duration_seconds", Help: "Wall time of each run.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200},
		}, []string{"sync"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "listsync_last_success_timestamp_seconds", Help: "Unix time at which each sync's last successful run ended.",
		}, []string{"sync"}),
		lastRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "listsync_last_run_timestamp_seconds", Help: "Unix time at which each sync's last run ended, whatever its status.",
		}, []string{"sync"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listsync_ticks_skipped_total", Help: "Scheduled ticks not run by this worker: still_running (the previous run had not ended), locked (a run elsewhere held the sync), shutting_down.",
		}, []string{"sync", "reason"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "listsync_runs_in_flight", Help: "Runs in progress in this worker.",
		}),
	}
	reg.MustRegister(m.runs, m.rowsRead, m.adds, m.removes, m.updates, m.rejects, m.invalid, m.apiCalls,
		m.quotaUsed, m.duration, m.lastSuccess, m.lastRun, m.skipped, m.inFlight,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveAPICall counts one Marketo API call; it has the signature of the
// Marketo client's OnCall hook.
func (m *Metrics) ObserveAPICall(endpoint, code string) {
	m.apiCalls.WithLabelValues(endpoint, code).Inc()
	if strings.Contains(endpoint, "/identity/") {
		return
	}
	// Marketo resets its daily quota at midnight US Central (CST, fixed).
	day := m.now().In(time.FixedZone("CST", -6*60*60)).Format(time.DateOnly)
	m.quotaMu.Lock()
	defer m.quotaMu.Unlock()
	if day != m.quotaDay {
		m.quotaDay, m.quotaCount = day, 0
	}
	m.quotaCount++
	m.quotaUsed.Set(float64(m.quotaCount))
}

// InitSync makes the sync's series exist at zero, so that dashboards and
// alerts see it before its first run.
func (m *Metrics) InitSync(sync string) {
	for _, st := range []state.RunStatus{state.RunSucceeded, state.RunFailed, state.RunCanceled} {
		m.runs.WithLabelValues(sync, string(st))
	}
	m.rowsRead.WithLabelValues(sync)
	m.adds.WithLabelValues(sync)
	m.removes.WithLabelValues(sync)
	m.updates.WithLabelValues(sync)
	m.rejects.WithLabelValues(sync)
	m.invalid.WithLabelValues(sync)
	m.duration.WithLabelValues(sync)
	for _, r := range []string{SkipStillRunning, SkipLocked} {
		m.skipped.WithLabelValues(sync, r)
	}
}

// ObserveRun records a finished run.
func (m *Metrics) ObserveRun(r state.Run, took time.Duration) {
	status := string(r.Status)
	if status == "" || r.Status == state.RunRunning {
		status = string(state.RunFailed)
	}
	m.runs.WithLabelValues(r.Sync, status).Inc()
	m.rowsRead.WithLabelValues(r.Sync).Add(float64(r.RowsRead))
	m.adds.WithLabelValues(r.Sync).Add(float64(r.AddsConfirmed))
	m.removes.WithLabelValues(r.Sync).Add(float64(r.RemovesConfirmed))
	m.updates.WithLabelValues(r.Sync).Add(float64(r.UpdatesConfirmed))
	m.rejects.WithLabelValues(r.Sync).Add(float64(r.Rejected))
	m.invalid.WithLabelValues(r.Sync).Add(float64(r.Invalid))
	m.duration.WithLabelValues(r.Sync).Observe(took.Seconds())
	end := r.EndedAt
	if end.IsZero() {
		end = m.now()
	}
	m.lastRun.WithLabelValues(r.Sync).Set(float64(end.Unix()))
	if r.Status == state.RunSucceeded {
		m.lastSuccess.WithLabelValues(r.Sync).Set(float64(end.Unix()))
	}
}

// ObserveSkip counts a tick this worker did not run.
func (m *Metrics) ObserveSkip(sync, reason string) {
	m.skipped.WithLabelValues(sync, reason).Inc()
}
