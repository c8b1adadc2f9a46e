package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
)

// benchEmulator returns an emulator without limits and a token for it.
func benchEmulator(b *testing.B) (*Emulator, string) {
	b.Helper()
	em := New(Config{CallsPer20s: -1, DailyQuota: -1, MaxConcurrency: -1, ImportRowsPerSec: -1, ExportProcessingTime: -1})
	b.Cleanup(func() { _ = em.Close() })
	rec := httptest.NewRecorder()
	em.ServeHTTP(rec, httptest.NewRequest("GET", "/identity/oauth/token?grant_type=client_credentials", nil))
	var tok tokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil {
		b.Fatal(err)
	}
	return em, tok.AccessToken
}

func serve(b *testing.B, em *Emulator, tok string, req *http.Request) *httptest.ResponseRecorder {
	b.Helper()
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	em.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"success":true`) {
		b.Fatalf("%d %s", rec.Code, rec.Body.String()[:min(300, rec.Body.Len())])
	}
	return rec
}

// BenchmarkMillionMemberList pages through a list of a million members, 300
// at a time, as a full resync reads it.
func BenchmarkMillionMemberList(b *testing.B) {
	em, tok := benchEmulator(b)
	list := em.CreateStaticList("Big", em.CreateFolder("F"))
	em.AddListMembers(list, em.GenerateLeads(1_000_000)...)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heapMB")
	path := fmt.Sprintf("/rest/v1/lists/%d/leads.json", list)
	for b.Loop() {
		token, pages := "", 0
		for {
			q := url.Values{"fields": {"id,email"}}
			if token != "" {
				q.Set("nextPageToken", token)
			}
			rec := serve(b, em, tok, httptest.NewRequest("GET", path+"?"+q.Encode(), nil))
			pages++
			var r struct{ NextPageToken string }
			if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
				b.Fatal(err)
			}
			if token = r.NextPageToken; token == "" {
				break
			}
		}
		if pages != 3334 {
			b.Fatalf("%d pages", pages)
		}
	}
}

// BenchmarkRemove300FromMillion removes and re-adds 300 members of a
// million-member list per iteration (two calls).
func BenchmarkRemove300FromMillion(b *testing.B) {
	em, tok := benchEmulator(b)
	list := em.CreateStaticList("Big", em.CreateFolder("F"))
	ids := em.GenerateLeads(1_000_000)
	em.AddListMembers(list, ids...)
	path := fmt.Sprintf("/rest/v1/lists/%d/leads.json", list)
	i := 0
	for b.Loop() {
		q := make([]string, 300)
		for j := range q {
			q[j] = itoa(ids[(i*300+j*3331)%len(ids)])
		}
		i++
		qs := "?id=" + strings.Join(q, ",")
		serve(b, em, tok, httptest.NewRequest("DELETE", path+qs, nil))
		serve(b, em, tok, httptest.NewRequest("POST", path+qs, nil))
	}
}

// BenchmarkBulkImport10MB imports a file just under 10 MB into a list and
// applies it.
func BenchmarkBulkImport10MB(b *testing.B) {
	em, tok := benchEmulator(b)
	list := em.CreateStaticList("Big", em.CreateFolder("F"))
	var file bytes.Buffer
	file.WriteString("email,firstName,lastName\n")
	rows := 0
	for file.Len() < MaxImportFileBytes-100 {
		fmt.Fprintf(&file, "person%07d@example.com,First%d,Last%d\n", rows, rows, rows)
		rows++
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "leads.csv")
	fw.Write(file.Bytes()[:bytes.LastIndexByte(file.Bytes()[:MaxImportFileBytes-100], '\n')+1])
	mw.Close()
	b.ReportMetric(float64(rows), "rows")
	for b.Loop() {
		req := httptest.NewRequest("POST", fmt.Sprintf("/bulk/v1/leads.json?format=csv&listId=%d", list), bytes.NewReader(body.Bytes()))
		req.Header.Set("Content-Type", mw.FormDataContentType())
		serve(b, em, tok, req)
		em.Imports() // applies the instant import
	}
}
