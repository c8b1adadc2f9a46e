package emulator

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// statuses returns "id:status[:code]" for each membership result.
func statuses(t *testing.T, r apiResp) []string {
	t.Helper()
	var out []string
	for _, m := range r.results(t) {
		s := fmt.Sprintf("%d:%v", int64(m["id"].(float64)), m["status"])
		if reasons, ok := m["reasons"].([]any); ok {
			s += ":" + reasons[0].(map[string]any)["code"].(string)
		}
		out = append(out, s)
	}
	return out
}

func TestMembershipAddRemoveIsMember(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	list := v.em.CreateStaticList("Trial users", v.em.CreateFolder("Audiences"))
	ids := v.em.UpsertLeads([]map[string]string{{"email": "a@x.com"}, {"email": "b@x.com"}, {"email": "c@x.com"}})
	a, b, c := itoa(ids[0]), itoa(ids[1]), itoa(ids[2])
	path := "/rest/v1/lists/" + itoa(list) + "/leads.json"

	// Repeated ids.
	r := ok(t, v.do(request{method: "POST", path: path, query: url.Values{"id": {a, "999999"}}}))
	require.Equal(t, []string{a + ":added", "999999:skipped:1004"}, statuses(t, r))
	// Comma-joined ids; re-adding a member answers added.
	r = ok(t, v.do(request{method: "POST", path: path, query: url.Values{"id": {a + "," + b}}}))
	require.Equal(t, []string{a + ":added", b + ":added"}, statuses(t, r))
	// JSON input body.
	r = ok(t, v.do(request{method: "POST", path: path, json: map[string]any{"input": []map[string]any{{"id": ids[2]}}}}))
	require.Equal(t, []string{c + ":added"}, statuses(t, r))

	members := v.em.ListMembers(list)
	require.Len(t, members, 3)
	require.Equal(t, ids[0], members[0].ID)
	require.Equal(t, "a@x.com", members[0].Email)
	require.Equal(t, map[string]string{"email": "a@x.com"}, members[0].Fields)

	r = ok(t, v.get("/rest/v1/lists/"+itoa(list)+"/leads/ismember.json", url.Values{"id": {a + ",999999"}}))
	require.Equal(t, []string{a + ":memberof", "999999:skipped:1004"}, statuses(t, r))

	// Remove: removed, not in list (1015), no such lead (1004).
	r = ok(t, v.do(request{method: "DELETE", path: path, query: url.Values{"id": {a + "," + b}}}))
	require.Equal(t, []string{a + ":removed", b + ":removed"}, statuses(t, r))
	r = ok(t, v.do(request{method: "DELETE", path: path, json: map[string]any{"input": []map[string]any{{"id": a}, {"id": 999999}}}}))
	require.Equal(t, []string{a + ":skipped:1015", "999999:skipped:1004"}, statuses(t, r))
	r = ok(t, v.get("/rest/v1/lists/"+itoa(list)+"/leads/ismember.json", url.Values{"id": {a, c}}))
	require.Equal(t, []string{a + ":notmemberof", c + ":memberof"}, statuses(t, r))
	require.Len(t, v.em.ListMembers(list), 1)
}

func TestMembershipErrors(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	list := v.em.CreateStaticList("L", v.em.CreateFolder("F"))
	path := "/rest/v1/lists/" + itoa(list) + "/leads.json"
	many := make([]string, 301)
	for i := range many {
		many[i] = itoa(int64(i + 1))
	}
	tests := []struct {
		name string
		rq   request
		code string
	}{
		{"no ids", request{method: "POST", path: path}, "701"},
		{"301 ids", request{method: "POST", path: path, form: url.Values{"id": many}}, "1003"},
		{"bad id", request{method: "DELETE", path: path, query: url.Values{"id": {"1,x"}}}, "1003"},
		{"bad JSON", request{method: "POST", path: path, body: []byte("{"), ctype: "application/json"}, "609"},
		{"unknown list", request{method: "POST", path: "/rest/v1/lists/5/leads.json", query: url.Values{"id": {"1"}}}, "1013"},
		{"unknown list get", request{path: "/rest/v1/lists/5.json"}, "1013"},
		{"batchSize over 300", request{path: path, query: url.Values{"batchSize": {"301"}}}, "1003"},
		{"bad token", request{path: path, query: url.Values{"nextPageToken": {"garbage"}}}, "1003"},
		{"unknown field", request{path: path, query: url.Values{"fields": {"email,nope"}}}, "1006"},
		{"wrong method", request{method: "PUT", path: path}, "605"},
		{"unknown path", request{path: "/rest/v1/nothing.json"}, "610"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failed(t, v.do(tt.rq), tt.code)
		})
	}
}

