package sync_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/state"
	listsync "github.com/listsync/listsync/internal/sync"
)

// hostileRow is a row of the hostile model: raw bytes, as a bytea column
// carries them (text columns cannot hold invalid UTF-8 or NUL).
type hostileRow struct {
	email, first []byte
	last         string
}

// hostileValue is a hostile first name and what Marketo must end up with.
type hostileValue struct {
	name  string
	value string
	want  string // "" with rejected set
	// rejected means the row is refused with its reason recorded.
	rejected string
}

func hostileValues() []hostileValue {
	big := strings.Repeat("x", 100_000)
	return []hostileValue{
		{name: "comma and quotes", value: `Smith, "John" ,`, want: `Smith, "John" ,`},
		{name: "newline", value: "two\nlines", want: "two\nlines"},
		{name: "crlf", value: "crlf\r\nline", want: "crlf\nline"}, // on both paths, as CSV readers fold it
		{name: "lone cr", value: "lone\rcr", want: "lone\rcr"},
		{name: "only a quote", value: `"`, want: `"`},
		{name: "formula", value: `=HYPERLINK("http://evil.example","x")`, want: `=HYPERLINK("http://evil.example","x")`},
		{name: "padded", value: "  padded  ", want: "  padded  "},
		{name: "tab and semicolon", value: "tab\there;semi", want: "tab\there;semi"},
		{name: "backslashes", value: `a\,b\`, want: `a\,b\`},
		{name: "unicode", value: "ünï 🙂 中文", want: "ünï 🙂 中文"},
		{name: "not UTF-8", value: "\xff\xfeinvalid", want: "\uFFFDinvalid"},
		{name: "NUL byte", value: "nul\x00byte", want: "nul\uFFFDbyte"},
		{name: "other controls", value: "bell\x07esc\x1bdel\x7f", want: "bell\uFFFDesc\uFFFDdel\uFFFD"},
		{name: "100 KB", value: big, want: big}, // whole, or cut to a string field's 255 characters
		{name: "12 MB", value: strings.Repeat("y", 12<<20), rejected: "limit"},
	}
}

// TestHostileModelValues runs a model whose values are CSV-hostile,
// binary, not UTF-8, or huge, through Postgres, the engine, the client's
// bulk import (and, for a small model, its REST calls) and the emulator.
// Invalid keys are counted and never sent; every field value arrives as it
// was, or repaired where it cannot be carried (invalid UTF-8, NUL and other
// control bytes become U+FFFD), or its row is rejected with a reason (too
// large for an import file or a request). No row corrupts another: every
// ordinary lead arrives with exactly its own values, no lead is created from
// a fragment of a row, and a second run finds nothing to change.
func TestHostileModelValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		ordinary int
	}{
		{"bulk import", 1000}, // past BulkAddMinRows: one import file
		{"REST", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{})
			list := e.em.CreateStaticList("Hostile", e.em.CreateFolder("F"))
			var rows []hostileRow
			want := map[string][2]string{} // email -> first, last
			for i := range tc.ordinary {
				k := fmt.Sprintf("o%04d@example.com", i)
				rows = append(rows, hostileRow{email: []byte(k), first: []byte(fmt.Sprintf("F%d", i)), last: fmt.Sprintf("L%d", i)})
				want[k] = [2]string{fmt.Sprintf("F%d", i), fmt.Sprintf("L%d", i)}
			}
			values := hostileValues()
			rejectedKeys := map[string]string{}
			for i, v := range values {
				k := fmt.Sprintf("h%02d@example.com", i)
				last := "Last, \"" + v.name + "\"\n"
				rows = append(rows, hostileRow{email: []byte(k), first: []byte(v.value), last: last})
				if v.rejected != "" {
					rejectedKeys[k] = v.rejected
					continue
				}
				want[k] = [2]string{v.want, last}
			}
			// Keys that are never sent.
			for _, k := range []string{"\xff@example.com", "a,b@example.com", "line\nbreak@example.com",
				`"quoted"@example.com`, strings.Repeat("k", 250) + "@example.com", "nul\x00@example.com",
				"", "no-at-sign", "<script>@example.com"} {
				rows = append(rows, hostileRow{email: []byte(k), first: []byte("never sent")})
			}
			rows = append(rows, hostileRow{email: nil, first: []byte("NULL key")})
			// A key that looks like a formula is still an address.
			rows = append(rows, hostileRow{email: []byte("=cmd@example.com"), first: []byte("=1+1")})
			want["=cmd@example.com"] = [2]string{"=1+1", ""}

			_, err := e.conn.Exec(e.ctx, `CREATE TABLE hostile (email bytea, first_name bytea, last_name text)`)
			require.NoError(t, err)
			data := make([][]any, len(rows))
			for i, r := range rows {
				var email any
				if r.email != nil {
					email = r.email
				}
				data[i] = []any{email, r.first, r.last}
			}
			_, err = e.conn.CopyFrom(e.ctx, pgx.Identifier{"hostile"}, []string{"email", "first_name", "last_name"},
				pgx.CopyFromRows(data))
			require.NoError(t, err)

			spec := listsync.Spec{Name: "hostile", Warehouse: e.wh, Model: "models/hostile.sql",
				SQL:  "SELECT email, first_name, last_name FROM hostile",
				List: marketo.ListRef{ID: list}, Fields: map[string]string{"firstName": "first_name", "lastName": "last_name"}}
			e.em.ResetStats()
			run := e.run(spec, listsync.RunOptions{})
			t.Logf("run: read %d, invalid %d %q, +%d rejected %d, endpoints %v", run.RowsRead, run.Invalid,
				run.InvalidSamples, run.AddsConfirmed, run.Rejected, e.em.Stats().Endpoints)
			require.EqualValues(t, len(rows), run.RowsRead)
			require.EqualValues(t, 10, run.Invalid, "invalid keys are counted")
			require.EqualValues(t, len(want), run.AddsConfirmed)
			require.EqualValues(t, len(rejectedKeys), run.Rejected)
			if tc.ordinary > 0 {
				require.Positive(t, e.em.Stats().Endpoints["POST /bulk/v1/leads.json"], "a bulk import ran")
			} else {
				require.Zero(t, e.em.Stats().Endpoints["POST /bulk/v1/leads.json"], "REST calls only")
			}
			for _, s := range run.InvalidSamples {
				require.True(t, strings.Contains(s, "not valid UTF-8") || strings.Contains(s, "not an email address") ||
					strings.Contains(s, "longer than") || strings.Contains(s, "NULL key") || strings.Contains(s, "empty key"), s)
			}

			// The list holds exactly the valid, accepted keys, each with
			// exactly its own values.
			var got []string
			for _, l := range e.em.ListMembers(list) {
				got = append(got, l.Email)
				w, ok := want[l.Email]
				require.True(t, ok, "lead %q is on the list", l.Email)
				if first := l.Fields["firstName"]; len(w[0]) > 255 && len(first) >= 255 && strings.HasPrefix(w[0], first) {
					// Marketo may keep a string field's first 255
					// characters (the emulator's bulk import does).
				} else {
					require.Equal(t, w[0], first, "firstName of %s", l.Email)
				}
				require.Equal(t, w[1], l.Fields["lastName"], "lastName of %s", l.Email)
			}
			require.Len(t, got, len(want))
			require.EqualValues(t, len(want), e.em.Stats().Leads, "no lead was made from a fragment of a row")

			rejects, err := e.store.ListRejects(e.ctx, spec.Name, 0)
			require.NoError(t, err)
			require.Len(t, rejects, len(rejectedKeys))
			for _, r := range rejects {
				require.Contains(t, r.Reason, rejectedKeys[r.Key], "reason for %s", r.Key)
				require.Equal(t, state.OpAdd, r.Op)
			}

			// Nothing changes on a second run: the repaired and truncated
			// values are stable, the rejected row waits for its retry.
			run = e.run(spec, listsync.RunOptions{})
			require.Zero(t, run.AddsPlanned+run.UpdatesPlanned+run.RemovesPlanned, "second run")
			require.EqualValues(t, len(rejectedKeys), run.Deferred)
			ledger := e.ledger(spec.Name)
			keys := make([]string, 0, len(want))
			for k := range want {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			require.Equal(t, keys, ledger)
		})
	}
}
