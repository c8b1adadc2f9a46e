package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// importFile submits a bulk import with params in the query string (or, with
// asForm, as multipart fields) and returns the response.
func importFile(t *testing.T, v *env, file string, params map[string]string, asForm bool) apiResp {
	t.Helper()
	var fields map[string]string
	q := url.Values{}
	if asForm {
		fields = params
	} else {
		for k, val := range params {
			q.Set(k, val)
		}
	}
	body, ctype := multipartBody(t, file, fields)
	return v.do(request{method: "POST", path: "/bulk/v1/leads.json", query: q, body: body, ctype: ctype})
}

func batchStatus(t *testing.T, v *env, id int64) map[string]any {
	t.Helper()
	r := ok(t, v.get(fmt.Sprintf("/bulk/v1/leads/batch/%d.json", id), nil))
	return r.results(t)[0]
}

func batchID(t *testing.T, r apiResp) int64 {
	t.Helper()
	ok(t, r)
	return int64(r.results(t)[0]["batchId"].(float64))
}

func TestBulkImportLifecycle(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{ImportRowsPerSec: 10})
	list := v.em.CreateStaticList("L", v.em.CreateFolder("F"))
	existing := v.em.UpsertLeads([]map[string]string{{"email": "old@x.com", "firstName": "Old"}})[0]

	file := "email,firstName,lastName\nold@x.com,Updated,One\n\"new@x.com\",\"New, Jr.\",Two\nnot-an-email,Bad,Three\n"
	r := importFile(t, v, file, map[string]string{"format": "csv", "lookupField": "email", "listId": itoa(list)}, false)
	golden(t, "import_create.json", r.Raw)
	id := batchID(t, r)

	st := batchStatus(t, v, id)
	require.Equal(t, "Importing", st["status"])
	v.clock.Advance(100 * time.Millisecond)
	st = batchStatus(t, v, id)
	require.EqualValues(t, 1, st["numOfLeadsProcessed"])
	require.Empty(t, v.em.ListMembers(list), "rows apply when the import completes")

	v.clock.Advance(time.Second)
	r = ok(t, v.get(fmt.Sprintf("/bulk/v1/leads/batch/%d.json", id), nil))
	golden(t, "import_complete.json", r.Raw)

	members := v.em.ListMembers(list)
	require.Len(t, members, 2)
	require.Equal(t, existing, members[0].ID)
	require.Equal(t, "Updated", members[0].Fields["firstName"])
	require.Equal(t, "New, Jr.", members[1].Fields["firstName"])

	r = v.get(fmt.Sprintf("/bulk/v1/leads/batch/%d/failures.json", id), nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "email,firstName,lastName,Import Failure Reason\nnot-an-email,Bad,Three,Invalid email format\n", string(r.Raw))
	r = v.get(fmt.Sprintf("/bulk/v1/leads/batch/%d/warnings.json", id), nil)
	require.Equal(t, "email,firstName,lastName,Import Warning Reason\n", string(r.Raw))

	failed(t, v.get("/bulk/v1/leads/batch/999.json", nil), "1013")
	failed(t, v.get("/bulk/v1/leads/batch/999/failures.json", nil), "1013")
	imports := v.em.Imports()
	require.Len(t, imports, 1)
	require.Equal(t, "Complete", imports[0].Status)
}

