package marketo_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/marketo/emulator"
)

// TestAddREST: a small set goes through createOrUpdate + add-to-list, 2
// calls per 300 leads, with every lead id known at once; existing leads are
// updated, not duplicated; record-level refusals come back as rejections.
func TestAddREST(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	list := b.em.CreateStaticList("L", b.em.CreateFolder("F"))
	existing := b.em.UpsertLeads([]map[string]string{{"email": "e0@example.com", "firstName": "Old"}})[0]

	keys := emails("e", 700)
	leads := leadsFor(keys)
	leads[0].Key = "E0@Example.com" // same person as the existing lead
	leads = append(leads,
		marketo.Lead{Key: "not-an-email", Values: []string{"X"}},
		marketo.Lead{Key: "e5@example.com", Values: []string{"dup"}}, // a duplicate key
	)
	var col collector
	var cc marketo.CallCounter
	ctx := marketo.WithCallCounter(t.Context(), &cc)
	err := b.c.AddToList(ctx, marketo.AddParams{ListID: list, LookupField: "email", FieldNames: []string{"firstName"}, Leads: leads}, col.commit)
	require.NoError(t, err)

	got := col.byKey()
	require.Len(t, col.outs, len(leads), "one outcome per row, duplicates included")
	require.Equal(t, marketo.Confirmed, got["E0@Example.com"].Status)
	require.Equal(t, existing, got["E0@Example.com"].LeadID)
	bad := got["not-an-email"]
	require.Equal(t, marketo.Rejected, bad.Status)
	require.Equal(t, "1001", bad.Code)
	require.Contains(t, bad.Reason, "not-an-email")
	members := memberEmails(b.em, list)
	require.Len(t, members, 700)
	for _, k := range keys {
		o := got[k]
		if k == "e0@example.com" {
			continue
		}
		require.Equal(t, marketo.Confirmed, o.Status, k)
		require.Equal(t, members[k], o.LeadID, k)
	}
	require.Equal(t, got["e5@example.com"].LeadID, members["e5@example.com"])
	require.Equal(t, "F0", b.em.Leads(existing)[0].Fields["firstName"], "the existing lead was updated")
	require.Equal(t, "F5", b.em.Leads(members["e5@example.com"])[0].Fields["firstName"], "the first row of a duplicate key wins")

	// 701 leads plus a duplicate: 3 batches, 2 calls each, no more.
	require.Equal(t, int64(6), cc.Total())
	require.Equal(t, map[string]int64{"POST /rest/v1/leads.json": 3, "POST /rest/v1/lists/{id}/leads.json": 3}, cc.ByEndpoint())
	require.Equal(t, map[string]int64{"ok": 6}, cc.ByCode())
	require.Equal(t, 3, col.calls, "one commit per batch")
}

// TestAddRESTRejectsOversizedLead: a lead whose record alone passes the
// request limit is rejected with the reason; the others are added. It does
// not fail the whole push, which would stop every later run of the sync on
// one bad row.
func TestAddRESTRejectsOversizedLead(t *testing.T) {
	t.Parallel()
	b := setup(t, options{client: func(c *marketo.Config) { c.MaxBodyBytes = 10_000 }})
	list := b.em.CreateStaticList("L", b.em.CreateFolder("F"))
	leads := leadsFor(emails("r", 20))
	leads[7].Values[0] = strings.Repeat("x", 20_000)
	var col collector
	err := b.c.AddToList(t.Context(), marketo.AddParams{ListID: list, FieldNames: []string{"firstName"}, Leads: leads}, col.commit)
	require.NoError(t, err)
	got := col.byKey()
	require.Len(t, got, 20)
	big := got[leads[7].Key]
	require.Equal(t, marketo.Rejected, big.Status)
	require.Equal(t, "too_large", big.Code)
	require.Contains(t, big.Reason, "10000-byte request limit")
	require.Len(t, memberEmails(b.em, list), 19)
	require.Empty(t, b.em.LeadsByEmail(leads[7].Key))
}

