package marketo

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestProjectImportEnd: the remaining time is the remaining rows at the rate
// seen between two Importing readings; without progress there is none.
func TestProjectImportEnd(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_700_000_000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	for _, tc := range []struct {
		name      string
		prev, cur importSeen
		rows      int64
		want      time.Duration
		ok        bool
	}{
		{"from submission", importSeen{at(0), "Importing", 0}, importSeen{at(5), "Importing", 10_000}, 100_000, 45 * time.Second, true},
		{"between reads", importSeen{at(5), "Importing", 10_000}, importSeen{at(35), "Importing", 70_000}, 100_000, 15 * time.Second, true},
		{"all rows done", importSeen{at(0), "Importing", 0}, importSeen{at(5), "Importing", 100}, 100, 0, true},
		{"queued at submission", importSeen{at(0), "Queued", 0}, importSeen{at(5), "Importing", 10_000}, 100_000, 45 * time.Second, true},
		{"queued with rows done", importSeen{at(0), "Queued", 5}, importSeen{at(5), "Importing", 10_000}, 100_000, 0, false},
		{"still queued", importSeen{at(0), "Importing", 0}, importSeen{at(5), "Queued", 0}, 100_000, 0, false},
		{"no progress", importSeen{at(0), "Importing", 50}, importSeen{at(5), "Importing", 50}, 100_000, 0, false},
		{"clock did not move", importSeen{at(5), "Importing", 0}, importSeen{at(5), "Importing", 10}, 100_000, 0, false},
		{"crawling", importSeen{at(0), "Importing", 0}, importSeen{at(1e6), "Importing", 1}, 1 << 40, 24 * time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := projectImportEnd(tc.prev, tc.cur, tc.rows)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}