func TestBulkImportVariants(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{ImportRowsPerSec: -1, CustomFields: []string{"score"}})
	list := v.em.CreateStaticList("L", v.em.CreateFolder("F"))

	// Parameters as multipart fields (the docs' curl and RudderStack), TSV,
	// and the access token as a form field.
	body, ctype := multipartBody(t, "Email\tSCORE\na@x.com\t5\n", map[string]string{
		"format": "tsv", "listId": itoa(list), "access_token": v.token,
	})
	r := v.do(request{method: "POST", path: "/bulk/v1/leads.json", body: body, ctype: ctype, token: strp("")})
	id := batchID(t, r)
	st := batchStatus(t, v, id)
	require.Equal(t, "Complete", st["status"])
	require.Equal(t, "Import succeeded, 1 records imported (1 members)", st["message"])
	require.Equal(t, "5", v.em.ListMembers(list)[0].Fields["score"])

	// SSV without a list; a duplicate email gives a warning; long values are
	// truncated with a warning; blank cells do not clear fields.
	v.em.UpsertLeads([]map[string]string{{"email": "dup@x.com"}, {"email": "dup2@x.com", "company": "Keep"}})
	v.em.mu.Lock()
	d := v.em.leads.create(v.clock.Now())
	v.em.leads.set(d, "email", "dup@x.com")
	v.em.mu.Unlock()
	long := strings.Repeat("n", 300)
	id = batchID(t, importFile(t, v, "email;lastName;company\ndup@x.com;D;\ndup2@x.com;"+long+";\n", map[string]string{"format": "ssv"}, false))
	st = batchStatus(t, v, id)
	require.Equal(t, "Import succeeded, 2 records imported", st["message"])
	require.EqualValues(t, 2, st["numOfRowsWithWarning"])
	r = v.get(fmt.Sprintf("/bulk/v1/leads/batch/%d/warnings.json", id), nil)
	require.Contains(t, string(r.Raw), "email;lastName;company;Import Warning Reason\n")
	require.Contains(t, string(r.Raw), "Multiple leads match the lookup criteria")
	require.Contains(t, string(r.Raw), "truncated to 255 characters")
	dup2 := v.em.LeadsByEmail("dup2@x.com")[0]
	require.Equal(t, "Keep", dup2.Fields["company"])
	require.Len(t, dup2.Fields["lastName"], 255)

	// lookupField=id updates only.
	id = batchID(t, importFile(t, v, fmt.Sprintf("id,firstName\n%d,ById\n999,Ghost\n,Blank\n", dup2.ID), map[string]string{"lookupField": "id"}, false))
	st = batchStatus(t, v, id)
	require.Equal(t, "Import completed with errors, 1 records imported, 2 failed", st["message"])
	require.Equal(t, "ById", v.em.Leads(dup2.ID)[0].Fields["firstName"])
	r = v.get(fmt.Sprintf("/bulk/v1/leads/batch/%d/failures.json", id), nil)
	require.Equal(t, "id,firstName,Import Failure Reason\n999,Ghost,Lead not found\n,Blank,Missing value for lookup field 'id'\n", string(r.Raw))

	// Rows with the wrong number of values and bad typed values fail alone.
	id = batchID(t, importFile(t, v, "email,numberOfEmployees\na@x.com,1,extra\nb@x.com,many\nc@x.com,3\n", nil, false))
	st = batchStatus(t, v, id)
	require.EqualValues(t, 2, st["numOfRowsFailed"])
	require.EqualValues(t, 1, st["numOfLeadsProcessed"])
}

