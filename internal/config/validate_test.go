package config_test

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/config"
)

const base = `state: {driver: postgres, dsn: "postgres://st:st-pass@db:5432/state"}
warehouses:
  pg: {type: postgres, dsn: "postgres://u:p@db/analytics"}
  lite: {type: sqlite, dsn: wh.db}
  snow: {type: snowflake, account: xy1, user: LS, password: pw, database: DB}
  bq: {type: bigquery, project: p1}
marketo:
  endpoint: https://123-ABC-456.mktorest.com
  client_id: id
  client_secret: secret
  folder: Audiences
syncs:
  - name: a
    warehouse: pg
    model: models/a.sql
    schedule: "*/15 * * * *"
    list_id: 1
  - name: b
    warehouse: snow
    model: models/sub/b.sql
    schedule: "@every 10m"
    list_name: B list
    fields: {firstName: first_name}
`

var modelsFS = fstest.MapFS{
	"models/a.sql":     {Data: []byte("select 'a@x.com' as email")},
	"models/sub/b.sql": {Data: []byte("select 'b@x.com' as email")},
	"models/empty.sql": {Data: nil},
	"models/dir.sql":   {Mode: 0o755 | 1<<31 /* fs.ModeDir */},
	"outside.sql":      {Data: []byte("select 1")},
	"models/a.txt":     {Data: []byte("select 1")},
}

func loadBase(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Load(strings.NewReader(text), config.Options{Dir: "/srv/listsync"})
	require.NoError(t, err)
	return cfg
}

func TestValidateBase(t *testing.T) {
	t.Parallel()
	require.NoError(t, loadBase(t, base).Validate(modelsFS))
}

func TestValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		mutate      func(c *config.Config)
		errContains []string
	}{
		{"version", func(c *config.Config) { c.Version = 2 }, []string{"version", "unsupported version 2"}},
		{"models_dir escapes", func(c *config.Config) { c.ModelsDir = "../models" }, []string{"models_dir", "below the config file"}},
		{"models_dir absolute", func(c *config.Config) { c.ModelsDir = "/etc" }, []string{"models_dir"}},
		{"state driver", func(c *config.Config) { c.State.Driver = "mysql" }, []string{"line 1", "state.driver", `"mysql" is not a state driver`}},
		{"state postgres dsn missing", func(c *config.Config) { c.State.DSN = config.NewSecret("") }, []string{"state.dsn", "postgres DSN is required"}},
		{"state postgres dsn garbage", func(c *config.Config) { c.State.DSN = config.NewSecret("hunter2") }, []string{"state.dsn", "postgres:// URL or key=value"}},
		{"state sqlite without file", func(c *config.Config) { c.State = config.State{Driver: "sqlite"} }, []string{"state.dsn", "file name"}},
		{"warehouse type unknown", func(c *config.Config) { setWH(c, "pg", func(w *config.Warehouse) { w.Type = "mysql" }) }, []string{"line 3", "warehouses.pg.type", `"mysql" is not a warehouse type`}},
		{"warehouse type missing", func(c *config.Config) { setWH(c, "pg", func(w *config.Warehouse) { w.Type = "" }) }, []string{"warehouses.pg.type", "required"}},
		{"postgres dsn missing", func(c *config.Config) { setWH(c, "pg", func(w *config.Warehouse) { w.DSN = config.Secret{} }) }, []string{"warehouses.pg.dsn", "required"}},
		{"sqlite dsn missing", func(c *config.Config) { setWH(c, "lite", func(w *config.Warehouse) { w.DSN = config.Secret{} }) }, []string{"warehouses.lite.dsn", "required for a sqlite warehouse"}},
		{"snowflake account missing", func(c *config.Config) { setWH(c, "snow", func(w *config.Warehouse) { w.Account = "" }) }, []string{"warehouses.snow.account", "required for a snowflake warehouse"}},
		{"snowflake user missing", func(c *config.Config) { setWH(c, "snow", func(w *config.Warehouse) { w.User = "" }) }, []string{"warehouses.snow.user", "required"}},
		{"snowflake no auth", func(c *config.Config) { setWH(c, "snow", func(w *config.Warehouse) { w.Password = config.Secret{} }) }, []string{"warehouses.snow", "exactly one of password, private_key_path and private_key"}},
		{"snowflake two auths", func(c *config.Config) { setWH(c, "snow", func(w *config.Warehouse) { w.PrivateKeyPath = "/k.p8" }) }, []string{"exactly one of password"}},
		{"snowflake port", func(c *config.Config) { setWH(c, "snow", func(w *config.Warehouse) { w.Port = 70000 }) }, []string{"warehouses.snow.port", "70000 is not a port"}},
		{"snowflake protocol", func(c *config.Config) { setWH(c, "snow", func(w *config.Warehouse) { w.Protocol = "ftp" }) }, []string{"warehouses.snow.protocol"}},
		{"bigquery project missing", func(c *config.Config) { setWH(c, "bq", func(w *config.Warehouse) { w.Project = "" }) }, []string{"warehouses.bq.project", "required for a bigquery warehouse"}},
		{"bigquery endpoint", func(c *config.Config) { setWH(c, "bq", func(w *config.Warehouse) { w.Endpoint = "not a url" }) }, []string{"warehouses.bq.endpoint", "not a URL"}},
		{"negative query timeout", func(c *config.Config) { setWH(c, "snow", func(w *config.Warehouse) { w.QueryTimeout = -time.Second }) }, []string{"warehouses.snow.query_timeout"}},
		{"marketo endpoint missing", func(c *config.Config) { c.Marketo.Endpoint = "" }, []string{"line 8", "marketo.endpoint", "required"}},
		{"marketo endpoint http", func(c *config.Config) { c.Marketo.Endpoint = "http://123-ABC-456.mktorest.com" }, []string{"marketo.endpoint", "https is required unless the host is loopback"}},
		{"marketo endpoint path", func(c *config.Config) { c.Marketo.Endpoint = "https://x.mktorest.com/rest/v1" }, []string{"marketo.endpoint", "without the path"}},
		{"marketo endpoint credentials", func(c *config.Config) { c.Marketo.Endpoint = "https://u:p@x.mktorest.com" }, []string{"must not carry credentials"}},
		{"marketo client id", func(c *config.Config) { c.Marketo.ClientID = "" }, []string{"marketo.client_id", "required"}},
		{"marketo client secret", func(c *config.Config) { c.Marketo.ClientSecret = config.Secret{} }, []string{"marketo.client_secret", "required"}},
		{"marketo calls", func(c *config.Config) { c.Marketo.CallsPer20s = 101 }, []string{"marketo.calls_per_20s", "101 is outside 1..100"}},
		{"marketo concurrency", func(c *config.Config) { c.Marketo.MaxConcurrency = 11 }, []string{"marketo.max_concurrency", "outside 1..10"}},
		{"marketo quota", func(c *config.Config) { c.Marketo.DailyQuota = -1 }, []string{"marketo.daily_quota", "positive"}},
		{"marketo folder needed by list_name", func(c *config.Config) { c.Marketo.Folder = "" }, []string{"marketo.folder", `sync "b" names its list by list_name`}},
		{"worker listen", func(c *config.Config) { c.Worker.Listen = "9464" }, []string{"worker.listen", "host:port"}},
		{"worker parallel", func(c *config.Config) { c.Worker.MaxParallel = 0 }, []string{"worker.max_parallel"}},
		{"worker shutdown", func(c *config.Config) { c.Worker.ShutdownTimeout = 0 }, []string{"worker.shutdown_timeout"}},
		{"no syncs", func(c *config.Config) { c.Syncs = nil }, []string{"syncs", "no syncs are configured"}},
		{"sync name missing", func(c *config.Config) { c.Syncs[0].Name = "" }, []string{"syncs[0].name", "required"}},
		{"sync name bad", func(c *config.Config) { c.Syncs[0].Name = "a b/c" }, []string{"syncs[0] (a b/c).name", "use letters"}},
		{"sync name duplicate", func(c *config.Config) { c.Syncs[1].Name = "a" }, []string{"line 18", "syncs[1] (a).name", `duplicate sync name "a" (also syncs[0])`}},
		{"warehouse missing", func(c *config.Config) { c.Syncs[0].Warehouse = "" }, []string{"syncs[0] (a).warehouse", "required", "bq, lite, pg, snow"}},
		{"warehouse unknown", func(c *config.Config) { c.Syncs[0].Warehouse = "nope" }, []string{"line 14", "syncs[0] (a).warehouse", `no warehouse named "nope"`}},
		{"model missing key", func(c *config.Config) { c.Syncs[0].Model = "" }, []string{"syncs[0] (a).model", "required", "models/a.sql"}},
		{"model file missing", func(c *config.Config) { c.Syncs[0].Model = "models/nope.sql" }, []string{"line 15", "syncs[0] (a).model", `model file "models/nope.sql" does not exist`}},
		{"model escapes with ..", func(c *config.Config) { c.Syncs[0].Model = "models/../outside.sql" }, []string{"outside the models directory"}},
		{"model escapes upwards", func(c *config.Config) { c.Syncs[0].Model = "../../etc/passwd.sql" }, []string{"outside the models directory"}},
		{"model absolute outside", func(c *config.Config) { c.Syncs[0].Model = "/etc/passwd.sql" }, []string{"outside the models directory"}},
		{"model absolute sibling", func(c *config.Config) { c.Syncs[0].Model = "/srv/listsync-evil/models/a.sql" }, []string{"outside the models directory"}},
		{"model outside models dir", func(c *config.Config) { c.Syncs[0].Model = "outside.sql" }, []string{"outside the models directory"}},
		{"model not sql", func(c *config.Config) { c.Syncs[0].Model = "models/a.txt" }, []string{"a model is a .sql file"}},
		{"model empty", func(c *config.Config) { c.Syncs[0].Model = "models/empty.sql" }, []string{"is empty"}},
		{"model directory", func(c *config.Config) { c.Syncs[0].Model = "models/dir.sql" }, []string{"not a regular file"}},
		{"schedule fields", func(c *config.Config) { c.Syncs[0].Schedule = "*/15 * *" }, []string{"line 16", "syncs[0] (a).schedule", "expected exactly 5 fields"}},
		{"schedule range", func(c *config.Config) { c.Syncs[0].Schedule = "61 * * * *" }, []string{"syncs[0] (a).schedule", "above maximum"}},
		{"schedule descriptor", func(c *config.Config) { c.Syncs[0].Schedule = "@fortnightly" }, []string{"unrecognized descriptor"}},
		{"schedule tz", func(c *config.Config) { c.Syncs[0].Schedule = "CRON_TZ=Mars/Olympus 0 7 * * *" }, []string{`unknown time zone "Mars/Olympus"`}},
		{"schedule never", func(c *config.Config) { c.Syncs[0].Schedule = "0 0 30 2 *" }, []string{"never fires"}},
		{"schedule every too fast", func(c *config.Config) { c.Syncs[0].Schedule = "@every 500ms" }, []string{"at least 1s"}},
		{"list both", func(c *config.Config) { c.Syncs[0].ListName = "x" }, []string{"syncs[0] (a)", "exactly one of list_id and list_name, not both"}},
		{"list neither", func(c *config.Config) { c.Syncs[0].ListID = 0 }, []string{"line 13", "syncs[0] (a)", "set exactly one of list_id and list_name"}},
		{"list id negative", func(c *config.Config) { c.Syncs[0].ListID = -4 }, []string{"syncs[0] (a).list_id", "-4 is not a list id"}},
		{"lookup field", func(c *config.Config) { c.Syncs[0].LookupField = "e mail" }, []string{"syncs[0] (a).lookup_field"}},
		{"mode", func(c *config.Config) { c.Syncs[0].Mode = "sync" }, []string{"syncs[0] (a).mode", `"sync" is not a mode (use mirror or add_only)`}},
		{"fields bad name", func(c *config.Config) { c.Syncs[1].Fields = map[string]string{"first name": "x"} }, []string{"syncs[1] (b).fields", `"first name" is not a Marketo field name`}},
		{"fields empty column", func(c *config.Config) { c.Syncs[1].Fields = map[string]string{"firstName": " "} }, []string{"syncs[1] (b).fields.firstName", "needs a model column"}},
		{"fields maps lookup", func(c *config.Config) { c.Syncs[1].Fields = map[string]string{"email": "mail"} }, []string{"syncs[1] (b).fields.email", "lookup field"}},
		{"remove fraction above 1", func(c *config.Config) { c.Syncs[0].MaxRemoveFraction = 1.5 }, []string{"syncs[0] (a).max_remove_fraction", "1.5 is outside (0, 1]"}},
		{"remove fraction negative", func(c *config.Config) { c.Syncs[0].MaxRemoveFraction = -0.1 }, []string{"max_remove_fraction"}},
		{"timeout", func(c *config.Config) { c.Syncs[0].Timeout = -time.Minute }, []string{"syncs[0] (a).timeout", "positive"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := loadBase(t, base)
			tc.mutate(cfg)
			err := cfg.Validate(modelsFS)
			require.Error(t, err)
			require.ErrorIs(t, err, config.ErrInvalid)
			for _, want := range tc.errContains {
				require.Contains(t, err.Error(), want)
			}
			var fe *config.FieldError
			require.True(t, errors.As(err, &fe))
		})
	}
}

