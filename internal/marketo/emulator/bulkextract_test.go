package emulator

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func createExport(t *testing.T, v *env, body map[string]any) string {
	t.Helper()
	r := ok(t, v.do(request{method: "POST", path: "/bulk/v1/leads/export/create.json", json: body}))
	res := r.results(t)[0]
	require.Equal(t, "Created", res["status"])
	return res["exportId"].(string)
}

func exportCall(t *testing.T, v *env, method, id, action string) apiResp {
	t.Helper()
	return v.do(request{method: method, path: fmt.Sprintf("/bulk/v1/leads/export/%s/%s.json", id, action)})
}

func TestBulkExtractLifecycle(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{ExportProcessingTime: time.Minute})
	list := v.em.CreateStaticList("Big", v.em.CreateFolder("F"))
	ids := v.em.UpsertLeads([]map[string]string{{"email": "a@x.com", "firstName": "A"}, {"email": "b@x.com"}, {"email": "c@x.com"}})
	v.em.AddListMembers(list, ids[:2]...)

	r := v.do(request{method: "POST", path: "/bulk/v1/leads/export/create.json", json: map[string]any{
		"fields": []string{"id", "email", "firstName"}, "format": "CSV",
		"columnHeaderNames": map[string]string{"firstName": "First Name"},
		"filter":            map[string]any{"staticListId": list},
	}})
	golden(t, "export_create.json", r.Raw)
	id := ok(t, r).results(t)[0]["exportId"].(string)

	r = ok(t, exportCall(t, v, "POST", id, "enqueue"))
	require.Equal(t, "Processing", r.results(t)[0]["status"], "a free slot starts the job at once")
	// Membership was read when the job started: later changes are not in it.
	v.em.AddListMembers(list, ids[2])
	failed(t, exportCall(t, v, "GET", id, "file"), "1003")

	v.clock.Advance(time.Minute)
	r = ok(t, exportCall(t, v, "GET", id, "status"))
	golden(t, "export_completed.json", r.Raw)

	want := fmt.Sprintf("id,email,First Name\n%d,a@x.com,A\n%d,b@x.com,\n", ids[0], ids[1])
	r = exportCall(t, v, "GET", id, "file")
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, want, string(r.Raw))
	st := ok(t, exportCall(t, v, "GET", id, "status")).results(t)[0]
	sum := sha256.Sum256([]byte(want))
	require.Equal(t, "sha256:"+hex.EncodeToString(sum[:]), st["fileChecksum"])
	require.EqualValues(t, len(want), st["fileSize"])
	require.EqualValues(t, 2, st["numberOfRecords"])

	// Range requests: 206 with Content-Range.
	req, err := http.NewRequest("GET", v.ts.URL+"/bulk/v1/leads/export/"+id+"/file.json", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+v.token)
	req.Header.Set("Range", "bytes=3-9")
	resp, err := v.ts.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	require.Equal(t, fmt.Sprintf("bytes 3-9/%d", len(want)), resp.Header.Get("Content-Range"))

	// Enqueueing a finished job is refused; the list endpoint sees it.
	failed(t, exportCall(t, v, "POST", id, "enqueue"), "1003")
	r = ok(t, v.get("/bulk/v1/leads/export.json", map[string][]string{"status": {"completed"}}))
	require.Len(t, r.results(t), 1)
	failed(t, exportCall(t, v, "GET", "nope", "status"), "1013")
	require.Equal(t, []ExportStatus{{ExportID: id, Status: "Completed", Records: 2}}, v.em.Exports())
}

func TestBulkExtractQueue(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{ExportProcessingTime: 10 * time.Second, CallsPer20s: -1})
	list := v.em.CreateStaticList("L", v.em.CreateFolder("F"))
	body := map[string]any{"fields": []string{"email"}, "filter": map[string]any{"staticListId": fmt.Sprint(list)}}
	var jobs []string
	for range 11 {
		jobs = append(jobs, createExport(t, v, body))
	}
	for _, id := range jobs[:10] {
		ok(t, exportCall(t, v, "POST", id, "enqueue"))
	}
	r := exportCall(t, v, "POST", jobs[10], "enqueue")
	failed(t, r, "1029")
	require.Equal(t, "Too many jobs (10) in queue", r.Errors[0].Message)
	failed(t, exportCall(t, v, "POST", jobs[9], "enqueue"), "1029")

	st := v.em.Stats()
	require.EqualValues(t, 2, st.Exports["Processing"])
	require.EqualValues(t, 8, st.Exports["Queued"])
	require.EqualValues(t, 1, st.Exports["Created"])

	// Cancelling a processing job frees its slot at once.
	r = ok(t, exportCall(t, v, "POST", jobs[0], "cancel"))
	require.Equal(t, "Cancelled", r.results(t)[0]["status"])
	require.Equal(t, "Processing", ok(t, exportCall(t, v, "GET", jobs[2], "status")).results(t)[0]["status"])
	ok(t, exportCall(t, v, "POST", jobs[10], "enqueue"))

	// Two at a time, 10 s each: 9 remaining jobs take 50 s.
	v.clock.Advance(40 * time.Second)
	require.EqualValues(t, 8, v.em.Stats().Exports["Completed"])
	v.clock.Advance(10 * time.Second)
	require.EqualValues(t, 10, v.em.Stats().Exports["Completed"])
}

