package cli_test

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/cli"
	"github.com/listsync/listsync/internal/config"
	"github.com/listsync/listsync/internal/pgtest"
)

// withPassword returns dsn with password set on its user.
func withPassword(t *testing.T, dsn, password string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}

// TestSecretsNeverShownOnFailures complements TestSecretsNeverShown with the
// failures most likely to quote a connection string or a request URL: a
// Postgres state store (whose DSN holds a password) that works and one that
// is down, a warehouse refusing the role, a DSN that does not parse, and a
// Marketo endpoint that refuses connections (the token request carries the
// client secret in its query string).
func TestSecretsNeverShownOnFailures(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.insert("trial", person{"a@example.com", "A", "X"})
	const statePassword = "state-PASSWORD-NOT-REAL-9902"
	secrets := []string{testClientSecret, testPGPassword, statePassword, url.QueryEscape(testClientSecret)}
	check := func(what, out string) {
		t.Helper()
		for _, s := range secrets {
			require.NotContains(t, out, s, "%s leaked a secret:\n%s", what, out)
		}
	}
	cfg, err := os.ReadFile(h.cfg)
	require.NoError(t, err)
	rewrite := func(old, new string) {
		t.Helper()
		require.Contains(t, string(cfg), old)
		require.NoError(t, os.WriteFile(h.cfg, []byte(strings.Replace(string(cfg), old, new, 1)), 0o644))
	}
	failing := [][]string{{"run"}, {"plan", "trial_users"}, {"validate", "--connect"}, {"history"}}

	// The state store in Postgres, reached with a password.
	h.env["STATE_DSN"] = withPassword(t, pgtest.DSN(t), statePassword)
	h.env["WAREHOUSE_DSN"] = withPassword(t, h.whDSN, testPGPassword)
	rewrite("state: {driver: sqlite, dsn: state.db}", `state: {driver: postgres, dsn: "${STATE_DSN}"}`)
	for _, args := range [][]string{{"validate", "--connect"}, {"run"}, {"history"}, {"rejects", "trial_users"}} {
		full := append(args, "--log-level", "debug")
		code, stdout, stderr := h.run(full...)
		require.Equal(t, cli.ExitOK, code, "%v\n%s%s", full, stdout, stderr)
		check(strings.Join(full, " "), stdout+stderr)
	}
	// The state store down.
	h.env["STATE_DSN"] = "postgres://listsync:" + statePassword + "@127.0.0.1:1/state?sslmode=disable&connect_timeout=2"
	for _, args := range failing {
		code, stdout, stderr := h.run(append(args, "--log-level", "debug")...)
		require.NotEqual(t, cli.ExitOK, code, "%v", args)
		check(strings.Join(args, " ")+" (state store down)", stdout+stderr)
	}
	require.NoError(t, os.WriteFile(h.cfg, cfg, 0o644)) // back to the SQLite state

	// The warehouse refuses the role; then a DSN that cannot be parsed.
	u, err := url.Parse(pgtest.BaseURL(t))
	require.NoError(t, err)
	u.User = url.UserPassword("listsync_no_such_role", testPGPassword)
	h.env["WAREHOUSE_DSN"] = u.String()
	for _, args := range failing[:3] {
		code, stdout, stderr := h.run(append(args, "--log-level", "debug")...)
		require.Equal(t, cli.ExitFailed, code, "%v", args)
		require.Contains(t, stdout+stderr, "authentication failed", "%v", args)
		check(strings.Join(args, " ")+" (role refused)", stdout+stderr)
	}
	h.env["WAREHOUSE_DSN"] = "postgres://postgres:" + testPGPassword + "@127.0.0.1:notaport/x?sslmode=disable"
	for _, args := range failing[:3] {
		code, stdout, stderr := h.run(append(args, "--log-level", "debug")...)
		require.NotEqual(t, cli.ExitOK, code, "%v", args)
		check(strings.Join(args, " ")+" (unparseable DSN)", stdout+stderr)
	}
	h.env["WAREHOUSE_DSN"] = withPassword(t, h.whDSN, testPGPassword)

	// Marketo refuses connections.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := closed.Addr().(*net.TCPAddr).Port
	require.NoError(t, closed.Close())
	rewrite("endpoint: "+h.ts.URL, "endpoint: http://127.0.0.1:"+strconv.Itoa(port))
	// The commands TestSecretsNeverShown does not run, and usage errors.
	for _, args := range [][]string{{"version"}, {"healthcheck", "--timeout", "2s", "http://127.0.0.1:" + strconv.Itoa(port) + "/healthz"},
		{"run", "--no-such-flag"}, {"no-such-command"}, {"help"}, {"plan"}} {
		var stdout, stderr strings.Builder
		cli.Run(t.Context(), args, &stdout, &stderr, cli.WithLookupEnv(h.lookup), cli.WithTerminal(false))
		check(strings.Join(args, " "), stdout.String()+stderr.String())
	}

	code, stdout, stderr := h.run("validate", "--connect", "--log-level", "debug")
	require.Equal(t, cli.ExitFailed, code)
	require.Contains(t, stdout+stderr, "connection refused")
	check("validate --connect (Marketo down)", stdout+stderr)
	// A run retries the token request for minutes (Marketo may be having
	// an outage): cut it short, and check what it logged meanwhile.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	code, stdout, stderr = h.runCtx(ctx, "run", "--log-level", "debug")
	require.NotEqual(t, cli.ExitOK, code)
	check("run (Marketo down)", stdout+stderr)
}

