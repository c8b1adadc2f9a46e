package sync_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	stdsync "sync"
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
	statepg "github.com/listsync/listsync/internal/state/postgres"
	"github.com/listsync/listsync/internal/state/sqlite"
	listsync "github.com/listsync/listsync/internal/sync"
	"github.com/listsync/listsync/internal/warehouse"
	whpg "github.com/listsync/listsync/internal/warehouse/postgres"
)

// Environment of the child processes of the crash loop. The endpoint, DSN
// and list travel in child_test.go's variables.
const (
	crashChildEnv = "LISTSYNC_TEST_CRASH_CHILD"
	// crashPlanEnv is where the child kills itself: "model:<row>",
	// "staged", "diff:<member>", "commit:<call>:<µs>" or "resync:<page>"
	// (a run asked for a full resync); empty when the parent kills it.
	crashPlanEnv = "LISTSYNC_TEST_CRASH_PLAN"
	// crashStateEnv is "sqlite:<path>" or "postgres".
	crashStateEnv = "LISTSYNC_TEST_CRASH_STATE"
	// crashSeedEnv and crashKillsEnv override the loop's seed and number of
	// kills, to replay a failure or soak for longer.
	crashSeedEnv  = "LISTSYNC_CRASH_SEED"
	crashKillsEnv = "LISTSYNC_CRASH_KILLS"
	// crashTraceEnv, when set, logs every child's output with timestamps.
	crashTraceEnv = "LISTSYNC_CRASH_TRACE"
)

const crashSync = "crashloop"

// crashSpec is the sync every process of the loop runs.
func crashSpec(wh warehouse.Warehouse, listID int64) listsync.Spec {
	return listsync.Spec{Name: crashSync, Warehouse: wh, Model: "models/crashloop.sql",
		SQL: "SELECT email, first_name FROM people", List: marketo.ListRef{ID: listID},
		Fields: map[string]string{"firstName": "first_name"}}
}

// crashEngine builds the engine of the loop: pushes of 3,000 rows, each a
// bulk import (or REST calls for a short tail), removals by lookups and, past
// 1,000 unknown lead ids, a bulk extract; every poll in milliseconds.
func crashEngine(ctx context.Context, endpoint, dsn, stateSpec string, log *zap.Logger, tempDir string,
	wrapStore func(state.Store) state.Store, wrapWH func(warehouse.Warehouse) warehouse.Warehouse) (*listsync.Engine, warehouse.Warehouse, state.Store, func(), error) {
	client, err := marketo.NewClient(marketo.Config{Endpoint: endpoint, ClientID: "id", ClientSecret: "secret",
		Logger: log, ImportPollInitial: 5 * time.Millisecond, ImportPollMax: 20 * time.Millisecond,
		ExtractPollInitial: 5 * time.Millisecond, ExtractPollMax: 20 * time.Millisecond,
		BackoffBase: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond, ExtractMinRows: 1000, TempDir: tempDir,
		// The emulator's rate limit is off: the loop measures crashes, not
		// pacing (the fault soak does).
		CallsPer20s: 100_000})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	pg, err := whpg.New(ctx, whpg.Config{DSN: dsn})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var store state.Store
	if path, ok := strings.CutPrefix(stateSpec, "sqlite:"); ok {
		store, err = sqlite.Open(ctx, sqlite.Config{Path: path, Logger: log})
	} else {
		store, err = statepg.Open(ctx, statepg.Config{DSN: dsn, Logger: log})
	}
	if err != nil {
		_ = pg.Close()
		return nil, nil, nil, nil, err
	}
	var wh warehouse.Warehouse = pg
	if wrapWH != nil {
		wh = wrapWH(wh)
	}
	inner := store
	if wrapStore != nil {
		store = wrapStore(store)
	}
	engine, err := listsync.NewEngine(listsync.EngineConfig{Store: store, Marketo: client, Logger: log,
		TempDir: tempDir, ChunkSize: 3000})
	if err != nil {
		_ = inner.Close()
		_ = pg.Close()
		return nil, nil, nil, nil, err
	}
	return engine, wh, store, func() { _ = inner.Close(); _ = pg.Close() }, nil
}

