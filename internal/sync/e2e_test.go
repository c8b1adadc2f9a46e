package sync_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/marketo/emulator"
	"github.com/listsync/listsync/internal/state"
	listsync "github.com/listsync/listsync/internal/sync"
)

var byName = marketo.ListRef{Name: "Trial users", Folder: "Audiences"}

func TestFirstAndIncrementalRuns(t *testing.T) {
	t.Parallel()
	for _, pgState := range []bool{false, true} {
		t.Run(fmt.Sprintf("postgres_state=%v", pgState), func(t *testing.T) {
			t.Parallel()
			e, spec := newABCSync(t, pgState)

			// First run: the list is created in the folder, empty, so no
			// resync is needed; everyone is added with their fields.
			run := e.run(spec, listsync.RunOptions{Trigger: state.TriggerSchedule})
			listID := e.listID("Trial users")
			require.Equal(t, listID, run.ListID)
			require.False(t, run.FullResync)
			require.EqualValues(t, 3, run.AddsPlanned)
			require.EqualValues(t, 3, run.AddsConfirmed)
			require.EqualValues(t, 3, run.RowsRead)
			require.Positive(t, run.APICalls)
			require.Equal(t, state.TriggerSchedule, run.Trigger)
			e.requireConverged(spec.Name, listID, "a@x.com", "b@x.com", "c@x.com")
			lead := e.em.LeadsByEmail("b@x.com")
			require.Len(t, lead, 1)
			require.Equal(t, "Fb@x.com", lead[0].Fields["firstName"])

			// Nothing changed: one call (resolving the list), nothing sent.
			before := e.em.Stats().CallsTotal
			run = e.run(spec, listsync.RunOptions{})
			require.Zero(t, run.AddsPlanned+run.RemovesPlanned+run.UpdatesPlanned)
			require.EqualValues(t, 1, run.APICalls)
			require.EqualValues(t, 1, e.em.Stats().CallsTotal-before, "an idle run costs one API call")

			// Incremental: d joins, a leaves, b's name changes.
			rows := emails("b@x.com", "c@x.com", "d@x.com")
			rows[0].firstName = "Bea"
			e.setModel(rows...)
			run = e.run(spec, listsync.RunOptions{})
			require.EqualValues(t, 1, run.AddsConfirmed)
			require.EqualValues(t, 1, run.RemovesConfirmed)
			require.EqualValues(t, 1, run.UpdatesConfirmed)
			e.requireConverged(spec.Name, listID, "b@x.com", "c@x.com", "d@x.com")
			require.Equal(t, "Bea", e.em.LeadsByEmail("b@x.com")[0].Fields["firstName"])
			require.Len(t, e.em.LeadsByEmail("a@x.com"), 1, "a removed member stays a lead")

			runs, err := e.store.ListRuns(e.ctx, spec.Name, 0)
			require.NoError(t, err)
			require.Len(t, runs, 3)
			require.Equal(t, run, runs[0], "Run returns the record it stored")
		})
	}
}

// TestLegacyFieldsHashesAreRewrittenWithoutResending upgrades a ledger
// written by a listsync from before fieldsHashV2 (SHA-256 fields hashes):
// the next run sends nothing for the leads whose fields did not change,
// still updates the one that did, and stores every member's hash in the
// current form, so that the run after it is idle.
func TestLegacyFieldsHashesAreRewrittenWithoutResending(t *testing.T) {
	t.Parallel()
	for _, pgState := range []bool{false, true} {
		t.Run(fmt.Sprintf("postgres_state=%v", pgState), func(t *testing.T) {
			t.Parallel()
			e, spec := newABCSync(t, pgState)
			e.run(spec, listsync.RunOptions{})
			listID := e.listID("Trial users")
			names := []string{"firstName"}

			// The ledger as an older listsync left it.
			old := state.Batch{At: e.clock.Now()}
			require.NoError(t, e.store.ScanMembers(e.ctx, spec.Name, func(m state.Member) error {
				require.Equal(t, listsync.StoredFieldsHash(names, []string{"F" + m.Key}), m.FieldsHash)
				old.Confirmed = append(old.Confirmed, state.Member{Key: m.Key, LeadID: m.LeadID,
					FieldsHash: listsync.LegacyFieldsHash(names, []string{"F" + m.Key})})
				return nil
			}))
			require.NoError(t, e.store.ApplyBatch(e.ctx, spec.Name, old))

			rows := emails("a@x.com", "b@x.com", "c@x.com")
			rows[1].firstName = "Bea"
			e.setModel(rows...)
			plan, err := e.engine.Plan(e.ctx, spec)
			require.NoError(t, err)
			require.Zero(t, plan.Adds+plan.Removes)
			require.EqualValues(t, 1, plan.Updates, "only b changed")
			run := e.run(spec, listsync.RunOptions{})
			require.Zero(t, run.AddsPlanned+run.RemovesPlanned)
			require.EqualValues(t, 1, run.UpdatesPlanned)
			require.EqualValues(t, 1, run.UpdatesConfirmed)
			require.Equal(t, "Bea", e.em.LeadsByEmail("b@x.com")[0].Fields["firstName"])
			e.requireConverged(spec.Name, listID, "a@x.com", "b@x.com", "c@x.com")
			want := map[string]string{"a@x.com": "Fa@x.com", "b@x.com": "Bea", "c@x.com": "Fc@x.com"}
			require.NoError(t, e.store.ScanMembers(e.ctx, spec.Name, func(m state.Member) error {
				require.Equal(t, listsync.StoredFieldsHash(names, []string{want[m.Key]}), m.FieldsHash, "member %s", m.Key)
				return nil
			}))

			run = e.run(spec, listsync.RunOptions{})
			require.Zero(t, run.AddsPlanned+run.RemovesPlanned+run.UpdatesPlanned)
			require.EqualValues(t, 1, run.APICalls, "the run after the upgrade is idle")
		})
	}
}

