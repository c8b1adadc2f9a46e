package marketo_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/marketo/emulator"
)

// sameEmail creates n leads that all hold email.
func sameEmail(em *emulator.Emulator, email string, n int) []int64 {
	blank := make([]map[string]string, n)
	for i := range blank {
		blank[i] = map[string]string{"firstName": "Twin"}
	}
	ids := em.UpsertLeads(blank)
	set := make([]map[string]string, n)
	for i, id := range ids {
		set[i] = map[string]string{"id": strconv.FormatInt(id, 10), "email": email}
	}
	em.UpsertLeads(set)
	return ids
}

func seedList(t testing.TB, em *emulator.Emulator, keys []string) (int64, []int64) {
	t.Helper()
	list := em.CreateStaticList("L-"+keys[0], em.CreateFolder("F-"+keys[0]))
	recs := make([]map[string]string, len(keys))
	for i, k := range keys {
		recs[i] = map[string]string{"email": k}
	}
	ids := em.UpsertLeads(recs)
	em.AddListMembers(list, ids...)
	return list, ids
}

// TestRemoveLookup: members known by id and by key; a key held by several
// leads removes all of them; "not in list", an unknown lead id and a key no
// lead has all count as confirmed; calls are packed 300 ids a DELETE.
func TestRemoveLookup(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	keys := emails("r", 1000)
	list, ids := seedList(t, b.em, keys)
	dup := sameEmail(b.em, "dup@example.com", 3)
	b.em.AddListMembers(list, dup...)
	outsider := b.em.UpsertLeads([]map[string]string{{"email": "outsider@example.com"}})[0]

	var members []marketo.Member
	for i := range 100 {
		members = append(members, marketo.Member{Key: keys[i], LeadID: ids[i]})
	}
	for i := 100; i < 500; i++ {
		k := keys[i]
		if i%2 == 0 {
			k = strings.ToUpper(k) // Marketo matches emails without regard to case
		}
		members = append(members, marketo.Member{Key: k})
	}
	members = append(members,
		marketo.Member{Key: "DUP@example.com"},
		marketo.Member{Key: "nobody@example.com"},
		marketo.Member{Key: "outsider@example.com"},
		marketo.Member{Key: "gone@example.com", LeadID: 99_999_999},
		marketo.Member{Key: keys[100]}, // the same person twice
	)
	var col collector
	var cc marketo.CallCounter
	err := b.c.RemoveFromList(marketo.WithCallCounter(t.Context(), &cc), marketo.RemoveParams{ListID: list, Members: members}, col.commit)
	require.NoError(t, err)

	require.Len(t, col.outs, len(members))
	for _, o := range col.outs {
		require.Equal(t, marketo.Confirmed, o.Status, "%+v", o)
	}
	got := col.byKey()
	require.Zero(t, got["nobody@example.com"].LeadID)
	require.Equal(t, outsider, got["outsider@example.com"].LeadID)
	require.Contains(t, dup, got["DUP@example.com"].LeadID)
	require.Equal(t, ids[101], got["r101@example.com"].LeadID)

	left := memberEmails(b.em, list)
	require.Len(t, left, 500)
	for _, k := range keys[500:] {
		if _, ok := left[k]; !ok {
			t.Fatalf("%s was removed", k)
		}
	}
	require.NotContains(t, left, "dup@example.com")

	// 402 lookups (300 + 102 values), 505 distinct ids (2 DELETEs).
	require.Equal(t, map[string]int64{"GET /rest/v1/leads.json": 2, "DELETE /rest/v1/lists/{id}/leads.json": 2}, cc.ByEndpoint())
}

// TestRemoveLookupLongURIAndPaging: 300 long emails pass the 8 KB URI limit,
// so the lookup goes as POST ?_method=GET; a key held by 350 leads pages
// through nextPageToken; a key held by more than 1,000 leads (1003) is split
// out and rejected with Marketo's reason while the others are removed.
func TestRemoveLookupLongURIAndPaging(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	keys := make([]string, 299)
	for i := range keys {
		keys[i] = strings.Repeat("long", 8) + strconv.Itoa(i) + "@example.com"
	}
	list, _ := seedList(t, b.em, keys)
	many := sameEmail(b.em, "many@example.com", 350)
	b.em.AddListMembers(list, many...)
	crowd := sameEmail(b.em, "crowd@example.com", 1001)
	b.em.AddListMembers(list, crowd[:5]...)

	members := []marketo.Member{{Key: "many@example.com"}, {Key: "crowd@example.com"}}
	for _, k := range keys {
		members = append(members, marketo.Member{Key: k})
	}
	var col collector
	err := b.c.RemoveFromList(t.Context(), marketo.RemoveParams{ListID: list, Members: members}, col.commit)
	require.NoError(t, err)

	got := col.byKey()
	require.Equal(t, marketo.Rejected, got["crowd@example.com"].Status)
	require.Equal(t, "1003", got["crowd@example.com"].Code)
	require.Contains(t, got["crowd@example.com"].Reason, "Too many results")
	for _, m := range members[:1] {
		require.Equal(t, marketo.Confirmed, got[m.Key].Status)
	}
	for _, k := range keys {
		require.Equal(t, marketo.Confirmed, got[k].Status, k)
	}
	left := b.em.ListMemberIDs(list)
	require.ElementsMatch(t, crowd[:5], left, "only the crowd's members stay")

	var posts, pages int
	for _, o := range b.observed() {
		if o.path == "/rest/v1/leads.json" && o.method == http.MethodPost && o.query == "_method=GET" {
			posts++
		}
		if o.path == "/rest/v1/leads.json" && strings.Contains(o.query, "nextPageToken") {
			pages++
		}
	}
	require.Positive(t, posts, "a lookup past 8 KB goes as POST ?_method=GET")
	require.Zero(t, b.em.Stats().Rejected["414"])
	require.Positive(t, pages, "the 350 matches of one key come in two pages")
}