// selfKill ends this process with SIGKILL, as the OOM killer or a node
// failure would, after saying where.
func selfKill(where string) {
	fmt.Fprintf(os.Stderr, "crash child: SIGKILL %s\n", where)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way; run nothing more
}

// phase tells the parent how far the child got, for the kill log.
func phase(s string) {
	fmt.Fprintf(os.Stderr, "crash child: phase %s\n", s)
	if os.Getenv(crashTraceEnv) != "" {
		fmt.Fprintf(os.Stderr, "%s crash child: phase %s\n", time.Now().Format("15:04:05.000"), s)
	}
}

// crashChildMain runs a child of the crash loop when the test binary is
// re-executed for one, and reports whether it did (it exits instead).
func crashChildMain() bool {
	if os.Getenv(crashChildEnv) != "1" {
		return false
	}
	ctx := context.Background()
	listID, _ := strconv.ParseInt(os.Getenv(childListEnv), 10, 64)
	plan := strings.Split(os.Getenv(crashPlanEnv), ":")
	arg := func(i int) int {
		if i >= len(plan) {
			return 0
		}
		n, _ := strconv.Atoi(plan[i])
		return n
	}
	log := zap.NewNop()
	wrapStore := func(s state.Store) state.Store {
		return &hookedStore{Store: s, plan: plan[0], n: arg(1), delay: arg(2)}
	}
	wrapWH := func(w warehouse.Warehouse) warehouse.Warehouse {
		return &hookedWH{Warehouse: w, plan: plan[0], n: arg(1)}
	}
	dir, err := os.MkdirTemp("", "crashchild-*")
	if err != nil {
		fmt.Fprintf(os.Stderr, "crash child: %v\n", err)
		os.Exit(3)
	}
	engine, wh, _, closeAll, err := crashEngine(ctx, os.Getenv(childEndpointEnv), os.Getenv(childDSNEnv),
		os.Getenv(crashStateEnv), log, dir, wrapStore, wrapWH)
	if err != nil {
		fmt.Fprintf(os.Stderr, "crash child: %v\n", err)
		os.Exit(3)
	}
	phase("start")
	run, err := engine.Run(ctx, crashSpec(wh, listID), listsync.RunOptions{AllowRemovals: true, FullResync: plan[0] == "resync"})
	closeAll()
	_ = os.RemoveAll(dir)
	fmt.Fprintf(os.Stderr, "crash child: run %d %s: +%d ~%d -%d (err %v)\n", run.ID, run.Status,
		run.AddsConfirmed, run.UpdatesConfirmed, run.RemovesConfirmed, err)
	if err != nil {
		os.Exit(4)
	}
	os.Exit(0)
	return true
}

// hookedWH kills the child at a chosen row of the model ("model:<row>") or
// once the model is read and its rows closed ("staged").
type hookedWH struct {
	warehouse.Warehouse
	plan string
	n    int
}

func (h *hookedWH) Query(ctx context.Context, p *warehouse.QueryParams) (warehouse.Rows, error) {
	phase("model")
	rows, err := h.Warehouse.Query(ctx, p)
	if err != nil {
		return nil, err
	}
	return &hookedRows{Rows: rows, h: h}, nil
}

type hookedRows struct {
	warehouse.Rows
	h      *hookedWH
	n      int
	closed bool
}

func (r *hookedRows) Next() bool {
	r.n++
	if r.h.plan == "model" && r.n == r.h.n {
		selfKill(fmt.Sprintf("while reading the model, at row %d", r.n))
	}
	return r.Rows.Next()
}

func (r *hookedRows) Close() error {
	err := r.Rows.Close()
	if !r.closed && r.h.plan == "staged" {
		selfKill(fmt.Sprintf("after reading the model's %d rows, while sorting them", r.n-1))
	}
	r.closed = true
	return err
}