// TestEmptiedFieldIsClearedInMarketo: a member whose mapped field becomes
// empty in the model has it cleared in Marketo, even when the run's push is
// large enough for a bulk import (whose blank cells leave fields as they
// are); adds in the same push still go through the import.
func TestEmptiedFieldIsClearedInMarketo(t *testing.T) {
	t.Parallel()
	for _, pgState := range []bool{false, true} {
		t.Run(fmt.Sprintf("postgres_state=%v", pgState), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{postgresState: pgState, client: func(c *marketo.Config) { c.BulkAddMinRows = 2 }})
			e.em.CreateFolder("Audiences")
			e.setModel(emails("a@x.com", "b@x.com", "c@x.com")...)
			spec := e.spec(byName)
			spec.Fields = map[string]string{"firstName": "first_name"}
			e.run(spec, listsync.RunOptions{})
			listID := e.listID("Trial users")
			require.Equal(t, "Fa@x.com", e.em.LeadsByEmail("a@x.com")[0].Fields["firstName"])

			// a's first name is emptied, b's is changed, d and e join.
			rows := emails("a@x.com", "b@x.com", "c@x.com", "d@x.com", "e@x.com")
			rows[0].firstName, rows[1].firstName = "", "Bea"
			e.setModel(rows...)
			imports := func() (n int64) {
				for _, c := range e.em.Stats().Imports {
					n += c
				}
				return n
			}
			before := imports()
			run := e.run(spec, listsync.RunOptions{})
			require.EqualValues(t, 2, run.UpdatesConfirmed)
			require.EqualValues(t, 2, run.AddsConfirmed)
			require.Equal(t, before+1, imports(), "the others went through one import")
			require.Empty(t, e.em.LeadsByEmail("a@x.com")[0].Fields["firstName"], "the emptied field is cleared")
			require.Equal(t, "Bea", e.em.LeadsByEmail("b@x.com")[0].Fields["firstName"])
			require.Equal(t, "Fd@x.com", e.em.LeadsByEmail("d@x.com")[0].Fields["firstName"])
			e.requireConverged(spec.Name, listID, "a@x.com", "b@x.com", "c@x.com", "d@x.com", "e@x.com")
			run = e.run(spec, listsync.RunOptions{})
			require.Zero(t, run.AddsPlanned+run.RemovesPlanned+run.UpdatesPlanned, "converged: the next run is idle")
		})
	}
}

func TestInvalidAndDuplicateKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	list := e.em.CreateStaticList("L", e.em.CreateFolder("F"))
	e.setModel(append(emails("a@x.com", " A@X.com ", "b@x.com", "", "not-an-email", "B@x.COM"),
		person{email: nil, firstName: "null"})...)
	spec := e.spec(marketo.ListRef{ID: list})
	run := e.run(spec, listsync.RunOptions{})
	require.EqualValues(t, 7, run.RowsRead)
	require.EqualValues(t, 3, run.Invalid)
	require.EqualValues(t, 2, run.Duplicates)
	require.EqualValues(t, 2, run.AddsConfirmed)
	require.Equal(t, []string{`row 4: "": empty key`, `row 5: "not-an-email": not an email address (no @)`, "row 7: NULL key"},
		run.InvalidSamples)
	e.requireConverged(spec.Name, list, "a@x.com", "b@x.com")
}

func TestAddOnlyNeverRemoves(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	list := e.em.CreateStaticList("L", e.em.CreateFolder("F"))
	spec := e.spec(marketo.ListRef{ID: list})
	spec.Mode = listsync.ModeAddOnly
	e.setModel(emails("a@x.com", "b@x.com")...)
	e.run(spec, listsync.RunOptions{})
	e.setModel(emails("c@x.com")...)
	run := e.run(spec, listsync.RunOptions{})
	require.Zero(t, run.RemovesPlanned)
	e.requireConverged(spec.Name, list, "a@x.com", "b@x.com", "c@x.com")
	// Even an empty model removes nothing, and trips no guard.
	e.setModel()
	run = e.run(spec, listsync.RunOptions{})
	require.Zero(t, run.RemovesPlanned)
	require.Len(t, e.listEmails(list), 3)
}

