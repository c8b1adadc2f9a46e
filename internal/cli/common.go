package cli

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/listsync/listsync/internal/config"
)

// commonFlags are the flags every command that reads the config has.
type commonFlags struct {
	config    string
	logLevel  string
	logFormat string
}

func newCommonFlags(fs *flag.FlagSet) *commonFlags {
	f := &commonFlags{}
	fs.StringVar(&f.config, "config", "", "the config `file` (default $"+ConfigEnv+", else ./"+ConfigFileDefault+")")
	fs.StringVar(&f.logLevel, "log-level", "", "log `level`: debug, info, warn or error (default warn, info for the worker)")
	fs.StringVar(&f.logFormat, "log-format", "auto", "log `format`: console, json, or auto (console on a terminal, else JSON)")
	return f
}

// configPath picks the config file: the flag, else $LISTSYNC_CONFIG, else
// ./listsync.yaml.
func (e *env) configPath(flagValue string) string {
	return cmp.Or(flagValue, e.getenv(ConfigEnv), ConfigFileDefault)
}

// loaded is a loaded and validated config with the directory its models
// are read from.
type loaded struct {
	cfg  *config.Config
	root *os.Root
	path string
}

func (l *loaded) Close() error {
	if l == nil || l.root == nil {
		return nil
	}
	return l.root.Close()
}

// loadConfig reads, expands, defaults and validates the config file. Every
// problem is a configError (exit 2).
func (e *env) loadConfig(flagValue string) (*loaded, error) {
	path := e.configPath(flagValue)
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &configError{fmt.Errorf("config file %s not found (give --config FILE or set $%s; config.example.yaml is the annotated reference)", path, ConfigEnv)}
		}
		return nil, &configError{fmt.Errorf("opening config: %w", err)}
	}
	defer f.Close()
	dir := filepath.Dir(path)
	cfg, err := config.Load(f, config.Options{LookupEnv: e.lookup, Dir: dir})
	if err != nil {
		return nil, &configError{fmt.Errorf("%s: %w", path, err)}
	}
	// Models are read through an os.Root of the config's directory, so
	// that no path (nor symlink) in the config reaches outside it.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, &configError{fmt.Errorf("opening the config's directory: %w", err)}
	}
	if err := cfg.Validate(root.FS()); err != nil {
		_ = root.Close()
		return nil, &configError{fmt.Errorf("%s is not valid:\n%w", path, err)}
	}
	return &loaded{cfg: cfg, root: root, path: path}, nil
}

// newLogger builds the command's logger on stderr: console lines on a
// terminal, JSON otherwise (or as --log-format says).
func (e *env) newLogger(f *commonFlags, defaultLevel zapcore.Level, defaultJSON bool) (*zap.Logger, error) {
	level := defaultLevel
	if f.logLevel != "" {
		if err := level.Set(strings.ToLower(f.logLevel)); err != nil {
			return nil, usagef("--log-level %q: want debug, info, warn or error", f.logLevel)
		}
	}
	terminal := e.isTerminal(e.stderr)
	var jsonFormat bool
	switch f.logFormat {
	case "json":
		jsonFormat = true
	case "console":
	case "auto", "":
		jsonFormat = defaultJSON || !terminal
	default:
		return nil, usagef("--log-format %q: want console, json or auto", f.logFormat)
	}
	return newZap(e.stderr, level, jsonFormat, terminal), nil
}

func newZap(w io.Writer, level zapcore.Level, jsonFormat, color bool) *zap.Logger {
	var enc zapcore.Encoder
	if jsonFormat {
		ec := zap.NewProductionEncoderConfig()
		ec.TimeKey = "time"
		ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
		ec.EncodeDuration = zapcore.StringDurationEncoder
		enc = zapcore.NewJSONEncoder(ec)
	} else {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		ec.CallerKey = ""
		ec.StacktraceKey = ""
		if color {
			ec.EncodeLevel = zapcore.CapitalColorLevelEncoder
		}
		enc = zapcore.NewConsoleEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level))
}

// syncsNamed returns the named syncs (all when names is empty), or a usage
// error naming the unknown ones.
func syncsNamed(cfg *config.Config, names []string) ([]*config.Sync, error) {
	if len(names) == 0 {
		out := make([]*config.Sync, len(cfg.Syncs))
		for i := range cfg.Syncs {
			out[i] = &cfg.Syncs[i]
		}
		return out, nil
	}
	var out []*config.Sync
	var unknown []string
	seen := map[string]bool{}
	for _, n := range names {
		s, ok := cfg.Sync(n)
		if !ok {
			unknown = append(unknown, n)
			continue
		}
		if !seen[n] {
			out = append(out, s)
			seen[n] = true
		}
	}
	if len(unknown) > 0 {
		var known []string
		for _, s := range cfg.Syncs {
			known = append(known, s.Name)
		}
		return nil, usagef("no sync named %s (configured: %s)", strings.Join(quoteAll(unknown), ", "), strings.Join(known, ", "))
	}
	return out, nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// oneSync returns the one sync named by the positional arguments.
func oneSync(cfg *config.Config, pos []string) (*config.Sync, error) {
	switch len(pos) {
	case 0:
		return nil, usagef("name the sync")
	case 1:
		s, err := syncsNamed(cfg, pos)
		if err != nil {
			return nil, err
		}
		return s[0], nil
	default:
		return nil, usagef("name exactly one sync, not %d", len(pos))
	}
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}
