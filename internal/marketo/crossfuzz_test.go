package marketo_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/marketo/emulator"
)

// FuzzBulkImportAcrossImplementations writes arbitrary field values into a
// bulk import with the client's CSV writer and reads them back with the
// emulator's import parser, which is written independently from Marketo's
// documentation: the values arrive unchanged (CRLF inside a value read as
// LF, as CSV readers do), and the neighbouring row is untouched, so that a
// value can neither be misquoted nor spill into another row or column.
func FuzzBulkImportAcrossImplementations(f *testing.F) {
	b := setup(f, options{
		speed: 1,
		em:    emulator.Config{CallsPer20s: -1, MaxConcurrency: -1, DailyQuota: -1, ImportRowsPerSec: -1},
		client: func(c *marketo.Config) {
			c.BulkAddMinRows = 1
			c.CallsPer20s = 1 << 30
			c.DailyQuota = -1
			c.MaxAttempts = 1
		},
	})
	list := b.em.CreateStaticList("Fuzz", b.em.CreateFolder("F"))
	for _, s := range [][2]string{
		{"Smith, John", `The "Boss"`}, {"two\nlines", "crlf\r\nend"}, {`"`, `""`}, {" lead", "trail "},
		{"=1+1", "@SUM(A1)"}, {"a;b\tc", "\\,\\"}, {"\ufeffbom", "ünï 🙂"}, {"lone\rcr", "nul\x00"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, first, last string) {
		if first == "" || last == "" || !utf8.ValidString(first) || !utf8.ValidString(last) ||
			utf8.RuneCountInString(first) > 255 || utf8.RuneCountInString(last) > 255 {
			return // blanks are ignored by imports, longer strings cut, invalid UTF-8 refused whole
		}
		leads := []marketo.Lead{
			{Key: "fuzz@example.com", Values: []string{first, last}},
			{Key: "neighbour@example.com", Values: []string{"N", "M"}},
		}
		var col collector
		err := b.c.AddToList(t.Context(), marketo.AddParams{ListID: list, FieldNames: []string{"firstName", "lastName"},
			Leads: leads}, col.commit)
		if err != nil {
			t.Fatalf("importing %q %q: %v", first, last, err)
		}
		for _, o := range col.outs {
			if o.Status != marketo.Confirmed {
				t.Fatalf("importing %q %q: %s was %v: %s %s", first, last, o.Key, o.Status, o.Code, o.Reason)
			}
		}
		fold := func(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }
		got := b.em.LeadsByEmail("fuzz@example.com")
		if len(got) != 1 || got[0].Fields["firstName"] != fold(first) || got[0].Fields["lastName"] != fold(last) {
			t.Fatalf("wrote %q %q, Marketo read %+v", first, last, got)
		}
		n := b.em.LeadsByEmail("neighbour@example.com")
		if len(n) != 1 || n[0].Fields["firstName"] != "N" || n[0].Fields["lastName"] != "M" {
			t.Fatalf("writing %q %q changed the neighbouring row: %+v", first, last, n)
		}
		if st := b.em.Stats(); st.Leads != 2 {
			t.Fatalf("writing %q %q made %d leads", first, last, st.Leads)
		}
	})
}