func TestRemovalGuards(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	list := e.em.CreateStaticList("L", e.em.CreateFolder("F"))
	spec := e.spec(marketo.ListRef{ID: list})
	all := []string{"a@x.com", "b@x.com", "c@x.com", "d@x.com", "e@x.com"}
	e.setModel(emails(all...)...)
	e.run(spec, listsync.RunOptions{})

	// An empty model against a list with members stops before any change.
	e.setModel()
	before := e.em.Stats().CallsTotal
	run, err := e.engine.Run(e.ctx, spec, listsync.RunOptions{})
	var g *listsync.GuardError
	require.ErrorAs(t, err, &g)
	require.ErrorIs(t, err, listsync.ErrGuard)
	require.True(t, g.Empty)
	require.EqualValues(t, 5, g.Removes)
	require.ErrorContains(t, err, "the model returned no valid rows while the list has 5 members")
	require.ErrorContains(t, err, "--allow-removals")
	require.Equal(t, state.RunFailed, run.Status)
	require.Equal(t, err.Error(), run.Error)
	require.EqualValues(t, 5, run.RemovesPlanned)
	require.Zero(t, run.RemovesConfirmed)
	require.Zero(t, e.em.Stats().CallsTotal-before, "no call: the list is the bound one, and nothing was pushed")
	e.requireConverged(spec.Name, list, all...)

	// Removing 3 of 5 (60%) is more than the default 50%.
	e.setModel(emails("a@x.com", "b@x.com")...)
	_, err = e.engine.Run(e.ctx, spec, listsync.RunOptions{})
	require.ErrorAs(t, err, &g)
	require.False(t, g.Empty)
	require.ErrorContains(t, err, "would remove 3 of the list's 5 members (60.0%), more than max_remove_fraction 0.5")
	require.ErrorContains(t, err, "raise max_remove_fraction")
	e.requireConverged(spec.Name, list, all...)

	// Plan reports the same guard, and changes nothing.
	p, err := e.engine.Plan(e.ctx, spec)
	require.NoError(t, err)
	require.NotNil(t, p.Guard)
	require.EqualValues(t, 3, p.Removes)

	// Raising the fraction lets it through.
	spec.MaxRemoveFraction = 0.6
	e.run(spec, listsync.RunOptions{})
	e.requireConverged(spec.Name, list, "a@x.com", "b@x.com")

	// And --allow-removals lets an empty model empty the list.
	e.setModel()
	spec.MaxRemoveFraction = 0
	run = e.run(spec, listsync.RunOptions{AllowRemovals: true})
	require.EqualValues(t, 2, run.RemovesConfirmed)
	e.requireConverged(spec.Name, list)
}

func TestRejectedRowsAreRetriedWithBackoff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	list := e.em.CreateStaticList("L", e.em.CreateFolder("F"))
	spec := e.spec(marketo.ListRef{ID: list})
	spec.SQL = "SELECT email, score FROM people"
	spec.Fields = map[string]string{"leadScore": "score"}
	e.setModel(person{email: "good@x.com", score: "5"}, person{email: "bad@x.com", score: "lots"})

	run := e.run(spec, listsync.RunOptions{})
	require.EqualValues(t, 1, run.AddsConfirmed)
	require.EqualValues(t, 1, run.Rejected)
	e.requireConverged(spec.Name, list, "good@x.com")
	rejects, err := e.store.ListRejects(e.ctx, spec.Name, 0)
	require.NoError(t, err)
	require.Len(t, rejects, 1)
	require.Equal(t, "bad@x.com", rejects[0].Key)
	require.Equal(t, state.OpAdd, rejects[0].Op)
	require.Contains(t, rejects[0].Reason, "lots", "Marketo's reason is kept")
	require.Equal(t, 1, rejects[0].Attempts)
	require.Equal(t, e.clock.Now().Add(time.Hour), rejects[0].NextAttemptAt)

	// Not due yet: deferred, no API budget spent on it.
	before := e.em.Stats().CallsTotal
	run = e.run(spec, listsync.RunOptions{})
	require.EqualValues(t, 1, run.Deferred)
	require.Zero(t, run.AddsPlanned)
	require.EqualValues(t, 1, e.em.Stats().CallsTotal-before)

	// Due: retried, rejected again, and the delay doubles.
	e.clock.Advance(61 * time.Minute)
	run = e.run(spec, listsync.RunOptions{})
	require.EqualValues(t, 1, run.AddsPlanned)
	require.EqualValues(t, 1, run.Rejected)
	rejects, err = e.store.ListRejects(e.ctx, spec.Name, 0)
	require.NoError(t, err)
	require.Equal(t, 2, rejects[0].Attempts)
	require.Equal(t, e.clock.Now().Add(2*time.Hour), rejects[0].NextAttemptAt)

	// Fixed in the model and due again: confirmed, and the reject is gone.
	e.setModel(person{email: "good@x.com", score: "5"}, person{email: "bad@x.com", score: "7"})
	e.clock.Advance(2 * time.Hour)
	run = e.run(spec, listsync.RunOptions{})
	require.EqualValues(t, 1, run.AddsConfirmed)
	require.Zero(t, run.Rejected)
	e.requireConverged(spec.Name, list, "bad@x.com", "good@x.com")
	rejects, err = e.store.ListRejects(e.ctx, spec.Name, 0)
	require.NoError(t, err)
	require.Empty(t, rejects)

	// A rejected row the model then drops is forgotten.
	e.setModel(person{email: "good@x.com", score: "5"}, person{email: "bad@x.com", score: "7"}, person{email: "worse@x.com", score: "x"})
	e.run(spec, listsync.RunOptions{})
	rejects, err = e.store.ListRejects(e.ctx, spec.Name, 0)
	require.NoError(t, err)
	require.Len(t, rejects, 1)
	e.setModel(person{email: "good@x.com", score: "5"}, person{email: "bad@x.com", score: "7"})
	e.run(spec, listsync.RunOptions{})
	rejects, err = e.store.ListRejects(e.ctx, spec.Name, 0)
	require.NoError(t, err)
	require.Empty(t, rejects)
}

