package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// syncNameRE is what a sync's name may be: it appears in commands, metric
// labels and file names.
var syncNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

// Validate checks the whole configuration without touching the network and
// returns every problem found, joined, each a [*FieldError] wrapping
// [ErrInvalid] (or [ErrSchedule]). models is the file system rooted at the
// config's directory (the os.Root of Dir in production) in which every
// model must exist, inside ModelsDir.
func (c *Config) Validate(models fs.FS) error {
	v := &validator{}
	if c.Version != VersionDefault {
		v.add(c.pos.lineOf("version"), "version", "unsupported version %d (this listsync reads version %d)", c.Version, VersionDefault)
	}
	modelsDir, err := localDir(c.ModelsDir)
	if err != nil {
		v.add(c.pos.lineOf("models_dir"), "models_dir", "%v", err)
	}
	c.validateState(v)
	for _, name := range sortedKeys(c.Warehouses) {
		w := c.Warehouses[name]
		w.validate(v, "warehouses."+name)
	}
	c.validateMarketo(v)
	c.validateWorker(v)
	if len(c.Syncs) == 0 {
		v.add(c.pos.lineOf("syncs"), "syncs", "no syncs are configured")
	}
	seen := map[string]int{}
	for i := range c.Syncs {
		s := &c.Syncs[i]
		key := fmt.Sprintf("syncs[%d]", i)
		if s.Name != "" {
			key = fmt.Sprintf("syncs[%d] (%s)", i, s.Name)
		}
		if prev, dup := seen[s.Name]; dup && s.Name != "" {
			v.add(s.Line("name"), key+".name", "duplicate sync name %q (also syncs[%d])", s.Name, prev)
		}
		seen[s.Name] = i
		c.validateSync(v, s, key, modelsDir, models, err == nil)
	}
	return v.err()
}

type validator struct{ errs []error }

func (v *validator) add(line int, key, format string, args ...any) {
	v.addErr(line, key, fmt.Errorf(format, args...))
}

func (v *validator) addErr(line int, key string, err error) {
	v.errs = append(v.errs, &FieldError{Line: line, Key: key, Err: invalidError{err}})
}

// invalidError marks a validation problem as [ErrInvalid] without adding
// the word to its message.
type invalidError struct{ err error }

func (e invalidError) Error() string        { return e.err.Error() }
func (e invalidError) Unwrap() error        { return e.err }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

func (v *validator) err() error { return errors.Join(v.errs...) }

func (c *Config) validateState(v *validator) {
	s := &c.State
	switch s.Driver {
	case DriverSQLite:
		if s.DSN.IsZero() {
			v.add(s.pos.lineOf("dsn"), "state.dsn", "the sqlite state store needs a file name")
		}
	case DriverPostgres:
		if err := checkPostgresDSN(s.DSN.Reveal()); err != nil {
			v.add(s.pos.lineOf("dsn"), "state.dsn", "%v", err)
		}
	default:
		v.add(s.pos.lineOf("driver"), "state.driver", "%q is not a state driver (use sqlite or postgres)", s.Driver)
	}
}

// checkPostgresDSN checks a DSN's shape without ever quoting it.
func checkPostgresDSN(dsn string) error {
	if dsn == "" {
		return errors.New("a postgres DSN is required (postgres://user:password@host:5432/db)")
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if _, err := url.Parse(dsn); err != nil {
			return errors.New("the postgres URL does not parse (is a character in the password not percent-encoded?)")
		}
		return nil
	}
	if strings.Contains(dsn, "=") {
		return nil // key=value form; pgx parses it when connecting
	}
	return errors.New("a postgres DSN must be a postgres:// URL or key=value pairs")
}