// TestAddBulkHostileValues: values that break naive CSV writers arrive in
// Marketo unchanged through a bulk import; rows the import fails come back
// rejected with Marketo's reason; the others confirmed.
func TestAddBulkHostileValues(t *testing.T) {
	t.Parallel()
	b := setup(t, options{client: func(c *marketo.Config) { c.BulkAddMinRows = 2 }})
	list := b.em.CreateStaticList("L", b.em.CreateFolder("F"))
	fields := []string{"firstName", "lastName", "company", "title"}
	leads := []marketo.Lead{
		// Values: firstName, lastName, company, title.
		{Key: "comma@example.com", Values: []string{"Smith, John", "", "A,B,,C", ""}},
		{Key: "quote@example.com", Values: []string{`The "Boss"`, `"`, "", ""}},
		{Key: "newline@example.com", Values: []string{"two\nlines", "", "x\ny\nz", ""}},
		{Key: "formula@example.com", Values: []string{`=HYPERLINK("http://x")`, "+1-2", "", "@SUM(A1)"}},
		{Key: "unicode@example.com", Values: []string{"Zoë 日本語 🙂", "", "Ståhl & Söner", ""}},
		{Key: "space@example.com", Values: []string{" leading", "trailing ", "", ""}},
		{Key: "bad email@", Values: []string{"Bad", "", "", ""}},
		{Key: "also,bad", Values: []string{"Bad", "", "", ""}},
	}
	col, ep := b.addCounted(t, marketo.AddParams{ListID: list, FieldNames: fields, Leads: leads})
	got := col.byKey()
	require.Len(t, got, len(leads))
	for _, l := range leads[:6] {
		require.Equal(t, marketo.Confirmed, got[l.Key].Status, l.Key)
		stored := b.em.LeadsByEmail(l.Key)
		require.Len(t, stored, 1, l.Key)
		for j, f := range fields {
			require.Equal(t, l.Values[j], stored[0].Fields[f], "%s %s", l.Key, f)
		}
	}
	for _, k := range []string{"bad email@", "also,bad"} {
		require.Equal(t, marketo.Rejected, got[k].Status, k)
		require.Contains(t, got[k].Reason, "Invalid email", k)
	}
	require.Len(t, memberEmails(b.em, list), 6)
	require.Equal(t, int64(1), ep["POST /bulk/v1/leads.json"])
	require.Equal(t, int64(1), ep["GET /bulk/v1/leads/batch/{id}/failures.json"])
	require.Zero(t, ep["POST /rest/v1/leads.json"])
}

// TestAddBulkSplitsFiles: files are split by bytes; imports into one list run
// one after the other (no 1019) and each is committed when done.
func TestAddBulkSplitsFiles(t *testing.T) {
	t.Parallel()
	b := setup(t, options{client: func(c *marketo.Config) {
		c.BulkAddMinRows = 10
		c.ImportMaxBytes = 20_000
	}})
	list := b.em.CreateStaticList("L", b.em.CreateFolder("F"))
	keys := emails("split", 3000)
	col, ep := b.addCounted(t, marketo.AddParams{ListID: list, FieldNames: []string{"firstName"}, Leads: leadsFor(keys)})
	imports := ep["POST /bulk/v1/leads.json"]
	require.Greater(t, imports, int64(3))
	require.Equal(t, int(imports), col.calls, "one commit per import")
	require.Len(t, memberEmails(b.em, list), 3000)
	for _, o := range col.outs {
		require.Equal(t, marketo.Confirmed, o.Status)
	}
	require.Zero(t, b.em.Stats().Rejected["1019"])
}

// TestAddImportFailedResubmitted: an import that ends Failed is submitted
// again; when every attempt fails, its rows are rejected with the reason.
func TestAddImportFailed(t *testing.T) {
	t.Parallel()
	b := setup(t, options{
		em: emulator.Config{Faults: emulator.Faults{ImportFailureRate: 1, Seed: 3}},
		client: func(c *marketo.Config) {
			c.BulkAddMinRows = 2
			c.ImportResubmits = 1
		},
	})
	list := b.em.CreateStaticList("L", b.em.CreateFolder("F"))
	var col collector
	err := b.c.AddToList(t.Context(), marketo.AddParams{ListID: list, FieldNames: []string{"firstName"}, Leads: leadsFor(emails("f", 5))}, col.commit)
	require.NoError(t, err)
	require.Len(t, col.outs, 5)
	for _, o := range col.outs {
		require.Equal(t, marketo.Rejected, o.Status)
		require.Equal(t, "import_failed", o.Code)
		require.Contains(t, o.Reason, "emulated fault")
	}
	require.Len(t, b.em.Imports(), 2, "submitted, then submitted once more")
	require.Empty(t, memberEmails(b.em, list))
}