func TestFirstRunAgainstAListWithMembersResyncs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	list := e.em.CreateStaticList("Existing", e.em.CreateFolder("F"))
	ids := e.em.UpsertLeads([]map[string]string{
		{"email": "Keep@X.com"}, {"email": "stray@x.com"}, {"firstName": "no email"}, {"email": "dup@x.com"},
	})
	e.em.AddListMembers(list, ids...)
	e.setModel(emails("keep@x.com", "new@x.com", "dup@x.com")...)
	spec := e.spec(marketo.ListRef{ID: list})
	spec.MaxRemoveFraction = 1

	run := e.run(spec, listsync.RunOptions{})
	require.True(t, run.FullResync, "the first run reads the list before diffing")
	require.EqualValues(t, 1, run.AddsConfirmed, "members already on the list are not re-added")
	require.EqualValues(t, 2, run.RemovesConfirmed, "the stray and the lead without an email are removed")
	require.Equal(t, []int64{ids[0], ids[3], e.em.LeadsByEmail("new@x.com")[0].ID}, sortedIDs(e.em.ListMemberIDs(list)))
	e.requireConverged(spec.Name, list, "dup@x.com", "keep@x.com", "new@x.com")

	// An explicit full resync re-reads the list: a member removed in
	// Marketo behind listsync's back is added again.
	e.em.RemoveListMembers(list, ids[0])
	run = e.run(spec, listsync.RunOptions{FullResync: true})
	require.True(t, run.FullResync)
	require.EqualValues(t, 1, run.AddsConfirmed)
	e.requireConverged(spec.Name, list, "dup@x.com", "keep@x.com", "new@x.com")
}

func sortedIDs(ids []int64) []int64 {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

func TestListDeletedBetweenRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.em.CreateFolder("Audiences")
	spec := e.spec(byName)
	e.setModel(emails("a@x.com", "b@x.com")...)
	e.run(spec, listsync.RunOptions{})
	first := e.listID("Trial users")

	// Deleted in Marketo: the next run recreates it by name and fills it.
	require.True(t, e.em.DeleteStaticList(first))
	run := e.run(spec, listsync.RunOptions{})
	second := e.listID("Trial users")
	require.NotEqual(t, first, second)
	require.Equal(t, second, run.ListID)
	require.EqualValues(t, 2, run.AddsConfirmed)
	e.requireConverged(spec.Name, second, "a@x.com", "b@x.com")
	b, ok, err := e.store.Binding(e.ctx, spec.Name)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, second, b.ListID)
}

// TestListDeletedWhileTheModelChanged: the run writes to the bound list
// without resolving it, so the deletion surfaces at the push's first call;
// the run then starts over against the list the name now resolves to.
func TestListDeletedWhileTheModelChanged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.em.CreateFolder("Audiences")
	spec := e.spec(byName)
	e.setModel(emails("a@x.com", "b@x.com")...)
	e.run(spec, listsync.RunOptions{})
	first := e.listID("Trial users")

	require.True(t, e.em.DeleteStaticList(first))
	e.setModel(emails("a@x.com", "b@x.com", "c@x.com")...)
	run := e.run(spec, listsync.RunOptions{})
	second := e.listID("Trial users")
	require.NotEqual(t, first, second)
	require.Equal(t, second, run.ListID)
	require.EqualValues(t, 3, run.AddsConfirmed, "the recreated list gets the whole model")
	e.requireConverged(spec.Name, second, "a@x.com", "b@x.com", "c@x.com")
}

func TestListByIDDeletedWhileTheModelChangedFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	list := e.em.CreateStaticList("L", e.em.CreateFolder("F"))
	spec := e.spec(marketo.ListRef{ID: list})
	e.setModel(emails("a@x.com", "b@x.com")...)
	e.run(spec, listsync.RunOptions{})
	require.True(t, e.em.DeleteStaticList(list))

	e.setModel(emails("a@x.com", "b@x.com", "c@x.com")...)
	run, err := e.engine.Run(e.ctx, spec, listsync.RunOptions{})
	require.ErrorIs(t, err, marketo.ErrListNotFound)
	require.ErrorContains(t, err, fmt.Sprintf("static list %d no longer exists in Marketo", list))
	require.Equal(t, state.RunFailed, run.Status)
	require.Equal(t, []string{"a@x.com", "b@x.com"}, e.confirmed(spec.Name), "the confirmed ledger is kept")
}

func TestListByIDDeletedFailsAndChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	list := e.em.CreateStaticList("L", e.em.CreateFolder("F"))
	spec := e.spec(marketo.ListRef{ID: list})
	e.setModel(emails("a@x.com", "b@x.com")...)
	e.run(spec, listsync.RunOptions{})
	require.True(t, e.em.DeleteStaticList(list))

	run, err := e.engine.Run(e.ctx, spec, listsync.RunOptions{})
	require.ErrorIs(t, err, marketo.ErrListNotFound)
	require.ErrorContains(t, err, fmt.Sprintf("static list %d no longer exists in Marketo; nothing was changed", list))
	require.Equal(t, state.RunFailed, run.Status)
	require.Equal(t, []string{"a@x.com", "b@x.com"}, e.ledger(spec.Name), "the ledger is kept")
	b, _, err := e.store.Binding(e.ctx, spec.Name)
	require.NoError(t, err)
	require.Equal(t, list, b.ListID)
}

func TestRepointedListStartsFromResyncAndLeavesOldListAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	folder := e.em.CreateFolder("F")
	oldList := e.em.CreateStaticList("Old", folder)
	newList := e.em.CreateStaticList("New", folder)
	e.em.AddListMembers(newList, e.em.UpsertLeads([]map[string]string{{"email": "b@x.com"}, {"email": "z@x.com"}})...)
	spec := e.spec(marketo.ListRef{ID: oldList})
	spec.MaxRemoveFraction = 1
	e.setModel(emails("a@x.com", "b@x.com")...)
	e.run(spec, listsync.RunOptions{})
	e.requireConverged(spec.Name, oldList, "a@x.com", "b@x.com")

	spec.List = marketo.ListRef{Name: "New"}
	run := e.run(spec, listsync.RunOptions{})
	require.True(t, run.FullResync)
	require.Equal(t, newList, run.ListID)
	require.EqualValues(t, 1, run.AddsConfirmed, "only a is missing from the new list")
	require.EqualValues(t, 1, run.RemovesConfirmed, "z is not in the model")
	e.requireConverged(spec.Name, newList, "a@x.com", "b@x.com")
	require.Equal(t, []string{"a@x.com", "b@x.com"}, e.listEmails(oldList), "the old list is left as it was")
}

func TestPlanIsReadOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	list := e.em.CreateStaticList("L", e.em.CreateFolder("F"))
	spec := e.spec(marketo.ListRef{ID: list})
	spec.Fields = map[string]string{"firstName": "first_name"}
	e.setModel(emails("a@x.com", "b@x.com", "c@x.com")...)
	e.run(spec, listsync.RunOptions{})
	rows := emails("b@x.com", "c@x.com", "d@x.com", "bad")
	rows[0].firstName = "changed"
	e.setModel(rows...)

	before := e.em.Stats().CallsTotal
	p, err := e.engine.Plan(e.ctx, spec)
	require.NoError(t, err)
	require.Equal(t, before, e.em.Stats().CallsTotal, "a plan makes no API call")
	require.True(t, p.Bound)
	require.Equal(t, list, p.Binding.ListID)
	require.EqualValues(t, 4, p.RowsRead)
	require.EqualValues(t, 1, p.Invalid)
	require.EqualValues(t, 3, p.Members)
	require.EqualValues(t, 1, p.Adds)
	require.EqualValues(t, 1, p.Updates)
	require.EqualValues(t, 1, p.Removes)
	require.Equal(t, []string{"d@x.com"}, p.AddSamples)
	require.Equal(t, []string{"b@x.com"}, p.UpdateSamples)
	require.Equal(t, []string{"a@x.com"}, p.RemoveSamples)
	require.Nil(t, p.Guard)
	runs, err := e.store.ListRuns(e.ctx, spec.Name, 0)
	require.NoError(t, err)
	require.Len(t, runs, 1, "a plan records no run")
	e.requireConverged(spec.Name, list, "a@x.com", "b@x.com", "c@x.com")
}

