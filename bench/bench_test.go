package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMedian(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   []int64
		want int64
	}{
		{"empty", nil, 0},
		{"one", []int64{7}, 7},
		{"odd unsorted", []int64{9, 1, 5}, 5},
		{"even takes the mean of the middle two", []int64{4, 1, 10, 2}, 3},
		{"outlier does not move it", []int64{100, 101, 99, 10_000}, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := append([]int64(nil), tc.in...)
			require.Equal(t, tc.want, Median(tc.in))
			require.Equal(t, in, tc.in, "Median must not reorder its input")
		})
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	s := Summarize([]Measurement{
		{Wall: 3 * time.Second, MaxRSS: 30},
		{Wall: 1 * time.Second, MaxRSS: 10},
		{Wall: 2 * time.Second, MaxRSS: 50},
	})
	require.Equal(t, 3, s.N)
	require.Equal(t, 2*time.Second, s.Wall)
	require.Equal(t, time.Second, s.MinWall)
	require.Equal(t, 3*time.Second, s.MaxWall)
	require.Equal(t, int64(30), s.MaxRSS)
	require.Equal(t, "2.00 s (1.00–3.00 s, n=3)", fmtSpread(s))
}

func TestFormatting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ got, want string }{
		{fmtInt(0), "0"},
		{fmtInt(999), "999"},
		{fmtInt(1000), "1,000"},
		{fmtInt(5_050_000), "5,050,000"},
		{fmtInt(-12345), "-12,345"},
		{fmtDur(1234 * time.Millisecond), "1.23 s"},
		{fmtDur(42500 * time.Millisecond), "42.5 s"},
		{fmtDur(512 * time.Second), "512 s"},
		{fmtMB(256 << 20), "256 MB"},
		{shellQuote("plain-arg_1.0"), "plain-arg_1.0"},
		{shellQuote(`\copy (SELECT 1) to /dev/null`), `'\copy (SELECT 1) to /dev/null'`},
		{shellQuote("it's"), `'it'\''s'`},
		{shortEndpoint("DELETE /rest/v1/lists/{id}/leads.json"), "DELETE lists/{id}/leads"},
		{shortEndpoint("GET /bulk/v1/leads/batch/{id}.json"), "GET bulk leads/batch/{id}"},
	} {
		require.Equal(t, tc.want, tc.got)
	}
}

func TestMarkdown(t *testing.T) {
	t.Parallel()
	r := &Report{
		Title:    "Results",
		Preamble: []string{"- taken today"},
		Sections: []Section{{
			Title: "1. Case",
			Text:  []string{"Intro."},
			Tables: []*Table{{
				Header: []string{"a", "b"},
				Rows:   [][]string{{"x|y", "line\nbreak"}, {"short"}},
			}},
			Notes: []string{"A note."},
		}},
	}
	want := "## Results\n\n- taken today\n\n### 1. Case\n\nIntro.\n\n" +
		"| a | b |\n|---|---|\n| x\\|y | line break |\n| short |  |\n\nA note.\n"
	require.Equal(t, want, r.Markdown())
}

func TestUpdateFile(t *testing.T) {
	t.Parallel()
	block := func(s string) string { return beginMarker + "\n\n" + s + "\n\n" + endMarker + "\n" }
	for _, tc := range []struct {
		name    string
		old     string // "" means the file does not exist
		want    string
		wantErr string
	}{
		{name: "new file gets a header", old: "", want: fileHeader + block("NEW")},
		{name: "text without markers keeps it and appends", old: "# Mine\n\nAnalysis.\n", want: "# Mine\n\nAnalysis.\n\n" + block("NEW")},
		{
			name: "replaces only between the markers",
			old:  "# Top\n\n" + block("OLD figures") + "\n## Findings written by hand\n\nKeep me.\n",
			want: "# Top\n\n" + block("NEW") + "\n## Findings written by hand\n\nKeep me.\n",
		},
		{name: "a lone marker is an error", old: "x\n" + beginMarker + "\nfigures\n", wantErr: "markers are damaged"},
		{name: "markers out of order are an error", old: endMarker + "\n" + beginMarker + "\n", wantErr: "markers are damaged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
			if tc.old != "" {
				require.NoError(t, os.WriteFile(path, []byte(tc.old), 0o644))
			}
			err := UpdateFile(path, "NEW\n")
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				got, rerr := os.ReadFile(path)
				require.NoError(t, rerr)
				require.Equal(t, tc.old, string(got), "a failed update must leave the file alone")
				return
			}
			require.NoError(t, err)
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, tc.want, string(got))
			// Idempotent: a second run changes nothing.
			require.NoError(t, UpdateFile(path, "NEW\n"))
			again, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, string(got), string(again))
		})
	}
}

