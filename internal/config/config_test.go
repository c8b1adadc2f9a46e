package config_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/config"
)

// env returns a LookupEnvFunc over m.
func env(m map[string]string) config.LookupEnvFunc {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

var exampleEnv = map[string]string{
	"WAREHOUSE_DSN":         "postgres://wh:wh-pass-123@db:5432/analytics",
	"MARKETO_CLIENT_ID":     "client-id-abc",
	"MARKETO_CLIENT_SECRET": "client-secret-xyz",
}

func TestExampleLoadsAndValidates(t *testing.T) {
	t.Parallel()
	f, err := os.Open("../../config.example.yaml")
	require.NoError(t, err)
	defer f.Close()
	cfg, err := config.Load(f, config.Options{LookupEnv: env(exampleEnv), Dir: "../.."})
	require.NoError(t, err)
	root, err := os.OpenRoot("../..")
	require.NoError(t, err)
	defer root.Close()
	require.NoError(t, cfg.Validate(root.FS()))

	require.Equal(t, config.DriverSQLite, cfg.State.Driver)
	require.Equal(t, "listsync.db", cfg.State.DSN.Reveal())
	require.Equal(t, config.TypePostgres, cfg.Warehouses["analytics"].Type)
	require.Equal(t, exampleEnv["WAREHOUSE_DSN"], cfg.Warehouses["analytics"].DSN.Reveal())
	require.Equal(t, "https://123-ABC-456.mktorest.com", cfg.Marketo.Endpoint)
	require.Equal(t, "client-id-abc", cfg.Marketo.ClientID)
	require.Equal(t, "client-secret-xyz", cfg.Marketo.ClientSecret.Reveal())
	require.Equal(t, "Audiences", cfg.Marketo.Folder)
	require.Equal(t, 80, cfg.Marketo.CallsPer20s)
	require.Equal(t, 5, cfg.Marketo.MaxConcurrency)
	require.Equal(t, 50000, cfg.Marketo.DailyQuota)
	require.Equal(t, config.ListenDefault, cfg.Worker.Listen)
	require.Len(t, cfg.Syncs, 3)

	s := cfg.Syncs[0]
	require.Equal(t, "trial_users", s.Name)
	require.Equal(t, "analytics", s.Warehouse)
	require.Equal(t, "models/trial_users.sql", s.Model)
	require.Equal(t, "*/15 * * * *", s.Schedule)
	require.Equal(t, int64(1234), s.ListID)
	require.Equal(t, "email", s.LookupField)
	require.Equal(t, config.ModeMirror, s.Mode)
	require.Equal(t, map[string]string{"firstName": "first_name", "company": "company"}, s.Fields)
	require.Equal(t, 0.5, s.MaxRemoveFraction)
	require.Equal(t, config.SyncTimeoutDefault, s.Timeout)

	require.Equal(t, "Churn risk", cfg.Syncs[1].ListName)
	require.Equal(t, config.ModeAddOnly, cfg.Syncs[2].Mode)

	p, err := cfg.ModelPath(&cfg.Syncs[0], root.FS())
	require.NoError(t, err)
	require.Equal(t, "models/trial_users.sql", p)
}

// TestExampleCommentedWarehouses uncomments the example's warehouse
// alternatives and checks that each is a valid configuration, so that the
// reference cannot drift from the loader.
func TestExampleCommentedWarehouses(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../config.example.yaml")
	require.NoError(t, err)
	lines := strings.Split(string(data), "\n")
	var out []string
	inWarehouses := false
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "warehouses:"):
			inWarehouses = true
		case strings.HasPrefix(l, "marketo:"):
			inWarehouses = false
		}
		if inWarehouses && strings.HasPrefix(l, "  # ") && !strings.HasPrefix(l, "  #   #") {
			body := strings.TrimPrefix(l, "  # ")
			// Keep comment lines that are prose (they start with a capital
			// letter and contain no colon-space mapping).
			if body != "" && (body[0] == ' ' || strings.HasSuffix(body, ":") || strings.Contains(body, ": ")) &&
				!strings.HasPrefix(body, "Snowflake") && !strings.HasPrefix(body, "BigQuery") && !strings.HasPrefix(body, "An embedded") {
				l = "  " + body
			}
		}
		out = append(out, l)
	}
	text := strings.Join(out, "\n")
	cfg, err := config.Load(strings.NewReader(text), config.Options{LookupEnv: env(exampleEnv), Dir: "../.."})
	require.NoError(t, err, text)
	require.Len(t, cfg.Warehouses, 4)
	require.Equal(t, config.TypeSQLite, cfg.Warehouses["local"].Type)
	require.Equal(t, config.TypeSnowflake, cfg.Warehouses["snow"].Type)
	require.Equal(t, "COMPUTE_WH", cfg.Warehouses["snow"].Warehouse)
	require.Equal(t, 10*time.Minute, cfg.Warehouses["snow"].QueryTimeout)
	require.Equal(t, config.TypeBigQuery, cfg.Warehouses["bq"].Type)
	require.Equal(t, "EU", cfg.Warehouses["bq"].Location)
	root, err := os.OpenRoot("../..")
	require.NoError(t, err)
	defer root.Close()
	require.NoError(t, cfg.Validate(root.FS()))
}

