package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	stdsync "sync"
	"time"

	"golang.org/x/term"

	"github.com/listsync/listsync/internal/config"
	"github.com/listsync/listsync/internal/marketo"
)

// Exit codes of [Run].
const (
	// ExitOK: everything asked for succeeded.
	ExitOK = 0
	// ExitFailed: a sync, or a connection check, failed.
	ExitFailed = 1
	// ExitUsage: the command line or the configuration is wrong.
	ExitUsage = 2
)

// ConfigFileDefault is the config file used when neither --config nor
// $LISTSYNC_CONFIG names one.
const ConfigFileDefault = "listsync.yaml"

// ConfigEnv is the environment variable naming the config file.
const ConfigEnv = "LISTSYNC_CONFIG"

// Version is reported by `listsync version` and the status page.
const Version = "0.1.0-dev"

// Option configures [Run] with what main hands it.
type Option func(*env)

// WithLookupEnv gives Run the environment (os.LookupEnv in main): for
// $LISTSYNC_CONFIG and the config's ${VAR} references. Without it, no
// variable is set.
func WithLookupEnv(f config.LookupEnvFunc) Option { return func(e *env) { e.lookup = f } }

// WithTerminal overrides the detection of whether stderr is a terminal
// (console logs and progress on a terminal, JSON logs otherwise).
func WithTerminal(isTerminal bool) Option { return func(e *env) { e.terminal = &isTerminal } }

// WithTempDir sets the directory for the engine's spill files and the demo
// (os.TempDir() in main; "" lets each package choose).
func WithTempDir(dir string) Option { return func(e *env) { e.tempDir = dir } }

// WithListenNotify is called with the worker's HTTP address once it
// listens (tests use --listen 127.0.0.1:0).
func WithListenNotify(f func(net.Addr)) Option { return func(e *env) { e.onListen = f } }

// WithNow sets the clock (default time.Now).
func WithNow(now func() time.Time) Option { return func(e *env) { e.now = now } }

// env is what a command may use of the outside world.
type env struct {
	stdout, stderr io.Writer
	lookup         config.LookupEnvFunc
	terminal       *bool
	tempDir        string
	onListen       func(net.Addr)
	now            func() time.Time
	// tuneMarketo, set by tests only, adjusts the Marketo client's config
	// (poll intervals) before the client is built.
	tuneMarketo func(*marketo.Config)
}

func (e *env) getenv(name string) string {
	if e.lookup == nil {
		return ""
	}
	v, _ := e.lookup(name)
	return v
}

// isTerminal reports whether w is a terminal, unless WithTerminal said.
func (e *env) isTerminal(w io.Writer) bool {
	if e.terminal != nil {
		return *e.terminal
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

type command struct {
	name    string
	args    string
	summary string
	help    string
	run     func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return []command{
		{"run", "[--config F] [--full-resync] [--allow-removals] [--json] [SYNC...]", "run syncs once (all of them when none is named)", runHelp, cmdRun},
		{"plan", "[--config F] [--json] SYNC", "show what a run would change, touching neither Marketo nor the state", planHelp, cmdPlan},
		{"worker", "[--config F] [--listen ADDR]", "run the syncs on their schedules until SIGINT or SIGTERM", workerHelp, cmdWorker},
		{"validate", "[--config F] [--connect]", "check the config; with --connect also reach every warehouse and Marketo", validateHelp, cmdValidate},
		{"history", "[--config F] [SYNC] [--limit N] [--json]", "show recent runs", historyHelp, cmdHistory},
		{"rejects", "[--config F] SYNC [--json]", "show the rows Marketo rejected, with its reasons", rejectsHelp, cmdRejects},
		{"reset", "[--config F] SYNC", "forget a sync's state; its next run resyncs from Marketo", resetHelp, cmdReset},
		{"demo", "", "run a sync end to end on embedded sample data, with no services", demoHelp, cmdDemo},
		{"healthcheck", "[--timeout D] URL", "exit 0 when URL answers 2xx (for container health checks)", healthcheckHelp, cmdHealthcheck},
		{"version", "", "print the version", "", cmdVersion},
	}
}

// Run runs the listsync command line args (without the program name),
// writing results to stdout and diagnostics to stderr, and returns the exit
// code. ctx ends the command early (main cancels it on SIGINT/SIGTERM).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, opts ...Option) int {
	e := &env{stdout: stdout, stderr: stderr, now: time.Now}
	for _, o := range opts {
		o(e)
	}
	if e.terminal == nil {
		t := e.isTerminal(stderr)
		e.terminal = &t
	}
	// Logs (from many goroutines) and progress lines share stderr.
	e.stderr = &lockedWriter{w: stderr}
	if len(args) == 0 {
		usage(e.stderr)
		return ExitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "--help", "-help", "help":
		if len(rest) > 0 {
			if c, ok := findCommand(rest[0]); ok {
				commandUsage(e.stdout, c, nil)
				return ExitOK
			}
		}
		usage(e.stdout)
		return ExitOK
	case "--version", "-version":
		name = "version"
	}
	c, ok := findCommand(name)
	if !ok {
		fmt.Fprintf(e.stderr, "listsync: unknown command %q\n\n", name)
		usage(e.stderr)
		return ExitUsage
	}
	err := c.run(ctx, e, rest)
	return e.exit(c, err)
}

func findCommand(name string) (command, bool) {
	cmds := commands()
	i := slices.IndexFunc(cmds, func(c command) bool { return c.name == name })
	if i < 0 {
		return command{}, false
	}
	return cmds[i], true
}

// exit reports err and maps it to an exit code.
func (e *env) exit(c command, err error) int {
	var ue *usageError
	var ce *configError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.Is(err, errReported):
		return ExitFailed
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "listsync %s: %v\n", c.name, ue.err)
		fmt.Fprintf(e.stderr, "usage: listsync %s %s\nRun 'listsync %s --help' for details.\n", c.name, c.args, c.name)
		return ExitUsage
	case errors.As(err, &ce):
		fmt.Fprintf(e.stderr, "listsync %s: %v\n", c.name, indentJoined(ce.err))
		return ExitUsage
	default:
		fmt.Fprintf(e.stderr, "listsync %s: %v\n", c.name, err)
		return ExitFailed
	}
}

