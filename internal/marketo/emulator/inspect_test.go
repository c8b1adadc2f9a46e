package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// inspect calls the inspection API and decodes the JSON answer into out.
func inspect(t *testing.T, v *env, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, v.ts.URL+path, rd)
	require.NoError(t, err)
	resp, err := v.ts.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(raw, out), "%s", raw)
	}
	return resp.StatusCode
}

func TestInspectionAndSeeding(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	var created map[string]int64
	require.Equal(t, 201, inspect(t, v, "POST", "/_emulator/folders", map[string]string{"name": "Audiences"}, &created))
	folder := created["id"]
	require.Equal(t, 201, inspect(t, v, "POST", "/_emulator/lists", map[string]any{"name": "Demo", "folderId": folder}, &created))
	list := created["id"]
	var e inspectError
	require.Equal(t, 409, inspect(t, v, "POST", "/_emulator/lists", map[string]any{"name": "Demo", "folderId": folder}, &e))
	require.Contains(t, e.Error, "already exists")
	require.Equal(t, 409, inspect(t, v, "POST", "/_emulator/lists", map[string]any{"name": "X", "folderId": 5}, &e))
	require.Equal(t, 400, inspect(t, v, "POST", "/_emulator/lists", map[string]any{"nme": "X"}, &e))
	require.Contains(t, e.Error, "unknown field")

	var seeded map[string]any
	require.Equal(t, 200, inspect(t, v, "POST", "/_emulator/leads", map[string]any{
		"leads": []map[string]string{{"email": "a@x.com", "firstName": "A"}}, "generate": 5, "listId": list,
	}, &seeded))
	require.EqualValues(t, 5, seeded["generated"])
	require.Len(t, seeded["ids"], 1)
	require.Len(t, v.em.ListMembers(list), 6)

	var members []map[string]any
	require.Equal(t, 200, inspect(t, v, "GET", fmt.Sprintf("/_emulator/lists/%d/members", list), nil, &members))
	require.Len(t, members, 6)
	require.Equal(t, "a@x.com", members[0]["email"])
	require.Equal(t, 404, inspect(t, v, "GET", "/_emulator/lists/9/members", nil, &e))

	first := int64(seeded["ids"].([]any)[0].(float64))
	other := v.em.UpsertLeads([]map[string]string{{"email": "b@x.com"}})[0]
	require.Equal(t, 200, inspect(t, v, "POST", fmt.Sprintf("/_emulator/lists/%d/members", list), map[string]any{"ids": []int64{first, other}}, nil))
	require.Len(t, v.em.ListMembers(list), 7)
	require.Equal(t, 404, inspect(t, v, "POST", fmt.Sprintf("/_emulator/lists/%d/members", list), map[string]any{"ids": []int64{42}}, &e))

	var lists []map[string]any
	require.Equal(t, 200, inspect(t, v, "GET", "/_emulator/lists", nil, &lists))
	require.EqualValues(t, 7, lists[0]["members"])
	var folders []map[string]any
	require.Equal(t, 200, inspect(t, v, "GET", "/_emulator/folders", nil, &folders))
	require.Equal(t, "Audiences", folders[0]["name"])

	// Faults over HTTP.
	var f faultsJSON
	require.Equal(t, 200, inspect(t, v, "PUT", "/_emulator/faults", map[string]any{"rate": 1, "kinds": []string{"713"}, "seed": 4, "slowDelay": "10ms"}, &f))
	require.Equal(t, Faults{Rate: 1, Seed: 4, Kinds: []FaultKind{FaultTransient}, SlowDelay: 10e6}, v.em.CurrentFaults())
	failed(t, v.get("/rest/v1/lists.json", nil), "713")
	require.Equal(t, 400, inspect(t, v, "PUT", "/_emulator/faults", map[string]any{"rate": 2}, &e))
	require.Equal(t, 400, inspect(t, v, "PUT", "/_emulator/faults", map[string]any{"kinds": []string{"42"}}, &e))
	require.Equal(t, 200, inspect(t, v, "PUT", "/_emulator/faults", map[string]any{}, nil))
	require.Equal(t, 200, inspect(t, v, "GET", "/_emulator/faults", nil, &f))
	require.Zero(t, f.Rate)

	// Token expiry and quota reset over HTTP.
	require.Equal(t, 200, inspect(t, v, "POST", "/_emulator/expire-tokens", nil, nil))
	failed(t, v.get("/rest/v1/lists.json", nil), "602")
	v.token = v.fetchToken()
	require.Equal(t, 200, inspect(t, v, "POST", "/_emulator/reset-quota", nil, nil))
	require.Zero(t, v.em.Stats().DailyCalls)

	// Stats, with the documented keys.
	var raw map[string]any
	require.Equal(t, 200, inspect(t, v, "GET", "/_emulator/stats", nil, &raw))
	require.EqualValues(t, 2, raw["calls_total"])
	require.Equal(t, map[string]any{"713": float64(1), "602": float64(1)}, raw["rejected"])
	require.Contains(t, raw, "max_concurrency_seen")
	require.EqualValues(t, 7, raw["leads"])

	require.Equal(t, 200, inspect(t, v, "POST", "/_emulator/stats/reset", nil, &raw))
	require.EqualValues(t, 0, raw["calls_total"])
	require.Equal(t, 200, inspect(t, v, "DELETE", fmt.Sprintf("/_emulator/lists/%d", list), nil, nil))
	require.Equal(t, 404, inspect(t, v, "DELETE", fmt.Sprintf("/_emulator/lists/%d", list), nil, &e))
	require.Equal(t, 404, inspect(t, v, "GET", "/_emulator/nothing", nil, &e))
	require.Equal(t, 404, httptestRecorder(v.em, "GET", "/elsewhere").Code)
}

