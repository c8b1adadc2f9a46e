package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/cli"
)

// TestWorkerCommand runs `listsync worker` through cli.Run on a real
// one-second schedule, reads its HTTP endpoints while it works, and stops
// it as SIGTERM would (main cancels the context).
func TestWorkerCommand(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.insert("trial", person{"a@example.com", "A", "X"}, person{"b@example.com", "B", "Y"})
	h.writeConfig("    schedule: \"@every 1s\"\n")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addrs := make(chan net.Addr, 1)
	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		var stdout, stderr strings.Builder
		code := cli.Run(ctx, []string{"worker", "--config", h.cfg, "--listen", "127.0.0.1:0"}, &stdout, &stderr,
			cli.WithLookupEnv(h.lookup), cli.WithTerminal(false), cli.WithTempDir(t.TempDir()),
			cli.WithListenNotify(func(a net.Addr) { addrs <- a }))
		done <- result{code, stdout.String(), stderr.String()}
	}()
	var base string
	select {
	case a := <-addrs:
		base = "http://" + a.String()
	case r := <-done:
		t.Fatalf("worker exited early with %d: %s", r.code, r.stderr)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	require.Eventually(t, func() bool {
		_, body := get("/metrics")
		return strings.Contains(body, `listsync_runs_total{status="succeeded",sync="trial_users"} 2`)
	}, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, []string{"a@example.com", "b@example.com"}, h.listEmails(h.listID))

	code, body := get("/readyz")
	require.Equal(t, 200, code, body)
	_, body = get("/metrics")
	require.Contains(t, body, `listsync_marketo_api_calls_total{code="ok",endpoint=`)
	require.Contains(t, body, "listsync_marketo_daily_quota_used")
	require.Contains(t, body, `listsync_rows_read_total{sync="trial_users"}`)
	require.Contains(t, body, `listsync_last_success_timestamp_seconds{sync="trial_users"}`)
	require.NotContains(t, body, testClientSecret)
	_, page := get("/")
	require.Contains(t, page, `data-sync="trial_users"`)
	require.Contains(t, page, `data-sync="everyone"`)
	require.Contains(t, page, "manual only")
	require.NotContains(t, page, testClientSecret)

	cancel()
	var r result
	select {
	case r = <-done:
	case <-time.After(40 * time.Second):
		t.Fatal("the worker did not stop")
	}
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	require.NotContains(t, r.stdout+r.stderr, testClientSecret)
	require.NotContains(t, r.stderr, h.whDSN)

	// The worker logs JSON lines, and each run's lines carry the sync and
	// the run id.
	sawRunLine := false
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		if rec["sync"] == "trial_users" && rec["run_id"] != nil {
			sawRunLine = true
		}
	}
	require.True(t, sawRunLine, r.stderr)
	require.Contains(t, r.stderr, "worker stopped")

	code2, stdout, _ := h.run("history", "trial_users", "--json")
	require.Equal(t, cli.ExitOK, code2)
	var hist []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &hist))
	require.GreaterOrEqual(t, len(hist), 2)
	for _, run := range hist {
		require.Equal(t, "schedule", run["trigger"])
	}
}

// startWorkerCmd runs `listsync worker` on h's config until the returned
// stop function cancels it as SIGTERM would; stop returns the exit code,
// the output and how long the worker took to exit.
func startWorkerCmd(t *testing.T, h *harness) (stop func() (int, string, time.Duration)) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	addrs := make(chan net.Addr, 1)
	type result struct {
		code int
		out  string
	}
	done := make(chan result, 1)
	go func() {
		var out strings.Builder
		code := cli.Run(ctx, []string{"worker", "--config", h.cfg, "--listen", "127.0.0.1:0"}, &out, &out,
			cli.WithLookupEnv(h.lookup), cli.WithTerminal(false), cli.WithTempDir(t.TempDir()),
			cli.WithListenNotify(func(a net.Addr) { addrs <- a }))
		done <- result{code, out.String()}
	}()
	select {
	case <-addrs:
	case r := <-done:
		t.Fatalf("worker exited early with %d: %s", r.code, r.out)
	}
	t.Cleanup(cancel)
	return func() (int, string, time.Duration) {
		start := time.Now()
		cancel()
		select {
		case r := <-done:
			return r.code, r.out, time.Since(start)
		case <-time.After(60 * time.Second):
			t.Fatal("the worker did not stop")
			return 0, "", 0
		}
	}
}

// waitRunning waits until a run of sync is in progress.
func waitRunning(t *testing.T, h *harness, sync string) {
	t.Helper()
	require.Eventually(t, func() bool {
		code, stdout, _ := h.run("history", sync, "--json", "--limit", "1")
		if code != cli.ExitOK {
			return false
		}
		var runs []map[string]any
		return json.Unmarshal([]byte(stdout), &runs) == nil && len(runs) == 1 && runs[0]["status"] == "running"
	}, 20*time.Second, 20*time.Millisecond)
}

// TestWorkerShutdownMidRun stops the worker while a real run is in the
// middle of reading its model: the run is let finish and commit, the list
// equals the model, and only then does the worker exit.
func TestWorkerShutdownMidRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.insert("trial", person{"a@example.com", "A", "X"}, person{"b@example.com", "B", "Y"}, person{"c@example.com", "C", "Z"})
	h.writeFile("models/trial_users.sql", "SELECT email, first_name, company FROM people, pg_sleep(1.5) WHERE plan = 'trial'\n")
	h.writeConfig("    schedule: \"@every 1s\"\n")
	stop := startWorkerCmd(t, h)
	waitRunning(t, h, "trial_users")
	code, out, took := stop()
	require.Equal(t, cli.ExitOK, code, out)
	require.Contains(t, out, "shutting down: no new runs")
	require.Greater(t, took, 300*time.Millisecond, "the worker waited for the run")
	require.Less(t, took, 15*time.Second)

	code, stdout, _ := h.run("history", "trial_users", "--json")
	require.Equal(t, cli.ExitOK, code)
	var runs []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &runs))
	require.Len(t, runs, 1, "no new run started after the shutdown began")
	require.Equal(t, "succeeded", runs[0]["status"])
	require.Equal(t, []string{"a@example.com", "b@example.com", "c@example.com"}, h.listEmails(h.listID))
}

// TestWorkerShutdownTimeout: a run that outlasts worker.shutdown_timeout
// is cancelled, recorded as such, and the worker exits within the bound
// with nothing half-done in Marketo.
func TestWorkerShutdownTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.insert("trial", person{"a@example.com", "A", "X"})
	h.writeFile("models/trial_users.sql", "SELECT email, first_name, company FROM people, pg_sleep(30) WHERE plan = 'trial'\n")
	h.writeConfig("    schedule: \"@every 1s\"\n")
	cfg, err := os.ReadFile(h.cfg)
	require.NoError(t, err)
	h.writeFile("listsync.yaml", string(cfg)+"worker: {shutdown_timeout: 500ms}\n")
	stop := startWorkerCmd(t, h)
	waitRunning(t, h, "trial_users")
	code, out, took := stop()
	require.Equal(t, cli.ExitOK, code, out)
	require.Contains(t, out, "cancelling them")
	require.Less(t, took, 10*time.Second, "exit within the shutdown bound")

	code, stdout, _ := h.run("history", "trial_users", "--json")
	require.Equal(t, cli.ExitOK, code)
	var runs []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &runs))
	require.Len(t, runs, 1)
	require.Equal(t, "canceled", runs[0]["status"], runs[0])
	require.Empty(t, h.listEmails(h.listID))
}
