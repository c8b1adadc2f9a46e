package marketo_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/marketo/emulator"
)

// benchSetup is an emulator with Marketo's real limits and import speed, on
// the fast clock, and a client with its default poll schedule scaled to the
// same clock, so that the polls counted are those a real run would make.
func benchSetup(b *testing.B) *bundle {
	return setup(b, options{client: func(c *marketo.Config) {
		c.ImportPollInitial = marketo.ImportPollInitialDefault / speed
		c.ImportPollMax = marketo.ImportPollMaxDefault / speed
		c.ExtractPollInitial = marketo.ExtractPollInitialDefault / speed
		c.ExtractPollMax = marketo.ExtractPollMaxDefault / speed
	}, em: emulator.Config{}})
}

// BenchmarkCallsAdd10k reports the API calls spent adding 10,000 new leads
// (with a field each) to a list, next to the minimum: one import file (they
// fit in one) and one status read to learn its outcome.
func BenchmarkCallsAdd10k(b *testing.B) {
	const n = 10_000
	var total int64
	for b.Loop() {
		b.StopTimer()
		bd := benchSetup(b)
		list := bd.em.CreateStaticList("L", bd.em.CreateFolder("F"))
		leads := leadsFor(emails("add", n))
		var cc marketo.CallCounter
		var col collector
		b.StartTimer()
		err := bd.c.AddToList(marketo.WithCallCounter(b.Context(), &cc), marketo.AddParams{ListID: list, FieldNames: []string{"firstName"}, Leads: leads}, col.commit)
		b.StopTimer()
		require.NoError(b, err)
		require.Len(b, col.outs, n)
		require.Len(b, bd.em.ListMemberIDs(list), n)
		total += cc.Total()
		b.StartTimer()
	}
	b.ReportMetric(float64(total)/float64(b.N), "calls/10k-adds")
	b.ReportMetric(2, "min-calls/10k-adds")
}

// BenchmarkCallsRemove10k reports the API calls spent removing 10,000
// members from a list of 20,000, when their lead ids are known (minimum: one
// DELETE per 300, 34) and when only their emails are (minimum: the same
// DELETEs plus a bulk extract's create, enqueue, one status read and one
// download, 38).
func BenchmarkCallsRemove10k(b *testing.B) {
	const n = 10_000
	for _, tc := range []struct {
		name     string
		knownIDs bool
		min      float64
	}{
		{"known-ids", true, 34},
		{"by-key", false, 38},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var total int64
			for b.Loop() {
				b.StopTimer()
				bd := benchSetup(b)
				keys := emails("rm", 2*n)
				list, ids := seedList(b, bd.em, keys)
				members := make([]marketo.Member, n)
				for i := range members {
					members[i] = marketo.Member{Key: keys[i]}
					if tc.knownIDs {
						members[i].LeadID = ids[i]
					}
				}
				var cc marketo.CallCounter
				var col collector
				b.StartTimer()
				err := bd.c.RemoveFromList(marketo.WithCallCounter(b.Context(), &cc), marketo.RemoveParams{ListID: list, Members: members}, col.commit)
				b.StopTimer()
				require.NoError(b, err)
				require.Len(b, col.outs, n)
				require.Len(b, bd.em.ListMemberIDs(list), n)
				total += cc.Total()
				b.StartTimer()
			}
			b.ReportMetric(float64(total)/float64(b.N), "calls/10k-removes")
			b.ReportMetric(tc.min, "min-calls/10k-removes")
		})
	}
}
