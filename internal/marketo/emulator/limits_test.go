package emulator

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRateLimitRollingWindow(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{CallsPer20s: 5})
	path := "/rest/v1/lists.json"
	for range 3 {
		ok(t, v.get(path, nil))
	}
	v.clock.Advance(10 * time.Second)
	for range 2 {
		ok(t, v.get(path, nil))
	}
	r := v.get(path, nil)
	failed(t, r, "606")
	require.Equal(t, "Max rate limit '5' exceeded with in '20' secs", r.Errors[0].Message)
	golden(t, "rate_limited.json", r.Raw)

	// At 20 s the first three calls leave the window, not the last two.
	v.clock.Advance(10*time.Second + time.Millisecond)
	for range 3 {
		ok(t, v.get(path, nil))
	}
	failed(t, v.get(path, nil), "606")

	// Identity calls are not counted.
	for range 10 {
		v.fetchToken()
	}
	st := v.em.Stats()
	require.EqualValues(t, 2, st.Rejected["606"])
	require.EqualValues(t, 5, st.CallsLast20s)
	require.EqualValues(t, 8, st.DailyCalls)
	require.EqualValues(t, 10, st.CallsTotal)
}

func TestDailyQuota(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{DailyQuota: 3, CallsPer20s: -1})
	// 15:04 UTC is 09:04 CST; midnight CST is 06:00 UTC next day.
	for range 3 {
		ok(t, v.get("/rest/v1/lists.json", nil))
	}
	r := v.get("/rest/v1/lists.json", nil)
	failed(t, r, "607")
	require.Equal(t, "Daily quota reached", r.Errors[0].Message)
	v.fetchToken() // identity still works

	v.clock.Advance(14*time.Hour + 55*time.Minute) // 05:59 UTC: still the same CST day
	v.token = v.fetchToken()
	failed(t, v.get("/rest/v1/lists.json", nil), "607")
	v.clock.Advance(2 * time.Minute) // past 06:00 UTC
	ok(t, v.get("/rest/v1/lists.json", nil))
	require.EqualValues(t, 1, v.em.Stats().DailyCalls)

	ok(t, v.get("/rest/v1/lists.json", nil))
	ok(t, v.get("/rest/v1/lists.json", nil))
	failed(t, v.get("/rest/v1/lists.json", nil), "607")
	v.em.ResetDailyQuota()
	ok(t, v.get("/rest/v1/lists.json", nil))
}

func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{MaxConcurrency: 2, Latency: time.Minute})
	var wg sync.WaitGroup
	results := make([]apiResp, 2)
	for i := range results {
		wg.Go(func() { results[i] = v.get("/rest/v1/lists.json", nil) })
	}
	require.Eventually(t, func() bool { return v.em.Stats().InFlight == 2 }, 5*time.Second, time.Millisecond)
	r := v.get("/rest/v1/lists.json", nil)
	failed(t, r, "615")
	require.Equal(t, "Concurrent access limit '2' reached", r.Errors[0].Message)
	// Close wakes the calls waiting on Latency; they then succeed.
	require.NoError(t, v.em.Close())
	wg.Wait()
	for _, r := range results {
		ok(t, r)
	}
	st := v.em.Stats()
	require.EqualValues(t, 3, st.MaxConcurrencySeen)
	require.EqualValues(t, 1, st.Rejected["615"])
	require.EqualValues(t, 0, st.InFlight)
}

func TestUncountedCodesDoNotConsumeLimits(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{CallsPer20s: 2, Faults: Faults{Rate: 1, Kinds: []FaultKind{FaultTimeout, FaultUnavailable, FaultSystemError}}})
	for range 6 {
		r := v.get("/rest/v1/lists.json", nil)
		require.Contains(t, []string{"604", "608", "611"}, r.code())
	}
	// 601 and 605 are not counted either.
	failed(t, v.do(request{path: "/rest/v1/lists.json", token: strp("bad")}), "601")
	v.em.SetFaults(Faults{})
	failed(t, v.do(request{method: "PUT", path: "/rest/v1/lists.json"}), "605")
	require.EqualValues(t, 0, v.em.Stats().DailyCalls)
	ok(t, v.get("/rest/v1/lists.json", nil))
	ok(t, v.get("/rest/v1/lists.json", nil))
	failed(t, v.get("/rest/v1/lists.json", nil), "606")

	// 713 is counted.
	v.clock.Advance(time.Minute)
	v.token = v.fetchToken()
	v.em.SetFaults(Faults{Rate: 1, Kinds: []FaultKind{FaultTransient}})
	failed(t, v.get("/rest/v1/lists.json", nil), "713")
	failed(t, v.get("/rest/v1/lists.json", nil), "713")
	v.em.SetFaults(Faults{})
	failed(t, v.get("/rest/v1/lists.json", nil), "606")
}

func TestHTTPSizeLimits(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	long := strings.Repeat("x", MaxURIBytes)
	r := v.get("/rest/v1/leads.json", url.Values{"filterType": {"email"}, "filterValues": {long}})
	require.Equal(t, http.StatusRequestURITooLong, r.Status)

	big := bytes.Repeat([]byte("a"), MaxBodyBytes+1)
	r = v.do(request{method: "POST", path: "/rest/v1/leads.json", body: big, ctype: "application/json"})
	require.Equal(t, http.StatusRequestEntityTooLarge, r.Status)

	// Without a Content-Length (chunked), the limit still holds.
	req, err := http.NewRequest("POST", v.ts.URL+"/rest/v1/leads.json", io.MultiReader(bytes.NewReader(big)))
	require.NoError(t, err)
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+v.token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := v.ts.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)

	// A 1 MB body is fine.
	ok(t, v.do(request{method: "POST", path: "/rest/v1/leads.json", query: url.Values{"_method": {"GET"}},
		form: url.Values{"filterType": {"email"}, "filterValues": {"a@x.com"}, "pad": {strings.Repeat("p", MaxBodyBytes-200)}}}))

	st := v.em.Stats()
	require.EqualValues(t, 1, st.Rejected["414"])
	require.EqualValues(t, 2, st.Rejected["413"])
}