func TestBulkImportRejections(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{ImportRowsPerSec: 1, CallsPer20s: -1})
	list := v.em.CreateStaticList("L", v.em.CreateFolder("F"))
	other := v.em.CreateStaticList("Other", v.em.CreateFolder("G"))
	tests := []struct {
		name   string
		file   string
		params map[string]string
		code   string
	}{
		{"unknown column", "email,shoeSize\na@x.com,42\n", nil, "1006"},
		{"no lookup column", "firstName\nA\n", nil, "1003"},
		{"empty file", "", nil, "1003"},
		{"repeated column", "email,Email\na@x.com,b@x.com\n", nil, "1003"},
		{"read-only column", "email,createdAt\na@x.com,2020-01-01\n", nil, "1003"},
		{"bad format", "email\na@x.com\n", map[string]string{"format": "xlsx"}, "1003"},
		{"unknown list", "email\na@x.com\n", map[string]string{"listId": "77"}, "1013"},
		{"bad list id", "email\na@x.com\n", map[string]string{"listId": "x"}, "1003"},
		{"unknown lookup", "email\na@x.com\n", map[string]string{"lookupField": "nope"}, "1006"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { failed(t, importFile(t, v, tt.file, tt.params, false), tt.code) })
	}
	failed(t, v.do(request{method: "POST", path: "/bulk/v1/leads.json", form: url.Values{"file": {"x"}}}), "612")
	failed(t, v.do(request{method: "POST", path: "/bulk/v1/leads.json", body: []byte("--x\r\nbroken"), ctype: "multipart/form-data; boundary=x"}), "613")
	failed(t, v.do(request{method: "POST", path: "/bulk/v1/leads.json", body: []byte("--x--\r\n"), ctype: "multipart/form-data; boundary=x"}), "1003")

	// 1019: the list is already being imported to (queued counts too).
	ok(t, importFile(t, v, "email\na@x.com\nb@x.com\n", map[string]string{"listId": itoa(list)}, false))
	r := importFile(t, v, "email\nc@x.com\n", map[string]string{"listId": itoa(list)}, false)
	failed(t, r, "1019")
	golden(t, "import_in_progress.json", r.Raw)
	// Deleting a list that an import uses is refused.
	failed(t, v.do(request{method: "POST", path: "/rest/asset/v1/staticList/" + itoa(list) + "/delete.json"}), "709")

	// 2 import, 8 more wait, the 11th is refused with 1016.
	for range 9 {
		ok(t, importFile(t, v, "email\nd@x.com\n", nil, false))
	}
	failed(t, importFile(t, v, "email\ne@x.com\n", map[string]string{"listId": itoa(other)}, false), "1016")
	var importing, queued int
	for _, im := range v.em.Imports() {
		switch im.Status {
		case "Importing":
			importing++
		case "Queued":
			queued++
		}
	}
	require.Equal(t, 2, importing)
	require.Equal(t, 8, queued)

	// As the clock runs, the queue drains two at a time, in order.
	v.clock.Advance(time.Second)
	st := v.em.Stats()
	require.EqualValues(t, 2, st.Imports["Importing"])
	require.EqualValues(t, 1, st.Imports["Complete"], "the 1-row import finished at 1 s")
	v.clock.Advance(10 * time.Second)
	st = v.em.Stats()
	require.EqualValues(t, 10, st.Imports["Complete"])
	require.Len(t, v.em.ListMembers(list), 2)
	ok(t, importFile(t, v, "email\nc@x.com\n", map[string]string{"listId": itoa(list)}, false))
	require.EqualValues(t, 1, st.Rejected["1016"])
}

func TestBulkImportFileLimit(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	var file bytes.Buffer
	file.WriteString("email\n")
	for file.Len() <= MaxImportFileBytes {
		file.WriteString("someone.with.a.long.address@example.com\n")
	}
	r := importFile(t, v, file.String(), nil, false)
	require.Equal(t, http.StatusRequestEntityTooLarge, r.Status)

	// Just under 10 MB is accepted.
	under := file.Bytes()[:MaxImportFileBytes-100]
	under = under[:bytes.LastIndexByte(under, '\n')+1]
	ok(t, importFile(t, v, string(under), nil, false))
}

func TestBulkImportFailureFault(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{ImportRowsPerSec: -1, Faults: Faults{ImportFailureRate: 1}})
	list := v.em.CreateStaticList("L", v.em.CreateFolder("F"))
	id := batchID(t, importFile(t, v, "email\na@x.com\n", map[string]string{"listId": itoa(list)}, false))
	st := batchStatus(t, v, id)
	require.Equal(t, "Failed", st["status"])
	require.Contains(t, st["message"], "Import failed")
	require.Empty(t, v.em.ListMembers(list))
	require.Empty(t, v.em.LeadsByEmail("a@x.com"))
}

func TestParseImportFile(t *testing.T) {
	t.Parallel()
	h, rows, err := parseImportFile([]byte("\xef\xbb\xbf email , firstName\r\na@x.com,\"A \"\"q\"\"\"\r\n\r\nb@x.com,B\n"), "csv")
	require.NoError(t, err)
	require.Equal(t, []string{"email", "firstName"}, h)
	require.Equal(t, [][]string{{"a@x.com", `A "q"`}, {"b@x.com", "B"}}, rows)
	_, _, err = parseImportFile([]byte("email,\n"), "csv")
	require.ErrorContains(t, err, "column 2 of the header is empty")
	_, _, err = parseImportFile([]byte("email\n\xff\n"), "csv")
	require.ErrorContains(t, err, "UTF-8")
	b, _ := json.Marshal(rows)
	require.NotEmpty(t, b)
}