func TestMembersPaging(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{CallsPer20s: -1})
	list := v.em.CreateStaticList("Big", v.em.CreateFolder("F"))
	ids := v.em.GenerateLeads(1000)
	// Add out of order and remove some, to exercise pending and stale IDs.
	v.em.AddListMembers(list, ids[500:]...)
	v.em.AddListMembers(list, ids[:500]...)
	v.em.RemoveListMembers(list, ids[10:20]...)
	want := append(append([]int64(nil), ids[:10]...), ids[20:]...)

	var got []int64
	token := ""
	pages := 0
	for {
		q := url.Values{"batchSize": {"300"}, "fields": {"email,firstName"}}
		if token != "" {
			q.Set("nextPageToken", token)
		}
		r := ok(t, v.get("/rest/v1/lists/"+itoa(list)+"/leads.json", q))
		pages++
		for _, m := range r.results(t) {
			got = append(got, int64(m["id"].(float64)))
			require.Equal(t, "Lead", m["firstName"])
		}
		if r.NextPageToken == "" {
			require.False(t, r.MoreResult)
			break
		}
		require.True(t, r.MoreResult)
		token = r.NextPageToken
	}
	require.Equal(t, want, got)
	require.Equal(t, 4, pages)

	// Changes between pages are seen by later pages.
	r := ok(t, v.get("/rest/v1/list/"+itoa(list)+"/leads.json", url.Values{"batchSize": {"2"}}))
	require.Len(t, r.results(t), 2)
	v.em.RemoveListMembers(list, want[2])
	r = ok(t, v.get("/rest/v1/lists/"+itoa(list)+"/leads.json", url.Values{"batchSize": {"1"}, "nextPageToken": {r.NextPageToken}}))
	require.EqualValues(t, want[3], r.results(t)[0]["id"])
}

func TestMemberSetRandomised(t *testing.T) {
	t.Parallel()
	m := newMemberSet()
	ref := map[int64]bool{}
	// A deterministic walk of adds and removes, checked against a map.
	x := uint64(1)
	for i := range 20000 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		id := int64(x%500) + 1
		if x%3 == 0 {
			require.Equal(t, ref[id], m.remove(id))
			delete(ref, id)
		} else {
			require.Equal(t, !ref[id], m.add(id))
			ref[id] = true
		}
		if i%97 == 0 {
			all := m.all()
			require.Len(t, all, len(ref))
			for j, id := range all {
				require.True(t, ref[id])
				if j > 0 {
					require.Less(t, all[j-1], id)
				}
			}
		}
	}
}

func TestLeadDBLists(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	f := v.em.CreateFolder("F")
	prog := v.em.CreateProgram("Program A")
	l1 := v.em.CreateStaticList("One", f)
	l2 := v.em.CreateStaticList("Two", f)
	l3 := v.em.CreateStaticList("Three", prog)

	r := ok(t, v.get("/rest/v1/lists/"+itoa(l3)+".json", nil))
	golden(t, "leaddb_list.json", r.Raw)

	r = ok(t, v.get("/rest/v1/lists.json", nil))
	require.Len(t, r.results(t), 3)
	r = ok(t, v.get("/rest/v1/lists.json", url.Values{"name": {"One,Three"}}))
	require.Len(t, r.results(t), 2)
	r = ok(t, v.get("/rest/v1/lists.json", url.Values{"id": {itoa(l2)}, "workspaceName": {"Default"}}))
	require.EqualValues(t, l2, r.results(t)[0]["id"])
	r = ok(t, v.get("/rest/v1/lists.json", url.Values{"programName": {"Program A"}}))
	require.EqualValues(t, l3, r.results(t)[0]["id"])

	r = ok(t, v.get("/rest/v1/lists.json", url.Values{"batchSize": {"2"}}))
	require.Len(t, r.results(t), 2)
	require.True(t, r.MoreResult)
	r = ok(t, v.get("/rest/v1/lists.json", url.Values{"batchSize": {"2"}, "nextPageToken": {r.NextPageToken}}))
	require.Len(t, r.results(t), 1)
	require.EqualValues(t, l3, r.results(t)[0]["id"])
	require.Empty(t, r.NextPageToken)
	_ = l1
}

func TestMembershipGolden(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	list := v.em.CreateStaticList("L", v.em.CreateFolder("F"))
	ids := v.em.UpsertLeads([]map[string]string{
		{"email": "hanna@example.com", "firstName": "Hanna", "lastName": "Crawford"},
		{"email": "b@example.com"},
	})
	path := "/rest/v1/lists/" + itoa(list) + "/leads.json"
	r := v.do(request{method: "POST", path: path, query: url.Values{"id": {itoa(ids[0]), "999999"}}})
	golden(t, "membership_add.json", r.Raw)
	r = v.do(request{method: "DELETE", path: path, query: url.Values{"id": {itoa(ids[0]) + "," + itoa(ids[1]) + ",999999"}}})
	golden(t, "membership_remove.json", r.Raw)
	v.em.AddListMembers(list, ids...)
	r = v.get(path, url.Values{"batchSize": {"1"}})
	golden(t, "membership_get.json", r.Raw)
	r = v.get(strings.TrimSuffix(path, ".json")+"/ismember.json", url.Values{"id": {itoa(ids[0])}})
	golden(t, "membership_ismember.json", r.Raw)
	r = v.do(request{method: "POST", path: path})
	golden(t, "membership_no_ids.json", r.Raw)
	require.Equal(t, http.StatusOK, r.Status)
}
