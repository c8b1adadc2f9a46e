package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults filled by [Config.WithDefaults].
const (
	// VersionDefault is the configuration format's version; the only one.
	VersionDefault = 1
	// StateDriverDefault is the embedded state store.
	StateDriverDefault = "sqlite"
	// StateDSNDefault is the SQLite state file, beside the config file.
	StateDSNDefault = "listsync.db"
	// ModelsDirDefault is the directory, relative to the config file, that
	// every model must be inside.
	ModelsDirDefault = "models"
	// CallsPer20sDefault leaves 20 of Marketo's 100 calls per 20 s to the
	// other integrations on the instance.
	CallsPer20sDefault = 80
	// MaxConcurrencyDefault leaves half of Marketo's 10 concurrent calls.
	MaxConcurrencyDefault = 5
	// DailyQuotaDefault is Marketo's usual daily API quota.
	DailyQuotaDefault = 50000
	// LookupFieldDefault is the Marketo field and model column that
	// identify a lead.
	LookupFieldDefault = "email"
	// ModeDefault mirrors the model: adds and removes.
	ModeDefault = ModeMirror
	// MaxRemoveFractionDefault stops a run that would remove more than half
	// of a list.
	MaxRemoveFractionDefault = 0.5
	// SyncTimeoutDefault is the deadline of one run of a sync.
	SyncTimeoutDefault = time.Hour
	// ListenDefault is the worker's HTTP address: loopback only.
	ListenDefault = "127.0.0.1:9464"
	// MaxParallelDefault is how many syncs the worker runs at once.
	MaxParallelDefault = 2
	// ShutdownTimeoutDefault bounds how long the worker waits for runs in
	// flight on shutdown before cancelling them.
	ShutdownTimeoutDefault = 30 * time.Second
	// MaxConfigBytes is the largest config file Load reads.
	MaxConfigBytes = 1 << 20
)

// Sync modes.
const (
	// ModeMirror adds the model's new rows and removes members the model no
	// longer returns.
	ModeMirror = "mirror"
	// ModeAddOnly only ever adds.
	ModeAddOnly = "add_only"
)

// State store drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Warehouse types.
const (
	TypePostgres  = "postgres"
	TypeSnowflake = "snowflake"
	TypeBigQuery  = "bigquery"
	TypeSQLite    = "sqlite"
)

// ErrUnknownKey is reported for a key the configuration does not define.
var ErrUnknownKey = errors.New("unknown key")

// ErrEnv is reported for a ${VAR} reference that cannot be expanded.
var ErrEnv = errors.New("expanding ${VAR}")

// ErrInvalid is wrapped by every validation problem.
var ErrInvalid = errors.New("invalid")

// FieldError is one problem in the configuration, with the key it concerns
// (a path such as "syncs[0] (trial_users).schedule") and its line when
// known.
type FieldError struct {
	Line int
	Key  string
	Err  error
}

// Error returns "line N: key: problem".
func (e *FieldError) Error() string {
	var b bytes.Buffer
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, "%s: ", e.Key)
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying problem.
func (e *FieldError) Unwrap() error { return e.Err }

// Config is listsync's configuration file.
type Config struct {
	// Version is the format's version; 1 when omitted.
	Version int `yaml:"version"`
	// ModelsDir is the directory, relative to the config file, that holds
	// the models; no model may be outside it.
	ModelsDir  string               `yaml:"models_dir"`
	State      State                `yaml:"state"`
	Warehouses map[string]Warehouse `yaml:"warehouses"`
	Marketo    Marketo              `yaml:"marketo"`
	Worker     Worker               `yaml:"worker"`
	Syncs      []Sync               `yaml:"syncs"`

	// Dir is the directory relative paths in the file are resolved against
	// (the config file's own directory), from [Options.Dir].
	Dir string `yaml:"-"`

	pos positions
}

// State configures the state store, the ledger of what Marketo confirmed.
type State struct {
	// Driver is "sqlite" (default) or "postgres" (required when several
	// workers share the state).
	Driver string `yaml:"driver"`
	// DSN is a file path for sqlite (relative to the config file), or a
	// postgres:// URL.
	DSN Secret `yaml:"dsn"`

	pos positions
}

