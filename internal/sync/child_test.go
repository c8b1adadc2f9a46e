package sync_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/marketo/emulator"
	"github.com/listsync/listsync/internal/pgtest"
	"github.com/listsync/listsync/internal/state"
	"github.com/listsync/listsync/internal/state/sqlite"
	listsync "github.com/listsync/listsync/internal/sync"
	whpg "github.com/listsync/listsync/internal/warehouse/postgres"
)

// Environment of the child process of TestSIGKILLMidPush.
const (
	childEnv         = "LISTSYNC_TEST_SIGKILL_CHILD"
	childEndpointEnv = "LISTSYNC_TEST_ENDPOINT"
	childDSNEnv      = "LISTSYNC_TEST_DSN"
	childStateEnv    = "LISTSYNC_TEST_STATE"
	childListEnv     = "LISTSYNC_TEST_LIST"
)

const killSync = "killed"

// killSpec is the sync both processes run.
func killSpec(wh *whpg.Warehouse, listID int64) listsync.Spec {
	return listsync.Spec{Name: killSync, Warehouse: wh, Model: "models/killed.sql",
		SQL: "SELECT email, first_name FROM people", List: marketo.ListRef{ID: listID},
		Fields: map[string]string{"firstName": "first_name"}}
}

// killEngine builds the engine both processes use: bulk imports of 1,000
// rows, so that the push is a sequence of imports the parent can kill the
// child in the middle of.
func killEngine(t testing.TB, ctx context.Context, endpoint, dsn, statePath string, log *zap.Logger) (*listsync.Engine, *whpg.Warehouse, state.Store, func()) {
	client, err := marketo.NewClient(marketo.Config{Endpoint: endpoint, ClientID: "id", ClientSecret: "secret",
		Logger: log, ImportPollInitial: 20 * time.Millisecond, ImportPollMax: 50 * time.Millisecond,
		ExtractPollInitial: 20 * time.Millisecond, ExtractPollMax: 50 * time.Millisecond,
		BackoffBase: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond, BulkAddMinRows: 100})
	if err != nil {
		t.Fatalf("creating client: %v", err)
	}
	wh, err := whpg.New(ctx, whpg.Config{DSN: dsn})
	if err != nil {
		t.Fatalf("opening warehouse: %v", err)
	}
	store, err := sqlite.Open(ctx, sqlite.Config{Path: statePath, Logger: log})
	if err != nil {
		t.Fatalf("opening state: %v", err)
	}
	engine, err := listsync.NewEngine(listsync.EngineConfig{Store: store, Marketo: client, Logger: log,
		TempDir: filepath.Dir(statePath), ChunkSize: 1000})
	if err != nil {
		t.Fatalf("creating engine: %v", err)
	}
	return engine, wh, store, func() { _ = store.Close(); _ = wh.Close() }
}

// childFatal ends the child; the parent reports its output.
type childFatal struct{ testing.TB }

func (childFatal) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "child: "+format+"\n", args...)
	os.Exit(3)
}

// childMain runs the child side of TestSIGKILLMidPush when the test binary
// is re-executed for it, and reports whether it did (it exits instead when
// it did).
func childMain() bool {
	if os.Getenv(childEnv) != "1" {
		return false
	}
	ctx := context.Background()
	listID, _ := strconv.ParseInt(os.Getenv(childListEnv), 10, 64)
	log, _ := zap.NewDevelopment()
	engine, wh, _, closeAll := killEngine(childFatal{}, ctx, os.Getenv(childEndpointEnv), os.Getenv(childDSNEnv),
		os.Getenv(childStateEnv), log)
	defer closeAll()
	run, err := engine.Run(ctx, killSpec(wh, listID), listsync.RunOptions{})
	fmt.Fprintf(os.Stderr, "child: run finished before the kill: %+v, %v\n", run, err)
	os.Exit(0)
	return true
}