func TestModelErrorsCostNoAPICalls(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	list := e.em.CreateStaticList("L", e.em.CreateFolder("F"))
	spec := e.spec(marketo.ListRef{ID: list})
	spec.SQL = "SELECT email AS mail, first_name FROM people"
	_, err := e.engine.Run(e.ctx, spec, listsync.RunOptions{})
	require.ErrorContains(t, err, `model models/trial_users.sql returned no column "email"; it returned: "mail", "first_name"`)

	spec = e.spec(marketo.ListRef{ID: list})
	spec.Fields = map[string]string{"lastName": "last_name"}
	run, err := e.engine.Run(e.ctx, spec, listsync.RunOptions{})
	require.ErrorContains(t, err, `finding the column of Marketo field "lastName"`)
	require.Equal(t, state.RunFailed, run.Status)
	require.Zero(t, run.APICalls)
	require.Zero(t, e.em.Stats().CallsTotal)

	spec.Fields = nil
	spec.SQL = "SELECT email FROM no_such_table"
	_, err = e.engine.Run(e.ctx, spec, listsync.RunOptions{})
	require.ErrorContains(t, err, "no_such_table")
	require.Zero(t, e.em.Stats().CallsTotal)
}

func TestConcurrentRunsOfOneSyncAreRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	list := e.em.CreateStaticList("L", e.em.CreateFolder("F"))
	spec := e.spec(marketo.ListRef{ID: list})
	unlock, err := e.store.Lock(e.ctx, spec.Name)
	require.NoError(t, err)
	_, err = e.engine.Run(e.ctx, spec, listsync.RunOptions{})
	require.ErrorIs(t, err, state.ErrLocked)
	require.NoError(t, unlock.Unlock(e.ctx))
	e.run(spec, listsync.RunOptions{})
}

func TestDailyQuotaEndsTheRunWithWhatIsLeft(t *testing.T) {
	t.Parallel()
	emClock := &clock{t: time.Now()}
	e := newEnv(t, envOptions{
		emulator: emulator.Config{DailyQuota: 4, Now: emClock.Now},
		engine:   func(c *listsync.EngineConfig) { c.ChunkSize = 300 },
	})
	list := e.em.CreateStaticList("L", e.em.CreateFolder("F"))
	spec := e.spec(marketo.ListRef{ID: list})
	all := seq("q", 900)
	e.setModel(emails(all...)...)
	// Resolving the list, reading its (empty) membership on this first
	// run, then createOrUpdate and add-to-list for the first chunk of 300:
	// the quota runs out at the second chunk.
	run, err := e.engine.Run(e.ctx, spec, listsync.RunOptions{})
	require.ErrorIs(t, err, marketo.ErrDailyQuota)
	require.ErrorContains(t, err, "left for the next run: 600 adds")
	require.Equal(t, state.RunFailed, run.Status)
	require.EqualValues(t, 300, run.AddsConfirmed)
	require.Len(t, e.confirmed(spec.Name), 300)
	require.Equal(t, e.confirmed(spec.Name), e.listEmails(list), "the ledger holds exactly what Marketo confirmed")

	// The next Marketo day: the run resumes where the last one stopped.
	emClock.Advance(24 * time.Hour)
	quotaDay := func() { e.em.ResetDailyQuota() }
	quotaDay()
	// The list is the bound one: no call resolves it, so the day's 4
	// calls cover both chunks left.
	run = e.run(spec, listsync.RunOptions{})
	require.EqualValues(t, 600, run.AddsConfirmed)
	e.requireConverged(spec.Name, list, all...)
}

func TestDailyQuotaSpentBeforeThePushSaysEverythingIsLeft(t *testing.T) {
	t.Parallel()
	// One call a day: resolving the list spends it, so the first run's
	// resync of the list's membership meets 607 before anything is sent.
	e := newEnv(t, envOptions{emulator: emulator.Config{DailyQuota: 1}})
	list := e.em.CreateStaticList("L", e.em.CreateFolder("F"))
	spec := e.spec(marketo.ListRef{ID: list})
	e.setModel(emails(seq("z", 10)...)...)
	run, err := e.engine.Run(e.ctx, spec, listsync.RunOptions{})
	require.ErrorIs(t, err, marketo.ErrDailyQuota)
	require.ErrorContains(t, err, "left for the next run: the whole change")
	require.Contains(t, run.Error, "left for the next run")
	require.Equal(t, state.RunFailed, run.Status)
	require.Empty(t, e.confirmed(spec.Name))
	require.Empty(t, e.listEmails(list))
}

func TestSpecValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, tc := range []struct {
		name string
		mod  func(*listsync.Spec)
		want string
	}{
		{"no list", func(s *listsync.Spec) { s.List = marketo.ListRef{} }, "neither a list id nor a list name"},
		{"both", func(s *listsync.Spec) { s.List = marketo.ListRef{ID: 1, Name: "x"} }, "both a list id and a list name"},
		{"mode", func(s *listsync.Spec) { s.Mode = "sometimes" }, `mode "sometimes"`},
		{"fraction", func(s *listsync.Spec) { s.MaxRemoveFraction = 2 }, "max_remove_fraction 2"},
		{"lookup mapped", func(s *listsync.Spec) { s.Fields = map[string]string{"email": "x"} }, "is the lookup field"},
		{"no sql", func(s *listsync.Spec) { s.SQL = " " }, "is empty"},
	} {
		spec := e.spec(marketo.ListRef{ID: 1})
		tc.mod(&spec)
		_, err := e.engine.Run(e.ctx, spec, listsync.RunOptions{})
		require.ErrorContains(t, err, tc.want, tc.name)
		_, err = e.engine.Plan(e.ctx, spec)
		require.ErrorContains(t, err, tc.want, tc.name)
	}
	require.Zero(t, e.em.Stats().CallsTotal)
	_, err := listsync.NewEngine(listsync.EngineConfig{})
	require.Error(t, err)
	require.True(t, errors.Is(err, err))
}

