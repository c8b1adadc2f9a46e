package sync_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/marketo/emulator"
	"github.com/listsync/listsync/internal/pgtest"
	"github.com/listsync/listsync/internal/state"
	statepg "github.com/listsync/listsync/internal/state/postgres"
	"github.com/listsync/listsync/internal/state/sqlite"
	listsync "github.com/listsync/listsync/internal/sync"
	whpg "github.com/listsync/listsync/internal/warehouse/postgres"
)

// clock is a settable clock for the engine.
type clock struct {
	mu stdsync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one end-to-end setup: the emulator behind the real client, a real
// Postgres warehouse holding the model's table, and a real state store.
type env struct {
	t      *testing.T
	ctx    context.Context
	em     *emulator.Emulator
	client *marketo.Client
	conn   *pgx.Conn
	wh     *whpg.Warehouse
	store  state.Store
	engine *listsync.Engine
	clock  *clock
}

type envOptions struct {
	postgresState bool
	emulator      emulator.Config
	engine        func(*listsync.EngineConfig)
	client        func(*marketo.Config)
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx := t.Context()
	ecfg := o.emulator
	ecfg.ClientID, ecfg.ClientSecret = "id", "secret"
	if ecfg.ImportRowsPerSec == 0 {
		ecfg.ImportRowsPerSec = -1 // imports complete at once
	}
	if ecfg.ExportProcessingTime == 0 {
		ecfg.ExportProcessingTime = -1
	}
	em := emulator.New(ecfg)
	ts := httptest.NewServer(em)
	t.Cleanup(func() {
		ts.Close()
		_ = em.Close()
	})
	mcfg := marketo.Config{
		Endpoint: ts.URL, ClientID: "id", ClientSecret: "secret", HTTPClient: ts.Client(),
		Logger:            zaptest.NewLogger(t).Named("marketo"),
		ImportPollInitial: 5 * time.Millisecond, ImportPollMax: 20 * time.Millisecond,
		ExtractPollInitial: 5 * time.Millisecond, ExtractPollMax: 20 * time.Millisecond,
		BackoffBase: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
	}
	if o.client != nil {
		o.client(&mcfg)
	}
	client, err := marketo.NewClient(mcfg)
	require.NoError(t, err)

	dsn := pgtest.DSN(t)
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.WithoutCancel(ctx)) })
	wh, err := whpg.New(ctx, whpg.Config{DSN: dsn})
	require.NoError(t, err)
	t.Cleanup(func() { _ = wh.Close() })

	var store state.Store
	if o.postgresState {
		store, err = statepg.Open(ctx, statepg.Config{DSN: dsn})
	} else {
		store, err = sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "state.db")})
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, store.Close()) })

	c := &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	cfg := listsync.EngineConfig{Store: store, Marketo: client, Logger: zaptest.NewLogger(t).Named("engine"),
		Now: c.Now, TempDir: t.TempDir()}
	if o.engine != nil {
		o.engine(&cfg)
	}
	engine, err := listsync.NewEngine(cfg)
	require.NoError(t, err)
	e := &env{t: t, ctx: ctx, em: em, client: client, conn: conn, wh: wh, store: store, engine: engine, clock: c}
	e.setModel()
	return e
}

// newABCSync returns an env whose folder Audiences exists and whose model
// holds a@x.com, b@x.com and c@x.com, and a sync that maps their first
// names to the list named Trial users (created in the folder on the first
// run).
func newABCSync(t *testing.T, postgresState bool) (*env, listsync.Spec) {
	t.Helper()
	e := newEnv(t, envOptions{postgresState: postgresState})
	e.em.CreateFolder("Audiences")
	e.setModel(emails("a@x.com", "b@x.com", "c@x.com")...)
	spec := e.spec(byName)
	spec.Fields = map[string]string{"firstName": "first_name"}
	return e, spec
}

// person is a row of the model's table.
type person struct {
	email     any // string or nil
	firstName string
	score     string
}