func TestComputeAPIBounds(t *testing.T) {
	t.Parallel()
	b := ComputeAPIBounds(500, 100_500, 2000)
	// 100,000 people at about 60 bytes a line fit one 10 MB import file.
	require.Equal(t, int64(1), b.AddFiles)
	require.Equal(t, int64(2), b.AddMin)
	require.Equal(t, int64(334+4), b.RemoveMin)
	require.Equal(t, int64(334), b.AddSegment)
	require.Equal(t, int64(400), b.AddSegmentDefault)
	require.Equal(t, int64(668), b.RemoveSegment)
	require.Equal(t, int64(800), b.RemoveSegmentDefault)
	require.Equal(t, 50*time.Second, b.AddBound, "adds wait for the import: 100,000 rows at 2,000 rows/s")
	require.Equal(t, 338*200*time.Millisecond, b.RemoveBound, "removes: 338 calls at 5 a second")
	// The goal of ≤ 55% of Segment's calls is reachable: the minimum is 51%.
	require.Less(t, float64(b.RemoveMin)/float64(b.RemoveSegment), apiGoalSegmentRemove)
}

func TestImportBytesMatchesPerson(t *testing.T) {
	t.Parallel()
	var want int64 = int64(len("email,firstName,lastName,company\n"))
	for id := int64(1); id <= 3; id++ {
		e, f, l, c := Person(id)
		want += int64(len(strings.Join([]string{e, f, l, c}, ",")) + 1)
	}
	require.Equal(t, want, importBytes(0, 3))
}

func TestPersonIsDeterministicAndDistinct(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for id := int64(1); id <= 20_000; id++ {
		e, f, l, c := Person(id)
		require.NotEmpty(t, f)
		require.NotEmpty(t, l)
		require.NotEmpty(t, c)
		require.NotContains(t, e+f+l+c, ",", "generated values must not need CSV quoting")
		k := strings.ToLower(e)
		require.False(t, seen[k], "email %s repeats", e)
		seen[k] = true
		e2, _, _, _ := Person(id)
		require.Equal(t, e, e2)
	}
}

func TestParseGoBench(t *testing.T) {
	t.Parallel()
	out := []byte(`goos: linux
goarch: amd64
pkg: github.com/listsync/listsync/internal/warehouse/postgres
cpu: Intel(R) Xeon(R) Processor
BenchmarkRead1M-2   	       1	1523456789 ns/op	    656387 rows/s	207654320 B/op	 5000123 allocs/op
BenchmarkBroken-2   	--- FAIL
PASS
ok  	github.com/listsync/listsync/internal/warehouse/postgres	3.1s
pkg: github.com/listsync/listsync/internal/marketo
BenchmarkRemove10k-2	      10	  12345 ns/op	        38.00 calls/op
`)
	got := ParseGoBench(out)
	require.Len(t, got, 2)
	require.Equal(t, "github.com/listsync/listsync/internal/warehouse/postgres", got[0].Pkg)
	require.Equal(t, "BenchmarkRead1M-2", got[0].Name)
	require.Equal(t, int64(1), got[0].Iters)
	require.InDelta(t, 1523456789, got[0].NsPerOp, 0.5)
	require.Equal(t, "656,387 rows/s", got[0].custom())
	bop, ok := got[0].metric("B/op")
	require.True(t, ok)
	require.InDelta(t, 207654320, bop, 0.5)
	require.Equal(t, "github.com/listsync/listsync/internal/marketo", got[1].Pkg)
	require.Equal(t, "38 calls/op", got[1].custom())
}

func TestParsePprofTop(t *testing.T) {
	t.Parallel()
	out := []byte(`File: postgres.test
Type: cpu
Showing nodes accounting for 2.10s, 70.00% of 3s total
      flat  flat%   sum%        cum   cum%
     0.60s 20.00% 20.00%      0.60s 20.00%  runtime.memmove
     0.45s 15.00% 35.00%      1.20s 40.00%  github.com/listsync/listsync/internal/warehouse/postgres.(*rows).Next
     0.30s 10.00% 45.00%      0.30s 10.00%  syscall.Syscall6
`)
	require.Equal(t, []string{"runtime.memmove 20.00%", "warehouse/postgres.(*rows).Next 15.00%"}, ParsePprofTop(out, 2, false))
	require.Equal(t, []string{"runtime.memmove 20.00%"}, ParsePprofTop(out, 1, true))
}

func TestShortFunc(t *testing.T) {
	t.Parallel()
	require.Equal(t, "slices.swapRangeCmpFunc[…] (inline)",
		shortFunc("slices.swapRangeCmpFunc[go.shape.struct { github.com/listsync/listsync/internal/sync.key string; values []string }] (inline)"))
	require.Equal(t, "sync.(*sorter).add", shortFunc("github.com/listsync/listsync/internal/sync.(*sorter).add"))
	require.Equal(t, "iter.Pull2[…].func1", shortFunc("iter.Pull2[go.shape.struct { Key string },go.shape.interface { Error string }].func1"))
}

