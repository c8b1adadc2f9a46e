package sync

import (
	"context"
	"flag"
	"fmt"
	"github.com/listsync/listsync/internal/memsample"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/pgtest"
	"github.com/listsync/listsync/internal/state"
	statepg "github.com/listsync/listsync/internal/state/postgres"
	"github.com/listsync/listsync/internal/state/sqlite"
	"github.com/listsync/listsync/internal/warehouse"
	whpg "github.com/listsync/listsync/internal/warehouse/postgres"
)

// planN replaces BenchmarkPlanDiff's sizes by one, in both stores:
// go test -run '^$' -bench PlanDiff -benchtime 1x ./internal/sync/ -plan-n 10000000
var planN = flag.Int("plan-n", 0, "BenchmarkPlanDiff: measure this model size only (both state stores)")

// BenchmarkPlanDiff measures the diff at scale: a model of n rows with 1%
// churn (0.5% of the ledger gone, 0.5% new rows) and 0.1% changed fields,
// against a ledger of n members, in both state stores. It reports the peak
// heap in use during the plan, which must not grow with n, and compares
// the streaming merge with the alternative of staging the snapshot into a
// Postgres table and anti-joining it with the ledger.
//
// Run with: go test -run '^$' -bench PlanDiff -benchtime 1x ./internal/sync/
//
// Measured on the 2-core machine (go1.26, Postgres on localhost, other
// work running beside it, so times vary by about ±40%), -benchtime 1x,
// with the diff of that time (an external sort of whole rows by key and a
// row-by-row ledger scan; the fingerprint diff and the ledger digest that
// replaced it are measured at the command level in BENCHMARKS.md):
//
//	n         store     plan (merge)  peak heap in use  peak live heap
//	100,000   sqlite    0.4 s         28 MB             16 MB (fits in memory, no spill)
//	1,000,000 sqlite    4.4–6.5 s     75 MB             39 MB
//	3,000,000 sqlite    12.6 s        71 MB             37 MB
//	1,000,000 postgres  3.6–6.4 s     77 MB             44 MB
//	10,000,000 sqlite   18.1 s        73 MB             37 MB (-plan-n, after the
//	                                                       sort and normalisation changes)
//
//	staging + anti-join, 1,000,000 rows, postgres: 6.9–11 s (COPY into a
//	temp table, unique index, three anti-joins that only count, without
//	writing the diff out or reading it back)
//
// The live heap is bounded by SortMemory (32 MB) plus buffers, whatever n;
// heap in use is about twice that under the default GOGC. See diff.go for
// the decision.
func BenchmarkPlanDiff(b *testing.B) {
	type planCase struct {
		n     int
		store string
	}
	cases := []planCase{{100_000, "sqlite"}, {1_000_000, "sqlite"}, {3_000_000, "sqlite"}, {1_000_000, "postgres"}}
	if *planN > 0 {
		cases = []planCase{{*planN, "sqlite"}, {*planN, "postgres"}}
	}
	for _, tc := range cases {
		b.Run(fmt.Sprintf("n=%d/%s", tc.n, tc.store), func(b *testing.B) {
			benchPlan(b, tc.n, tc.store)
		})
	}
}