// hookedStore kills the child at a chosen member of the diff's ledger scan
// ("diff:<member>") or at a random moment of a chosen commit
// ("commit:<call>:<µs>": the n-th ApplyBatch runs and the kill lands µs
// after it starts: before, inside or after its transaction).
type hookedStore struct {
	state.Store
	plan     string
	n, delay int

	mu      stdsync.Mutex
	applies int
}

func (s *hookedStore) ScanMembers(ctx context.Context, name string, fn func(state.Member) error) error {
	phase("diff")
	i := 0
	return s.Store.ScanMembers(ctx, name, func(m state.Member) error {
		i++
		if s.plan == "diff" && i == s.n {
			selfKill(fmt.Sprintf("while diffing, at ledger member %d", i))
		}
		return fn(m)
	})
}

func (s *hookedStore) ApplyBatch(ctx context.Context, name string, b state.Batch) error {
	s.mu.Lock()
	s.applies++
	n := s.applies
	s.mu.Unlock()
	what := fmt.Sprintf("commit %d (%d confirmed, %d removed, %d rejected)", n, len(b.Confirmed), len(b.Removed), len(b.Rejected))
	if len(b.Confirmed) > 0 && b.Confirmed[0].Pending() {
		what = fmt.Sprintf("commit %d (marking %d keys pending before a push)", n, len(b.Confirmed))
	}
	phase(what)
	if s.plan == "commit" && n == s.n {
		go func() {
			time.Sleep(time.Duration(s.delay) * time.Microsecond)
			selfKill(fmt.Sprintf("%dµs into %s", s.delay, what))
		}()
	}
	return s.Store.ApplyBatch(ctx, name, b)
}

func (s *hookedStore) ReplaceMembers(ctx context.Context, name string, at time.Time, fill func(func([]state.Member) error) error) error {
	phase("resync")
	if s.plan != "resync" {
		return s.Store.ReplaceMembers(ctx, name, at, fill)
	}
	pages := 0
	return s.Store.ReplaceMembers(ctx, name, at, func(put func([]state.Member) error) error {
		return fill(func(page []state.Member) error {
			err := put(page)
			if pages++; pages == s.n {
				selfKill(fmt.Sprintf("inside a full resync's transaction, after page %d of the list's members", pages))
			}
			return err
		})
	})
}

// killSwitch sits between the child and the emulator and kills the child
// with SIGKILL at the n-th call of a kind, before Marketo serves it or after
// Marketo has applied it but before the answer leaves.
type killSwitch struct {
	em http.Handler

	mu     stdsync.Mutex
	kind   string
	n      int
	after  bool
	counts map[string]int
	proc   *os.Process
	fired  string
	last   string
}

// callKind classifies a request of the client.
func callKind(r *http.Request) string {
	p, m := r.URL.Path, r.Method
	if r.URL.Query().Get("_method") != "" {
		m = r.URL.Query().Get("_method")
	}
	switch {
	case p == "/bulk/v1/leads.json":
		return "import"
	case strings.HasPrefix(p, "/bulk/v1/leads/batch/"):
		return "import-poll"
	case strings.HasPrefix(p, "/bulk/v1/leads/export/"):
		return "extract"
	case strings.HasPrefix(p, "/rest/v1/lists/") && strings.HasSuffix(p, "/leads.json") && m == http.MethodDelete:
		return "remove"
	case strings.HasPrefix(p, "/rest/v1/lists/") && strings.HasSuffix(p, "/leads.json") && m == http.MethodPost:
		return "rest-add"
	case strings.HasPrefix(p, "/rest/v1/lists/") && strings.HasSuffix(p, "/leads.json"):
		return "members"
	case p == "/rest/v1/leads.json" && m == http.MethodPost:
		return "upsert"
	case p == "/rest/v1/leads.json":
		return "lookup"
	}
	return ""
}

func (k *killSwitch) arm(kind string, n int, after bool, proc *os.Process) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.kind, k.n, k.after, k.proc, k.fired, k.last = kind, n, after, proc, "", ""
	k.counts = map[string]int{}
}