func TestParseRuns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in string }{
		{"array", `[{"sync":"a","api_calls":3}]`},
		{"object per line", "{\"sync\":\"a\",\"api_calls\":3}\n"},
		{"wrapped", `{"runs":[{"sync":"a","api_calls":3}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runs, err := ParseRuns([]byte(tc.in))
			require.NoError(t, err)
			require.Len(t, runs, 1)
			n, ok := runs[0].Int("APICalls", "api_calls")
			require.True(t, ok)
			require.Equal(t, int64(3), n)
			require.Equal(t, "a", runs[0].Str("sync"))
		})
	}
}

func TestParseOptions(t *testing.T) {
	t.Parallel()
	o, err := parseOptions([]string{"--quick"}, os.Stderr)
	require.NoError(t, err)
	require.Equal(t, []int64{50_000, 100_000}, o.DiffNs)
	require.Equal(t, "", o.Out, "a quick run prints instead of overwriting BENCHMARKS.md")
	require.Equal(t, []string{"diff", "api", "e2e", "scale"}, o.Cases, "the Go benchmarks take minutes: not in a quick run")

	o, err = parseOptions(nil, os.Stderr)
	require.NoError(t, err)
	require.Equal(t, allCases, o.Cases)

	o, err = parseOptions([]string{"--cases", "1,api", "--n", "1_000_000"}, os.Stderr)
	require.NoError(t, err)
	require.Equal(t, []string{"diff", "api"}, o.Cases)
	require.Equal(t, []int64{1_000_000}, o.DiffNs)
	require.Equal(t, "BENCHMARKS.md", o.Out)
	require.Equal(t, 3, o.Repeats)

	_, err = parseOptions([]string{"--cases", "fast"}, os.Stderr)
	require.ErrorContains(t, err, `unknown case "fast"`)
	_, err = parseOptions([]string{"--n", "ten"}, os.Stderr)
	require.ErrorContains(t, err, `--n: "ten"`)
}

func TestMeasureReportsTheChildsRSSNotTheHarnesss(t *testing.T) {
	t.Parallel()
	// Go starts children with vfork semantics, which seeds their rusage
	// maxrss with the parent's: a harness holding a big emulator must still
	// see a small child as small.
	big := make([]byte, 200<<20)
	for i := 0; i < len(big); i += 4096 {
		big[i] = 1
	}
	m, err := Measure(t.Context(), Cmd{Path: "/bin/sh", Args: []string{"-c", "exit 0"}})
	require.NoError(t, err)
	require.Positive(t, m.MaxRSS)
	require.Less(t, m.MaxRSS, int64(50<<20), "the child's peak RSS must not include the harness's %d MB", len(big)>>20)
	require.Equal(t, byte(1), big[0])
}

func TestMeasureExitError(t *testing.T) {
	t.Parallel()
	m, err := Measure(t.Context(), Cmd{Path: "/bin/sh", Args: []string{"-c", "echo oops >&2; exit 3"}})
	var ee *ExitError
	require.ErrorAs(t, err, &ee)
	require.Contains(t, ee.Error(), "oops")
	require.Equal(t, "oops\n", string(m.Stderr))
}

func TestParseTimeOutput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name, in string
		ok       bool
		rss      int64
	}{
		{"plain", "12345 0.50 0.25\n", true, 12345 * 1024},
		{"after a signal line", "Command terminated by signal 9\n2048 1.00 0.00\n", true, 2048 * 1024},
		{"garbage", "no numbers here\n", false, 0},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
		require.NoError(t, os.WriteFile(p, []byte(tc.in), 0o644))
		rss, user, _, ok := parseTimeOutput(p)
		require.Equal(t, tc.ok, ok, tc.name)
		require.Equal(t, tc.rss, rss, tc.name)
		if ok && tc.name == "plain" {
			require.Equal(t, 500*time.Millisecond, user)
		}
	}
}

func TestLoadNote(t *testing.T) {
	t.Parallel()
	require.Equal(t, ": the machine was otherwise quiet", loadNote(0.15, 0.6, 2))
	require.Equal(t, ": other work ran on the machine, so the figures are noisy", loadNote(0.15, 3.2, 2))
	require.Equal(t, "", loadNote(-1, 1, 2))
}

// TestParseProcStat: the machine's busy time is every tick of the cpu line
// but idle and iowait, at 10 ms a tick; other lines and bad input give none.
func TestParseProcStat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string
		want time.Duration
		ok   bool
	}{
		{"all fields", "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n", 161 * 10 * time.Millisecond, true},
		{"old kernel", "cpu 10 0 10 99 1\n", 20 * 10 * time.Millisecond, true},
		{"per-cpu line first", "cpu0 1 2 3 4 5\n", 0, false},
		{"too short", "cpu 1 2 3\n", 0, false},
		{"not a number", "cpu 1 x 3 4 5\n", 0, false},
		{"empty", "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := parseProcStat([]byte(tc.in))
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}