// TestSIGKILLMidPush runs a real sync in a child process against an
// emulator served by this process, kills the child with SIGKILL in the
// middle of its push, runs the sync again here, and finds the list exactly
// equal to the model and the ledger agreeing.
func TestSIGKILLMidPush(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a child process")
	}
	ctx := t.Context()
	// Imports of 1,000 rows take half a second each: the push of ~4,000
	// adds lasts a few seconds.
	em := emulator.New(emulator.Config{ClientID: "id", ClientSecret: "secret", ImportRowsPerSec: 2000,
		ExportProcessingTime: -1})
	ts := httptest.NewServer(em)
	defer func() { ts.Close(); _ = em.Close() }()

	list := em.CreateStaticList("Killed", em.CreateFolder("F"))
	// The list already holds 150 of the model's people and 150 strays.
	var seed []map[string]string
	model := seq("m", 4000)
	for _, k := range model[:150] {
		seed = append(seed, map[string]string{"email": k})
	}
	for _, k := range seq("stray", 150) {
		seed = append(seed, map[string]string{"email": k})
	}
	em.AddListMembers(list, em.UpsertLeads(seed)...)

	dsn := pgtest.DSN(t)
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, `CREATE TABLE people (email text, first_name text)`)
	require.NoError(t, err)
	rows := make([][]any, len(model))
	for i, k := range model {
		rows[i] = []any{k, "N" + strconv.Itoa(i)}
	}
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"people"}, []string{"email", "first_name"}, pgx.CopyFromRows(rows))
	require.NoError(t, err)

	statePath := filepath.Join(t.TempDir(), "state.db")
	var out bytes.Buffer
	cmd := exec.Command(os.Args[0], "-test.run=^TestSIGKILLMidPush$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childEndpointEnv+"="+ts.URL, childDSNEnv+"="+dsn,
		childStateEnv+"="+statePath, childListEnv+"="+strconv.FormatInt(list, 10))
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	// Kill it once Marketo holds some but not all of the new members.
	deadline := time.After(60 * time.Second)
	for done := false; !done; {
		select {
		case err := <-waited:
			t.Fatalf("the child ended before it could be killed (%v):\n%s", err, out.String())
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatalf("the push never started:\n%s", out.String())
		case <-time.After(10 * time.Millisecond):
			done = len(em.ListMemberIDs(list)) >= 300+1000
		}
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	err = <-waited
	require.Error(t, err, "the child was killed")
	onList := len(em.ListMemberIDs(list))
	t.Logf("killed the child with %d of %d members on the list", onList, 300+len(model)-150)

	engine, wh, store, closeAll := killEngine(t, ctx, ts.URL, dsn, statePath, zap.NewNop())
	defer closeAll()

	// What the dead run committed is true: every member in the ledger is on
	// the list in Marketo.
	var ledger, hashed []string
	require.NoError(t, store.ScanMembers(ctx, killSync, func(m state.Member) error {
		if !m.Pending() { // marked just before a push whose answer never came
			ledger = append(ledger, m.Key)
			if m.FieldsHash != nil {
				// Confirmed with its fields; the 150 members the first
				// resync found have no known fields until they are sent.
				hashed = append(hashed, m.Key)
			}
		}
		return nil
	}))
	listed := map[string]bool{}
	for _, l := range em.ListMembers(list) {
		listed[l.Email] = true
	}
	for _, k := range ledger {
		require.True(t, listed[k], "the ledger says %s is on the list", k)
	}
	require.Less(t, len(ledger), len(model)+150, "the kill landed before the push finished")

	// The next run takes over the dead run's lock at once, resumes from the
	// ledger, and converges.
	run, err := engine.Run(ctx, killSpec(wh, list), listsync.RunOptions{})
	require.NoError(t, err, "child output:\n%s", out.String())
	require.Equal(t, state.RunSucceeded, run.Status)
	require.False(t, run.FullResync, "the ledger of the dead run is trusted")
	require.EqualValues(t, len(model)-len(intersect(hashed, model)), run.AddsPlanned+run.UpdatesPlanned,
		"only what the ledger lacks is sent again")

	var got []string
	for _, l := range em.ListMembers(list) {
		got = append(got, l.Email)
	}
	slices.Sort(got)
	require.Equal(t, model, got, "the list in Marketo equals the model")
	ledger = ledger[:0]
	require.NoError(t, store.ScanMembers(ctx, killSync, func(m state.Member) error {
		ledger = append(ledger, m.Key)
		return nil
	}))
	require.Equal(t, model, ledger, "the ledger agrees")
	for _, l := range em.Leads(em.ListMemberIDs(list)[:3]...) {
		require.NotEmpty(t, l.Fields["firstName"])
	}

	runs, err := store.ListRuns(ctx, killSync, 0)
	require.NoError(t, err)
	require.Len(t, runs, 2)
	require.Equal(t, state.RunAbandoned, runs[1].Status, "the killed run is recognisable")
}

func intersect(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if in[x] {
			out = append(out, x)
		}
	}
	return out
}