// indentJoined renders an errors.Join of problems one per indented line.
func indentJoined(err error) string {
	msg := err.Error()
	if !strings.Contains(msg, "\n") {
		return msg
	}
	return strings.ReplaceAll("\n"+msg, "\n", "\n  ")
}

// usageError is a mistake on the command line: exit 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// configError is a problem with the config file: exit 2.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// errReported means the command already told the user what failed; exit 1.
var errReported = errors.New("failure already reported")

func usage(w io.Writer) {
	fmt.Fprintln(w, `listsync keeps Marketo static lists in step with SQL models in your warehouse.

Usage: listsync COMMAND [flags] [args]

Commands:`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
The config file is --config, else $%s, else ./%s.
Exit codes: 0 success, 1 a sync failed, 2 usage or config error.
Run 'listsync COMMAND --help' for a command's flags.
`, ConfigEnv, ConfigFileDefault)
}

func commandUsage(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: listsync %s %s\n\n%s\n", c.name, c.args, c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
	if fs == nil {
		fs = c.flags(nil)
	}
	var flags []string
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if arg != "" {
			line += " " + arg
		}
		line = fmt.Sprintf("%-28s %s", line, usage)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			line += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		flags = append(flags, line)
	})
	if len(flags) > 0 {
		fmt.Fprintf(w, "\nFlags:\n%s\n", strings.Join(flags, "\n"))
	}
}

// flags returns the command's flag set (for --help when the command has not
// built one).
func (c command) flags(e *env) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	switch c.name {
	case "run":
		newRunFlags(fs)
	case "plan":
		newPlanFlags(fs)
	case "worker":
		newWorkerFlags(fs)
	case "validate":
		newValidateFlags(fs)
	case "history":
		newHistoryFlags(fs)
	case "rejects":
		newRejectsFlags(fs)
	case "reset":
		newCommonFlags(fs)
	case "healthcheck":
		fs.Duration("timeout", 3*time.Second, "give up after `duration`")
	}
	return fs
}

// parse parses args with flags allowed before, between and after the
// positional arguments ("--" ends the flags), printing the help on
// --help.
func (e *env) parse(name string, fs *flag.FlagSet, args []string) ([]string, error) {
	c, _ := findCommand(name)
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			commandUsage(e.stdout, c, fs)
			return nil, flag.ErrHelp
		}
		if err != nil {
			return nil, &usageError{err}
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func cmdVersion(_ context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if _, err := e.parse("version", fs, args); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "listsync %s\n", Version)
	return nil
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu stdsync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
