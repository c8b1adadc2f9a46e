package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
}

func TestRunServesAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--client-id", "a", "--client-secret", "b",
			"--folder", "Audiences", "--folder", "Other", "--list", "Demo", "--generate-leads", "3",
			"--calls-per-20s", "50", "--log-level", "debug"}, &stdout, &stderr)
	}()
	addr := regexp.MustCompile(`listening on (http://\S+)`)
	var base string
	require.Eventually(t, func() bool {
		m := addr.FindStringSubmatch(stdout.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	}, 10*time.Second, 5*time.Millisecond, "stdout: %s\nstderr: %s", &stdout, &stderr)
	require.Contains(t, stdout.String(), `folder "Audiences": id 101`)
	require.Contains(t, stdout.String(), `static list "Demo": id 1001`)

	var tok struct {
		AccessToken string `json:"access_token"`
	}
	getJSON(t, base+"/identity/oauth/token?grant_type=client_credentials&client_id=a&client_secret=b", &tok)
	req, err := http.NewRequest("GET", base+"/rest/asset/v1/folder/byName.json?name=Audiences", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Contains(t, string(body), `"id":101`)

	var members []map[string]any
	getJSON(t, base+"/_emulator/lists/1001/members", &members)
	require.Len(t, members, 3)
	var stats map[string]any
	getJSON(t, base+"/_emulator/stats", &stats)
	require.EqualValues(t, 1, stats["calls_total"])

	cancel()
	select {
	case code := <-done:
		require.Equal(t, 0, code, "stderr: %s", stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop")
	}
	require.Contains(t, stderr.String(), `"msg":"stopping"`)
	require.Contains(t, stderr.String(), `"msg":"marketo call"`)
}

func TestRunFlags(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { busy.Close() }) // after the parallel subtests
	for _, tt := range []struct {
		name    string
		args    []string
		code    int
		errText string
	}{
		{"help", []string{"--help"}, 0, "-import-rows-per-sec"},
		{"unknown flag", []string{"--nope"}, 2, "flag provided but not defined"},
		{"fault rate", []string{"--fault-rate", "1.5"}, 2, "--fault-rate 1.5"},
		{"fault kinds", []string{"--fault-kinds", "604,oops"}, 2, `unknown fault kind "oops"`},
		{"list without folder", []string{"--list", "x"}, 2, "--list needs a --folder"},
		{"duplicate list", []string{"--folder", "f", "--list", "x", "--list", "x"}, 2, "given twice"},
		{"zero limit", []string{"--max-concurrency", "0"}, 2, "--max-concurrency 0"},
		{"arguments", []string{"serve"}, 2, "unexpected arguments: serve"},
		{"log level", []string{"--log-level", "loud"}, 2, "--log-level"},
		{"busy port", []string{"--listen", busy.Addr().String()}, 1, "address already in use"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr syncBuffer
			code := run(t.Context(), tt.args, &stdout, &stderr)
			require.Equal(t, tt.code, code, "stderr: %s", stderr.String())
			require.True(t, strings.Contains(stderr.String(), tt.errText), "stderr: %s", stderr.String())
		})
	}
}