func TestManySyncsRunAtOnce(t *testing.T) {
	t.Parallel()
	for _, pgState := range []bool{false, true} {
		t.Run(fmt.Sprintf("postgres_state=%v", pgState), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{postgresState: pgState})
			folder := e.em.CreateFolder("F")
			e.setModel(emails(seq("many", 50)...)...)
			const n = 8 // more than either store's pool holds connections
			lists := make([]int64, n)
			for i := range lists {
				lists[i] = e.em.CreateStaticList(fmt.Sprintf("L%d", i), folder)
			}
			// Each sync also has a reject, so that its diff reads both
			// members and rejects.
			for i := range n {
				require.NoError(t, e.store.ApplyBatch(e.ctx, fmt.Sprintf("s%d", i), state.Batch{At: e.clock.Now(),
					Rejected: []state.Rejection{{Key: "gone@x.com", Op: state.OpAdd, Code: "1", Reason: "r"}}}))
			}
			errs := make(chan error, n)
			for i := range n {
				go func() {
					spec := e.spec(marketo.ListRef{ID: lists[i]})
					spec.Name = fmt.Sprintf("s%d", i)
					_, err := e.engine.Run(e.ctx, spec, listsync.RunOptions{})
					errs <- err
				}()
			}
			for range n {
				require.NoError(t, <-errs)
			}
			for i := range n {
				e.requireConverged(fmt.Sprintf("s%d", i), lists[i], seq("many", 50)...)
				rejects, err := e.store.ListRejects(e.ctx, fmt.Sprintf("s%d", i), 0)
				require.NoError(t, err)
				require.Empty(t, rejects, "the stale reject is forgotten")
			}
		})
	}
}

func TestCanceledMidPushCommitsWhatMarketoConfirmed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{
		emulator: emulator.Config{ImportRowsPerSec: 4000},
		engine:   func(c *listsync.EngineConfig) { c.ChunkSize = 500 },
	})
	list := e.em.CreateStaticList("L", e.em.CreateFolder("F"))
	spec := e.spec(marketo.ListRef{ID: list})
	all := seq("c", 3000)
	e.setModel(emails(all...)...)

	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	go func() {
		for ctx.Err() == nil && len(e.em.ListMemberIDs(list)) < 1000 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel() // a shutdown in the middle of the push
	}()
	run, err := e.engine.Run(ctx, spec, listsync.RunOptions{})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, state.RunCanceled, run.Status)
	require.Less(t, run.AddsConfirmed, int64(len(all)))
	ledger := e.confirmed(spec.Name)
	require.Len(t, ledger, int(run.AddsConfirmed), "the run record counts what the ledger holds")
	require.LessOrEqual(t, len(e.ledger(spec.Name))-len(ledger), 500,
		"only the chunk in flight is pending: the cancel may have cut its push short")
	e.requireOnList(list, ledger)
	runs, err := e.store.ListRuns(e.ctx, spec.Name, 1)
	require.NoError(t, err)
	require.Equal(t, state.RunCanceled, runs[0].Status, "the canceled run is recorded despite the canceled context")

	e.run(spec, listsync.RunOptions{})
	e.requireConverged(spec.Name, list, all...)
}

// leaseStore is a real state store that hands the test each lease its
// Lock takes, so that the test can mark one lost as a backend does when its
// lock's connection dies (the backends' own tests cover that detection).
type leaseStore struct {
	state.Store
	leases chan *state.Lease
}

func (s *leaseStore) Lock(ctx context.Context, name string) (*state.Lease, error) {
	l, err := s.Store.Lock(ctx, name)
	if err == nil {
		s.leases <- l
	}
	return l, err
}