// TestValidateTextCases covers settings whose problem only shows in the
// text: explicit zeros (which must not be replaced by defaults), keys of
// another warehouse type, and several problems reported at once.
func TestValidateTextCases(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		text        string
		errContains []string
	}{
		{"explicit zero fraction", strings.Replace(base, "list_id: 1\n", "list_id: 1\n    max_remove_fraction: 0\n", 1), []string{"line 18", "max_remove_fraction", "0 is outside (0, 1]"}},
		{"explicit zero quota", strings.Replace(base, "folder: Audiences\n", "folder: Audiences\n  daily_quota: 0\n", 1), []string{"line 12", "marketo.daily_quota"}},
		{"explicit zero calls", strings.Replace(base, "folder: Audiences\n", "folder: Audiences\n  calls_per_20s: 0\n", 1), []string{"marketo.calls_per_20s", "0 is outside"}},
		{"key of another type", strings.Replace(base, "{type: sqlite, dsn: wh.db}", "{type: sqlite, dsn: wh.db, project: p}", 1), []string{"line 4", "warehouses.lite.project", "not a setting of a sqlite warehouse"}},
		{"snowflake with dsn", strings.Replace(base, "database: DB}", "database: DB, dsn: x}", 1), []string{"warehouses.snow.dsn", "not a setting of a snowflake warehouse"}},
		{"all problems at once", strings.Replace(strings.Replace(base, "list_id: 1\n", "list_id: 1\n    mode: up\n", 1), "@every 10m", "@every", 1), []string{"syncs[0] (a).mode", "syncs[1] (b).schedule", "@every needs a duration"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := loadBase(t, tc.text).Validate(modelsFS)
			require.Error(t, err)
			for _, want := range tc.errContains {
				require.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestValidateNeverQuotesSecrets(t *testing.T) {
	t.Parallel()
	cfg := loadBase(t, base)
	cfg.State.DSN = config.NewSecret("not-a-url-hunter2")
	setWH(cfg, "pg", func(w *config.Warehouse) { w.DSN = config.NewSecret("postgres://u:hunter2@[::1") })
	err := cfg.Validate(modelsFS)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")
}

func TestModelsDirDot(t *testing.T) {
	t.Parallel()
	cfg := loadBase(t, "models_dir: .\n"+base)
	cfg.Syncs[0].Model = "outside.sql"
	require.NoError(t, cfg.Validate(modelsFS))
	cfg.Syncs[0].Model = "../outside.sql"
	require.ErrorContains(t, cfg.Validate(modelsFS), "outside the models directory")
}

func TestModelAbsoluteInside(t *testing.T) {
	t.Parallel()
	cfg := loadBase(t, base)
	cfg.Syncs[0].Model = "/srv/listsync/models/a.sql"
	require.NoError(t, cfg.Validate(modelsFS))
	p, err := cfg.ModelPath(&cfg.Syncs[0], modelsFS)
	require.NoError(t, err)
	require.Equal(t, "models/a.sql", p)
}

func setWH(c *config.Config, name string, f func(w *config.Warehouse)) {
	w := c.Warehouses[name]
	f(&w)
	c.Warehouses[name] = w
}
