package marketo

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestImportBody: an import file goes out as the multipart form Marketo
// reads, without being copied into it, with its exact length, and every
// reading of the body (a retry, a redirect) gets all of it.
func TestImportBody(t *testing.T) {
	t.Parallel()
	data := []byte("email,firstName\na@x.com,\"Smith, J\"\nb@x.com,\"two\r\nlines\"\n")
	body, contentType, err := multipartFile(data)
	require.NoError(t, err)
	require.Len(t, body, 3)
	require.Same(t, &data[0], &body[1][0], "the file itself, not a copy")

	req, err := http.NewRequest(http.MethodPost, "http://marketo.test/bulk/v1/leads.json", nil)
	require.NoError(t, err)
	setBody(req, body)
	want := bytes.Join(body, nil)
	require.Equal(t, int64(len(want)), req.ContentLength)
	got, err := io.ReadAll(req.Body)
	require.NoError(t, err)
	require.Equal(t, want, got)
	for range 2 {
		rc, err := req.GetBody()
		require.NoError(t, err)
		got, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}

	mt, params, err := mime.ParseMediaType(contentType)
	require.NoError(t, err)
	require.Equal(t, "multipart/form-data", mt)
	mr := multipart.NewReader(bytes.NewReader(want), params["boundary"])
	part, err := mr.NextPart()
	require.NoError(t, err)
	require.Equal(t, "file", part.FormName())
	require.Equal(t, "listsync.csv", part.FileName())
	require.Equal(t, "text/csv", part.Header.Get("Content-Type"))
	file, err := io.ReadAll(part)
	require.NoError(t, err)
	require.Equal(t, data, file)
	_, err = mr.NextPart()
	require.ErrorIs(t, err, io.EOF, "one part, then the closing boundary")

	req, err = http.NewRequest(http.MethodPost, "http://marketo.test/", nil)
	require.NoError(t, err)
	setBody(req, [][]byte{nil, {}})
	require.Equal(t, http.NoBody, req.Body, "an empty body is no body")
	require.Zero(t, req.ContentLength)
}

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