// TestAddImportSubmitRetried: an import submission answered 502 is sent
// again, whole (the body streams the file's bytes, read afresh for each
// attempt), and the import then adds every row.
func TestAddImportSubmitRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, options{client: func(c *marketo.Config) { c.BulkAddMinRows = 2 }})
	list := b.em.CreateStaticList("L", b.em.CreateFolder("F"))
	var submits atomic.Int32
	b.setBefore(func(r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/bulk/v1/leads.json") && submits.Add(1) == 1 {
			b.em.SetFaults(emulator.Faults{Rate: 1, Kinds: []emulator.FaultKind{emulator.FaultBadGateway}})
			return
		}
		b.em.SetFaults(emulator.Faults{})
	})
	keys := emails("retry", 2000)
	col, ep := b.addCounted(t, marketo.AddParams{ListID: list, FieldNames: []string{"firstName"}, Leads: leadsFor(keys)})
	require.Equal(t, int32(2), submits.Load(), "the submission, then its retry")
	require.Equal(t, int64(2), ep["POST /bulk/v1/leads.json"])
	require.Len(t, b.em.Imports(), 1, "the first attempt was refused before any import began")
	require.Len(t, col.outs, len(keys))
	for _, o := range col.outs {
		require.Equal(t, marketo.Confirmed, o.Status, o.Key)
	}
	require.Len(t, memberEmails(b.em, list), len(keys))
	require.Equal(t, "F1999", b.em.LeadsByEmail(keys[1999])[0].Fields["firstName"], "the file's last row arrived")
}

// TestAddUnknownField: a field Marketo does not know rejects a bulk file
// with Marketo's reason, and a REST record with its record-level reason.
func TestAddUnknownField(t *testing.T) {
	t.Parallel()
	for _, bulk := range []bool{false, true} {
		t.Run("bulk="+strconv.FormatBool(bulk), func(t *testing.T) {
			t.Parallel()
			b := setup(t, options{client: func(c *marketo.Config) {
				if bulk {
					c.BulkAddMinRows = 1
				}
			}})
			list := b.em.CreateStaticList("L", b.em.CreateFolder("F"))
			var col collector
			leads := []marketo.Lead{{Key: "a@example.com", Values: []string{"x"}}}
			err := b.c.AddToList(t.Context(), marketo.AddParams{ListID: list, FieldNames: []string{"noSuchField"}, Leads: leads}, col.commit)
			require.NoError(t, err)
			require.Len(t, col.outs, 1)
			require.Equal(t, marketo.Rejected, col.outs[0].Status)
			require.Equal(t, "1006", col.outs[0].Code)
			require.Contains(t, col.outs[0].Reason, "noSuchField")
		})
	}
}

func TestAddValidates(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	var col collector
	cases := []struct {
		p           marketo.AddParams
		errContains string
	}{
		{marketo.AddParams{ListID: 0}, "list id 0"},
		{marketo.AddParams{ListID: 1, Leads: []marketo.Lead{{Key: " "}}}, "lead 1 has an empty email"},
		{marketo.AddParams{ListID: 1, Leads: []marketo.Lead{{Key: "a@x.com", Values: []string{"x"}}}}, `lead "a@x.com" has 1 values for 0 field names`},
		{marketo.AddParams{ListID: 1, FieldNames: []string{"company", "title"}, Leads: []marketo.Lead{{Key: "a@x.com", Values: []string{"x"}}}}, `lead "a@x.com" has 1 values for 2 field names`},
		{marketo.AddParams{ListID: 1, FieldNames: []string{""}}, "field name 1 is empty"},
		{marketo.AddParams{ListID: 1, FieldNames: []string{"company", "Email"}}, `field name 2, "Email", is the lookup field`},
		{marketo.AddParams{ListID: 1, FieldNames: []string{"company", "Company"}}, `field name 2, "Company", repeats field name 1`},
	}
	for _, tc := range cases {
		err := b.c.AddToList(t.Context(), tc.p, col.commit)
		require.ErrorContains(t, err, tc.errContains)
	}
	require.Zero(t, b.em.Stats().CallsTotal)
	require.Empty(t, col.outs)
}