const minimal = `
warehouses:
  wh: {type: sqlite, dsn: wh.db}
marketo:
  endpoint: http://127.0.0.1:8080
  client_id: id
  client_secret: secret
syncs:
  - name: s1
    warehouse: wh
    model: models/s1.sql
    list_id: 7
`

func TestDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(strings.NewReader(minimal), config.Options{})
	require.NoError(t, err)
	require.Equal(t, config.VersionDefault, cfg.Version)
	require.Equal(t, config.ModelsDirDefault, cfg.ModelsDir)
	require.Equal(t, config.StateDriverDefault, cfg.State.Driver)
	require.Equal(t, config.StateDSNDefault, cfg.State.DSN.Reveal())
	require.Equal(t, config.CallsPer20sDefault, cfg.Marketo.CallsPer20s)
	require.Equal(t, config.MaxConcurrencyDefault, cfg.Marketo.MaxConcurrency)
	require.Equal(t, config.DailyQuotaDefault, cfg.Marketo.DailyQuota)
	require.Equal(t, config.ListenDefault, cfg.Worker.Listen)
	require.Equal(t, config.MaxParallelDefault, cfg.Worker.MaxParallel)
	require.Equal(t, config.ShutdownTimeoutDefault, cfg.Worker.ShutdownTimeout)
	s := cfg.Syncs[0]
	require.Equal(t, config.LookupFieldDefault, s.LookupField)
	require.Equal(t, config.ModeDefault, s.Mode)
	require.Equal(t, config.MaxRemoveFractionDefault, s.MaxRemoveFraction)
	require.Equal(t, config.SyncTimeoutDefault, s.Timeout)
	require.Equal(t, ".", cfg.Dir)
	require.NoError(t, cfg.Validate(fstest.MapFS{"models/s1.sql": {Data: []byte("select 1")}}))
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		yaml        string
		env         map[string]string
		errContains []string
		is          error
	}{
		{name: "unknown top-level key", yaml: "state: {}\nwarehouse: {}\n", errContains: []string{"line 2", "warehouse", "unknown key", "valid keys here:", "warehouses"}, is: config.ErrUnknownKey},
		{name: "unknown sync key", yaml: minimal + "    shedule: '@hourly'\n", errContains: []string{"line 13", "syncs[0].shedule", "unknown key", "schedule"}, is: config.ErrUnknownKey},
		{name: "unknown warehouse key", yaml: "warehouses:\n  wh:\n    type: sqlite\n    dns: x\n", errContains: []string{"line 4", "warehouses.wh.dns", "unknown key"}, is: config.ErrUnknownKey},
		{name: "unknown key in a merged anchor", yaml: "x: &d {mode: mirror, colour: red}\nsyncs:\n  - <<: *d\n    name: a\n", errContains: []string{"line 1", "x", "unknown key"}},
		{name: "unknown key through a merge", yaml: "syncs:\n  - &d {mode: mirror, colour: red}\n  - <<: *d\n    name: a\n", errContains: []string{"line 2", "syncs[0].colour", "unknown key"}},
		{name: "unset variable", yaml: "marketo:\n  endpoint: https://x.mktorest.com\n  client_secret: \"${MKTO_SECRET}\"\n", errContains: []string{"line 3", "MKTO_SECRET", "not set"}, is: config.ErrEnv},
		{name: "unterminated variable", yaml: "marketo:\n  client_id: \"${ABC\"\n", errContains: []string{"line 2", "unterminated"}, is: config.ErrEnv},
		{name: "bad variable name", yaml: "marketo:\n  client_id: \"${1ABC}\"\n", errContains: []string{"line 2", "invalid variable name"}, is: config.ErrEnv},
		{name: "syntax error", yaml: "syncs:\n  - name: a\n    fields: {a: b\n", errContains: []string{"yaml: line"}},
		{name: "empty", yaml: "", errContains: []string{"empty"}, is: config.ErrInvalid},
		{name: "two documents", yaml: "state: {}\n---\nstate: {}\n", errContains: []string{"more than one YAML document"}},
		{name: "not a mapping", yaml: "- a\n- b\n", errContains: []string{"top level must be a mapping"}},
		{name: "list_id not an integer", yaml: "syncs:\n  - name: a\n    list_id: 12.5\n", errContains: []string{"line 3", "syncs[0].list_id", "not an integer"}},
		{name: "list_id of the wrong type", yaml: "syncs:\n  - name: a\n    list_id: [1]\n", errContains: []string{"line 3"}},
		{name: "duration does not parse", yaml: "syncs:\n  - name: a\n    timeout: soon\n", errContains: []string{"line 3", "soon"}},
		{name: "secret not a string", yaml: "marketo:\n  client_secret: {a: b}\n", errContains: []string{"line 2", "expected a string"}},
		{name: "duplicate key", yaml: "state: {}\nstate: {}\n", errContains: []string{"already defined"}},
		{name: "too large", yaml: "#" + strings.Repeat("x", config.MaxConfigBytes), errContains: []string{"larger than"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(strings.NewReader(tc.yaml), config.Options{LookupEnv: env(tc.env)})
			require.Error(t, err)
			for _, want := range tc.errContains {
				require.Contains(t, err.Error(), want)
			}
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
		})
	}
}

