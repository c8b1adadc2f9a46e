package worker

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/listsync/listsync/internal/state"
)

//go:embed templates/status.html
var templatesFS embed.FS

// statusTemplate is parsed once per Handler; it has no package-level state.
func parseStatusTemplate() *template.Template {
	return template.Must(template.New("status.html").Funcs(template.FuncMap{
		"ts": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		},
		"ago":      ago,
		"duration": runDuration,
	}).ParseFS(templatesFS, "templates/status.html"))
}

// Handler returns the worker's HTTP API: /healthz, /readyz, /metrics and
// the status page at /.
func (w *Worker) Handler() http.Handler {
	tmpl := parseStatusTemplate()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(rw, "ok")
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !w.ready.Load() {
			rw.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(rw, "not ready: starting or shutting down")
			return
		}
		if w.cfg.Ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
			defer cancel()
			if err := w.cfg.Ready(ctx); err != nil {
				rw.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(rw, "not ready: %v\n", err)
				return
			}
		}
		fmt.Fprintln(rw, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.metrics.Registry, promhttp.HandlerOpts{
		Registry:          w.metrics.Registry,
		ErrorLog:          zap.NewStdLog(w.log.Named("metrics")),
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("GET /{$}", func(rw http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		page := w.statusPage(ctx)
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, page); err != nil {
			w.log.Error("rendering the status page", zap.Error(err))
			http.Error(rw, "rendering the status page failed", http.StatusInternalServerError)
			return
		}
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		rw.Header().Set("Cache-Control", "no-store")
		rw.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		rw.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = rw.Write(buf.Bytes())
	})
	return mux
}

type statusPage struct {
	Now         time.Time
	Started     time.Time
	Version     string
	Ready       bool
	InFlight    int64
	MaxParallel int
	Syncs       []syncRow
	Runs        []state.Run
	RunsError   string
}

type syncRow struct {
	Name         string
	Describe     string
	Schedule     string
	Next         time.Time
	Running      bool
	RunningSince time.Time
	Last         *state.Run
	LastError    string
	LastSuccess  time.Time
	Skipped      int64
	LastSkip     time.Time
}

func (w *Worker) statusPage(ctx context.Context) statusPage {
	w.startedMu.Lock()
	c, started := w.cron, w.started
	w.startedMu.Unlock()
	p := statusPage{
		Now:         w.cfg.Now(),
		Started:     started,
		Version:     w.cfg.Version,
		Ready:       w.ready.Load(),
		InFlight:    w.inFlight.Load(),
		MaxParallel: w.cfg.MaxParallel,
	}
	runs, err := w.cfg.Store.ListRuns(ctx, "", RecentRunsDefault)
	if err != nil {
		p.RunsError = err.Error()
	}
	p.Runs = runs
	for _, j := range w.jobs {
		row := syncRow{Name: j.Name, Describe: j.Describe, Schedule: j.Schedule}
		if c != nil && j.sched != nil {
			row.Next = c.Entry(j.entry).Next
		}
		j.mu.Lock()
		row.RunningSince = j.runStart
		row.Running = !j.runStart.IsZero()
		row.Last = j.lastRun
		row.LastError = j.lastErr
		row.Skipped = j.skipped
		row.LastSkip = j.lastSkip
		j.mu.Unlock()
		// The store knows runs made by other workers and by `listsync run`.
		for i := range runs {
			r := &runs[i]
			if r.Sync != j.Name {
				continue
			}
			// A skipped tick is not the sync's last run: it has no counts,
			// and the run it made way for is still the one to show.
			if r.Status == state.RunSkipped {
				if r.StartedAt.After(row.LastSkip) {
					row.LastSkip = r.StartedAt
				}
				continue
			}
			if row.Last == nil || r.StartedAt.After(row.Last.StartedAt) {
				row.Last = r
				row.LastError = r.Error
			}
			if r.Status == state.RunSucceeded && r.EndedAt.After(row.LastSuccess) {
				row.LastSuccess = r.EndedAt
			}
		}
		if row.Last != nil && row.Last.Status == state.RunSucceeded && row.Last.EndedAt.After(row.LastSuccess) {
			row.LastSuccess = row.Last.EndedAt
		}
		p.Syncs = append(p.Syncs, row)
	}
	return p
}

// ago renders how long before now t was, or until t for a future t.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	suffix := "ago"
	if d < 0 {
		d, suffix = -d, "from now"
	}
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds %s", int(d.Seconds()), suffix)
	case d < time.Hour:
		return fmt.Sprintf("%dm %s", int(d.Minutes()), suffix)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm %s", int(d.Hours()), int(d.Minutes())%60, suffix)
	default:
		return fmt.Sprintf("%dd %s", int(d.Hours()/24), suffix)
	}
}

func runDuration(r state.Run) string {
	if r.EndedAt.IsZero() || r.StartedAt.IsZero() {
		return "—"
	}
	return r.EndedAt.Sub(r.StartedAt).Round(100 * time.Millisecond).String()
}