// TestAddListDeleted: a list deleted in Marketo is reported as
// ErrListNotFound by both paths.
func TestAddListDeleted(t *testing.T) {
	t.Parallel()
	for _, bulk := range []bool{false, true} {
		t.Run("bulk="+strconv.FormatBool(bulk), func(t *testing.T) {
			t.Parallel()
			b := setup(t, options{client: func(c *marketo.Config) {
				if bulk {
					c.BulkAddMinRows = 1
				}
			}})
			list := b.em.CreateStaticList("L", b.em.CreateFolder("F"))
			b.em.DeleteStaticList(list)
			var col collector
			err := b.c.AddToList(t.Context(), marketo.AddParams{ListID: list, Leads: leadsFor(emails("d", 3)), FieldNames: []string{"firstName"}}, col.commit)
			require.ErrorIs(t, err, marketo.ErrListNotFound)
		})
	}
}

// TestAddCommitErrorStops: an error from commit stops the operation and is
// returned as is.
func TestAddCommitErrorStops(t *testing.T) {
	t.Parallel()
	b := setup(t, options{client: func(c *marketo.Config) { c.MaxConcurrency = 1 }})
	list := b.em.CreateStaticList("L", b.em.CreateFolder("F"))
	boom := errors.New("state store down")
	calls := 0
	err := b.c.AddToList(t.Context(), marketo.AddParams{ListID: list, Leads: leadsFor(emails("c", 900)), FieldNames: []string{"firstName"}},
		func(context.Context, []marketo.Outcome) error { calls++; return boom })
	require.Same(t, boom, err)
	require.Equal(t, 1, calls)
	require.Len(t, memberEmails(b.em, list), 300)
}

// TestAddImportPollsByProgress: a slow import (about half a second of real
// time on the tests' clock) is read when its progress says it should be
// done, not on the growing schedule, which would read it about ten times;
// its outcomes are the same: every good row confirmed and a member, the bad
// one rejected with Marketo's reason.
func TestAddImportPollsByProgress(t *testing.T) {
	t.Parallel()
	const (
		good        = 400
		rowsPerSec  = 8 // emulated: 401 rows take 50 s, 0.5 s of real time
		pollInitial = 5 * time.Millisecond
		pollMax     = 300 * time.Millisecond
	)
	b := setup(t, options{
		em: emulator.Config{ImportRowsPerSec: rowsPerSec},
		client: func(c *marketo.Config) {
			c.BulkAddMinRows = 2
			c.ImportPollInitial = pollInitial
			c.ImportPollMax = pollMax
		},
	})
	list := b.em.CreateStaticList("L", b.em.CreateFolder("F"))
	leads := append(leadsFor(emails("p", good)), marketo.Lead{Key: "not-an-email", Values: []string{"X"}})
	var col collector
	err := b.c.AddToList(t.Context(), marketo.AddParams{ListID: list, FieldNames: []string{"firstName"}, Leads: leads}, col.commit)
	require.NoError(t, err)

	require.Len(t, col.outs, good+1)
	for _, o := range col.outs {
		if o.Key == "not-an-email" {
			require.Equal(t, marketo.Rejected, o.Status)
			require.Equal(t, "Invalid email format", o.Reason)
			continue
		}
		require.Equal(t, marketo.Confirmed, o.Status, o.Key)
	}
	require.Len(t, b.em.ListMemberIDs(list), good)
	imports := b.em.Imports()
	require.Len(t, imports, 1)
	require.Equal(t, "Complete", imports[0].Status)

	// The growing schedule reads at 5, 12.5, 23.75, … ms until a read
	// falls at or after the import's end.
	took := time.Duration(float64(len(leads)) / rowsPerSec * float64(time.Second) / speed)
	oldReads := 0
	for at, wait := time.Duration(0), pollInitial; at < took; wait = min(wait*3/2, pollMax) {
		at += wait
		oldReads++
	}
	reads := b.em.Stats().Endpoints["GET /bulk/v1/leads/batch/{id}.json"]
	t.Logf("status reads: %d (growing schedule: %d)", reads, oldReads)
	require.Equal(t, 10, oldReads)
	require.GreaterOrEqual(t, reads, int64(1))
	require.LessOrEqual(t, reads, int64(5), "reads timed by progress")
	require.Less(t, reads, int64(oldReads))
}