// setModel replaces the model's table with rows.
func (e *env) setModel(rows ...person) {
	e.t.Helper()
	_, err := e.conn.Exec(e.ctx, `DROP TABLE IF EXISTS people; CREATE TABLE people (email text, first_name text, score text)`)
	require.NoError(e.t, err)
	if len(rows) == 0 {
		return
	}
	data := make([][]any, len(rows))
	for i, r := range rows {
		data[i] = []any{r.email, r.firstName, r.score}
	}
	_, err = e.conn.CopyFrom(e.ctx, pgx.Identifier{"people"}, []string{"email", "first_name", "score"}, pgx.CopyFromRows(data))
	require.NoError(e.t, err)
}

// emails makes model rows from emails.
func emails(es ...string) []person {
	out := make([]person, len(es))
	for i, e := range es {
		out[i] = person{email: e, firstName: "F" + e}
	}
	return out
}

func (e *env) spec(list marketo.ListRef) listsync.Spec {
	return listsync.Spec{
		Name: "trial_users", Warehouse: e.wh, Model: "models/trial_users.sql",
		SQL:  "SELECT email, first_name FROM people",
		List: list,
	}
}

func (e *env) run(spec listsync.Spec, opts listsync.RunOptions) state.Run {
	e.t.Helper()
	run, err := e.engine.Run(e.ctx, spec, opts)
	require.NoError(e.t, err)
	require.Equal(e.t, state.RunSucceeded, run.Status)
	return run
}

// listEmails returns the emails of the list's members in Marketo, sorted.
func (e *env) listEmails(listID int64) []string {
	var out []string
	for _, l := range e.em.ListMembers(listID) {
		out = append(out, strings.ToLower(l.Email))
	}
	slices.Sort(out)
	return out
}

// ledger returns the ledger's keys.
func (e *env) ledger(syncName string) []string {
	e.t.Helper()
	var out []string
	require.NoError(e.t, e.store.ScanMembers(e.ctx, syncName, func(m state.Member) error {
		out = append(out, m.Key)
		return nil
	}))
	return out
}

// requireOnList asserts that every key is a member of the list in Marketo:
// the ledger holds only what Marketo confirmed.
func (e *env) requireOnList(listID int64, keys []string) {
	e.t.Helper()
	onList := map[string]bool{}
	for _, k := range e.listEmails(listID) {
		onList[k] = true
	}
	for _, k := range keys {
		require.True(e.t, onList[k], "the ledger holds only what Marketo confirmed: %s", k)
	}
}

// confirmed returns the ledger's keys that Marketo confirmed, leaving out
// those marked pending before a push whose answer never came.
func (e *env) confirmed(syncName string) []string {
	e.t.Helper()
	var out []string
	require.NoError(e.t, e.store.ScanMembers(e.ctx, syncName, func(m state.Member) error {
		if !m.Pending() {
			out = append(out, m.Key)
		}
		return nil
	}))
	return out
}

// requireConverged checks that the list and the ledger both hold exactly want.
func (e *env) requireConverged(syncName string, listID int64, want ...string) {
	e.t.Helper()
	want = slices.Clone(want)
	slices.Sort(want)
	if want == nil {
		want = []string{}
	}
	got := e.listEmails(listID)
	if got == nil {
		got = []string{}
	}
	require.Equal(e.t, want, got, "the list in Marketo")
	ledger := e.ledger(syncName)
	if ledger == nil {
		ledger = []string{}
	}
	require.Equal(e.t, want, ledger, "the ledger")
	require.Equal(e.t, ledger, append([]string{}, e.confirmed(syncName)...), "no member is left pending")
}

// listID returns the ID of the list named name.
func (e *env) listID(name string) int64 {
	e.t.Helper()
	for _, l := range e.em.StaticLists() {
		if l.Name == name {
			return l.ID
		}
	}
	e.t.Fatalf("no list named %q", name)
	return 0
}

func seq(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%05d@example.com", prefix, i)
	}
	return out
}