func TestBulkExtractFilters(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{ExportProcessingTime: -1})
	list := v.em.CreateStaticList("Named", v.em.CreateFolder("F"))
	ids := v.em.GenerateLeads(3)
	v.em.AddListMembers(list, ids[1])

	id := createExport(t, v, map[string]any{"fields": []string{"id"}, "format": "tsv", "filter": map[string]any{"staticListName": "Named"}})
	ok(t, exportCall(t, v, "POST", id, "enqueue"))
	r := exportCall(t, v, "GET", id, "file")
	require.Equal(t, fmt.Sprintf("id\n%d\n", ids[1]), string(r.Raw))

	id = createExport(t, v, map[string]any{"fields": []string{"email"}, "filter": map[string]any{"createdAt": map[string]string{
		"startAt": "2026-03-01T00:00:00Z", "endAt": "2026-03-03T00:00:00Z"}}})
	ok(t, exportCall(t, v, "POST", id, "enqueue"))
	r = exportCall(t, v, "GET", id, "file")
	require.Equal(t, 4, strings.Count(string(r.Raw), "\n"))

	// A list deleted before the job starts fails the job.
	id = createExport(t, v, map[string]any{"fields": []string{"email"}, "filter": map[string]any{"staticListId": list}})
	require.True(t, v.em.DeleteStaticList(list))
	r = ok(t, exportCall(t, v, "POST", id, "enqueue"))
	require.Equal(t, "Failed", r.results(t)[0]["status"])
	require.Equal(t, "Static list not found", r.results(t)[0]["errorMsg"])

	for _, tt := range []struct {
		name string
		body any
		code string
	}{
		{"no fields", map[string]any{"filter": map[string]any{"staticListId": 1}}, "701"},
		{"unknown field", map[string]any{"fields": []string{"nope"}, "filter": map[string]any{"staticListId": 1}}, "1006"},
		{"smart list", map[string]any{"fields": []string{"id"}, "filter": map[string]any{"smartListId": 1}}, "1035"},
		{"two filters", map[string]any{"fields": []string{"id"}, "filter": map[string]any{"staticListId": 1, "staticListName": "x"}}, "1003"},
		{"unknown list", map[string]any{"fields": []string{"id"}, "filter": map[string]any{"staticListId": 5}}, "1013"},
		{"range too long", map[string]any{"fields": []string{"id"}, "filter": map[string]any{"updatedAt": map[string]string{
			"startAt": "2026-01-01T00:00:00Z", "endAt": "2026-03-01T00:00:00Z"}}}, "1003"},
		{"bad date", map[string]any{"fields": []string{"id"}, "filter": map[string]any{"updatedAt": map[string]string{
			"startAt": "yesterday", "endAt": "2026-03-01T00:00:00Z"}}}, "704"},
		{"bad format", map[string]any{"fields": []string{"id"}, "format": "XML", "filter": map[string]any{"staticListId": 1}}, "1003"},
		{"bad header map", map[string]any{"fields": []string{"id"}, "columnHeaderNames": map[string]string{"email": "E"}, "filter": map[string]any{"updatedAt": map[string]string{
			"startAt": "2026-01-01T00:00:00Z", "endAt": "2026-01-02T00:00:00Z"}}}, "1003"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			failed(t, v.do(request{method: "POST", path: "/bulk/v1/leads/export/create.json", json: tt.body}), tt.code)
		})
	}
	failed(t, v.do(request{method: "POST", path: "/bulk/v1/leads/export/create.json", body: []byte("nope"), ctype: "application/json"}), "609")
}

func TestBulkExtractDailyQuota(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{ExportProcessingTime: -1, ExportDailyBytes: 10})
	list := v.em.CreateStaticList("L", v.em.CreateFolder("F"))
	v.em.AddListMembers(list, v.em.GenerateLeads(2)...)
	body := map[string]any{"fields": []string{"email"}, "filter": map[string]any{"staticListId": list}}
	ok(t, exportCall(t, v, "POST", createExport(t, v, body), "enqueue"))
	id := createExport(t, v, body)
	r := exportCall(t, v, "POST", id, "enqueue")
	failed(t, r, "1029")
	require.Equal(t, "Export daily quota exceeded", r.Errors[0].Message)
	v.clock.Advance(24 * time.Hour)
	v.token = v.fetchToken()
	ok(t, exportCall(t, v, "POST", id, "enqueue"))
}