// TestModelSymlinksCannotEscape: models are read through an os.Root of the
// config's directory, so a model that is a symlink out of it, or a models
// directory that is one, is refused by validate and run alike, naming the
// model; the file outside is never read.
func TestModelSymlinksCannotEscape(t *testing.T) {
	t.Parallel()
	outside := filepath.Join(t.TempDir(), "secret.sql")
	require.NoError(t, os.WriteFile(outside, []byte("SELECT 'outside-the-config' AS email\n"), 0o644))
	for _, tc := range []struct {
		name  string
		setup func(h *harness)
	}{
		{"absolute symlink", func(h *harness) {
			require.NoError(t, os.Remove(filepath.Join(h.dir, "models/trial_users.sql")))
			require.NoError(t, os.Symlink(outside, filepath.Join(h.dir, "models/trial_users.sql")))
		}},
		{"relative symlink", func(h *harness) {
			require.NoError(t, os.Remove(filepath.Join(h.dir, "models/trial_users.sql")))
			rel, err := filepath.Rel(filepath.Join(h.dir, "models"), outside)
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(rel, ".."))
			require.NoError(t, os.Symlink(rel, filepath.Join(h.dir, "models/trial_users.sql")))
		}},
		{"models directory is a symlink", func(h *harness) {
			require.NoError(t, os.RemoveAll(filepath.Join(h.dir, "models")))
			require.NoError(t, os.Symlink(filepath.Dir(outside), filepath.Join(h.dir, "models")))
			require.NoError(t, os.Rename(outside, filepath.Join(filepath.Dir(outside), "trial_users.sql")))
			t.Cleanup(func() { _ = os.Rename(filepath.Join(filepath.Dir(outside), "trial_users.sql"), outside) })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tc.setup(h)
			for _, args := range [][]string{{"validate"}, {"run", "trial_users"}, {"plan", "trial_users"}} {
				code, stdout, stderr := h.run(args...)
				require.Equal(t, cli.ExitUsage, code, "%v\n%s%s", args, stdout, stderr)
				require.Contains(t, stderr, "models/trial_users.sql", "%v", args)
				require.NotContains(t, stdout+stderr, "outside-the-config")
			}
			require.Zero(t, h.em.Stats().CallsTotal, "nothing reached Marketo")
		})
	}
}

// TestWorkerListensOnLoopbackByDefault: without --listen or worker.listen
// the worker's HTTP server (status page, metrics, health) binds a loopback
// address only.
func TestWorkerListensOnLoopbackByDefault(t *testing.T) {
	t.Parallel()
	host, _, err := net.SplitHostPort(config.ListenDefault)
	require.NoError(t, err)
	require.True(t, net.ParseIP(host).IsLoopback(), "the default %s is loopback", config.ListenDefault)

	h := newHarness(t)
	require.NotContains(t, readFile(t, h.cfg), "listen", "the config sets no address")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addrs := make(chan net.Addr, 1)
	done := make(chan string, 1)
	go func() {
		var out strings.Builder
		cli.Run(ctx, []string{"worker", "--config", h.cfg}, &out, &out, cli.WithLookupEnv(h.lookup),
			cli.WithTerminal(false), cli.WithTempDir(t.TempDir()), cli.WithListenNotify(func(a net.Addr) { addrs <- a }))
		done <- out.String()
	}()
	select {
	case a := <-addrs:
		require.Equal(t, config.ListenDefault, a.String(), "the worker listens on the default loopback address")
		cancel()
		<-done
	case out := <-done:
		// The port is taken on this machine: the worker tried the loopback
		// default and said so.
		require.Contains(t, out, config.ListenDefault, out)
	case <-time.After(20 * time.Second):
		t.Fatal("the worker neither listened nor failed")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}
