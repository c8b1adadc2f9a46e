package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/cli"
	"github.com/listsync/listsync/internal/marketo/emulator"
	"github.com/listsync/listsync/internal/pgtest"
)

const (
	testClientSecret = "s3cret-Marketo-VALUE-7781"
	testPGPassword   = "pg-PASSWORD-NOT-REAL-4410"
)

// harness is a config directory wired to real components: a Postgres
// warehouse in a private schema, the Marketo emulator over HTTP and a
// SQLite state store in the test's temporary directory.
type harness struct {
	t      *testing.T
	dir    string
	cfg    string
	em     *emulator.Emulator
	ts     *httptest.Server
	whDSN  string
	env    map[string]string
	listID int64
	// opts are added to every command's options.
	opts []cli.Option
}

type person struct{ email, first, company string }

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessWith(t, emulator.Config{})
}

// newHarnessWith is newHarness with an emulator configured by emCfg (its
// credentials are the harness's).
func newHarnessWith(t *testing.T, emCfg emulator.Config) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir()}
	h.whDSN = pgtest.DSN(t)
	h.exec(`CREATE TABLE people (email text, first_name text, company text, plan text)`)

	emCfg.ClientID, emCfg.ClientSecret = "listsync-test", testClientSecret
	h.em = emulator.New(emCfg)
	h.ts = httptest.NewServer(h.em)
	t.Cleanup(func() {
		h.ts.Close()
		_ = h.em.Close()
	})
	folder := h.em.CreateFolder("Audiences")
	h.listID = h.em.CreateStaticList("Trial users", folder)

	require.NoError(t, os.MkdirAll(filepath.Join(h.dir, "models"), 0o755))
	h.writeFile("models/trial_users.sql", "SELECT email, first_name, company FROM people WHERE plan = 'trial'\n")
	h.writeFile("models/everyone.sql", "SELECT email, first_name FROM people\n")
	h.env = map[string]string{
		"WAREHOUSE_DSN":         h.whDSN,
		"MARKETO_CLIENT_SECRET": testClientSecret,
	}
	h.writeConfig("")
	return h
}

func (h *harness) writeFile(name, content string) {
	h.t.Helper()
	require.NoError(h.t, os.WriteFile(filepath.Join(h.dir, name), []byte(content), 0o644))
}

// writeConfig writes listsync.yaml; extra is appended to the trial_users
// sync's mapping.
func (h *harness) writeConfig(extra string) {
	h.t.Helper()
	h.cfg = filepath.Join(h.dir, "listsync.yaml")
	h.writeFile("listsync.yaml", fmt.Sprintf(`state: {driver: sqlite, dsn: state.db}
warehouses:
  analytics: {type: postgres, dsn: "${WAREHOUSE_DSN}"}
marketo:
  endpoint: %s
  client_id: listsync-test
  client_secret: "${MARKETO_CLIENT_SECRET}"
  folder: Audiences
syncs:
  - name: trial_users
    warehouse: analytics
    model: models/trial_users.sql
    list_id: %d
    fields: {firstName: first_name, company: company}
%s  - name: everyone
    warehouse: analytics
    model: models/everyone.sql
    list_name: Everyone
    mode: add_only
    fields: {firstName: first_name}
`, h.ts.URL, h.listID, extra))
}

func (h *harness) exec(sql string, args ...any) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, h.whDSN)
	require.NoError(h.t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql, args...)
	require.NoError(h.t, err)
}

func (h *harness) insert(plan string, people ...person) {
	h.t.Helper()
	for _, p := range people {
		h.exec(`INSERT INTO people (email, first_name, company, plan) VALUES ($1, $2, $3, $4)`, p.email, p.first, p.company, plan)
	}
}

func (h *harness) lookup(name string) (string, bool) {
	v, ok := h.env[name]
	return v, ok
}

// run runs the command line with the harness's config and environment.
func (h *harness) run(args ...string) (int, string, string) {
	h.t.Helper()
	return h.runCtx(h.t.Context(), args...)
}

func (h *harness) runCtx(ctx context.Context, args ...string) (int, string, string) {
	h.t.Helper()
	var stdout, stderr bytes.Buffer
	full := append([]string{}, args...)
	if len(full) > 0 && !contains(full, "--config") {
		full = append(full, "--config", h.cfg)
	}
	opts := append([]cli.Option{cli.WithLookupEnv(h.lookup), cli.WithTerminal(false), cli.WithTempDir(h.t.TempDir())}, h.opts...)
	code := cli.Run(ctx, full, &stdout, &stderr, opts...)
	return code, stdout.String(), stderr.String()
}

// listEmails returns the emails on the emulator's list.
func (h *harness) listEmails(listID int64) []string {
	var out []string
	for _, l := range h.em.ListMembers(listID) {
		out = append(out, strings.ToLower(l.Email))
	}
	return sorted(out)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func sorted(ss []string) []string {
	out := append([]string(nil), ss...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