func (w *Warehouse) validate(v *validator, key string) {
	req := func(field, val string) {
		if strings.TrimSpace(val) == "" {
			v.add(w.pos.lineOf(field), key+"."+field, "required for a %s warehouse", w.Type)
		}
	}
	// forbid reports settings that belong to other warehouse types: a typo
	// in type would otherwise silently ignore them.
	forbid := func(fields ...string) {
		for _, f := range fields {
			if w.pos.has(f) {
				v.add(w.pos.lineOf(f), key+"."+f, "not a setting of a %s warehouse", w.Type)
			}
		}
	}
	snowflake := []string{"account", "user", "password", "private_key_path", "private_key", "role", "warehouse", "database", "schema", "host", "port", "protocol", "query_timeout"}
	bigquery := []string{"project", "location", "credentials_file", "endpoint"}
	if w.QueryTimeout < 0 {
		v.add(w.pos.lineOf("query_timeout"), key+".query_timeout", "must not be negative")
	}
	switch w.Type {
	case TypePostgres:
		if err := checkPostgresDSN(w.DSN.Reveal()); err != nil {
			v.add(w.pos.lineOf("dsn"), key+".dsn", "%v", err)
		}
		forbid(append(snowflake, bigquery...)...)
	case TypeSQLite:
		req("dsn", w.DSN.Reveal())
		forbid(append(snowflake, bigquery...)...)
	case TypeSnowflake:
		req("account", w.Account)
		req("user", w.User)
		auth := 0
		for _, set := range []bool{!w.Password.IsZero(), w.PrivateKeyPath != "", !w.PrivateKey.IsZero()} {
			if set {
				auth++
			}
		}
		if auth != 1 {
			v.add(w.pos.line, key, "a snowflake warehouse needs exactly one of password, private_key_path and private_key")
		}
		if w.Port < 0 || w.Port > 65535 {
			v.add(w.pos.lineOf("port"), key+".port", "%d is not a port", w.Port)
		}
		if p := w.Protocol; p != "" && p != "https" && p != "http" {
			v.add(w.pos.lineOf("protocol"), key+".protocol", "%q is not http or https", p)
		}
		forbid(append([]string{"dsn"}, bigquery...)...)
	case TypeBigQuery:
		req("project", w.Project)
		if w.Endpoint != "" {
			if u, err := url.Parse(w.Endpoint); err != nil || u.Scheme == "" || u.Host == "" {
				v.add(w.pos.lineOf("endpoint"), key+".endpoint", "%q is not a URL", w.Endpoint)
			}
		}
		forbid(append([]string{"dsn"}, snowflake...)...)
	case "":
		v.add(w.pos.line, key+".type", "required: postgres, snowflake, bigquery or sqlite")
	default:
		v.add(w.pos.lineOf("type"), key+".type", "%q is not a warehouse type (use postgres, snowflake, bigquery or sqlite)", w.Type)
	}
}

func (c *Config) validateMarketo(v *validator) {
	m := &c.Marketo
	line := m.pos.lineOf
	if m.Endpoint == "" {
		v.add(line("endpoint"), "marketo.endpoint", "required (your instance's REST endpoint, e.g. https://123-ABC-456.mktorest.com)")
	} else if err := checkEndpoint(m.Endpoint); err != nil {
		v.add(line("endpoint"), "marketo.endpoint", "%v", err)
	}
	if m.ClientID == "" {
		v.add(line("client_id"), "marketo.client_id", "required")
	}
	if m.ClientSecret.IsZero() {
		v.add(line("client_secret"), "marketo.client_secret", "required")
	}
	if m.CallsPer20s < 1 || m.CallsPer20s > 100 {
		v.add(line("calls_per_20s"), "marketo.calls_per_20s", "%d is outside 1..100 (Marketo allows 100 calls per 20 s per instance)", m.CallsPer20s)
	}
	if m.MaxConcurrency < 1 || m.MaxConcurrency > 10 {
		v.add(line("max_concurrency"), "marketo.max_concurrency", "%d is outside 1..10 (Marketo allows 10 concurrent calls)", m.MaxConcurrency)
	}
	if m.DailyQuota < 1 {
		v.add(line("daily_quota"), "marketo.daily_quota", "must be positive")
	}
	for _, s := range c.Syncs {
		if s.ListName != "" && strings.TrimSpace(m.Folder) == "" {
			v.add(line("folder"), "marketo.folder", "required because sync %q names its list by list_name (lists are found or created in this folder)", s.Name)
			break
		}
	}
}

// checkEndpoint requires an https URL, or http on a loopback host (the
// emulator), with no path beyond an optional /rest.
func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%q is not an http(s) URL", raw)
	}
	if u.User != nil {
		return errors.New("the endpoint must not carry credentials; use client_id and client_secret")
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("%q: https is required unless the host is loopback", raw)
	}
	if p := strings.TrimSuffix(u.Path, "/"); p != "" && p != "/rest" {
		return fmt.Errorf("%q: give the instance's base URL, without the path %q", raw, u.Path)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *Config) validateWorker(v *validator) {
	w := &c.Worker
	if _, _, err := net.SplitHostPort(w.Listen); err != nil {
		v.add(w.pos.lineOf("listen"), "worker.listen", "%q is not host:port", w.Listen)
	}
	if w.MaxParallel < 1 {
		v.add(w.pos.lineOf("max_parallel"), "worker.max_parallel", "must be at least 1")
	}
	if w.ShutdownTimeout <= 0 {
		v.add(w.pos.lineOf("shutdown_timeout"), "worker.shutdown_timeout", "must be positive")
	}
}

