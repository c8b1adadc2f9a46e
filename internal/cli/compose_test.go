package cli_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/cli"
	"github.com/listsync/listsync/internal/marketo/emulator"
	"github.com/listsync/listsync/internal/pgtest"
)

// TestComposeSetup runs what docker-compose.yml runs, without Docker: the
// seed of deploy/postgres/02-warehouse.sql in a fresh database, the config
// deploy/listsync.yaml with the example models of models/, a Postgres state
// store and the emulator. Every example model must return rows and every
// sync must fill its list, twice without changes the second time.
func TestComposeSetup(t *testing.T) {
	t.Parallel()
	base := pgtest.BaseURL(t)
	ctx := t.Context()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	db := "lstest_compose_" + hex.EncodeToString(b)
	admin, err := pgx.Connect(ctx, base)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, "CREATE DATABASE "+db)
	require.NoError(t, err)
	_ = admin.Close(ctx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("dropping %s: %v", db, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE "+db+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping %s: %v", db, err)
		}
	})
	u, err := url.Parse(base)
	require.NoError(t, err)
	u.Path = "/" + db
	whDSN := u.String()

	seed, err := os.ReadFile("../../deploy/postgres/02-warehouse.sql")
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, whDSN)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, string(seed))
	require.NoError(t, err)
	var trialCount int64
	trialSQL, err := os.ReadFile("../../models/trial_users.sql")
	require.NoError(t, err)
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(DISTINCT lower(trim(email))) FROM ("+string(trialSQL)+") m WHERE email LIKE '%@%'").Scan(&trialCount))
	require.Positive(t, trialCount)
	_ = conn.Close(ctx)

	dir := t.TempDir()
	cfg, err := os.ReadFile("../../deploy/listsync.yaml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "listsync.yaml"), cfg, 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "models"), 0o755))
	models, err := filepath.Glob("../../models/*.sql")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(models), 2)
	for _, m := range models {
		data, err := os.ReadFile(m)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "models", filepath.Base(m)), data, 0o644))
	}

	em := emulator.New(emulator.Config{ClientID: "listsync-local", ClientSecret: "emulator-local-only"})
	ts := httptest.NewServer(em)
	t.Cleanup(func() { ts.Close(); _ = em.Close() })
	em.CreateFolder("Audiences")
	env := map[string]string{
		"STATE_DSN":             pgtest.DSN(t),
		"WAREHOUSE_DSN":         whDSN,
		"MARKETO_ENDPOINT":      ts.URL,
		"MARKETO_CLIENT_ID":     "listsync-local",
		"MARKETO_CLIENT_SECRET": "emulator-local-only",
	}
	h := &harness{t: t, dir: dir, cfg: filepath.Join(dir, "listsync.yaml"), em: em, ts: ts, env: env}

	code, stdout, stderr := h.run("validate", "--connect")
	require.Equal(t, cli.ExitOK, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)

	for round := range 2 {
		code, stdout, stderr = h.run("run", "--json")
		require.Equal(t, cli.ExitOK, code, "round %d\nstdout:\n%s\nstderr:\n%s", round, stdout, stderr)
		var runs []map[string]any
		require.NoError(t, json.Unmarshal([]byte(stdout), &runs))
		require.Len(t, runs, 3)
		for _, r := range runs {
			require.Equal(t, "succeeded", r["status"], r)
			require.Positive(t, r["rows_read"], "model of %s returned no rows", r["sync"])
			if round == 0 {
				require.Positive(t, r["adds_confirmed"], r)
			} else {
				require.EqualValues(t, 0, r["adds_planned"], r)
				require.EqualValues(t, 0, r["removes_planned"], r)
			}
		}
		require.EqualValues(t, 2, runs[0]["invalid"], "the NULL and the malformed email of the seed")
	}
	lists := map[string]int64{}
	for _, l := range em.StaticLists() {
		lists[l.Name] = l.ID
	}
	for _, name := range []string{"Trial users", "Churn risk", "Webinar follow-up"} {
		id, ok := lists[name]
		require.True(t, ok, "list %q was not created", name)
		require.NotEmpty(t, em.ListMembers(id), name)
	}
	require.Len(t, em.ListMembers(lists["Trial users"]), int(trialCount))
}
