package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// GoBench is one result line of `go test -bench`.
type GoBench struct {
	Pkg     string
	Name    string
	Iters   int64
	NsPerOp float64
	// Metrics holds every "value unit" pair after the iterations, in order
	// (ns/op, B/op, allocs/op and custom metrics such as rows/s).
	Metrics []Metric
}

// Metric is one "value unit" pair of a benchmark line.
type Metric struct {
	Value float64
	Unit  string
}

// ParseGoBench reads `go test -bench` output.
func ParseGoBench(out []byte) []GoBench {
	var res []GoBench
	pkg := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || (len(f)-2)%2 != 0 {
			continue
		}
		iters, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		g := GoBench{Pkg: pkg, Name: f[0], Iters: iters}
		ok := true
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				ok = false
				break
			}
			g.Metrics = append(g.Metrics, Metric{Value: v, Unit: f[i+1]})
			if f[i+1] == "ns/op" {
				g.NsPerOp = v
			}
		}
		if ok {
			res = append(res, g)
		}
	}
	return res
}

// metric returns the value of unit, and whether it was reported.
func (g GoBench) metric(unit string) (float64, bool) {
	for _, m := range g.Metrics {
		if m.Unit == unit {
			return m.Value, true
		}
	}
	return 0, false
}

// custom renders the metrics other than ns/op, B/op and allocs/op.
func (g GoBench) custom() string {
	var parts []string
	for _, m := range g.Metrics {
		switch m.Unit {
		case "ns/op", "B/op", "allocs/op":
			continue
		}
		parts = append(parts, fmtMetric(m.Value)+" "+m.Unit)
	}
	return strings.Join(parts, ", ")
}

func fmtMetric(v float64) string {
	switch {
	case v >= 1e6 || v == float64(int64(v)):
		return fmtInt(int64(v + 0.5))
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// benchPackages lists the packages under pattern that declare a Go benchmark.
func benchPackages(ctx context.Context, repo, pattern string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-f", "{{.ImportPath}} {{.Dir}} {{join .TestGoFiles \",\"}} {{join .XTestGoFiles \",\"}}", pattern)
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("listing packages %s: %w", pattern, err)
	}
	var pkgs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		var files []string
		for _, list := range f[2:] {
			files = append(files, strings.Split(list, ",")...)
		}
		for _, name := range files {
			b, err := os.ReadFile(filepath.Join(f[1], name))
			if err == nil && bytes.Contains(b, []byte("\nfunc Benchmark")) {
				pkgs = append(pkgs, f[0])
				break
			}
		}
	}
	sort.Strings(pkgs)
	return pkgs, nil
}

// caseGoBench runs the in-package Go benchmarks, one package at a time with
// CPU and heap profiles, and summarises the results and the profiles.
func (b *Bench) caseGoBench(ctx context.Context) (Section, error) {
	sec := Section{
		Title: "In-package Go benchmarks",
		Text: []string{"The benchmarks the packages declare (warehouse rows/s per backend, Snowflake and BigQuery against their protocol fakes; " +
			"client calls per 10,000 adds and removes; the engine's diff), run one package at a time with `-benchmem` and CPU and heap profiles. " +
			"Rows against a fake measure listsync's decoding, not the real service."},
	}
	pkgs, err := benchPackages(ctx, b.repo, b.opt.GoBench)
	if err != nil {
		return sec, err
	}
	tbl := &Table{Header: []string{"package", "benchmark", "time/op", "reported metrics", "B/op", "allocs/op", "reproduce"}}
	prof := &Table{Caption: "What the profiles of these benchmarks spend their time and memory on (top functions by flat CPU, and by bytes allocated). " +
		"A profile covers the whole test binary, so the benchmark's setup (generating rows, seeding the emulator) shows too.",
		Header: []string{"package", "CPU (flat)", "allocated (flat)"}}
	sec.Tables = []*Table{tbl}
	profDir := filepath.Join(b.work, "profiles")
	if err := os.MkdirAll(profDir, 0o755); err != nil {
		return sec, fmt.Errorf("creating %s: %w", profDir, err)
	}
	var failed []string
	for _, pkg := range pkgs {
		short := strings.TrimPrefix(pkg, "github.com/listsync/listsync/")
		base := strings.ReplaceAll(short, "/", "_")
		// These are macro-benchmarks (a million rows, a whole bulk
		// import): one iteration each, as their packages document.
		args := []string{"test", "-run=NONE", "-bench=.", "-benchmem", "-benchtime=1x", "-count=1", "-timeout=30m"}
		cpu := filepath.Join(profDir, base+".cpu.prof")
		mem := filepath.Join(profDir, base+".mem.prof")
		if b.opt.Profile {
			args = append(args, "-cpuprofile", cpu, "-memprofile", mem, "-o", filepath.Join(b.work, base+".test"))
		}
		args = append(args, "./"+short)
		b.logf(" go %s", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = b.repo
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.logf("  %s failed after %s: %v\n%s", short, time.Since(start).Round(time.Second), err, tail(out, 1500))
			failed = append(failed, short)
			tbl.Rows = append(tbl.Rows, []string{short, "(failed)", "", strings.TrimSpace(tail(out, 300)), "", "", ""})
			continue
		}
		repro := "`go test -run=NONE -bench=. -benchmem -benchtime=1x ./" + short + "`"
		for _, g := range ParseGoBench(out) {
			bop, _ := g.metric("B/op")
			aop, _ := g.metric("allocs/op")
			tbl.Rows = append(tbl.Rows, []string{short, strings.TrimSuffix(g.Name, fmt.Sprintf("-%d", b.cores())),
				fmtDur(time.Duration(g.NsPerOp)), g.custom(), fmtMB(int64(bop)), fmtInt(int64(aop)), repro})
		}
		if b.opt.Profile {
			prof.Rows = append(prof.Rows, []string{short, pprofTop(ctx, cpu, "", 5), pprofTop(ctx, mem, "alloc_space", 5)})
		}
	}
	if b.opt.Profile && len(prof.Rows) > 0 {
		sec.Tables = append(sec.Tables, prof)
		sec.Notes = append(sec.Notes, "The profiles are kept in `bench/out/<run>/profiles/` (`go tool pprof -http=: <file>`).")
	}
	if len(failed) > 0 {
		return sec, fmt.Errorf("benchmarks failed in %s", strings.Join(failed, ", "))
	}
	return sec, nil
}

func (b *Bench) cores() int {
	out, err := exec.Command("go", "env", "GOMAXPROCS").Output()
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return n
		}
	}
	return runtime.NumCPU()
}