// disarm returns where the switch fired ("" when it did not) and the last
// call the child made.
func (k *killSwitch) disarm() (fired, last string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.kind, k.proc = "", nil
	return k.fired, k.last
}

func (k *killSwitch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind := callKind(r)
	k.mu.Lock()
	fire := false
	if kind != "" {
		k.counts[kind]++
		k.last = fmt.Sprintf("%s #%d (%s %s)", kind, k.counts[kind], r.Method, r.URL.Path)
		fire = k.proc != nil && k.fired == "" && kind == k.kind && k.counts[kind] == k.n
	}
	proc, after := k.proc, k.after
	if fire {
		when := "before Marketo served it"
		if after {
			when = "after Marketo applied it, before the answer"
		}
		k.fired = fmt.Sprintf("at %s call %d, %s", kind, k.n, when)
	}
	k.mu.Unlock()
	if !fire {
		k.em.ServeHTTP(w, r)
		return
	}
	if after {
		k.em.ServeHTTP(httptest.NewRecorder(), r)
	}
	_ = proc.Signal(syscall.SIGKILL)
	panic(http.ErrAbortHandler) // the child is dead; drop the connection
}

// lockedBuffer collects a child's output.
type lockedBuffer struct {
	mu stdsync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lastLine returns the last line of s that starts with prefix.
func lastLine(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if after, ok := strings.CutPrefix(lines[i], prefix); ok {
			return after
		}
	}
	return ""
}

// crashModel is the model's table as the parent keeps it.
type crashModel struct {
	rows    map[string]string // email -> first name
	removed []string          // keys removed from the model, to re-add later
	next    int               // next new key
	version int
}

