package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/listsync/listsync/internal/marketo/emulator"
)

// shutdownTimeout bounds how long in-flight calls may take to finish after
// a stop signal.
const shutdownTimeout = 10 * time.Second

// stringsFlag is a repeatable string flag.
type stringsFlag []string

// String returns the values joined by commas.
func (s *stringsFlag) String() string { return strings.Join(*s, ", ") }

// Set adds a value.
func (s *stringsFlag) Set(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("must not be empty")
	}
	*s = append(*s, strings.TrimSpace(v))
	return nil
}

// options are the parsed command line.
type options struct {
	listen       string
	logLevel     zapcore.Level
	folders      stringsFlag
	lists        stringsFlag
	generate     int
	faultKinds   string
	cfg          emulator.Config
	faultRate    float64
	tokenExpiry  float64
	importFail   float64
	seed         int64
	slowDelay    time.Duration
	customFields stringsFlag
}

// parseFlags parses args; it returns flag.ErrHelp for --help.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("marketo-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: marketo-emulator [flags]

Serves an in-memory Marketo instance: identity under /identity, REST under
/rest, bulk under /bulk, and an inspection and seeding API under /_emulator
(GET /_emulator/stats, POST /_emulator/folders, /_emulator/lists,
/_emulator/leads, PUT /_emulator/faults; see the package documentation of
internal/marketo/emulator). A negative limit switches that limit off.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "`address` to listen on (loopback unless told otherwise)")
	fs.StringVar(&o.cfg.ClientID, "client-id", "", "client id the identity endpoint accepts (empty with an empty secret: any)")
	fs.StringVar(&o.cfg.ClientSecret, "client-secret", "", "client secret the identity endpoint accepts")
	fs.Var(&o.folders, "folder", "create a folder of this `name` (repeatable)")
	fs.Var(&o.lists, "list", "create a static list of this `name` in the first --folder (repeatable)")
	fs.IntVar(&o.generate, "generate-leads", 0, "create `N` leads with generated emails (added to the first --list, if any)")
	fs.Var(&o.customFields, "custom-field", "declare a custom lead field of this `name` (repeatable)")
	fs.IntVar(&o.cfg.CallsPer20s, "calls-per-20s", emulator.CallsPer20sDefault, "rate limit: calls per rolling 20 s (606)")
	fs.IntVar(&o.cfg.MaxConcurrency, "max-concurrency", emulator.MaxConcurrencyDefault, "calls in flight at once (615)")
	fs.IntVar(&o.cfg.DailyQuota, "daily-quota", emulator.DailyQuotaDefault, "calls per day, reset at midnight CST (607)")
	fs.IntVar(&o.cfg.ImportRowsPerSec, "import-rows-per-sec", emulator.ImportRowsPerSecDefault, "bulk import speed in rows per second (negative: instant)")
	fs.DurationVar(&o.cfg.ExportProcessingTime, "export-processing-time", emulator.ExportProcessingTimeDefault, "how long a bulk extract processes (negative: instant)")
	fs.DurationVar(&o.cfg.TokenTTL, "token-ttl", emulator.TokenTTLDefault, "access token lifetime")
	fs.DurationVar(&o.cfg.Latency, "latency", 0, "delay added to every API call (real Marketo answers in 100-500ms)")
	fs.Float64Var(&o.faultRate, "fault-rate", 0, "fraction (0-1) of API calls answered with a fault")
	fs.StringVar(&o.faultKinds, "fault-kinds", "", "comma-separated faults to draw from: 604,608,611,713,502,503,slow (default all)")
	fs.DurationVar(&o.slowDelay, "slow-delay", emulator.SlowDelayDefault, "delay of a \"slow\" fault")
	fs.Float64Var(&o.tokenExpiry, "token-expiry-rate", 0, "fraction (0-1) of calls whose token expires (602)")
	fs.Float64Var(&o.importFail, "import-failure-rate", 0, "fraction (0-1) of bulk imports that fail")
	fs.Int64Var(&o.seed, "seed", 0, "seed of the fault generator")
	fs.StringVar(&o.cfg.InstanceURL, "instance-url", emulator.InstanceURLDefault, "UI address used in asset URLs")
	level := fs.String("log-level", "info", "log level: debug (one line per call), info, warn or error")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err := o.logLevel.Set(*level); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	for name, r := range map[string]float64{"--fault-rate": o.faultRate, "--token-expiry-rate": o.tokenExpiry, "--import-failure-rate": o.importFail} {
		if r < 0 || r > 1 {
			return nil, fmt.Errorf("%s %v: want a fraction between 0 and 1", name, r)
		}
	}
	kinds, err := emulator.ParseFaultKinds(o.faultKinds)
	if err != nil {
		return nil, fmt.Errorf("--fault-kinds: %w", err)
	}
	if o.generate < 0 {
		return nil, fmt.Errorf("--generate-leads %d: want 0 or more", o.generate)
	}
	if len(o.lists) > 0 && len(o.folders) == 0 {
		return nil, errors.New("--list needs a --folder to create the list in")
	}
	seen := map[string]bool{}
	for _, l := range o.lists {
		if seen[l] {
			return nil, fmt.Errorf("--list %q given twice: static list names are unique", l)
		}
		seen[l] = true
	}
	if o.cfg.TokenTTL <= 0 {
		return nil, fmt.Errorf("--token-ttl %v: want a positive duration", o.cfg.TokenTTL)
	}
	for _, z := range []struct {
		name string
		v    int
	}{{"--calls-per-20s", o.cfg.CallsPer20s}, {"--max-concurrency", o.cfg.MaxConcurrency}, {"--daily-quota", o.cfg.DailyQuota}, {"--import-rows-per-sec", o.cfg.ImportRowsPerSec}} {
		if z.v == 0 {
			return nil, fmt.Errorf("%s 0: want a positive number, or a negative one to switch it off", z.name)
		}
	}
	o.cfg.CustomFields = o.customFields
	o.cfg.Faults = emulator.Faults{
		Rate: o.faultRate, Seed: o.seed, Kinds: kinds, SlowDelay: o.slowDelay,
		TokenExpiryRate: o.tokenExpiry, ImportFailureRate: o.importFail,
	}
	return o, nil
}

