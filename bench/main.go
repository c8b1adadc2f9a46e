// Command bench measures listsync against its two physical limits (reading
// the model once, and Marketo's API budget) and against Segment's approach,
// and writes the figures into BENCHMARKS.md.
//
//	go run ./bench            # the full run (about 20 minutes), writes BENCHMARKS.md
//	go run ./bench --quick    # small sizes, about two minutes, prints the report
//
// It needs the machine's Postgres (127.0.0.1:5432, user postgres) and psql.
// It creates a private schema, builds cmd/listsync once, serves the Marketo
// emulator in process on a loopback port with Marketo's real limits, and runs
// `listsync plan` and `listsync run` as child processes, measuring each
// one's wall time and peak RSS.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Options are the command line of bench.
type Options struct {
	Quick    bool
	Cases    []string
	DiffNs   []int64
	Repeats  int
	Ops      int64
	E2EN     int64
	E2EReps  int
	APIReps  int
	ImportRS int
	E2EImpRS int
	Latency  time.Duration
	Calls20s int
	MaxConc  int
	Out      string
	PGURL    string
	Work     string
	Keep     bool
	Listsync string
	Profile  bool
	GoBench  string
	Args     []string // the command line, for the report
}

// defaultOut is the report file of a full run, in the repository root.
const defaultOut = "BENCHMARKS.md"

// allCases are the case names, in the order they run.
var allCases = []string{"diff", "api", "e2e", "scale", "gobench"}

func parseOptions(args []string, stderr io.Writer) (*Options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &Options{Args: args}
	var cases, ns, out string
	var repeats, e2eReps, apiReps int
	var ops, e2eN int64
	fs.BoolVar(&o.Quick, "quick", false, "small sizes and fewer repeats: finishes in about two minutes and prints the report instead of writing BENCHMARKS.md (unless --out is given)")
	fs.StringVar(&cases, "cases", "", "comma-separated cases to run: diff (1), api (2), e2e (3), scale (4), gobench (the in-package Go benchmarks); default all, and all but gobench with --quick")
	fs.StringVar(&ns, "n", "", "comma-separated model sizes of the diff case (default 1000000,5000000; quick 50000,100000)")
	fs.IntVar(&repeats, "repeats", 0, "repeats of each diff measurement, reported as medians (default 3)")
	fs.Int64Var(&ops, "ops", 0, "adds and removes of the API-economy case (default 100000; quick 10000)")
	fs.Int64Var(&e2eN, "e2e-n", 0, "members of the end-to-end and scale cases (default 1000000; quick 20000)")
	fs.IntVar(&e2eReps, "e2e-repeats", 0, "repeats of each steady-state run of the end-to-end and scale cases (default 3; quick 1)")
	fs.IntVar(&apiReps, "api-repeats", 0, "repeats of the API-economy runs: the first adds run measures the import rate, later ones start from the rate it kept (their calls are deterministic and their wall time is set by Marketo's limits) (default 2; quick 1)")
	fs.IntVar(&o.ImportRS, "import-rows-per-sec", 2000, "the emulator's bulk import speed in the API-economy case (Marketo's realistic speed)")
	fs.IntVar(&o.E2EImpRS, "e2e-import-rows-per-sec", 10000, "the emulator's bulk import speed in the end-to-end and scale cases (faster than Marketo, so that a first sync of a million fits the run; the bound it sets is reported)")
	fs.DurationVar(&o.Latency, "latency", 0, "latency the emulator adds to every API call")
	fs.IntVar(&o.Calls20s, "calls-per-20s", 100, "listsync's calls_per_20s (the emulator allows 100, Marketo's instance limit; the benchmark is the only integration)")
	fs.IntVar(&o.MaxConc, "max-concurrency", 10, "listsync's max_concurrency (the emulator allows 10)")
	fs.StringVar(&out, "out", "", "Markdown file to write the report into, between its bench markers (default BENCHMARKS.md; quick: none, the report goes to stdout)")
	fs.StringVar(&o.PGURL, "pg", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "the Postgres server (warehouse and state); a private schema is created and dropped")
	fs.StringVar(&o.Work, "work", "", "working directory for configs, state files and profiles (default a new directory under bench/out)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the working directory and the Postgres schema")
	fs.StringVar(&o.Listsync, "listsync", "", "a listsync binary to measure instead of building cmd/listsync")
	fs.BoolVar(&o.Profile, "profile", true, "profile one extra run of each measured listsync command, and the in-package benchmarks, and summarise the profiles")
	fs.StringVar(&o.GoBench, "gobench", "./internal/...", "packages whose Go benchmarks the gobench case runs")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q (bench takes flags only; see --help)", fs.Args())
	}
	if cases == "" {
		cases = strings.Join(allCases, ",")
		if o.Quick {
			cases = "diff,api,e2e,scale"
		}
	}
	for _, c := range strings.Split(cases, ",") {
		c = strings.TrimSpace(c)
		switch c {
		case "1":
			c = "diff"
		case "2":
			c = "api"
		case "3":
			c = "e2e"
		case "4":
			c = "scale"
		case "go":
			c = "gobench"
		}
		if c == "" {
			continue
		}
		if !slices.Contains(allCases, c) {
			return nil, fmt.Errorf("--cases: unknown case %q (want %s)", c, strings.Join(allCases, ", "))
		}
		o.Cases = append(o.Cases, c)
	}
	pick := func(set, full, quick int64) int64 {
		if set > 0 {
			return set
		}
		if o.Quick {
			return quick
		}
		return full
	}
	if ns == "" {
		ns = "1000000,5000000"
		if o.Quick {
			ns = "50000,100000"
		}
	}
	for _, s := range strings.Split(ns, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(strings.ReplaceAll(s, "_", "")), 10, 64)
		if err != nil || n < 100 {
			return nil, fmt.Errorf("--n: %q is not a model size of at least 100 rows", s)
		}
		o.DiffNs = append(o.DiffNs, n)
	}
	o.Repeats = int(pick(int64(repeats), 3, 3))
	o.APIReps = int(pick(int64(apiReps), 2, 1))
	o.Ops = pick(ops, 100_000, 10_000)
	o.E2EN = pick(e2eN, 1_000_000, 20_000)
	o.E2EReps = int(pick(int64(e2eReps), 3, 1))
	o.Out = out
	if o.Out == "" && !o.Quick {
		// Resolved against the repository root once it is found.
		o.Out = defaultOut
	}
	if o.Ops < 1000 || o.E2EN < 1000 {
		return nil, fmt.Errorf("--ops and --e2e-n must be at least 1000")
	}
	return o, nil
}

