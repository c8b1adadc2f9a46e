package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func FuzzParseIDs(f *testing.F) {
	f.Add("1,2,3", []byte(`{"input":[{"id":4},{"id":"5"}]}`))
	f.Add(" 7 ,, 8", []byte(nil))
	f.Add("x", []byte(`{"input":[{"id":null}]}`))
	f.Add("", []byte(`{`))
	f.Fuzz(func(t *testing.T, param string, body []byte) {
		ids, err := parseIDs([]string{param}, body)
		if err != nil {
			require.Nil(t, ids)
			return
		}
		for _, id := range ids {
			require.Positive(t, id)
		}
	})
}

func FuzzParseFolderParam(f *testing.F) {
	f.Add(`{"id":13,"type":"Folder"}`)
	f.Add(`{"id":"13","type":"program"}`)
	f.Add("42")
	f.Add(`{"id":-1}`)
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := parseFolderParam(s)
		if err != nil {
			return
		}
		require.Positive(t, ref.ID)
		require.Contains(t, []string{"Folder", "Program"}, ref.Type)
	})
}

func FuzzPageToken(f *testing.F) {
	f.Add("members", int64(1000001), "")
	f.Add("leads", int64(0), "NVSW2YTFOJZTUMJQGAYDAMBR")
	f.Fuzz(func(t *testing.T, kind string, last int64, other string) {
		if last >= 0 && !strings.Contains(kind, ":") {
			got, err := decodePageToken(kind, encodePageToken(kind, last))
			require.NoError(t, err)
			require.Equal(t, last, got)
		}
		if n, err := decodePageToken(kind, other); err == nil {
			require.GreaterOrEqual(t, n, int64(0))
		}
	})
}

func FuzzParseImportFile(f *testing.F) {
	f.Add([]byte("email,firstName\na@x.com,A\n"), "csv")
	f.Add([]byte("email\tx\n\"a\tb\"\t\"c\n"), "tsv")
	f.Add([]byte("\xef\xbb\xbfemail;a\n;;;\n"), "ssv")
	f.Add([]byte("email,email\n"), "csv")
	f.Fuzz(func(t *testing.T, data []byte, format string) {
		header, rows, err := parseImportFile(data, format)
		if err != nil {
			return
		}
		require.NotEmpty(t, header)
		seen := map[string]bool{}
		for _, h := range header {
			require.NotEmpty(t, h)
			require.False(t, seen[strings.ToLower(h)])
			seen[strings.ToLower(h)] = true
		}
		for _, r := range rows {
			require.NotEmpty(t, r)
		}
	})
}

// FuzzServeAPI sends arbitrary requests through the whole handler: it must
// never panic, and must answer a Marketo envelope, a bulk file or an HTTP
// gateway error.
func FuzzServeAPI(f *testing.F) {
	em := New(Config{CallsPer20s: -1, DailyQuota: -1, MaxConcurrency: -1, ImportRowsPerSec: -1, ExportProcessingTime: -1})
	defer em.Close()
	folder := em.CreateFolder("F")
	list := em.CreateStaticList("L", folder)
	em.AddListMembers(list, em.GenerateLeads(3)...)
	rec := httptest.NewRecorder()
	em.ServeHTTP(rec, httptest.NewRequest("GET", "/identity/oauth/token?grant_type=client_credentials", nil))
	var tok tokenResponse
	require.NoError(f, json.Unmarshal(rec.Body.Bytes(), &tok))

	f.Add("POST", "/rest/v1/lists/1001/leads.json", "id=1000001,1000002&id=5", "", []byte(nil))
	f.Add("DELETE", "/rest/v1/lists/1001/leads.json", "", "application/json", []byte(`{"input":[{"id":1000001}]}`))
	f.Add("POST", "/rest/v1/leads.json", "_method=GET", "application/x-www-form-urlencoded", []byte("filterType=email&filterValues=lead1000001@example.com"))
	f.Add("POST", "/rest/v1/leads.json", "", "application/json", []byte(`{"action":"createOnly","input":[{"email":"a@x.com","numberOfEmployees":"x"}]}`))
	f.Add("POST", "/rest/asset/v1/staticLists.json", "folder=101", "application/x-www-form-urlencoded", []byte(`name=N&folder={"id":101,"type":"Folder"}`))
	f.Add("GET", "/rest/asset/v1/folder/byName.json", "name=F&type=Folder", "", []byte(nil))
	f.Add("POST", "/bulk/v1/leads.json", "format=csv&listId=1001", "multipart/form-data; boundary=b",
		[]byte("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.csv\"\r\n\r\nemail,firstName\nz@x.com,Z\n\r\n--b--\r\n"))
	f.Add("POST", "/bulk/v1/leads/export/create.json", "", "application/json", []byte(`{"fields":["id","email"],"filter":{"staticListId":1001}}`))
	f.Add("GET", "/rest/v1/lists/1001/leads.json", "batchSize=2&nextPageToken=NVSW2YTFOJZTUMJQGAYDAMBR&fields=email,id", "", []byte(nil))
	f.Fuzz(func(t *testing.T, method, path, query, ctype string, body []byte) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		if strings.HasPrefix(path, "/_emulator") {
			return // the seeding API may allocate millions of leads on request
		}
		switch method {
		case "GET", "POST", "DELETE", "PUT":
		default:
			method = "GET"
		}
		req, err := http.NewRequest(method, "http://emulator"+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.URL.RawQuery = query
		req.RequestURI = req.URL.RequestURI()
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		rec := httptest.NewRecorder()
		em.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusPartialContent, http.StatusNotFound, http.StatusRequestEntityTooLarge,
			http.StatusRequestURITooLong, http.StatusBadRequest, http.StatusRequestedRangeNotSatisfiable:
		default:
			t.Fatalf("unexpected status %d: %s", rec.Code, rec.Body.String())
		}
		if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") && rec.Code == http.StatusOK {
			var env map[string]any
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &env), rec.Body.String())
			if strings.HasPrefix(path, "/rest/") || strings.HasPrefix(path, "/bulk/") {
				require.Contains(t, env, "success")
				require.Contains(t, env, "requestId")
			}
		}
	})
}