// TestAddImportLearnsTheRate: the client times the first status read of an
// import by the rate it measured on the one before, so that a second import
// of the same size is read once, when it is Complete; the first takes a read
// to measure the rate and one or two at its projected end.
func TestAddImportLearnsTheRate(t *testing.T) {
	t.Parallel()
	const rowsPerSec = 4 // emulated: 400 rows take 100 s, 1 s of real time
	b := setup(t, options{
		em: emulator.Config{ImportRowsPerSec: rowsPerSec},
		client: func(c *marketo.Config) {
			c.BulkAddMinRows = 2
			c.ImportPollInitial = 5 * time.Millisecond
			c.ImportPollMax = 300 * time.Millisecond
		},
	})
	reads := func() int64 { return b.em.Stats().Endpoints["GET /bulk/v1/leads/batch/{id}.json"] }
	folder := b.em.CreateFolder("F")
	var perImport []int64
	for i, prefix := range []string{"first", "second"} {
		list := b.em.CreateStaticList(fmt.Sprintf("L%d", i), folder)
		before := reads()
		var col collector
		require.NoError(t, b.c.AddToList(t.Context(), marketo.AddParams{ListID: list, FieldNames: []string{"firstName"},
			Leads: leadsFor(emails(prefix, 400))}, col.commit))
		require.Len(t, b.em.ListMemberIDs(list), 400)
		for _, o := range col.outs {
			require.Equal(t, marketo.Confirmed, o.Status, o.Key)
		}
		perImport = append(perImport, reads()-before)
	}
	t.Logf("status reads per import: %v", perImport)
	require.GreaterOrEqual(t, perImport[0], int64(2), "the first import: a read that measures the rate, one (or two) at the projected end")
	require.Equal(t, int64(1), perImport[1], "the second import is read once, at the end the learned rate projects")
}

// TestAddImportRateAcrossClients: the rate a client measures reaches
// Config.OnImportRate, and a client given a known rate through
// Config.ImportRate (a new process, passed the rate an earlier one kept)
// reads its first import's status once, at the end that rate projects.
func TestAddImportRateAcrossClients(t *testing.T) {
	t.Parallel()
	const (
		rows       = 400
		rowsPerSec = 400 // emulated on a real-time clock: each import takes 1 s
	)
	poll := func(c *marketo.Config) {
		c.BulkAddMinRows = 2
		c.ImportPollInitial = 100 * time.Millisecond
		c.ImportPollMax = 500 * time.Millisecond
	}
	addAll := func(t *testing.T, b *bundle, prefix string) int64 {
		t.Helper()
		reads := func() int64 { return b.em.Stats().Endpoints["GET /bulk/v1/leads/batch/{id}.json"] }
		list := b.em.CreateStaticList("L-"+prefix, b.em.CreateFolder("F-"+prefix))
		before := reads()
		var col collector
		require.NoError(t, b.c.AddToList(t.Context(), marketo.AddParams{ListID: list, FieldNames: []string{"firstName"},
			Leads: leadsFor(emails(prefix, rows))}, col.commit))
		require.Len(t, b.em.ListMemberIDs(list), rows)
		return reads() - before
	}

	t.Run("OnImportRate", func(t *testing.T) {
		t.Parallel()
		var (
			mu     sync.Mutex
			got    []float64
			ctxErr []error
		)
		b := setup(t, options{speed: 1, em: emulator.Config{ImportRowsPerSec: rowsPerSec}, client: func(c *marketo.Config) {
			poll(c)
			c.OnImportRate = func(ctx context.Context, r float64) {
				mu.Lock()
				got = append(got, r)
				ctxErr = append(ctxErr, ctx.Err())
				mu.Unlock()
			}
		}})
		require.Zero(t, b.c.ImportRate(), "unknown before any import")
		reads := addAll(t, b, "measure")
		require.GreaterOrEqual(t, reads, int64(2), "a read measures the rate, one (or two) at the projected end")
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, got, 1, "one import, one rate")
		require.NoError(t, ctxErr[0], "called with the import's live context")
		require.InDelta(t, rowsPerSec, got[0], rowsPerSec/2, "the measured rate is about the emulator's")
		require.Equal(t, got[0], b.c.ImportRate())
	})

	t.Run("ImportRate", func(t *testing.T) {
		t.Parallel()
		b := setup(t, options{speed: 1, em: emulator.Config{ImportRowsPerSec: rowsPerSec}, client: func(c *marketo.Config) {
			poll(c)
			c.ImportRate = rowsPerSec
		}})
		require.Equal(t, float64(rowsPerSec), b.c.ImportRate())
		require.Equal(t, int64(1), addAll(t, b, "known"), "the first import is read once, at the end the known rate projects")
	})
}