// newLogger returns a JSON logger writing to w.
func newLogger(w io.Writer, level zapcore.Level) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), level))
}

// run serves the emulator until ctx ends; it returns the process exit code:
// 0 after a clean stop or --help, 1 when serving fails, 2 for bad flags.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "marketo-emulator: %v\n", err)
		return 2
	}
	log := newLogger(stderr, o.logLevel)
	defer func() { _ = log.Sync() }()
	o.cfg.Logger = log.Named("emulator")
	em := emulator.New(o.cfg)
	defer func() { _ = em.Close() }()
	seed(em, o, stdout)

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		log.Error("listening", zap.String("address", o.listen), zap.Error(err))
		return 1
	}
	srv := &http.Server{Handler: em, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "marketo-emulator listening on http://%s\n", ln.Addr())
	log.Info("serving", zap.String("address", ln.Addr().String()),
		zap.Int("calls_per_20s", o.cfg.CallsPer20s), zap.Int("max_concurrency", o.cfg.MaxConcurrency),
		zap.Int("daily_quota", o.cfg.DailyQuota), zap.Float64("fault_rate", o.faultRate))

	select {
	case err := <-served:
		log.Error("serving", zap.Error(err))
		return 1
	case <-ctx.Done():
	}
	log.Info("stopping")
	_ = em.Close() // wakes calls waiting on --latency or slow faults
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("stopping", zap.Error(err))
		return 1
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		log.Error("serving", zap.Error(err))
		return 1
	}
	return 0
}

// seed creates the folders, lists and leads the flags ask for and prints
// their IDs.
func seed(em *emulator.Emulator, o *options, stdout io.Writer) {
	var firstFolder, firstList int64
	for _, name := range o.folders {
		id := em.CreateFolder(name)
		if firstFolder == 0 {
			firstFolder = id
		}
		fmt.Fprintf(stdout, "folder %q: id %d\n", name, id)
	}
	for _, name := range o.lists {
		id := em.CreateStaticList(name, firstFolder)
		if firstList == 0 {
			firstList = id
		}
		fmt.Fprintf(stdout, "static list %q: id %d\n", name, id)
	}
	if o.generate > 0 {
		ids := em.GenerateLeads(o.generate)
		if firstList != 0 {
			em.AddListMembers(firstList, ids...)
		}
		fmt.Fprintf(stdout, "generated %d leads: ids %d-%d\n", len(ids), ids[0], ids[len(ids)-1])
	}
}
