package emulator

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestGoAPI(t *testing.T) {
	t.Parallel()
	em := New(Config{})
	defer em.Close()
	folder := em.CreateFolder("Audiences")
	list := em.CreateStaticList("Trial users", folder)
	require.PanicsWithValue(t, `emulator: creating static list "Trial users": static list with the same name already exists`,
		func() { em.CreateStaticList("Trial users", folder) })
	require.Panics(t, func() { em.CreateStaticList("Other", 424242) })

	ids := em.UpsertLeads([]map[string]string{
		{"email": "a@x.com", "FIRSTNAME": "A", "loyaltyTier": "gold"},
		{"email": "A@X.com", "lastName": "Same lead"},
		{"firstName": "No email"},
	})
	require.Equal(t, ids[0], ids[1], "upserts by email, ignoring case")
	require.NotEqual(t, ids[0], ids[2])
	lead := em.Leads(ids[0])[0]
	require.Equal(t, map[string]string{"email": "A@X.com", "firstName": "A", "lastName": "Same lead", "loyaltyTier": "gold"}, lead.Fields)
	// Updating by id; an empty value clears a field.
	em.UpsertLeads([]map[string]string{{"id": itoa(ids[0]), "loyaltyTier": ""}})
	require.NotContains(t, em.Leads(ids[0])[0].Fields, "loyaltyTier")
	require.Panics(t, func() { em.UpsertLeads([]map[string]string{{"id": "5"}}) })
	require.Empty(t, em.Leads(5))

	em.AddListMembers(list, ids[2], ids[0])
	require.Equal(t, []int64{ids[0], ids[2]}, em.ListMemberIDs(list))
	require.Panics(t, func() { em.AddListMembers(list, 5) })
	require.Panics(t, func() { em.AddListMembers(77, ids[0]) })
	require.Panics(t, func() { em.RemoveListMembers(77, ids[0]) })
	em.RemoveListMembers(list, ids[0], 5)
	require.Equal(t, []int64{ids[2]}, em.ListMemberIDs(list))
	require.Nil(t, em.ListMemberIDs(77))
	require.Nil(t, em.ListMembers(77))
	require.Equal(t, []StaticList{{ID: list, Name: "Trial users", FolderID: folder, Members: 1}}, em.StaticLists())

	gen := em.GenerateLeads(3)
	require.Len(t, gen, 3)
	require.Equal(t, "lead"+itoa(gen[0])+"@example.com", em.Leads(gen[0])[0].Email)
	require.Equal(t, int64(5), em.Stats().Leads)
}

func TestRetiredTokensAreBounded(t *testing.T) {
	t.Parallel()
	em := New(Config{})
	now := time.Now()
	first, _ := em.tokenLocked(now)
	for range maxRetiredTokens {
		em.ExpireTokens()
		em.tokenLocked(now)
	}
	code, _ := em.checkTokenLocked(first, now)
	require.Equal(t, "602", code, "the oldest remembered token is still known")
	em.ExpireTokens()
	code, _ = em.checkTokenLocked(first, now)
	require.Equal(t, "601", code, "past the bound, the oldest is forgotten")
}
