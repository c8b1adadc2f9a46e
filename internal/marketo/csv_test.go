package marketo

import (
	"bytes"
	"encoding/csv"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// hostileFields are the field names of hostileLeads' values.
var hostileFields = []string{"firstName", "company", "title"}

// hostileLeads are values that break naive CSV writers.
func hostileLeads() []Lead {
	return []Lead{
		{Key: "plain@example.com", Values: []string{"Ann", "Acme", ""}},
		{Key: "comma@example.com", Values: []string{"Smith, John", "A,B,,C", ""}},
		{Key: "quote@example.com", Values: []string{`The "Boss"`, `"`, ""}},
		{Key: "newline@example.com", Values: []string{"two\nlines", "cr\rhere", ""}},
		{Key: "formula@example.com", Values: []string{"=HYPERLINK(\"x\")", "+1-2", "@SUM(A1)"}},
		{Key: "unicode@example.com", Values: []string{"Zoë Ünïcødé 日本語 🙂", "Ståhl & Söner", ""}},
		{Key: "space@example.com", Values: []string{" leading space", "trailing space ", ""}},
		{Key: "empty@example.com", Values: []string{"", "", ""}},
	}
}

// buildImportFiles plans the files of leads and writes each.
func buildImportFiles(t testing.TB, header []string, leads []Lead, idx []int, maxBytes int) (files []importFile, data [][]byte, tooLarge []int) {
	t.Helper()
	files, tooLarge, err := planImportFiles(header, leads, idx, maxBytes)
	require.NoError(t, err)
	for _, f := range files {
		b, err := writeImportFile(header, leads, f)
		require.NoError(t, err)
		require.Len(t, b, f.size, "the planned size")
		data = append(data, b)
	}
	return files, data, tooLarge
}

func TestImportCSVGolden(t *testing.T) {
	t.Parallel()
	leads := hostileLeads()
	header, err := importHeader("email", hostileFields)
	require.NoError(t, err)
	require.Equal(t, []string{"email", "firstName", "company", "title"}, header)
	idx := make([]int, len(leads))
	for i := range idx {
		idx[i] = i
	}
	files, data, tooLarge := buildImportFiles(t, header, leads, idx, ImportMaxBytesDefault)
	require.Empty(t, tooLarge)
	require.Len(t, files, 1)

	golden := filepath.Join("testdata", "import_hostile.csv")
	if *update {
		require.NoError(t, os.WriteFile(golden, data[0], 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	if d := cmp.Diff(string(want), string(data[0])); d != "" {
		t.Fatalf("import file (-want +got):\n%s", d)
	}

	// Read back as any RFC 4180 reader would: every value survives.
	recs, err := csv.NewReader(bytes.NewReader(data[0])).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, len(leads)+1)
	for i, l := range leads {
		rec := recs[i+1]
		require.Equal(t, l.Key, rec[0])
		for j, f := range header[1:] {
			// encoding/csv's reader folds \r\n inside quotes to \n; a lone
			// \r survives.
			require.Equal(t, l.Values[j], rec[j+1], "lead %s field %s", l.Key, f)
		}
	}
}

func TestImportChunksSplitByBytes(t *testing.T) {
	t.Parallel()
	var leads []Lead
	var idx []int
	for i := range 1000 {
		leads = append(leads, Lead{Key: strings.Repeat("x", 10) + string(rune('a'+i%26)) + "@e.com", Values: []string{strings.Repeat("v", i%50)}})
		idx = append(idx, i)
	}
	leads = append(leads, Lead{Key: "huge@e.com", Values: []string{strings.Repeat("h", 5000)}})
	idx = append(idx, len(leads)-1)
	header := []string{"email", "f"}
	const maxBytes = 4096
	files, data, tooLarge := buildImportFiles(t, header, leads, idx, maxBytes)
	require.Equal(t, []int{len(leads) - 1}, tooLarge)
	require.Greater(t, len(files), 5)
	seen := 0
	for n, f := range files {
		require.LessOrEqual(t, len(data[n]), maxBytes)
		recs, err := csv.NewReader(bytes.NewReader(data[n])).ReadAll()
		require.NoError(t, err)
		require.Equal(t, header, recs[0], "every file carries the header")
		require.Len(t, recs, len(f.rows)+1)
		for j, i := range f.rows {
			require.Equal(t, leads[i].Key, recs[j+1][0])
			require.Equal(t, i, seen, "rows keep their order")
			seen++
		}
	}
	require.Equal(t, len(leads)-1, seen)
}

func TestImportHeaderRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		names       []string
		errContains string
	}{
		{[]string{"a", " "}, "field name 2 is empty"},
		{[]string{"a", "Email"}, `field name 2, "Email", is the lookup field`},
		{[]string{"a", "b", "A"}, `field name 3, "A", repeats field name 1`},
	} {
		_, err := importHeader("email", tc.names)
		require.ErrorContains(t, err, tc.errContains, "%q", tc.names)
	}
}

func TestParseReasonCSV(t *testing.T) {
	t.Parallel()
	in := "\ufeffemail,firstName,Import Failure Reason\r\n" +
		"Bad@Example.com,\"Smith, J\",Invalid email format\r\n" +
		"\"multi\nline@example.com\",x,\"Value too long, max 255\"\r\n" +
		"short\r\n" +
		"Bad@example.com,y,second reason ignored\r\n" +
		"noreason@example.com,z,\r\n"
	got, err := parseReasonCSV(strings.NewReader(in), "email", "Import Failure Reason")
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		"bad@example.com":         "Invalid email format",
		"multi\nline@example.com": "Value too long, max 255",
		"short":                   "no reason given",
		"noreason@example.com":    "no reason given",
	}, got)

	// Reason column under another name: the last column is used.
	got, err = parseReasonCSV(strings.NewReader("email,Reason\na@x.com,nope\n"), "email", "Import Failure Reason")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"a@x.com": "nope"}, got)

	got, err = parseReasonCSV(strings.NewReader(""), "email", "Import Failure Reason")
	require.NoError(t, err)
	require.Empty(t, got)

	_, err = parseReasonCSV(strings.NewReader("firstName,Import Failure Reason\nx,y\n"), "email", "Import Failure Reason")
	require.ErrorContains(t, err, `no "email" column`)
}

func TestExtractReader(t *testing.T) {
	t.Parallel()
	er, err := newExtractReader(strings.NewReader("email,id\na@x.com,5\n\"b,c@x.com\",6\n,7\n"), "email")
	require.NoError(t, err)
	var got []Member
	for {
		m, err := er.next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		got = append(got, m)
	}
	require.Equal(t, []Member{{"a@x.com", 5}, {"b,c@x.com", 6}, {"", 7}}, got)

	er, err = newExtractReader(strings.NewReader("id,email\nnotanumber,a@x.com\n"), "email")
	require.NoError(t, err)
	_, err = er.next()
	require.ErrorContains(t, err, `lead id "notanumber" is not a positive integer`)

	_, err = newExtractReader(strings.NewReader("id,firstName\n1,x\n"), "email")
	require.ErrorContains(t, err, "lacks the id or \"email\" column")

	er, err = newExtractReader(strings.NewReader(""), "email")
	require.NoError(t, err)
	_, err = er.next()
	require.ErrorIs(t, err, io.EOF)
}
