package emulator

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEachFaultKind(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		kind   FaultKind
		status int
		code   string
	}{
		{FaultTimeout, 200, "604"},
		{FaultUnavailable, 200, "608"},
		{FaultSystemError, 200, "611"},
		{FaultTransient, 200, "713"},
		{FaultBadGateway, 502, "502"},
		{FaultServiceUnavailable, 503, "503"},
	} {
		t.Run(string(tt.kind), func(t *testing.T) {
			t.Parallel()
			v := newEnv(t, Config{Faults: Faults{Rate: 1, Kinds: []FaultKind{tt.kind}}})
			r := v.get("/rest/v1/lists.json", nil)
			require.Equal(t, tt.status, r.Status)
			if tt.status == 200 {
				failed(t, r, tt.code)
				require.Equal(t, faultMessage(tt.kind), r.Errors[0].Message)
			} else {
				require.Contains(t, string(r.Raw), tt.code)
			}
			require.EqualValues(t, 1, v.em.Stats().Rejected[tt.code])
		})
	}
}

// codes runs n calls and returns each answer's code ("" for success, the
// HTTP status for gateway errors).
func codes(t *testing.T, v *env, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		r := v.get("/rest/v1/lists.json", nil)
		switch {
		case r.Status != http.StatusOK:
			out[i] = http.StatusText(r.Status)
		default:
			out[i] = r.code()
		}
	}
	return out
}

func TestFaultsAreDeterministic(t *testing.T) {
	t.Parallel()
	kinds := []FaultKind{FaultTimeout, FaultUnavailable, FaultSystemError, FaultTransient, FaultBadGateway, FaultServiceUnavailable}
	cfg := func(seed int64) Config {
		return Config{CallsPer20s: -1, DailyQuota: -1, Faults: Faults{Rate: 0.2, Seed: seed, Kinds: kinds}}
	}
	a := codes(t, newEnv(t, cfg(7)), 400)
	b := codes(t, newEnv(t, cfg(7)), 400)
	c := codes(t, newEnv(t, cfg(8)), 400)
	require.Equal(t, a, b)
	require.NotEqual(t, a, c)
	faulted := 0
	seen := map[string]bool{}
	for _, code := range a {
		if code != "" {
			faulted++
			seen[code] = true
		}
	}
	require.InDelta(t, 80, faulted, 30)
	require.Len(t, seen, 6)

	// SetFaults reseeds: the sequence starts again.
	v := newEnv(t, cfg(7))
	codes(t, v, 50)
	v.em.SetFaults(cfg(7).Faults)
	require.Equal(t, a[:100], codes(t, v, 100))
	require.Equal(t, cfg(7).Faults, v.em.CurrentFaults())
}

func TestSlowFault(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{Faults: Faults{Rate: 1, Kinds: []FaultKind{FaultSlow}, SlowDelay: 50 * time.Millisecond}})
	start := time.Now()
	ok(t, v.get("/rest/v1/lists.json", nil))
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
}

func TestTokenExpiryFault(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{Faults: Faults{TokenExpiryRate: 1}})
	failed(t, v.get("/rest/v1/lists.json", nil), "602")
	failed(t, v.get("/rest/v1/lists.json", nil), "602") // the old token stays expired
	old := v.token
	v.token = v.fetchToken()
	require.NotEqual(t, old, v.token)
	failed(t, v.get("/rest/v1/lists.json", nil), "602")

	v.em.SetFaults(Faults{TokenExpiryRate: 0.5, Seed: 3})
	got := map[string]int{}
	for range 40 {
		r := v.get("/rest/v1/lists.json", nil)
		got[r.code()]++
		if r.code() == "602" {
			v.token = v.fetchToken()
		}
	}
	require.Positive(t, got["602"])
	require.Positive(t, got[""])
}

func TestParseFaultKinds(t *testing.T) {
	t.Parallel()
	k, err := ParseFaultKinds(" 604, SLOW,503 ")
	require.NoError(t, err)
	require.Equal(t, []FaultKind{FaultTimeout, FaultSlow, FaultServiceUnavailable}, k)
	k, err = ParseFaultKinds("")
	require.NoError(t, err)
	require.Nil(t, k)
	_, err = ParseFaultKinds("604,999")
	require.ErrorContains(t, err, `"999"`)
}
