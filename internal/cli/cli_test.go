package cli_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/cli"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Run(t.Context(), args, &stdout, &stderr, cli.WithTerminal(false), cli.WithLookupEnv(func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}))
	return code, stdout.String(), stderr.String()
}

func TestUsage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		args       []string
		code       int
		stdout     string
		stderr     string
		notInOuput string
	}{
		{name: "no args", args: nil, code: cli.ExitUsage, stderr: "Usage: listsync COMMAND"},
		{name: "help", args: []string{"--help"}, code: cli.ExitOK, stdout: "Commands:"},
		{name: "help command", args: []string{"help", "run"}, code: cli.ExitOK, stdout: "Usage: listsync run"},
		{name: "unknown command", args: []string{"sync"}, code: cli.ExitUsage, stderr: `unknown command "sync"`},
		{name: "version", args: []string{"version"}, code: cli.ExitOK, stdout: "listsync " + cli.Version},
		{name: "bad flag", args: []string{"run", "--nope"}, code: cli.ExitUsage, stderr: "flag provided but not defined: -nope"},
		{name: "bad flag value", args: []string{"history", "--limit", "x"}, code: cli.ExitUsage, stderr: "invalid value"},
		{name: "plan without a sync", args: []string{"plan", "--config", "../../config.example.yaml"}, code: cli.ExitUsage},
	}
	for _, c := range []string{"run", "plan", "worker", "validate", "history", "rejects", "reset", "demo"} {
		cases = append(cases, struct {
			name       string
			args       []string
			code       int
			stdout     string
			stderr     string
			notInOuput string
		}{name: c + " --help", args: []string{c, "--help"}, code: cli.ExitOK, stdout: "Usage: listsync " + c})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(t, nil, tc.args...)
			require.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			require.Contains(t, stdout, tc.stdout)
			require.Contains(t, stderr, tc.stderr)
		})
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "models"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "models", "a.sql"), []byte("select 1 as email"), 0o644))
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	good := `warehouses: {wh: {type: postgres, dsn: "postgres://u:${PGPASS}@h/db"}}
marketo: {endpoint: "https://1-A-2.mktorest.com", client_id: id, client_secret: "${SECRET}"}
syncs: [{name: a, warehouse: wh, model: models/a.sql, list_id: 1, schedule: "@hourly"}]
`
	goodPath := write("good.yaml", good)
	env := map[string]string{"PGPASS": testPGPassword, "SECRET": testClientSecret}

	code, stdout, stderr := runCLI(t, env, "validate", "--config", goodPath)
	require.Equal(t, cli.ExitOK, code, stderr)
	require.Contains(t, stdout, "is valid: 1 syncs")
	require.Contains(t, stdout, `a: models/a.sql on wh → list 1 (mirror), "@hourly", next`)

	// $LISTSYNC_CONFIG names the file when --config does not.
	code, stdout, _ = runCLI(t, map[string]string{"PGPASS": "x", "SECRET": "y", cli.ConfigEnv: goodPath}, "validate")
	require.Equal(t, cli.ExitOK, code)
	require.Contains(t, stdout, goodPath)

	cases := []struct {
		name        string
		args        []string
		env         map[string]string
		errContains []string
	}{
		{"missing file", []string{"validate", "--config", filepath.Join(dir, "nope.yaml")}, env, []string{"nope.yaml not found", "LISTSYNC_CONFIG"}},
		{"unknown key", []string{"validate", "--config", write("unknown.yaml", good+"workers: {}\n")}, env, []string{"line 4", "workers", "unknown key"}},
		{"unset variable", []string{"run", "--config", goodPath}, map[string]string{"PGPASS": "x"}, []string{"line 2", "SECRET is not set"}},
		{"invalid", []string{"plan", "a", "--config", write("invalid.yaml", strings.Replace(good, "@hourly", "@fortnightly", 1))}, env, []string{"is not valid", "line 3", "syncs[0] (a).schedule", "unrecognized descriptor"}},
		{"unknown sync", []string{"run", "nope", "--config", goodPath}, env, []string{`no sync named "nope" (configured: a)`}},
		{"history of unknown sync", []string{"history", "nope", "--config", goodPath}, env, []string{`no sync named "nope"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(t, tc.env, tc.args...)
			require.Equal(t, cli.ExitUsage, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			for _, want := range tc.errContains {
				require.Contains(t, stderr, want)
			}
			require.NotContains(t, stdout+stderr, testPGPassword)
			require.NotContains(t, stdout+stderr, testClientSecret)
		})
	}
}

// TestRunPlanHistoryRejectsReset drives a sync through its life with every
// command, against a real Postgres warehouse and the emulator.
func TestRunPlanHistoryRejectsReset(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.insert("trial",
		person{"ada@example.com", "Ada", "Analytical"},
		person{"Grace@Example.com ", "Grace", "Navy"},
		person{"linus@example.com", "Linus", "Kernel"},
		person{"not-an-email", "Nobody", "None"},
	)
	h.insert("paid", person{"paid@example.com", "Paid", "Co"})

	// plan: the dry run.
	code, stdout, stderr := h.run("plan", "trial_users", "--json")
	require.Equal(t, cli.ExitOK, code, stderr)
	var plan map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &plan), stdout)
	require.EqualValues(t, 3, plan["adds"])
	require.EqualValues(t, 0, plan["removes"])
	require.EqualValues(t, 0, plan["field_updates"])
	require.EqualValues(t, 1, plan["invalid"])
	samples := plan["samples"].(map[string]any)
	require.ElementsMatch(t, []any{"ada@example.com", "grace@example.com", "linus@example.com"}, samples["adds"])
	require.Len(t, samples["invalid"], 1)
	require.Empty(t, h.listEmails(h.listID), "plan must not touch Marketo")

	code, stdout, _ = h.run("plan", "trial_users")
	require.Equal(t, cli.ExitOK, code)
	require.Contains(t, stdout, "Plan for trial_users (list")
	require.Contains(t, stdout, "add:")

	// run one sync.
	code, stdout, stderr = h.run("run", "trial_users")
	require.Equal(t, cli.ExitOK, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	require.Contains(t, stdout, "trial_users: succeeded")
	require.Contains(t, stdout, "added 3 of 3")
	require.Equal(t, []string{"ada@example.com", "grace@example.com", "linus@example.com"}, h.listEmails(h.listID))

	// The data changes: Linus leaves the trial, Margaret joins, Ada changes company.
	h.exec(`UPDATE people SET plan = 'paid' WHERE email = 'linus@example.com'`)
	h.exec(`UPDATE people SET company = 'Babbage & Co' WHERE email = 'ada@example.com'`)
	h.insert("trial", person{"margaret@example.com", "Margaret", "MIT"})

	code, stdout, _ = h.run("plan", "trial_users", "--json")
	require.Equal(t, cli.ExitOK, code)
	plan = nil
	require.NoError(t, json.Unmarshal([]byte(stdout), &plan))
	require.EqualValues(t, 1, plan["adds"])
	require.EqualValues(t, 1, plan["removes"])
	require.EqualValues(t, 1, plan["field_updates"])

	// run everything, as JSON.
	code, stdout, stderr = h.run("run", "--json")
	require.Equal(t, cli.ExitOK, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	var runs []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &runs), stdout)
	require.Len(t, runs, 2)
	require.Equal(t, "trial_users", runs[0]["sync"])
	require.Equal(t, "succeeded", runs[0]["status"])
	require.EqualValues(t, 1, runs[0]["adds_confirmed"])
	require.EqualValues(t, 1, runs[0]["removes_confirmed"])
	require.EqualValues(t, 1, runs[0]["field_updates_confirmed"])
	require.Greater(t, runs[0]["api_calls"], 0.0)
	require.Equal(t, "everyone", runs[1]["sync"])
	require.Equal(t, "succeeded", runs[1]["status"])
	for _, k := range []string{"id", "trigger", "started_at", "ended_at", "duration_seconds", "rows_read", "invalid", "adds_planned", "removes_planned", "rejected"} {
		require.Contains(t, runs[0], k)
	}
	require.Equal(t, []string{"ada@example.com", "grace@example.com", "margaret@example.com"}, h.listEmails(h.listID))
	ada := h.em.LeadsByEmail("ada@example.com")
	require.Len(t, ada, 1)
	require.Equal(t, "Babbage & Co", ada[0].Fields["company"])

	// history.
	code, stdout, _ = h.run("history", "--json")
	require.Equal(t, cli.ExitOK, code)
	var hist []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &hist))
	require.Len(t, hist, 3)
	require.Equal(t, "everyone", hist[0]["sync"], "newest first")
	code, stdout, _ = h.run("history", "trial_users", "--limit", "1")
	require.Equal(t, cli.ExitOK, code)
	require.Contains(t, stdout, "RUN")
	require.Contains(t, stdout, "trial_users")
	require.Equal(t, 2, strings.Count(stdout, "\n"), stdout)

	// rejects: none.
	code, stdout, _ = h.run("rejects", "trial_users")
	require.Equal(t, cli.ExitOK, code)
	require.Contains(t, stdout, "trial_users: no rejected rows.")
	code, stdout, _ = h.run("rejects", "trial_users", "--json")
	require.Equal(t, cli.ExitOK, code)
	require.Equal(t, "[]\n", stdout)

	// reset, then the next run resyncs from Marketo and changes nothing.
	code, stdout, _ = h.run("reset", "trial_users")
	require.Equal(t, cli.ExitOK, code)
	require.Contains(t, stdout, "forgot 3 confirmed members")
	code, stdout, stderr = h.run("run", "trial_users", "--json")
	require.Equal(t, cli.ExitOK, code, stderr)
	runs = nil
	require.NoError(t, json.Unmarshal([]byte(stdout), &runs))
	require.Equal(t, true, runs[0]["full_resync"])
	require.EqualValues(t, 0, runs[0]["adds_confirmed"])
	require.EqualValues(t, 0, runs[0]["removes_confirmed"])
	require.Equal(t, []string{"ada@example.com", "grace@example.com", "margaret@example.com"}, h.listEmails(h.listID))
}

// TestRemovalGuard: a run that would empty the list fails with exit 1 and
// says how to allow it; --allow-removals lets it through.
func TestRemovalGuard(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.insert("trial", person{"a@example.com", "A", "X"}, person{"b@example.com", "B", "X"}, person{"c@example.com", "C", "X"})
	code, _, stderr := h.run("run", "trial_users")
	require.Equal(t, cli.ExitOK, code, stderr)
	h.exec(`DELETE FROM people`)

	code, stdout, stderr := h.run("run", "trial_users")
	require.Equal(t, cli.ExitFailed, code)
	require.Contains(t, stdout, "trial_users: failed")
	require.Contains(t, stdout, "--allow-removals")
	require.Contains(t, stderr, "1 of 1 syncs failed")
	require.Len(t, h.listEmails(h.listID), 3, "the guard stops before touching Marketo")

	code, stdout, _ = h.run("plan", "trial_users", "--json")
	require.Equal(t, cli.ExitOK, code)
	var plan map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &plan))
	require.NotNil(t, plan["guard"])

	code, stdout, stderr = h.run("run", "trial_users", "--allow-removals")
	require.Equal(t, cli.ExitOK, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	require.Contains(t, stdout, "removed 3 of 3")
	require.Empty(t, h.listEmails(h.listID))
}

// TestValidateConnect reaches the state store, the warehouse and Marketo.
func TestValidateConnect(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	code, stdout, stderr := h.run("validate", "--connect")
	require.Equal(t, cli.ExitOK, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	require.Contains(t, stdout, "ok     state store (sqlite)")
	require.Contains(t, stdout, "ok     warehouse analytics (postgres)")
	require.Contains(t, stdout, "ok     marketo credentials ("+h.ts.URL+")")
	require.Contains(t, stdout, fmt.Sprintf(`ok     marketo list %d (sync trial_users): "Trial users"`, h.listID))

	h.env["WAREHOUSE_DSN"] = "postgres://nobody:" + testPGPassword + "@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"
	code, stdout, _ = h.run("validate", "--connect")
	require.Equal(t, cli.ExitFailed, code)
	require.Contains(t, stdout, "FAILED warehouse analytics (postgres)")
	require.NotContains(t, stdout, testPGPassword)
}

// TestValidateConnectMarketo: validate --connect checks the Marketo
// credentials, every list_id and every list_name's list or folder, and
// changes nothing in Marketo whatever it finds.
func TestValidateConnectMarketo(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	other := httptest.NewServer(http.NotFoundHandler()) // a web server, not Marketo
	t.Cleanup(other.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // nothing listens at its address any more

	tests := []struct {
		name string
		// edits replace text in the harness's config: trial_users names
		// list_id h.listID ("Trial users"), everyone names list_name
		// Everyone, marketo.folder is Audiences.
		edits  func() []string
		secret string
		// everyone, when set, is created in Marketo first.
		everyone bool
		code     int
		want     []string
		wantNot  []string
	}{
		{
			name: "list_id exists, list_name will be created",
			code: cli.ExitOK,
			want: []string{
				"ok     marketo credentials (" + h.ts.URL + ")",
				fmt.Sprintf(`ok     marketo list %d (sync trial_users): "Trial users"`, h.listID),
				`ok     marketo list "Everyone" (sync everyone): will be created in folder "Audiences" (id `,
			},
		},
		{
			name:     "list_name exists",
			everyone: true,
			code:     cli.ExitOK,
			want:     []string{`ok     marketo list "Everyone" (sync everyone): exists, id `},
		},
		{
			name:  "list_id does not exist",
			edits: func() []string { return []string{fmt.Sprintf("list_id: %d", h.listID), "list_id: 999999"} },
			code:  cli.ExitFailed,
			want: []string{
				"FAILED marketo list 999999 (sync trial_users): list 999999 does not exist in Marketo (check the sync's list_id)",
				`ok     marketo list "Everyone" (sync everyone): will be created`,
			},
		},
		{
			name:  "folder does not exist",
			edits: func() []string { return []string{"folder: Audiences", "folder: Nowhere"} },
			code:  cli.ExitFailed,
			want: []string{
				fmt.Sprintf(`ok     marketo list %d (sync trial_users)`, h.listID),
				`FAILED marketo list "Everyone" (sync everyone): the list does not exist yet, and folder "Nowhere"`,
				"create the folder in Marketo (Lead Database > Group Lists) or set marketo.folder",
			},
		},
		{
			name:    "wrong secret",
			secret:  "wrong-" + testClientSecret,
			code:    cli.ExitFailed,
			want:    []string{"FAILED marketo credentials (" + h.ts.URL + ")", "check the client id and client secret", "skip   marketo lists"},
			wantNot: []string{"ok     marketo list", "FAILED marketo list"},
		},
		{
			// With no list_id anywhere, the credentials are still checked.
			name: "wrong secret, lists named by name only",
			edits: func() []string {
				return []string{fmt.Sprintf("list_id: %d", h.listID), "list_name: Trial users"}
			},
			secret: "wrong-" + testClientSecret,
			code:   cli.ExitFailed,
			want:   []string{"FAILED marketo credentials", "check the client id and client secret"},
		},
		{
			name:  "endpoint is not Marketo",
			edits: func() []string { return []string{"endpoint: " + h.ts.URL, "endpoint: " + other.URL} },
			code:  cli.ExitFailed,
			want:  []string{"FAILED marketo credentials (" + other.URL + ")", "404", "REST endpoint shown in Admin > Web Services", "skip   marketo lists"},
		},
		{
			name:  "nothing listening at the endpoint",
			edits: func() []string { return []string{"endpoint: " + h.ts.URL, "endpoint: " + closed.URL} },
			code:  cli.ExitFailed,
			want:  []string{"FAILED marketo credentials (" + closed.URL + ")", "connection refused", "skip   marketo lists"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			h.writeConfig("")
			if tt.edits != nil {
				e := tt.edits()
				data, err := os.ReadFile(h.cfg)
				require.NoError(t, err)
				require.Contains(t, string(data), e[0])
				h.writeFile("listsync.yaml", strings.Replace(string(data), e[0], e[1], 1))
			}
			h.env["MARKETO_CLIENT_SECRET"] = cmp.Or(tt.secret, testClientSecret)
			if tt.everyone {
				h.em.CreateStaticList("Everyone", h.em.CreateFolder("Elsewhere"))
				t.Cleanup(func() {
					for _, l := range h.em.StaticLists() {
						if l.Name == "Everyone" {
							h.em.DeleteStaticList(l.ID)
						}
					}
				})
			}
			lists := len(h.em.StaticLists())
			creates := h.em.Stats().Endpoints["POST /rest/asset/v1/staticLists.json"]

			code, stdout, stderr := h.run("validate", "--connect")
			require.Equal(t, tt.code, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			for _, s := range tt.want {
				require.Contains(t, stdout, s)
			}
			for _, s := range tt.wantNot {
				require.NotContains(t, stdout, s)
			}
			if tt.code == cli.ExitFailed {
				require.Contains(t, stderr, "connection checks failed")
			}
			require.NotContains(t, stdout+stderr, testClientSecret)
			require.Len(t, h.em.StaticLists(), lists, "validate created no list")
			require.Equal(t, creates, h.em.Stats().Endpoints["POST /rest/asset/v1/staticLists.json"], "validate sent no create")
		})
	}
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready"))
	}))
	defer ok.Close()
	code, stdout, _ := runCLI(t, nil, "healthcheck", ok.URL+"/readyz")
	require.Equal(t, cli.ExitOK, code)
	require.Contains(t, stdout, "200 OK")
	code, _, stderr := runCLI(t, nil, "healthcheck", ok.URL+"/other")
	require.Equal(t, cli.ExitFailed, code)
	require.Contains(t, stderr, "503")
	code, _, _ = runCLI(t, nil, "healthcheck", "http://127.0.0.1:1/readyz", "--timeout", "1s")
	require.Equal(t, cli.ExitFailed, code)
	code, _, _ = runCLI(t, nil, "healthcheck", "ftp://x")
	require.Equal(t, cli.ExitUsage, code)
	code, _, _ = runCLI(t, nil, "healthcheck")
	require.Equal(t, cli.ExitUsage, code)
}

// TestRunProgressOnTerminal: a long run shows its progress on a terminal,
// and not otherwise (nor with --json).
func TestRunProgressOnTerminal(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.insert("trial", person{"a@example.com", "A", "X"})
	h.writeFile("models/trial_users.sql", "SELECT email, first_name, company FROM people, pg_sleep(1.3) WHERE plan = 'trial'\n")
	var stdout, stderr bytes.Buffer
	code := cli.Run(t.Context(), []string{"run", "trial_users", "--config", h.cfg}, &stdout, &stderr,
		cli.WithLookupEnv(h.lookup), cli.WithTerminal(true), cli.WithTempDir(t.TempDir()))
	require.Equal(t, cli.ExitOK, code, stderr.String())
	// The model sleeps before its first row: at one second the line shows
	// the phase; each later phase is drawn as it starts, with its counts.
	require.Contains(t, stderr.String(), "trial_users: reading model, 0 rows · running for 1s")
	require.Contains(t, stderr.String(), "trial_users: diffing 1 rows with the ledger")
	require.Contains(t, stderr.String(), "trial_users: pushing adds, 0 of 1 sent, 0 confirmed")
	require.True(t, strings.HasSuffix(stderr.String(), "\r\033[K"), "the line is cleared: %q", stderr.String())
	require.Contains(t, stdout.String(), "trial_users: succeeded")

	code, _, stderrPlain := h.run("run", "trial_users")
	require.Equal(t, cli.ExitOK, code)
	require.NotContains(t, stderrPlain, "running for")
}