// pprofTop returns the top functions of a profile by flat value, as
// "name share%" pairs.
func pprofTop(ctx context.Context, path, sampleIndex string, n int) string {
	if _, err := os.Stat(path); err != nil {
		return "(no profile)"
	}
	// asyncPreempt collects the samples of goroutines preempted while the
	// machine is busy; it says nothing about the code.
	args := []string{"tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", n), `-hide=^runtime\.asyncPreempt$`}
	if sampleIndex != "" {
		args = append(args, "-sample_index="+sampleIndex)
	}
	args = append(args, path)
	out, err := exec.CommandContext(ctx, "go", args...).Output()
	if err != nil {
		return "(pprof failed)"
	}
	return strings.Join(ParsePprofTop(out, n, false), ", ")
}

// ParsePprofTop reads `go tool pprof -top` output and returns up to n
// entries as "function flat%" (or "function cum%" when cum is set).
func ParsePprofTop(out []byte, n int, cum bool) []string {
	var res []string
	inTable := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "flat") && strings.Contains(line, "cum%") {
			inTable = true
			continue
		}
		if !inTable || line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		name := shortFunc(strings.Join(f[5:], " "))
		share := f[1]
		if cum {
			share = f[4]
		}
		res = append(res, name+" "+share)
		if len(res) == n {
			break
		}
	}
	return res
}

func tail(b []byte, n int) string {
	if len(b) > n {
		return "…" + string(b[len(b)-n:])
	}
	return string(b)
}

// shortFunc shortens a profile's function name: the module prefix goes, and
// the type arguments of generic functions (go.shape…) become "[…]".
func shortFunc(name string) string {
	name = strings.ReplaceAll(name, "github.com/listsync/listsync/internal/", "")
	if i := strings.Index(name, "[go.shape"); i >= 0 {
		depth, j := 0, i
		for ; j < len(name); j++ {
			if name[j] == '[' {
				depth++
			} else if name[j] == ']' {
				depth--
				if depth == 0 {
					break
				}
			}
		}
		if j < len(name) {
			name = name[:i] + "[…]" + name[j+1:]
		}
	}
	return name
}