func (m *crashModel) keys() []string {
	out := make([]string, 0, len(m.rows))
	for k := range m.rows {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// mutate changes the model between runs: it removes some members, adds new
// ones and re-adds removed ones (a key removed while its removal was in
// flight must still come back), and changes the first name of others.
func (m *crashModel) mutate(rng *rand.Rand, ctx context.Context, conn *pgx.Conn) (string, error) {
	m.version++
	keys := m.keys()
	rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	nRemove := len(keys) / 100 * (1 + rng.IntN(3))
	if rng.IntN(5) == 0 {
		nRemove = len(keys) / 100 * 6 // a removal large enough for a bulk extract of lead ids
	}
	nUpdate := len(keys) / 200 * (1 + rng.IntN(3))
	nNew := len(keys) / 100 * (1 + rng.IntN(3))
	nReadd := min(len(m.removed), rng.IntN(300))
	remove, update := keys[:nRemove], keys[nRemove:nRemove+nUpdate]
	rng.Shuffle(len(m.removed), func(i, j int) { m.removed[i], m.removed[j] = m.removed[j], m.removed[i] })
	readd := slices.Clone(m.removed[:nReadd])
	m.removed = m.removed[nReadd:]

	tx, err := conn.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `DELETE FROM people WHERE email = ANY($1)`, remove); err != nil {
		return "", err
	}
	for _, k := range remove {
		delete(m.rows, k)
		m.removed = append(m.removed, k)
	}
	names := make([]string, len(update))
	for i, k := range update {
		names[i] = fmt.Sprintf("V%d-%s", m.version, k[:6])
		m.rows[k] = names[i]
	}
	if _, err := tx.Exec(ctx, `UPDATE people SET first_name = u.name FROM unnest($1::text[], $2::text[]) AS u(email, name)
		WHERE people.email = u.email`, update, names); err != nil {
		return "", err
	}
	var add [][]any
	for _, k := range readd {
		m.rows[k] = fmt.Sprintf("R%d", m.version)
		add = append(add, []any{k, m.rows[k]})
	}
	for range nNew {
		k := fmt.Sprintf("n%06d@example.com", m.next)
		m.next++
		m.rows[k] = "New" + strconv.Itoa(m.version)
		add = append(add, []any{k, m.rows[k]})
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"people"}, []string{"email", "first_name"}, pgx.CopyFromRows(add)); err != nil {
		return "", err
	}
	if err := tx.Commit(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("model v%d: -%d +%d new +%d re-added ~%d renamed = %d rows", m.version, len(remove), nNew,
		len(readd), len(update), len(m.rows)), nil
}

// crashPlan is where one iteration of the loop kills the child.
type crashPlan struct {
	child string // the child's crashPlanEnv
	// kind, n and after arm the kill switch; delay kills after that long.
	kind  string
	n     int
	after bool
	delay time.Duration
}

func (p crashPlan) String() string {
	switch {
	case p.child != "":
		return "child " + p.child
	case p.kind != "":
		return fmt.Sprintf("call %s #%d after=%v", p.kind, p.n, p.after)
	}
	return "after " + p.delay.String()
}

// pickPlan draws where the next kill lands, spread over every phase.
func pickPlan(rng *rand.Rand, modelRows int) crashPlan {
	switch rng.IntN(12) {
	case 11:
		return crashPlan{child: fmt.Sprintf("resync:%d", 1+rng.IntN(3))}
	case 0:
		return crashPlan{child: fmt.Sprintf("model:%d", 1+rng.IntN(modelRows))}
	case 1:
		return crashPlan{child: "staged"}
	case 2:
		return crashPlan{child: fmt.Sprintf("diff:%d", 1+rng.IntN(modelRows*3/4))}
	case 3, 4:
		return crashPlan{child: fmt.Sprintf("commit:%d:%d", 1+rng.IntN(3), rng.IntN(3000))}
	case 5:
		return crashPlan{kind: "import", n: 1, after: rng.IntN(2) == 0}
	case 6:
		return crashPlan{kind: "import-poll", n: 1 + rng.IntN(2), after: true}
	case 7:
		return crashPlan{kind: "remove", n: 1, after: rng.IntN(3) > 0}
	case 8:
		return crashPlan{kind: []string{"lookup", "rest-add", "upsert", "extract"}[rng.IntN(4)], n: 1, after: true}
	default:
		return crashPlan{delay: time.Duration(100+rng.IntN(1400)) * time.Millisecond}
	}
}

// TestCrashLoop runs a real sync of 20,000 members in child processes
// against an emulator served by this process, and kills the children with
// SIGKILL again and again: while reading the model, while sorting it, while
// diffing, inside and around the ledger's commits, inside a full resync, before and after Marketo
// applies a bulk import, a REST add, a lookup or a removal batch, and at
// random moments. Between runs the model changes: members leave, new ones
// come, removed ones come back, names change. After a last, uninterrupted
// run the list in Marketo equals the model (names included, no lead twice)
// and the ledger agrees.
func TestCrashLoop(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts child processes")
	}
	runCrashLoop(t, "sqlite", 25)
}

// TestCrashLoopPostgresState is the crash loop with the ledger in Postgres,
// whose lock dies with the killed child's connection.
func TestCrashLoopPostgresState(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts child processes")
	}
	runCrashLoop(t, "postgres", 8)
}