// Warehouse configures one warehouse. Which keys apply depends on Type.
type Warehouse struct {
	// Type is postgres, snowflake, bigquery or sqlite.
	Type string `yaml:"type"`
	// DSN is the postgres:// URL (postgres) or the database file (sqlite,
	// relative to the config file).
	DSN Secret `yaml:"dsn"`

	// Account, User, Password or PrivateKeyPath/PrivateKey, Role,
	// Warehouse, Database, Schema, Host, Port and Protocol are Snowflake's.
	Account        string `yaml:"account"`
	User           string `yaml:"user"`
	Password       Secret `yaml:"password"`
	PrivateKeyPath string `yaml:"private_key_path"`
	PrivateKey     Secret `yaml:"private_key"`
	Role           string `yaml:"role"`
	Warehouse      string `yaml:"warehouse"`
	Database       string `yaml:"database"`
	Schema         string `yaml:"schema"`
	Host           string `yaml:"host"`
	Port           int    `yaml:"port"`
	Protocol       string `yaml:"protocol"`

	// Project, Location, CredentialsFile and Endpoint are BigQuery's.
	Project         string `yaml:"project"`
	Location        string `yaml:"location"`
	CredentialsFile string `yaml:"credentials_file"`
	Endpoint        string `yaml:"endpoint"`

	// QueryTimeout (Snowflake) is set as the sessions' statement timeout,
	// a bound Snowflake enforces even if listsync dies mid-query; zero
	// leaves it to the sync's timeout.
	QueryTimeout time.Duration `yaml:"query_timeout"`

	pos positions
}

// Marketo configures the Marketo instance every sync writes to.
type Marketo struct {
	// Endpoint is the REST endpoint, e.g. https://123-ABC-456.mktorest.com.
	Endpoint     string `yaml:"endpoint"`
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"`
	// Folder is where lists named by a sync's list_name are created.
	Folder string `yaml:"folder"`
	// CallsPer20s, MaxConcurrency and DailyQuota are listsync's share of
	// the instance's API budget.
	CallsPer20s    int `yaml:"calls_per_20s"`
	MaxConcurrency int `yaml:"max_concurrency"`
	DailyQuota     int `yaml:"daily_quota"`

	pos positions
}

// Worker configures `listsync worker`.
type Worker struct {
	// Listen is the HTTP address of /healthz, /readyz, /metrics and the
	// status page.
	Listen string `yaml:"listen"`
	// MaxParallel is how many syncs run at once.
	MaxParallel int `yaml:"max_parallel"`
	// ShutdownTimeout bounds the wait for runs in flight on shutdown.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	pos positions
}

// Sync keeps one Marketo static list in step with one model.
type Sync struct {
	Name      string `yaml:"name"`
	Warehouse string `yaml:"warehouse"`
	// Model is the model's path relative to the config file, inside the
	// models directory.
	Model string `yaml:"model"`
	// Schedule is a cron expression (5 fields), a descriptor (@hourly,
	// @every 10m), optionally prefixed by CRON_TZ=Zone. Empty means the
	// sync runs only when asked.
	Schedule string `yaml:"schedule"`
	// ListID or ListName (exactly one) names the static list.
	ListID   int64  `yaml:"list_id"`
	ListName string `yaml:"list_name"`
	// LookupField is the Marketo field, and the model column, that
	// identify a lead.
	LookupField string `yaml:"lookup_field"`
	// Mode is mirror or add_only.
	Mode string `yaml:"mode"`
	// Fields maps Marketo lead fields to model columns.
	Fields map[string]string `yaml:"fields"`
	// MaxRemoveFraction is the largest fraction of the list one run may
	// remove without --allow-removals.
	MaxRemoveFraction float64 `yaml:"max_remove_fraction"`
	// Timeout is the deadline of one run.
	Timeout time.Duration `yaml:"timeout"`

	pos positions
}

// positions records the line of each key of a mapping, and of the mapping.
type positions struct {
	line int
	keys map[string]int
}

func positionsOf(n *yaml.Node) positions {
	p := positions{line: n.Line, keys: map[string]int{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		p.keys[n.Content[i].Value] = n.Content[i].Line
	}
	return p
}

// lineOf returns the line of key, else of the mapping itself.
func (p positions) lineOf(key string) int {
	if l, ok := p.keys[key]; ok {
		return l
	}
	return p.line
}

func (p positions) has(key string) bool {
	_, ok := p.keys[key]
	return ok
}

// Line returns the line of key in this sync's mapping, or of the mapping
// when the key is absent, or 0 when unknown.
func (s *Sync) Line(key string) int { return s.pos.lineOf(key) }

// UnmarshalYAML decodes the sync and remembers its keys' lines.
func (s *Sync) UnmarshalYAML(n *yaml.Node) error {
	type plain Sync
	if err := n.Decode((*plain)(s)); err != nil {
		return err
	}
	s.pos = positionsOf(n)
	return nil
}

// UnmarshalYAML decodes the warehouse and remembers its keys' lines.
func (w *Warehouse) UnmarshalYAML(n *yaml.Node) error {
	type plain Warehouse
	if err := n.Decode((*plain)(w)); err != nil {
		return err
	}
	w.pos = positionsOf(n)
	return nil
}

// UnmarshalYAML decodes the Marketo settings and remembers their lines.
func (m *Marketo) UnmarshalYAML(n *yaml.Node) error {
	type plain Marketo
	if err := n.Decode((*plain)(m)); err != nil {
		return err
	}
	m.pos = positionsOf(n)
	return nil
}

// UnmarshalYAML decodes the state settings and remembers their lines.
func (s *State) UnmarshalYAML(n *yaml.Node) error {
	type plain State
	if err := n.Decode((*plain)(s)); err != nil {
		return err
	}
	s.pos = positionsOf(n)
	return nil
}

// UnmarshalYAML decodes the worker settings and remembers their lines.
func (w *Worker) UnmarshalYAML(n *yaml.Node) error {
	type plain Worker
	if err := n.Decode((*plain)(w)); err != nil {
		return err
	}
	w.pos = positionsOf(n)
	return nil
}

// UnmarshalYAML decodes the file and remembers its top-level keys' lines.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	type plain Config
	if err := n.Decode((*plain)(c)); err != nil {
		return err
	}
	c.pos = positionsOf(n)
	return nil
}

