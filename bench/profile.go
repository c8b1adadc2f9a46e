package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BuildProfiler builds bench/listsyncprof (listsync with profiles) into dir.
func BuildProfiler(ctx context.Context, repo, dir string) (string, error) {
	bin := filepath.Join(dir, "listsyncprof")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./bench/listsyncprof")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building listsyncprof: %w\n%s", err, out)
	}
	return bin, nil
}

// profiled runs `listsync sub --config … args…` once more under the
// profiler (never one of the measured repeats) and records the top of its
// CPU, allocation and peak-heap profiles for the report.
func (b *Bench) profiled(ctx context.Context, label string, s *Setup, sub string, args ...string) error {
	if !b.opt.Profile || b.profBin == "" {
		return nil
	}
	dir := filepath.Join(b.work, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	base := filepath.Join(dir, strings.NewReplacer(" ", "_", "/", "_", ",", "").Replace(label))
	cpu, mem, peak, peakRSS := base+".cpu.prof", base+".allocs.prof", base+".peakheap.prof", base+".peakrss.txt"
	c := Cmd{Path: b.profBin, Args: append([]string{"--cpuprofile", cpu, "--memprofile", mem, "--peakheap", peak, "--peakrss", peakRSS, sub, "--config", s.ConfigPath()}, args...), Dir: s.Dir}
	m, err := Measure(ctx, c)
	if err != nil {
		return err
	}
	b.profRows = append(b.profRows, []string{
		label, fmtDur(m.Wall) + ", " + fmtMB(m.MaxRSS), peakRSSLine(peakRSS),
		pprofTop(ctx, cpu, "", 6),
		pprofTopCum(ctx, cpu, 8),
		pprofTop(ctx, peak, "inuse_space", 4),
		pprofTop(ctx, mem, "alloc_space", 4),
	})
	return nil
}

// pprofTopCum returns the top functions by cumulative CPU, leaving out the
// runtime's and the standard library's frames so the pipeline's phases show.
func pprofTopCum(ctx context.Context, path string, n int) string {
	if _, err := os.Stat(path); err != nil {
		return "(no profile)"
	}
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=200", "-show=listsync/internal/(sync|state|warehouse|marketo)|jackc/pgx|modernc.org/sqlite", path).Output()
	if err != nil {
		return "(pprof failed)"
	}
	return strings.Join(ParsePprofTop(out, n, true), ", ")
}

// profileSection renders the profiles taken during the run.
func (b *Bench) profileSection() Section {
	return Section{
		Title: "Profiles of listsync itself",
		Text: []string{"One extra run of each measured command under `bench/listsyncprof` (cmd/listsync with `--cpuprofile`, an allocation profile, " +
			"and a heap profile taken at the largest live heap). Files are kept in `bench/out/<run>/profiles/` (`go tool pprof -http=: <file>`)."},
		Tables: []*Table{{Header: []string{"run", "wall, peak RSS (profiled)", "at the largest RSS", "CPU: top by flat", "CPU: top by cumulative (engine, stores, warehouse, client, pgx, sqlite frames)", "live heap at its peak", "allocated in all"}, Rows: b.profRows}},
	}
}

// peakRSSLine returns the first line of a --peakrss file: the process's
// memory at its largest RSS.
func peakRSSLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return "(not recorded)"
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return line
}