func benchPlan(b *testing.B, n int, storeKind string) {
	ctx := context.Background()
	dsn := pgtest.DSN(b)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	// The model: users 0..n-1 except every 200th, plus n/200 new ones;
	// every 1000th (offset 1) has a new first name.
	_, err = conn.Exec(ctx, fmt.Sprintf(`CREATE TABLE people AS
		SELECT 'user' || lpad(i::text, 8, '0') || '@example.com' AS email,
		       CASE WHEN i %% 1000 = 1 THEN 'Changed' ELSE 'N' || i END AS first_name
		FROM generate_series(0, %[1]d + %[1]d / 200 - 1) AS i
		WHERE i >= %[1]d OR i %% 200 <> 0`, n))
	if err != nil {
		b.Fatal(err)
	}
	wh, err := whpg.New(ctx, whpg.Config{DSN: dsn})
	if err != nil {
		b.Fatal(err)
	}
	defer wh.Close()

	var store state.Store
	if storeKind == "postgres" {
		store, err = statepg.Open(ctx, statepg.Config{DSN: dsn})
	} else {
		store, err = sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(b.TempDir(), "state.db")})
	}
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	names := []string{"firstName"}
	err = store.ReplaceMembers(ctx, "bench", time.Now(), func(put func([]state.Member) error) error {
		page := make([]state.Member, 0, 10000)
		for i := range n {
			h := hashFields(names, []string{fmt.Sprintf("N%d", i)})
			page = append(page, state.Member{Key: fmt.Sprintf("user%08d@example.com", i), LeadID: int64(i + 1)})
			page[len(page)-1].FieldsHash = h.stored()
			if len(page) == cap(page) {
				if err := put(page); err != nil {
					return err
				}
				page = page[:0]
			}
		}
		return put(page)
	})
	if err != nil {
		b.Fatal(err)
	}
	// ReplaceMembers drops hashes; restore them so that only real changes
	// show as updates.
	for i := 0; i < n; i += 50000 {
		bt := state.Batch{At: time.Now()}
		for j := i; j < min(i+50000, n); j++ {
			h := hashFields(names, []string{fmt.Sprintf("N%d", j)})
			bt.Confirmed = append(bt.Confirmed, state.Member{Key: fmt.Sprintf("user%08d@example.com", j), LeadID: int64(j + 1), FieldsHash: h.stored()})
		}
		if err := store.ApplyBatch(ctx, "bench", bt); err != nil {
			b.Fatal(err)
		}
	}
	// As at the end of the run that wrote them.
	if err := store.CompactDigest(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	e, err := NewEngine(EngineConfig{Store: store, Marketo: noMarketo{}, TempDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	spec := Spec{Name: "bench", Warehouse: wh, Model: "bench.sql", SQL: "SELECT email, first_name FROM people",
		List: marketo.ListRef{ID: 1}, Fields: map[string]string{"firstName": "first_name"}}

	runtime.GC()
	peak := memsample.Start(20 * time.Millisecond)
	b.ResetTimer()
	var p *Plan
	for b.Loop() {
		p, err = e.Plan(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	pk := peak()
	inuseMB, liveMB := float64(pk.Inuse)/(1<<20), float64(pk.Live)/(1<<20)
	if p.Adds != int64(n/200) || p.Removes != int64(n/200) || p.Updates != int64(n/1000) {
		b.Fatalf("unexpected plan: %+v", p)
	}
	b.ReportMetric(inuseMB, "peak-heap-inuse-MB")
	b.ReportMetric(liveMB, "peak-heap-live-MB")

	if storeKind == "postgres" {
		start := time.Now()
		if err := stagingAntiJoin(ctx, conn, wh, spec, n); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "antijoin-s")
	}
}

// stagingAntiJoin is the alternative to the merge: stage the normalised
// snapshot in a Postgres table, then count adds, removes and updates with
// anti-joins against the ledger.
func stagingAntiJoin(ctx context.Context, conn *pgx.Conn, wh *whpg.Warehouse, spec Spec, n int) error {
	rows, err := wh.Query(ctx, &warehouse.QueryParams{SQL: spec.SQL, Model: spec.Model})
	if err != nil {
		return err
	}
	defer rows.Close()
	p, err := planColumns(spec.Model, rows.Columns(), "email", spec.Fields)
	if err != nil {
		return err
	}
	rule := newKeyRule("email")
	if _, err := conn.Exec(ctx, `CREATE TEMP TABLE snap (lead_key text COLLATE "C", fields_hash bytea)`); err != nil {
		return err
	}
	src := &snapSource{rows: rows, p: p, rule: rule}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"snap"}, []string{"lead_key", "fields_hash"}, src); err != nil {
		return err
	}
	// Deduplicating needs a unique index or a DISTINCT; the index also
	// serves the joins.
	if _, err := conn.Exec(ctx, `CREATE UNIQUE INDEX ON snap (lead_key); ANALYZE snap`); err != nil {
		return err
	}
	var adds, removes, updates int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM snap s WHERE NOT EXISTS (
		SELECT 1 FROM listsync_members m WHERE m.sync_name = 'bench' AND m.lead_key = s.lead_key)`).Scan(&adds); err != nil {
		return err
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM listsync_members m WHERE m.sync_name = 'bench' AND NOT EXISTS (
		SELECT 1 FROM snap s WHERE s.lead_key = m.lead_key)`).Scan(&removes); err != nil {
		return err
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM snap s JOIN listsync_members m
		ON m.sync_name = 'bench' AND m.lead_key = s.lead_key WHERE m.fields_hash IS DISTINCT FROM s.fields_hash`).Scan(&updates); err != nil {
		return err
	}
	if adds != int64(n/200) || removes != int64(n/200) || updates != int64(n/1000) {
		return fmt.Errorf("anti-join found %d adds, %d removes, %d updates", adds, removes, updates)
	}
	_, err = conn.Exec(ctx, `DROP TABLE snap`)
	return err
}

// snapSource feeds COPY with normalised rows.
type snapSource struct {
	rows interface {
		Next() bool
		Values() []any
		Err() error
	}
	p    columnPlan
	rule keyRule
	cur  []any
}

func (s *snapSource) Next() bool {
	for s.rows.Next() {
		v := s.rows.Values()
		key, why := s.rule.normalize(v[s.p.keyCol])
		if why != "" {
			continue
		}
		vals := make([]string, len(s.p.fieldCols))
		for i, c := range s.p.fieldCols {
			vals[i] = renderField(v[c])
		}
		h := hashFields(s.p.fieldNames, vals)
		s.cur = []any{key, h.stored()}
		return true
	}
	return false
}
func (s *snapSource) Values() ([]any, error) { return s.cur, nil }
func (s *snapSource) Err() error             { return s.rows.Err() }

// noMarketo fails every call: a plan must make none.
type noMarketo struct{}

func (noMarketo) ResolveList(context.Context, marketo.ListRef) (marketo.List, error) {
	return marketo.List{}, fmt.Errorf("plan called Marketo")
}
func (noMarketo) AddToList(context.Context, marketo.AddParams, marketo.CommitFunc) error {
	return fmt.Errorf("plan called Marketo")
}
func (noMarketo) RemoveFromList(context.Context, marketo.RemoveParams, marketo.CommitFunc) error {
	return fmt.Errorf("plan called Marketo")
}
func (noMarketo) ListMembers(context.Context, marketo.MembersParams, func(context.Context, []marketo.Member) error) error {
	return fmt.Errorf("plan called Marketo")
}
