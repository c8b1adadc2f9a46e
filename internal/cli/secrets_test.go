package cli_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/cli"
)

// TestSecretsNeverShown runs every command, successful and failing, with
// debug logging in both formats, and checks that neither the Marketo client
// secret nor the warehouse password appears in any output, log line, error,
// status page or metric.
func TestSecretsNeverShown(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	require.Contains(t, h.whDSN, "postgres@")
	h.env["WAREHOUSE_DSN"] = strings.Replace(h.whDSN, "postgres@", "postgres:"+testPGPassword+"@", 1)
	h.insert("trial", person{"a@example.com", "A", "X"}, person{"b@example.com", "B", "Y"}, person{"bad-email", "C", "Z"})
	secrets := []string{testClientSecret, testPGPassword}
	check := func(what, out string) {
		t.Helper()
		for _, s := range secrets {
			require.NotContains(t, out, s, "%s leaked a secret:\n%s", what, out)
		}
	}

	commands := [][]string{
		{"validate"}, {"validate", "--connect"},
		{"plan", "trial_users"}, {"plan", "trial_users", "--json"},
		{"run"}, {"run", "--json"}, {"run", "trial_users", "--full-resync"},
		{"history"}, {"history", "--json"}, {"rejects", "trial_users"}, {"rejects", "trial_users", "--json"},
		{"reset", "trial_users"}, {"run", "trial_users"},
	}
	for _, format := range []string{"json", "console"} {
		for _, args := range commands {
			full := append(append([]string{}, args...), "--log-level", "debug", "--log-format", format)
			code, stdout, stderr := h.run(full...)
			require.Equal(t, cli.ExitOK, code, "%v\nstdout:\n%s\nstderr:\n%s", full, stdout, stderr)
			check(strings.Join(full, " "), stdout+stderr)
		}
	}

	// Failures: a warehouse that refuses the connection, and Marketo
	// refusing the credentials.
	good := h.env["WAREHOUSE_DSN"]
	h.env["WAREHOUSE_DSN"] = "postgres://postgres:" + testPGPassword + "@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"
	for _, args := range [][]string{{"run"}, {"plan", "trial_users"}, {"validate", "--connect"}} {
		code, stdout, stderr := h.run(append(args, "--log-level", "debug")...)
		require.Equal(t, cli.ExitFailed, code, "%v", args)
		check(strings.Join(args, " ")+" (warehouse down)", stdout+stderr)
	}
	h.env["WAREHOUSE_DSN"] = good
	h.env["MARKETO_CLIENT_SECRET"] = testClientSecret + "-wrong"
	code, stdout, stderr := h.run("run", "--log-level", "debug")
	require.Equal(t, cli.ExitFailed, code)
	check("run (bad Marketo secret)", stdout+stderr)
	h.env["MARKETO_CLIENT_SECRET"] = testClientSecret

	// The worker: its logs, status page and metrics.
	h.writeConfig("    schedule: \"@every 1s\"\n")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addrs := make(chan net.Addr, 1)
	done := make(chan string, 1)
	go func() {
		var out strings.Builder
		cli.Run(ctx, []string{"worker", "--config", h.cfg, "--listen", "127.0.0.1:0", "--log-level", "debug"}, &out, &out,
			cli.WithLookupEnv(h.lookup), cli.WithTerminal(false), cli.WithTempDir(t.TempDir()),
			cli.WithListenNotify(func(a net.Addr) { addrs <- a }))
		done <- out.String()
	}()
	base := "http://" + (<-addrs).String()
	get := func(path string) string {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	require.Eventually(t, func() bool {
		return strings.Contains(get("/metrics"), `listsync_runs_total{status="succeeded",sync="trial_users"} 1`)
	}, 20*time.Second, 50*time.Millisecond)
	check("status page", get("/"))
	check("metrics", get("/metrics"))
	check("readyz", get("/readyz"))
	cancel()
	check("worker logs", <-done)
}
