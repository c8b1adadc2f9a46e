package marketo

import (
	"bytes"
	"encoding/csv"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeEnvelope feeds arbitrary response bodies to the envelope and
// lead decoders: they return an error or a value, never panic.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(`{"success":true,"result":[{"id":1,"email":"a@x.com"}],"nextPageToken":"x"}`))
	f.Add([]byte(`{"success":false,"errors":[{"code":606,"message":"m"}]}`))
	f.Add([]byte(`{"success":true,"result":[{"id":50,"status":"skipped","reasons":[{"code":"1004","message":"Lead not found"}]}]}`))
	f.Add([]byte(`{"success":true,"warnings":["No assets found for the given search criteria."]}`))
	f.Add([]byte(`{"access_token":"t","expires_in":"3599"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := decodeEnvelope("GET /x", body)
		if err != nil {
			return
		}
		_, _ = decodeLeads(env, "GET /x", "email")
		var rr []recordResult
		_ = decodeResult(env, "GET /x", &rr)
		for _, r := range rr {
			r.reason()
		}
		var lists []assetList
		_ = decodeResult(env, "GET /x", &lists)
		var st []importStatus
		_ = decodeResult(env, "GET /x", &st)
	})
}

// FuzzReadCSV feeds arbitrary files to the failures/warnings and extract
// readers.
func FuzzReadCSV(f *testing.F) {
	f.Add("email,firstName,Import Failure Reason\na@x.com,A,Invalid email\n")
	f.Add("id,email\n1,a@x.com\n2,\"b\"\"c\"\n")
	f.Add("\ufeffemail\n\"unterminated\n")
	f.Fuzz(func(t *testing.T, in string) {
		_, _ = parseReasonCSV(strings.NewReader(in), "email", "Import Failure Reason")
		er, err := newExtractReader(strings.NewReader(in), "email")
		if err != nil {
			return
		}
		for range 10000 {
			m, err := er.next()
			if err != nil {
				return
			}
			if m.LeadID <= 0 {
				t.Fatalf("extract reader returned lead id %d", m.LeadID)
			}
		}
	})
}

// FuzzImportCSVRoundTrip checks that any key and field values written into
// an import file read back unchanged with an RFC 4180 reader (which folds
// \r\n inside a quoted value to \n, as Marketo's reader may).
func FuzzImportCSVRoundTrip(f *testing.F) {
	f.Add("a@x.com", "Smith, John", `The "Boss"`)
	f.Add("=cmd@x.com", "two\nlines", "ünï 🙂")
	f.Add(" lead@x.com", "\"", ",")
	f.Fuzz(func(t *testing.T, key, v1, v2 string) {
		if key == "" || !utf8.ValidString(key+v1+v2) {
			return
		}
		leads := []Lead{{Key: key, Values: []string{v1, v2}}, {Key: "next@x.com", Values: []string{"x", ""}}}
		files, data, tooLarge := buildImportFiles(t, []string{"email", "a", "b"}, leads, []int{0, 1}, 1<<20)
		if len(tooLarge) > 0 || len(files) != 1 {
			t.Fatalf("files %d, too large %v", len(files), tooLarge)
		}
		r := csv.NewReader(bytes.NewReader(data[0]))
		var recs [][]string
		for {
			rec, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("reading back %q: %v", data[0], err)
			}
			recs = append(recs, rec)
		}
		fold := func(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }
		if len(recs) != 3 {
			t.Fatalf("got %d records from %q", len(recs), data[0])
		}
		if got := recs[1]; got[0] != fold(key) || got[1] != fold(v1) || got[2] != fold(v2) {
			t.Fatalf("round trip of %q %q %q gave %q", key, v1, v2, got)
		}
	})
}