func (c *Config) validateSync(v *validator, s *Sync, key, modelsDir string, models fs.FS, modelsDirOK bool) {
	switch {
	case s.Name == "":
		v.add(s.Line("name"), key+".name", "required")
	case !syncNameRE.MatchString(s.Name):
		v.add(s.Line("name"), key+".name", "%q: use letters, digits, '_', '-' and '.' (at most 100), starting with a letter or digit", s.Name)
	}
	switch {
	case s.Warehouse == "":
		v.add(s.Line("warehouse"), key+".warehouse", "required: the name of one of the warehouses (%s)", strings.Join(sortedKeys(c.Warehouses), ", "))
	default:
		if _, ok := c.Warehouses[s.Warehouse]; !ok {
			v.add(s.Line("warehouse"), key+".warehouse", "no warehouse named %q (configured: %s)", s.Warehouse, strings.Join(sortedKeys(c.Warehouses), ", "))
		}
	}
	if s.Model == "" {
		v.add(s.Line("model"), key+".model", "required: the path of the model's .sql file, e.g. %s/%s.sql", c.ModelsDir, s.Name)
	} else if modelsDirOK {
		if _, err := c.modelPath(s.Model, modelsDir, models); err != nil {
			v.add(s.Line("model"), key+".model", "%v", err)
		}
	}
	if s.Schedule != "" {
		if _, err := ParseSchedule(s.Schedule); err != nil {
			v.addErr(s.Line("schedule"), key+".schedule", err)
		}
	}
	switch {
	case s.ListID != 0 && s.ListName != "":
		v.add(s.Line("list_name"), key, "set exactly one of list_id and list_name, not both")
	case s.ListID == 0 && strings.TrimSpace(s.ListName) == "":
		v.add(s.pos.line, key, "set exactly one of list_id and list_name")
	case s.ListID < 0:
		v.add(s.Line("list_id"), key+".list_id", "%d is not a list id", s.ListID)
	}
	if !fieldNameOK(s.LookupField) {
		v.add(s.Line("lookup_field"), key+".lookup_field", "%q is not a field name", s.LookupField)
	}
	if s.Mode != ModeMirror && s.Mode != ModeAddOnly {
		v.add(s.Line("mode"), key+".mode", "%q is not a mode (use mirror or add_only)", s.Mode)
	}
	for _, f := range sortedKeys(s.Fields) {
		col := s.Fields[f]
		switch {
		case !fieldNameOK(f):
			v.add(s.Line("fields"), key+".fields", "%q is not a Marketo field name", f)
		case strings.EqualFold(f, s.LookupField):
			v.add(s.Line("fields"), key+".fields."+f, "the lookup field %q is sent from the key column; do not map it", f)
		case strings.TrimSpace(col) == "":
			v.add(s.Line("fields"), key+".fields."+f, "needs a model column name")
		}
	}
	if !(s.MaxRemoveFraction > 0 && s.MaxRemoveFraction <= 1) {
		v.add(s.Line("max_remove_fraction"), key+".max_remove_fraction", "%v is outside (0, 1]", s.MaxRemoveFraction)
	}
	if s.Timeout <= 0 {
		v.add(s.Line("timeout"), key+".timeout", "must be positive")
	}
}

func fieldNameOK(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// localDir cleans a models directory: it must be relative and stay below
// the config's directory.
func localDir(dir string) (string, error) {
	d := filepath.Clean(dir)
	if !filepath.IsLocal(d) {
		return "", fmt.Errorf("%q must be a directory below the config file's", dir)
	}
	return filepath.ToSlash(d), nil
}

// ModelPath returns the slash-separated path, relative to Dir, of the
// sync's model, for opening in the file system given to Validate. It
// repeats Validate's checks.
func (c *Config) ModelPath(s *Sync, models fs.FS) (string, error) {
	dir, err := localDir(c.ModelsDir)
	if err != nil {
		return "", err
	}
	return c.modelPath(s.Model, dir, models)
}

func (c *Config) modelPath(model, modelsDir string, models fs.FS) (string, error) {
	p := model
	if filepath.IsAbs(p) {
		abs, err := filepath.Abs(c.Dir)
		if err != nil {
			return "", fmt.Errorf("resolving the config directory: %v", err)
		}
		rel, err := filepath.Rel(abs, p)
		if err != nil || !filepath.IsLocal(rel) {
			return "", fmt.Errorf("%q is outside the models directory %q", model, modelsDir)
		}
		p = rel
	}
	p = filepath.ToSlash(filepath.Clean(p))
	if !filepath.IsLocal(filepath.FromSlash(p)) || (modelsDir != "." && !strings.HasPrefix(p, modelsDir+"/")) || strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("%q is outside the models directory %q", model, modelsDir)
	}
	if path.Ext(p) != ".sql" {
		return "", fmt.Errorf("%q: a model is a .sql file", model)
	}
	if models == nil {
		return "", errors.New("no file system to find models in")
	}
	st, err := fs.Stat(models, p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("model file %q does not exist", model)
	case err != nil:
		return "", fmt.Errorf("model file %q: %v", model, err)
	case !st.Mode().IsRegular():
		return "", fmt.Errorf("model %q is not a regular file", model)
	case st.Size() == 0:
		return "", fmt.Errorf("model file %q is empty", model)
	}
	return p, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