func runCrashLoop(t *testing.T, backend string, kills int) {
	ctx := t.Context()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
	}
	if s := os.Getenv(crashKillsEnv); s != "" {
		var err error
		kills, err = strconv.Atoi(s)
		require.NoError(t, err)
	}
	t.Logf("seed %d (replay with %s=%d)", seed, crashSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0x63726173686c6f6f))

	// Bulk imports of 3,000 rows take 30 ms, extracts 30 ms.
	em := emulator.New(emulator.Config{ClientID: "id", ClientSecret: "secret", ImportRowsPerSec: 100_000,
		ExportProcessingTime: 30 * time.Millisecond, CallsPer20s: -1, DailyQuota: -1})
	ks := &killSwitch{em: em, counts: map[string]int{}}
	ts := httptest.NewServer(ks)
	defer func() { ts.Close(); _ = em.Close() }()

	const size = 20_000
	list := em.CreateStaticList("Crash loop", em.CreateFolder("F"))
	model := &crashModel{rows: map[string]string{}}
	for i, k := range seq("m", size) {
		model.rows[k] = "N" + strconv.Itoa(i)
	}
	// The list already holds 500 of the model's people and 200 strays, so
	// the first runs start from a full resync.
	var seed0 []map[string]string
	for _, k := range model.keys()[:500] {
		seed0 = append(seed0, map[string]string{"email": k})
	}
	for _, k := range seq("stray", 200) {
		seed0 = append(seed0, map[string]string{"email": k})
	}
	em.AddListMembers(list, em.UpsertLeads(seed0)...)

	dsn := pgtest.DSN(t)
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, `CREATE TABLE people (email text PRIMARY KEY, first_name text)`)
	require.NoError(t, err)
	var rows [][]any
	for _, k := range model.keys() {
		rows = append(rows, []any{k, model.rows[k]})
	}
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"people"}, []string{"email", "first_name"}, pgx.CopyFromRows(rows))
	require.NoError(t, err)

	stateSpec := "postgres"
	if backend == "sqlite" {
		stateSpec = "sqlite:" + filepath.Join(t.TempDir(), "state.db")
	}

	killed, finished := 0, 0
	where := map[string]int{}
	for iter := 1; killed < kills; iter++ {
		require.Less(t, iter, 3*kills+10, "too few of the planned kills landed")
		if iter > 1 {
			what, err := model.mutate(rng, ctx, conn)
			require.NoError(t, err)
			t.Logf("run %d: %s", iter, what)
		}
		plan := pickPlan(rng, len(model.rows))
		out := &lockedBuffer{}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"=1", childEndpointEnv+"="+ts.URL, childDSNEnv+"="+dsn,
			crashStateEnv+"="+stateSpec, childListEnv+"="+strconv.FormatInt(list, 10), crashPlanEnv+"="+plan.child)
		cmd.Stdout, cmd.Stderr = out, out
		began := time.Now()
		require.NoError(t, cmd.Start())
		ks.arm(plan.kind, plan.n, plan.after, cmd.Process)
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		var werr error
		timedKill := ""
		if plan.delay > 0 {
			select {
			case werr = <-waited:
			case <-time.After(plan.delay):
				timedKill = fmt.Sprintf("%s after start (child's last phase: %s; last call: %s)", plan.delay,
					lastLine(out.String(), "crash child: phase "), func() string { _, l := ks.disarm(); return l }())
				_ = cmd.Process.Signal(syscall.SIGKILL)
				werr = <-waited
			}
		} else {
			select {
			case werr = <-waited:
			case <-time.After(2 * time.Minute):
				_ = cmd.Process.Kill()
				<-waited
				t.Fatalf("run %d (%s) hangs:\n%s", iter, plan, out.String())
			}
		}
		fired, _ := ks.disarm()
		if os.Getenv(crashTraceEnv) != "" {
			t.Logf("child output:\n%s", out.String())
		}

		var exit *exec.ExitError
		switch {
		case werr == nil:
			finished++
			t.Logf("run %d: %s did not fire; the run finished in %s: %s", iter, plan, time.Since(began).Round(time.Millisecond),
				lastLine(out.String(), "crash child: run "))
		case errors.As(werr, &exit) && exit.Sys().(syscall.WaitStatus).Signaled() &&
			exit.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL:
			killed++
			desc := fired
			kind := plan.kind
			switch {
			case plan.child != "":
				desc = lastLine(out.String(), "crash child: SIGKILL ")
				kind = strings.SplitN(plan.child, ":", 2)[0]
			case timedKill != "":
				desc, kind = timedKill, "timed"
			}
			where[kind]++
			t.Logf("run %d: kill %d after %s: SIGKILL %s", iter, killed, time.Since(began).Round(time.Millisecond), desc)
		default:
			t.Fatalf("run %d (%s) failed instead of being killed: %v\n%s", iter, plan, werr, out.String())
		}
	}

	// The last run, uninterrupted, in this process: it takes over the lock
	// of the last killed child and converges.
	engine, wh, store, closeAll, err := crashEngine(ctx, ts.URL, dsn, stateSpec, zap.NewNop(), t.TempDir(), nil, nil)
	require.NoError(t, err)
	defer closeAll()
	// A killed child's Postgres session, and its lock, end when the server
	// notices the closed socket: at once on a quiet machine, a moment later
	// on a loaded one.
	require.Eventually(t, func() bool {
		lease, err := store.Lock(ctx, crashSync)
		if err != nil {
			return false
		}
		require.NoError(t, lease.Unlock(ctx))
		return true
	}, 30*time.Second, 20*time.Millisecond, "the last killed child's lock is released")
	run, err := engine.Run(ctx, crashSpec(wh, list), listsync.RunOptions{AllowRemovals: true})
	require.NoError(t, err)
	require.Equal(t, state.RunSucceeded, run.Status)
	require.Zero(t, run.Rejected)
	t.Logf("last run: +%d ~%d -%d, full resync %v", run.AddsConfirmed, run.UpdatesConfirmed, run.RemovesConfirmed, run.FullResync)
	t.Logf("survived %d SIGKILLs (%d runs finished before their kill); kills by place: %v", killed, finished, where)

	requireCrashConverged(t, em, store, list, model)

	// Every killed run that had started is on record as abandoned.
	runs, err := store.ListRuns(ctx, crashSync, 1000)
	require.NoError(t, err)
	abandoned := 0
	for _, r := range runs {
		require.NotEqual(t, state.RunRunning, r.Status)
		if r.Status == state.RunAbandoned {
			abandoned++
		}
	}
	require.LessOrEqual(t, abandoned, killed)
	require.Positive(t, abandoned)

	// And a plan finds nothing left to do.
	p, err := engine.Plan(ctx, crashSpec(wh, list))
	require.NoError(t, err)
	require.Zero(t, p.Adds+p.Updates+p.Removes+p.Deferred, "nothing left to do")
}

