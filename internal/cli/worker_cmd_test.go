package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
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