// TestConcurrentClients runs several clients at once against one list, each
// owning its own leads, and checks the final state and the counters.
func TestConcurrentClients(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{CallsPer20s: -1, ImportRowsPerSec: -1})
	list := v.em.CreateStaticList("Shared", v.em.CreateFolder("F"))
	const clients, rounds = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, clients*rounds)
	for c := range clients {
		wg.Go(func() {
			for r := range rounds {
				email := fmt.Sprintf("c%d-r%d@x.com", c, r)
				res := v.do(request{method: "POST", path: "/rest/v1/leads.json", json: map[string]any{"input": []map[string]string{{"email": email}}}})
				var out []recordResult
				if err := json.Unmarshal(res.Result, &out); err != nil || len(out) != 1 || out[0].ID == 0 {
					errs <- fmt.Errorf("sync %s: %s", email, res.Raw)
					return
				}
				path := "/rest/v1/lists/" + itoa(list) + "/leads.json"
				id := itoa(out[0].ID)
				if r := v.do(request{method: "POST", path: path, query: url.Values{"id": {id}}}); !r.Success {
					errs <- fmt.Errorf("add: %s", r.Raw)
				}
				if r%3 == 0 {
					if r := v.do(request{method: "DELETE", path: path, query: url.Values{"id": {id}}}); !r.Success {
						errs <- fmt.Errorf("remove: %s", r.Raw)
					}
				}
				v.get(path, url.Values{"batchSize": {"50"}})
				v.get("/rest/v1/leads.json", url.Values{"filterType": {"email"}, "filterValues": {email}})
				v.em.Stats()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// Rounds 0, 3, 6, 9, 12 were removed: 10 of 15 remain per client.
	require.Len(t, v.em.ListMembers(list), clients*10)
	st := v.em.Stats()
	require.EqualValues(t, clients*rounds, st.Leads)
	require.LessOrEqual(t, st.MaxConcurrencySeen, int64(clients))
	require.Positive(t, st.MaxConcurrencySeen)
	require.Empty(t, st.Rejected)
	require.EqualValues(t, clients*(rounds*4+5), st.CallsTotal)
}
