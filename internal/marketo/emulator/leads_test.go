package emulator

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestGetLeadsByFilter(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{CustomFields: []string{"externalKey"}})
	ids := v.em.UpsertLeads([]map[string]string{
		{"email": "Abe@USA.gov", "firstName": "Abraham", "lastName": "Lincoln", "externalKey": "k1"},
		{"email": "b@x.com", "numberOfEmployees": "12", "unsubscribed": "true"},
	})
	r := ok(t, v.get("/rest/v1/leads.json", url.Values{"filterType": {"email"}, "filterValues": {"abe@usa.gov"}}))
	golden(t, "leads_by_email.json", r.Raw)

	// Repeated and comma-joined values, any case, typed values.
	r = ok(t, v.get("/rest/v1/leads.json", url.Values{
		"filterType": {"email"}, "filterValues": {"ABE@usa.gov,b@x.com", "nobody@x.com"},
		"fields": {"email,numberOfEmployees,unsubscribed"},
	}))
	res := r.results(t)
	require.Len(t, res, 2)
	require.EqualValues(t, 12, res[1]["numberOfEmployees"])
	require.Equal(t, true, res[1]["unsubscribed"])
	require.Nil(t, res[0]["numberOfEmployees"])

	r = ok(t, v.get("/rest/v1/leads.json", url.Values{"filterType": {"id"}, "filterValues": {itoa(ids[1]) + ",5"}}))
	require.Len(t, r.results(t), 1)
	r = ok(t, v.get("/rest/v1/leads.json", url.Values{"filterType": {"externalKey"}, "filterValues": {"K1"}}))
	require.EqualValues(t, ids[0], r.results(t)[0]["id"])

	// No match: success with an empty result.
	r = ok(t, v.get("/rest/v1/leads.json", url.Values{"filterType": {"email"}, "filterValues": {"none@x.com"}}))
	golden(t, "leads_none.json", r.Raw)

	// POST with _method=GET and a form body.
	r = ok(t, v.do(request{method: "POST", path: "/rest/v1/leads.json", query: url.Values{"_method": {"GET"}},
		form: url.Values{"filterType": {"email"}, "filterValues": {"b@x.com"}}}))
	require.EqualValues(t, ids[1], r.results(t)[0]["id"])

	many := make([]string, 301)
	for i := range many {
		many[i] = fmt.Sprintf("u%d@x.com", i)
	}
	for _, tt := range []struct {
		name string
		q    url.Values
		code string
	}{
		{"no filterType", url.Values{"filterValues": {"a"}}, "701"},
		{"no values", url.Values{"filterType": {"email"}}, "701"},
		{"unsupported field", url.Values{"filterType": {"firstName"}, "filterValues": {"A"}}, "1011"},
		{"unknown field", url.Values{"filterType": {"shoeSize"}, "filterValues": {"A"}}, "1006"},
		{"301 values", url.Values{"filterType": {"email"}, "filterValues": {strings.Join(many, ",")}}, "1003"},
	} {
		t.Run(tt.name, func(t *testing.T) { failed(t, v.get("/rest/v1/leads.json", tt.q), tt.code) })
	}
}

func TestGetLeadsPagingAndTooMany(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{CallsPer20s: -1})
	recs := make([]map[string]string, 1001)
	for i := range recs {
		recs[i] = map[string]string{"email": fmt.Sprintf("u%d@x.com", i), "leadSource": "web"}
	}
	v.em.UpsertLeads(recs)
	v.em.schema.lookup("leadSource") // standard, not searchable
	failed(t, v.get("/rest/v1/leads.json", url.Values{"filterType": {"leadSource"}, "filterValues": {"web"}}), "1011")

	// 1,001 duplicates of one email match too many.
	dups := make([]map[string]string, 0, 1001)
	for range 1001 {
		dups = append(dups, map[string]string{"email": "same@x.com"})
	}
	v.em.mu.Lock()
	for range dups {
		id := v.em.leads.create(v.clock.Now())
		v.em.leads.set(id, "email", "same@x.com")
	}
	v.em.mu.Unlock()
	failed(t, v.get("/rest/v1/leads.json", url.Values{"filterType": {"email"}, "filterValues": {"same@x.com"}}), "1003")

	// 300 values, paged 100 at a time.
	vals := make([]string, 300)
	for i := range vals {
		vals[i] = fmt.Sprintf("u%d@x.com", i)
	}
	seen := map[any]bool{}
	token := ""
	for page := 0; ; page++ {
		q := url.Values{"filterType": {"email"}, "filterValues": {strings.Join(vals, ",")}, "batchSize": {"100"}}
		if token != "" {
			q.Set("nextPageToken", token)
		}
		r := v.do(request{method: "POST", path: "/rest/v1/leads.json", query: url.Values{"_method": {"GET"}}, form: q})
		ok(t, r)
		for _, m := range r.results(t) {
			seen[m["id"]] = true
		}
		if token = r.NextPageToken; token == "" {
			require.Equal(t, 2, page)
			break
		}
	}
	require.Len(t, seen, 300)
}