func (o *Options) has(c string) bool { return slices.Contains(o.Cases, c) }

// Bench is one run of the harness.
type Bench struct {
	opt     *Options
	repo    string
	work    string
	bin     string
	log     io.Writer
	started time.Time
	schemas []string
	// whSchema holds the generated warehouse tables.
	whSchema string
	// e2eWH is the people table of the end-to-end and scale cases.
	e2eWH *Warehouse
	// profBin is bench/listsyncprof; profRows the profiles taken with it.
	profBin  string
	profRows [][]string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opt, err := parseOptions(args, stderr)
	if err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	b := &Bench{opt: opt, log: stderr, started: time.Now()}
	rep, err := b.Run(ctx)
	if rep != nil {
		md := rep.Markdown()
		if out := opt.Out; out != "" {
			if out == defaultOut && b.repo != "" {
				out = filepath.Join(b.repo, defaultOut)
			}
			if werr := UpdateFile(out, md); werr != nil {
				fmt.Fprintln(stderr, "bench:", werr)
				return 1
			}
			fmt.Fprintf(stderr, "bench: wrote %s\n", out)
		} else {
			fmt.Fprint(stdout, md)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	return 0
}

func (b *Bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "[%6.1fs] %s\n", time.Since(b.started).Seconds(), fmt.Sprintf(format, args...))
}

// Run sets up, runs the selected cases and returns the report. A failing
// case is reported in its section; the error says which cases failed.
func (b *Bench) Run(ctx context.Context) (*Report, error) {
	repo, err := findRepo()
	if err != nil {
		return nil, err
	}
	b.repo = repo
	if b.opt.Work == "" {
		base := filepath.Join(repo, "bench", "out")
		if err := os.MkdirAll(base, 0o755); err != nil {
			return nil, fmt.Errorf("creating %s: %w", base, err)
		}
		b.work, err = os.MkdirTemp(base, "run-")
		if err != nil {
			return nil, fmt.Errorf("creating the working directory: %w", err)
		}
	} else {
		b.work, err = filepath.Abs(b.opt.Work)
		if err != nil {
			return nil, fmt.Errorf("resolving --work: %w", err)
		}
		if err := os.MkdirAll(b.work, 0o755); err != nil {
			return nil, fmt.Errorf("creating %s: %w", b.work, err)
		}
	}
	defer b.cleanup()
	b.logf("working in %s", b.work)

	machine := DescribeMachine(ctx, b.opt.PGURL)
	loadStart := LoadAvg()
	rep := &Report{Title: "Results"}

	var failed []string
	needBinary := b.opt.has("diff") || b.opt.has("api") || b.opt.has("e2e") || b.opt.has("scale")
	if needBinary {
		if b.opt.Listsync != "" {
			b.bin, err = filepath.Abs(b.opt.Listsync)
		} else {
			b.logf("building cmd/listsync")
			b.bin, err = BuildListsync(ctx, repo, b.work)
		}
		if err != nil {
			return nil, err
		}
		if b.opt.Profile {
			if b.profBin, err = BuildProfiler(ctx, repo, b.work); err != nil {
				return nil, err
			}
		}
	}
	type caseFn struct {
		name string
		fn   func(context.Context) (Section, error)
	}
	fns := []caseFn{
		{"diff", b.caseDiff},
		{"api", b.caseAPI},
		{"e2e", b.caseE2E},
		{"scale", b.caseScale},
		{"gobench", b.caseGoBench},
	}
	for _, c := range fns {
		if !b.opt.has(c.name) || ctx.Err() != nil {
			continue
		}
		b.logf("case %s", c.name)
		sec, err := c.fn(ctx)
		if err != nil {
			b.logf("case %s failed: %v", c.name, err)
			failed = append(failed, c.name)
			sec.Notes = append(sec.Notes, "**The case failed:** "+cellEscape(err.Error()))
		}
		rep.Sections = append(rep.Sections, sec)
	}
	if len(b.profRows) > 0 {
		rep.Sections = append(rep.Sections, b.profileSection())
	}
	loadEnd := LoadAvg()
	mode := "full run"
	if b.opt.Quick {
		mode = "quick run (small sizes; not the reference figures)"
	}
	rep.Preamble = []string{
		fmt.Sprintf("- **Taken:** %s to %s (%s), %s.", b.started.Format("2006-01-02 15:04 MST"),
			time.Now().Format("15:04 MST"), time.Since(b.started).Round(time.Second), mode),
		"- **Machine:** " + machine.String() + ".",
		fmt.Sprintf("- **Load average** (1 min) at start %.2f, at end %.2f%s.", loadStart, loadEnd, loadNote(loadStart, loadEnd, runtime.NumCPU())),
		"- **Reproduce everything:** `" + b.commandLine() + "` (from the repository root; needs Postgres on 127.0.0.1:5432 and psql).",
		"- Wall time is the whole child process's, from start to exit; peak RSS is GNU time's `%M` for the child (the rusage Go's os/exec returns would report the harness's own size, see `bench/measure.go`). Each figure is the median of n repeats, with their range.",
	}
	if len(failed) > 0 {
		return rep, fmt.Errorf("cases failed: %s", strings.Join(failed, ", "))
	}
	return rep, nil
}

// loadNote says how far the load average lets the figures be trusted.
func loadNote(start, end float64, cores int) string {
	if start < 0 || end < 0 {
		return ""
	}
	if max(start, end) < 0.5*float64(cores) {
		return ": the machine was otherwise quiet"
	}
	return ": other work ran on the machine, so the figures are noisy"
}

// commandLine is the bench command that reproduces this report.
func (b *Bench) commandLine() string {
	parts := []string{"go", "run", "./bench"}
	for _, a := range b.opt.Args {
		if strings.HasPrefix(a, "--out") || strings.HasPrefix(a, "-out") || strings.HasPrefix(a, "--work") || strings.HasPrefix(a, "--keep") {
			continue
		}
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

// reproduce returns the bench command that reproduces one case's figure.
func (b *Bench) reproduce(extra ...string) string {
	parts := []string{"go", "run", "./bench"}
	if b.opt.Quick {
		parts = append(parts, "--quick")
	}
	parts = append(parts, extra...)
	return "`" + strings.Join(parts, " ") + "`"
}

func (b *Bench) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if b.opt.Keep {
		b.logf("kept %s and schemas %v", b.work, b.schemas)
		return
	}
	for _, s := range b.schemas {
		if err := DropSchema(ctx, b.opt.PGURL, s); err != nil {
			b.logf("cleanup: %v", err)
		}
	}
	if b.opt.Work == "" {
		// Keep the profiles: move them out of the run directory first.
		_ = os.RemoveAll(filepath.Join(b.work, "tmp"))
		entries, _ := os.ReadDir(b.work)
		for _, e := range entries {
			if e.IsDir() && e.Name() == "profiles" {
				continue
			}
			_ = os.RemoveAll(filepath.Join(b.work, e.Name()))
		}
	}
}

// newSchema creates a private schema that cleanup drops.
func (b *Bench) newSchema(ctx context.Context, prefix string) (string, error) {
	s, err := NewSchema(ctx, b.opt.PGURL, prefix)
	if err != nil {
		return "", err
	}
	b.schemas = append(b.schemas, s)
	return s, nil
}

// findRepo returns the module root: the nearest directory above the working
// directory holding go.mod.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the repository: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("finding the repository: no go.mod above the working directory (run bench from the repository)")
		}
		dir = parent
	}
}