// Options are Load's collaborators.
type Options struct {
	// LookupEnv resolves ${VAR} references (os.LookupEnv in main). When
	// nil, every reference is an error.
	LookupEnv LookupEnvFunc
	// Dir is the directory relative paths are resolved against: the
	// config file's directory. Empty means the current directory.
	Dir string
}

// Load reads one YAML document from r, refuses unknown keys, expands
// ${VAR} references and fills the defaults. It does not validate: call
// [Config.Validate].
func Load(r io.Reader, opts Options) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	if len(data) > MaxConfigBytes {
		return nil, fmt.Errorf("reading config: %w: larger than %d bytes", ErrInvalid, MaxConfigBytes)
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("parsing config: %w: the file is empty", ErrInvalid)
		}
		return nil, fmt.Errorf("parsing config: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, fmt.Errorf("parsing config: %w", err)
		}
		return nil, fmt.Errorf("parsing config: %w: line %d: more than one YAML document", ErrInvalid, extra.Line)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("parsing config: %w: the top level must be a mapping", ErrInvalid)
	}
	if err := expandNode(&doc, opts.LookupEnv); err != nil {
		return nil, fmt.Errorf("parsing config: %w", err)
	}
	if errs := checkKeys(&doc, reflect.TypeFor[Config](), ""); len(errs) > 0 {
		return nil, fmt.Errorf("parsing config: %w", errors.Join(errs...))
	}
	var c Config
	if err := doc.Decode(&c); err != nil {
		return nil, fmt.Errorf("parsing config: %w", err)
	}
	c.Dir = cmp.Or(opts.Dir, ".")
	c.WithDefaults()
	return &c, nil
}

// WithDefaults fills every unset setting with its XxxDefault and returns c.
// A number written explicitly as 0 is kept, so that Validate reports it
// instead of a default silently replacing it.
func (c *Config) WithDefaults() *Config {
	c.Version = cmp.Or(c.Version, VersionDefault)
	c.ModelsDir = cmp.Or(c.ModelsDir, ModelsDirDefault)
	c.Dir = cmp.Or(c.Dir, ".")
	c.State.Driver = cmp.Or(c.State.Driver, StateDriverDefault)
	if c.State.DSN.IsZero() && c.State.Driver == DriverSQLite {
		c.State.DSN = NewSecret(StateDSNDefault)
	}
	m := &c.Marketo
	m.CallsPer20s = orDefault(m.pos, "calls_per_20s", m.CallsPer20s, CallsPer20sDefault)
	m.MaxConcurrency = orDefault(m.pos, "max_concurrency", m.MaxConcurrency, MaxConcurrencyDefault)
	m.DailyQuota = orDefault(m.pos, "daily_quota", m.DailyQuota, DailyQuotaDefault)
	w := &c.Worker
	w.Listen = cmp.Or(w.Listen, ListenDefault)
	w.MaxParallel = orDefault(w.pos, "max_parallel", w.MaxParallel, MaxParallelDefault)
	w.ShutdownTimeout = orDefault(w.pos, "shutdown_timeout", w.ShutdownTimeout, ShutdownTimeoutDefault)
	for i := range c.Syncs {
		s := &c.Syncs[i]
		s.LookupField = cmp.Or(s.LookupField, LookupFieldDefault)
		s.Mode = cmp.Or(s.Mode, ModeDefault)
		s.MaxRemoveFraction = orDefault(s.pos, "max_remove_fraction", s.MaxRemoveFraction, MaxRemoveFractionDefault)
		s.Timeout = orDefault(s.pos, "timeout", s.Timeout, SyncTimeoutDefault)
	}
	return c
}

// orDefault is cmp.Or for numbers that remembers whether the key was
// written: an explicit zero stays zero.
func orDefault[T int | int64 | float64 | time.Duration](p positions, key string, v, def T) T {
	if v == 0 && !p.has(key) {
		return def
	}
	return v
}

// Sync returns the sync named name.
func (c *Config) Sync(name string) (*Sync, bool) {
	for i := range c.Syncs {
		if c.Syncs[i].Name == name {
			return &c.Syncs[i], true
		}
	}
	return nil, false
}

// Path resolves p, a path written in the file, against [Config.Dir].
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}