func TestSyncLeads(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	existing := v.em.UpsertLeads([]map[string]string{{"email": "old@x.com", "firstName": "Old"}})[0]
	sync := func(body map[string]any) apiResp {
		return v.do(request{method: "POST", path: "/rest/v1/leads.json", json: body})
	}
	r := ok(t, sync(map[string]any{"action": "createOrUpdate", "lookupField": "email", "input": []map[string]any{
		{"email": "new@x.com", "firstName": "New", "numberOfEmployees": 5},
		{"email": "OLD@x.com", "firstName": "Updated"},
		{"email": "not-an-email", "firstName": "X"},
		{"firstName": "no key"},
		{"email": "c@x.com", "shoeSize": "42"},
		{"email": "d@x.com", "numberOfEmployees": "many"},
	}}))
	golden(t, "sync_leads.json", r.Raw)
	res := r.results(t)
	require.Equal(t, "created", res[0]["status"])
	require.EqualValues(t, existing, res[1]["id"])
	require.Equal(t, "updated", res[1]["status"])
	require.Equal(t, "Updated", v.em.Leads(existing)[0].Fields["firstName"])

	r = ok(t, sync(map[string]any{"action": "createOnly", "input": []map[string]any{{"email": "old@x.com"}, {"email": "e@x.com"}}}))
	require.Equal(t, "1005", r.results(t)[0]["reasons"].([]any)[0].(map[string]any)["code"])
	require.Equal(t, "created", r.results(t)[1]["status"])

	r = ok(t, sync(map[string]any{"action": "updateOnly", "input": []map[string]any{{"email": "ghost@x.com"}}}))
	require.Equal(t, "1004", r.results(t)[0]["reasons"].([]any)[0].(map[string]any)["code"])

	r = ok(t, sync(map[string]any{"action": "updateOnly", "lookupField": "id", "input": []map[string]any{{"id": existing, "lastName": "L"}}}))
	require.Equal(t, "updated", r.results(t)[0]["status"])
	require.Equal(t, "L", v.em.Leads(existing)[0].Fields["lastName"])

	// createDuplicate then createOrUpdate on the duplicated email: 1007.
	ok(t, sync(map[string]any{"action": "createDuplicate", "input": []map[string]any{{"email": "old@x.com"}}}))
	r = ok(t, sync(map[string]any{"input": []map[string]any{{"email": "old@x.com"}}}))
	require.Equal(t, "1007", r.results(t)[0]["reasons"].([]any)[0].(map[string]any)["code"])
	require.Len(t, v.em.LeadsByEmail("OLD@X.COM"), 2)

	// A null clears a field.
	ok(t, sync(map[string]any{"action": "updateOnly", "lookupField": "id", "input": []map[string]any{{"id": existing, "lastName": nil}}}))
	require.NotContains(t, v.em.Leads(existing)[0].Fields, "lastName")

	// Changing the email moves the index.
	ok(t, sync(map[string]any{"action": "updateOnly", "lookupField": "id", "input": []map[string]any{{"id": existing, "email": "moved@x.com"}}}))
	require.Len(t, v.em.LeadsByEmail("old@x.com"), 1)
	require.Equal(t, existing, v.em.LeadsByEmail("moved@x.com")[0].ID)

	big := make([]map[string]any, 301)
	for i := range big {
		big[i] = map[string]any{"email": fmt.Sprintf("u%d@x.com", i)}
	}
	for _, tt := range []struct {
		name string
		rq   request
		code string
	}{
		{"bad JSON", request{method: "POST", path: "/rest/v1/leads.json", body: []byte("{"), ctype: "application/json"}, "609"},
		{"form body", request{method: "POST", path: "/rest/v1/leads.json", form: url.Values{"input": {"x"}}}, "612"},
		{"301 records", request{method: "POST", path: "/rest/v1/leads.json", json: map[string]any{"input": big}}, "1003"},
		{"no input", request{method: "POST", path: "/rest/v1/leads.json", json: map[string]any{}}, "701"},
		{"bad action", request{method: "POST", path: "/rest/v1/leads.json", json: map[string]any{"action": "upsert", "input": big[:1]}}, "1003"},
		{"id lookup without updateOnly", request{method: "POST", path: "/rest/v1/leads.json", json: map[string]any{"lookupField": "id", "input": big[:1]}}, "1003"},
		{"unsupported lookup", request{method: "POST", path: "/rest/v1/leads.json", json: map[string]any{"lookupField": "firstName", "input": big[:1]}}, "1011"},
	} {
		t.Run(tt.name, func(t *testing.T) { failed(t, v.do(tt.rq), tt.code) })
	}
}

func TestGetLeadAndDescribe(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{CustomFields: []string{"score"}})
	id := v.em.UpsertLeads([]map[string]string{{"email": "a@x.com"}})[0]
	v.clock.Advance(30 * time.Minute)
	r := ok(t, v.get("/rest/v1/lead/"+itoa(id)+".json", url.Values{"fields": {"email,createdAt"}}))
	require.Equal(t, "a@x.com", r.results(t)[0]["email"])
	require.Equal(t, "2026-03-02T15:04:05Z", r.results(t)[0]["createdAt"])
	r = ok(t, v.get("/rest/v1/lead/5.json", nil))
	require.Empty(t, r.results(t))
	r = ok(t, v.get("/rest/v1/leads/describe.json", nil))
	names := map[any]bool{}
	for _, f := range r.results(t) {
		names[f["rest"].(map[string]any)["name"]] = true
	}
	require.True(t, names["email"] && names["score"] && names["firstName"])
}

func TestValidEmail(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"a@x.com": true, "first.last+tag@sub.example.co.uk": true, "Ünï@exämple.de": true,
		"": false, "a": false, "a@": false, "@x.com": false, "a@x": false, "a@@x.com": false,
		"a b@x.com": false, "a@x..com": false, "a@-x.com": false, ".a@x.com": false, "a,b@x.com": false,
		"a@x.com;b@x.com": false,
	} {
		require.Equal(t, want, validEmail(s), s)
	}
}