func TestEnvExpansion(t *testing.T) {
	t.Parallel()
	yaml := `
warehouses:
  wh: {type: postgres, dsn: "postgres://u:${PG_PASS}@h/db"}
marketo:
  endpoint: ${MKTO_URL}
  client_id: id
  client_secret: "${SECRET}"
  calls_per_20s: ${CALLS}
syncs:
  - name: s1
    warehouse: wh
    model: models/s1.sql
    list_id: "${LIST_ID}"
    list_name: "costs $$5, keeps $HOME and a lone $"
`
	cfg, err := config.Load(strings.NewReader(yaml), config.Options{LookupEnv: env(map[string]string{
		"PG_PASS": "p@ss:w0rd", "MKTO_URL": "https://x.mktorest.com", "SECRET": "s3cr3t\nwith newline: and yaml",
		"CALLS": "60", "LIST_ID": "42",
	})})
	require.NoError(t, err)
	require.Equal(t, "postgres://u:p@ss:w0rd@h/db", cfg.Warehouses["wh"].DSN.Reveal())
	require.Equal(t, "https://x.mktorest.com", cfg.Marketo.Endpoint)
	require.Equal(t, "s3cr3t\nwith newline: and yaml", cfg.Marketo.ClientSecret.Reveal(), "a value is data, never YAML")
	require.Equal(t, 60, cfg.Marketo.CallsPer20s)
	require.Equal(t, int64(42), cfg.Syncs[0].ListID)
	require.Equal(t, "costs $5, keeps $HOME and a lone $", cfg.Syncs[0].ListName)
}

func TestEnvNotReadWithoutLookup(t *testing.T) {
	t.Setenv("LISTSYNC_TEST_VAR", "x")
	_, err := config.Load(strings.NewReader("marketo: {client_id: \"${LISTSYNC_TEST_VAR}\"}\n"), config.Options{})
	require.ErrorIs(t, err, config.ErrEnv)
	require.Contains(t, err.Error(), "LISTSYNC_TEST_VAR is not set")
}

func TestEnvValueIsNotReexpanded(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(strings.NewReader("marketo: {client_id: \"${A}\"}\n"), config.Options{LookupEnv: env(map[string]string{"A": "${B}"})})
	require.NoError(t, err)
	require.Equal(t, "${B}", cfg.Marketo.ClientID)
}

func TestAliasExpandedOnce(t *testing.T) {
	t.Parallel()
	yaml := "marketo: {client_id: &id \"$${A}\", folder: *id}\n"
	cfg, err := config.Load(strings.NewReader(yaml), config.Options{LookupEnv: env(map[string]string{"A": "no"})})
	require.NoError(t, err)
	require.Equal(t, "${A}", cfg.Marketo.ClientID)
	require.Equal(t, "${A}", cfg.Marketo.Folder)
}

func TestFieldErrorUnwraps(t *testing.T) {
	t.Parallel()
	_, err := config.Load(strings.NewReader("nope: 1\n"), config.Options{})
	var fe *config.FieldError
	require.True(t, errors.As(err, &fe))
	require.Equal(t, 1, fe.Line)
	require.Equal(t, "nope", fe.Key)
}