// TestLostLockStopsTheRunMidPush: a run whose lock is lost in the middle of
// its push stops as a shutdown does, since another worker may now run the
// sync: the chunk in flight is finished and committed, nothing more is
// sent, and the run is recorded failed with the reason. The next run
// converges.
func TestLostLockStopsTheRunMidPush(t *testing.T) {
	t.Parallel()
	leases := make(chan *state.Lease, 4)
	e := newEnv(t, envOptions{
		emulator: emulator.Config{ImportRowsPerSec: 4000},
		engine: func(c *listsync.EngineConfig) {
			c.ChunkSize = 500
			c.Store = &leaseStore{Store: c.Store, leases: leases}
		},
	})
	list := e.em.CreateStaticList("L", e.em.CreateFolder("F"))
	spec := e.spec(marketo.ListRef{ID: list})
	all := seq("l", 3000)
	e.setModel(emails(all...)...)

	go func() {
		lease := <-leases
		for len(e.em.ListMemberIDs(list)) < 1000 {
			select {
			case <-lease.Lost():
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
		lease.SetLost(fmt.Errorf("%w %q: the connection holding it failed (test)", state.ErrLockLost, spec.Name))
	}()
	run, err := e.engine.Run(e.ctx, spec, listsync.RunOptions{})
	require.ErrorIs(t, err, state.ErrLockLost)
	require.Equal(t, state.RunFailed, run.Status)
	require.Contains(t, run.Error, "lost the sync's lock")
	require.Less(t, run.AddsConfirmed, int64(len(all)), "the push stopped")
	ledger := e.confirmed(spec.Name)
	require.Len(t, ledger, int(run.AddsConfirmed), "the run record counts what the ledger holds")
	e.requireOnList(list, ledger)
	runs, err := e.store.ListRuns(e.ctx, spec.Name, 1)
	require.NoError(t, err)
	require.Equal(t, state.RunFailed, runs[0].Status)
	require.Contains(t, runs[0].Error, "lost the sync's lock")

	go func() { <-leases }() // the next run's lease, left held
	e.run(spec, listsync.RunOptions{})
	e.requireConverged(spec.Name, list, all...)
}

func TestInterruptedResyncIsRedone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	list := e.em.CreateStaticList("L", e.em.CreateFolder("F"))
	e.em.AddListMembers(list, e.em.UpsertLeads([]map[string]string{{"email": "stray@x.com"}, {"email": "a@x.com"}})...)
	spec := e.spec(marketo.ListRef{ID: list})
	spec.MaxRemoveFraction = 1
	e.setModel(emails("a@x.com", "b@x.com")...)

	// The first run binds the list, then dies before its resync commits
	// (here: the model is read, the list bound, and Marketo's extract
	// fails). The empty ledger must not be taken for an empty list.
	_, err := e.store.BindList(e.ctx, spec.Name, "id", list)
	require.NoError(t, err)
	run := e.run(spec, listsync.RunOptions{})
	require.True(t, run.FullResync, "a binding whose resync never completed is resynced")
	require.EqualValues(t, 1, run.RemovesConfirmed, "so the stray is found and removed")
	e.requireConverged(spec.Name, list, "a@x.com", "b@x.com")
	b, _, err := e.store.Binding(e.ctx, spec.Name)
	require.NoError(t, err)
	require.False(t, b.NeedsResync)
	run = e.run(spec, listsync.RunOptions{})
	require.False(t, run.FullResync)
}

// TestEmailChangedInMarketoKeepsThePersonOnTheList: a member's email is
// changed in Marketo (a CRM sync, a form fill) and the model follows it. The
// run then removes the old key and adds the new one, which Marketo finds as
// the same lead. Removes go first, so the add has the last word and the
// person stays on the list; the other way round, a removal by the lead id
// the ledger holds took the lead off again while the ledger said it was a
// member.
func TestEmailChangedInMarketoKeepsThePersonOnTheList(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// first is the members of the first run; joining, the people the
		// second run adds besides the new address.
		first, joining int
	}{
		{name: "ids known, REST add", first: 3},
		{name: "ids known, bulk import", first: 3, joining: 1000}, // over BulkAddMinRows
		{name: "ids unknown, REST add", first: 1200, joining: 0},  // the first run imported: no lead ids
		{name: "ids unknown, bulk import", first: 1200, joining: 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{})
			list := e.em.CreateStaticList("L", e.em.CreateFolder("F"))
			keys := make([]string, tc.first)
			for i := range keys {
				keys[i] = fmt.Sprintf("p%d@x.com", i)
			}
			e.setModel(emails(keys...)...)
			spec := e.spec(marketo.ListRef{ID: list})
			run := e.run(spec, listsync.RunOptions{})
			require.EqualValues(t, tc.first, run.AddsConfirmed)
			e.requireConverged(spec.Name, list, keys...)

			// In Marketo, p0's lead gets a new address; the model follows,
			// and others join.
			lead := e.em.LeadsByEmail("p0@x.com")
			require.Len(t, lead, 1)
			e.em.UpsertLeads([]map[string]string{{"id": fmt.Sprint(lead[0].ID), "email": "p0.new@x.com"}})
			keys[0] = "p0.new@x.com"
			for i := range tc.joining {
				keys = append(keys, fmt.Sprintf("q%d@x.com", i))
			}
			e.setModel(emails(keys...)...)

			run = e.run(spec, listsync.RunOptions{AllowRemovals: true})
			require.EqualValues(t, 1, run.RemovesConfirmed)
			require.EqualValues(t, 1+tc.joining, run.AddsConfirmed)
			require.Contains(t, e.em.ListMemberIDs(list), lead[0].ID, "the person whose email changed is still on the list")
			e.requireConverged(spec.Name, list, keys...)
		})
	}
}