// requireCrashConverged checks that the list in Marketo holds exactly the
// model's people with the model's names, that no two leads share an email,
// and that the ledger holds the same keys with the right lead ids.
func requireCrashConverged(t *testing.T, em *emulator.Emulator, store state.Store, list int64, model *crashModel) {
	t.Helper()
	want := model.keys()
	var got []string
	byEmail := map[string]int64{}
	for _, l := range em.ListMembers(list) {
		e := strings.ToLower(l.Email)
		got = append(got, e)
		if prev, dup := byEmail[e]; dup {
			t.Fatalf("leads %d and %d on the list share the email %s", prev, l.ID, e)
		}
		byEmail[e] = l.ID
	}
	slices.Sort(got)
	var extra, missing []string
	for _, k := range got {
		if _, ok := model.rows[k]; !ok {
			extra = append(extra, k)
		}
	}
	for _, k := range want {
		if byEmail[k] == 0 {
			missing = append(missing, k)
		}
	}
	require.Empty(t, extra, "members on the list that the model does not have")
	require.Empty(t, missing, "the model's people missing from the list")
	for _, l := range em.ListMembers(list) {
		e := strings.ToLower(l.Email)
		require.Equal(t, model.rows[e], l.Fields["firstName"], "the name of %s in Marketo", e)
	}

	var ledger []string
	require.NoError(t, store.ScanMembers(t.Context(), crashSync, func(m state.Member) error {
		ledger = append(ledger, m.Key)
		if m.LeadID != 0 {
			require.Equal(t, byEmail[m.Key], m.LeadID, "the ledger's lead id of %s", m.Key)
		}
		return nil
	}))
	require.Equal(t, want, ledger, "the ledger agrees")
	// No email was given a second lead by a repeated import or upsert.
	for _, k := range append(model.keys(), model.removed...) {
		require.LessOrEqual(t, len(em.LeadsByEmail(k)), 1, "leads with the email %s", k)
	}
}