// TestAddBulkClearsEmptiedFields: a bulk import's blank cell leaves a field
// as it is, so the leads marked Clears that carry an empty value go
// through the REST calls, which set it empty; the rest of the push is still
// one import, where a blank cell of an unmarked lead keeps the field.
func TestAddBulkClearsEmptiedFields(t *testing.T) {
	t.Parallel()
	b := setup(t, options{client: func(c *marketo.Config) { c.BulkAddMinRows = 2 }})
	list := b.em.CreateStaticList("L", b.em.CreateFolder("F"))
	var seed []map[string]string
	for _, k := range []string{"cleared", "both", "changed", "kept", "new1"} {
		seed = append(seed, map[string]string{"email": k + "@x.com", "firstName": "Old", "company": "OldCo"})
	}
	b.em.UpsertLeads(seed)
	fields := []string{"firstName", "company"}
	leads := []marketo.Lead{
		{Key: "cleared@x.com", Values: []string{"", "NewCo"}, Clears: true},
		{Key: "both@x.com", Values: []string{"", ""}, Clears: true},
		{Key: "changed@x.com", Values: []string{"New", "NewCo"}, Clears: true},
		{Key: "kept@x.com", Values: []string{"", "NewCo"}},
		{Key: "new1@x.com", Values: []string{"Ann", "AnnCo"}},
		{Key: "new2@x.com", Values: []string{"Bo", ""}},
	}
	col, ep := b.addCounted(t, marketo.AddParams{ListID: list, FieldNames: fields, Leads: leads})
	got := col.byKey()
	require.Len(t, got, len(leads))
	for _, l := range leads {
		require.Equal(t, marketo.Confirmed, got[l.Key].Status, l.Key)
	}
	require.Len(t, memberEmails(b.em, list), len(leads))
	want := map[string][2]string{
		"cleared@x.com": {"", "NewCo"}, "both@x.com": {"", ""}, "changed@x.com": {"New", "NewCo"},
		"kept@x.com": {"Old", "NewCo"}, // not marked: the import's blank cell keeps the field
		"new1@x.com": {"Ann", "AnnCo"}, "new2@x.com": {"Bo", ""},
	}
	for k, w := range want {
		stored := b.em.LeadsByEmail(k)
		require.Len(t, stored, 1, k)
		require.Equal(t, w[0], stored[0].Fields["firstName"], "%s firstName", k)
		require.Equal(t, w[1], stored[0].Fields["company"], "%s company", k)
	}
	require.Equal(t, int64(1), ep["POST /rest/v1/leads.json"], "the two marked leads with an empty value: one createOrUpdate")
	require.Equal(t, int64(1), ep["POST /rest/v1/lists/{id}/leads.json"])
	require.Equal(t, int64(1), ep["POST /bulk/v1/leads.json"], "the other four: one import")
}