// TestRemoveByExtract: a large set of unknown ids is learnt from one bulk
// extract of the list instead of a lookup per 300.
func TestRemoveByExtract(t *testing.T) {
	t.Parallel()
	b := setup(t, options{client: func(c *marketo.Config) { c.ExtractMinRows = 100 }})
	keys := emails("x", 1500)
	list, _ := seedList(t, b.em, keys)
	var members []marketo.Member
	for _, k := range keys[:900] {
		members = append(members, marketo.Member{Key: k})
	}
	members = append(members, marketo.Member{Key: "nobody@example.com"})
	var col collector
	var cc marketo.CallCounter
	err := b.c.RemoveFromList(marketo.WithCallCounter(t.Context(), &cc), marketo.RemoveParams{ListID: list, Members: members}, col.commit)
	require.NoError(t, err)
	require.Len(t, col.outs, 901)
	for _, o := range col.outs {
		require.Equal(t, marketo.Confirmed, o.Status)
	}
	require.Len(t, memberEmails(b.em, list), 600)
	ep := cc.ByEndpoint()
	require.Zero(t, ep["GET /rest/v1/leads.json"])
	require.Equal(t, int64(3), ep["DELETE /rest/v1/lists/{id}/leads.json"])
	require.Equal(t, int64(1), ep["POST /bulk/v1/leads/export/create.json"])
	require.Equal(t, int64(1), ep["GET /bulk/v1/leads/export/{id}/file.json"])
}

func TestRemoveListDeleted(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	list, ids := seedList(t, b.em, emails("d", 3))
	b.em.DeleteStaticList(list)
	var col collector
	err := b.c.RemoveFromList(t.Context(), marketo.RemoveParams{ListID: list, Members: []marketo.Member{{Key: "d0@example.com", LeadID: ids[0]}}}, col.commit)
	require.ErrorIs(t, err, marketo.ErrListNotFound)
	require.Empty(t, col.outs)
}

// TestRemoveNothingFound: when no key matches a lead, no DELETE is sent.
func TestRemoveNothingFound(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	list, _ := seedList(t, b.em, emails("n", 3))
	var col collector
	var cc marketo.CallCounter
	err := b.c.RemoveFromList(marketo.WithCallCounter(t.Context(), &cc), marketo.RemoveParams{ListID: list, Members: []marketo.Member{{Key: "ghost@example.com"}}}, col.commit)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"GET /rest/v1/leads.json": 1}, cc.ByEndpoint())
	require.Equal(t, []marketo.Outcome{{Key: "ghost@example.com", Status: marketo.Confirmed}}, col.outs)
}

func TestListMembers(t *testing.T) {
	t.Parallel()
	for _, extract := range []bool{false, true} {
		t.Run("extract="+strconv.FormatBool(extract), func(t *testing.T) {
			t.Parallel()
			b := setup(t, options{})
			keys := emails("m", 1000)
			list, _ := seedList(t, b.em, keys)
			noEmail := b.em.UpsertLeads([]map[string]string{{"firstName": "NoEmail"}})[0]
			b.em.AddListMembers(list, noEmail)
			hint := 0
			if extract {
				hint = 1_000_000
			}
			var cc marketo.CallCounter
			got := map[int64]string{}
			pages := 0
			err := b.c.ListMembers(marketo.WithCallCounter(t.Context(), &cc), marketo.MembersParams{ListID: list, SizeHint: hint},
				func(_ context.Context, page []marketo.Member) error {
					pages++
					if !extract {
						require.LessOrEqual(t, len(page), 300)
					}
					for _, m := range page {
						got[m.LeadID] = m.Key
					}
					return nil
				})
			require.NoError(t, err)
			want := map[int64]string{}
			for _, l := range b.em.ListMembers(list) {
				want[l.ID] = l.Email
			}
			require.Equal(t, want, got)
			require.Equal(t, "", got[noEmail])
			ep := cc.ByEndpoint()
			if extract {
				require.Zero(t, ep["GET /rest/v1/lists/{id}/leads.json"])
				require.Equal(t, int64(1), ep["GET /bulk/v1/leads/export/{id}/file.json"])
			} else {
				require.Equal(t, int64(4), ep["GET /rest/v1/lists/{id}/leads.json"])
				require.Equal(t, 4, pages)
			}

			b.em.DeleteStaticList(list)
			err = b.c.ListMembers(t.Context(), marketo.MembersParams{ListID: list, SizeHint: hint}, func(context.Context, []marketo.Member) error { return nil })
			require.ErrorIs(t, err, marketo.ErrListNotFound)
		})
	}
}

// TestRemoveCommitErrorStops: an error from commit stops the removal, is
// returned as is, and no DELETE starts after it.
func TestRemoveCommitErrorStops(t *testing.T) {
	t.Parallel()
	b := setup(t, options{client: func(c *marketo.Config) { c.MaxConcurrency = 1 }})
	keys := emails("s", 1500)
	list, ids := seedList(t, b.em, keys)
	members := make([]marketo.Member, len(keys))
	for i, k := range keys {
		members[i] = marketo.Member{Key: k, LeadID: ids[i]}
	}
	boom := errors.New("state store down")
	calls := 0
	err := b.c.RemoveFromList(t.Context(), marketo.RemoveParams{ListID: list, Members: members},
		func(context.Context, []marketo.Outcome) error { calls++; return boom })
	require.Same(t, boom, err)
	require.Equal(t, 1, calls)
	require.Len(t, b.em.ListMemberIDs(list), 1200)
}
