package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// BuildListsync builds cmd/listsync into dir and returns the binary's path.
func BuildListsync(ctx context.Context, repo, dir string) (string, error) {
	bin := filepath.Join(dir, "listsync")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/listsync")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building listsync: %w\n%s", err, out)
	}
	return bin, nil
}

// SyncConf is one sync of a benchmark config.
type SyncConf struct {
	Name     string            `yaml:"name"`
	Model    string            `yaml:"model"`
	ListName string            `yaml:"list_name,omitempty"`
	ListID   int64             `yaml:"list_id,omitempty"`
	Schedule string            `yaml:"schedule,omitempty"`
	Mode     string            `yaml:"mode,omitempty"`
	Fields   map[string]string `yaml:"fields,omitempty"`
	// SQL is the model's text, written to Model.
	SQL string `yaml:"-"`
}

// Setup is everything a listsync config of the benchmark names.
type Setup struct {
	Dir            string // the config's directory (models/ under it)
	WarehouseDSN   string
	StateDriver    string // sqlite or postgres
	StateDSN       string
	MarketoURL     string
	CallsPer20s    int
	MaxConcurrency int
	DailyQuota     int
	Listen         string
	Syncs          []SyncConf
}

// ConfigPath is the path of the config file WriteConfig writes.
func (s *Setup) ConfigPath() string { return filepath.Join(s.Dir, "listsync.yaml") }

// benchFields maps the Marketo lead fields listsync sends to the model's
// columns.
var benchFields = map[string]string{"firstName": "first_name", "lastName": "last_name", "company": "company"}

// WriteConfig writes listsync.yaml and the models of s.
func (s *Setup) WriteConfig() error {
	if err := os.MkdirAll(filepath.Join(s.Dir, "models"), 0o755); err != nil {
		return fmt.Errorf("writing config: %w", err)
	}
	type syncOut struct {
		Name              string            `yaml:"name"`
		Warehouse         string            `yaml:"warehouse"`
		Model             string            `yaml:"model"`
		Schedule          string            `yaml:"schedule,omitempty"`
		ListID            int64             `yaml:"list_id,omitempty"`
		ListName          string            `yaml:"list_name,omitempty"`
		Mode              string            `yaml:"mode,omitempty"`
		Fields            map[string]string `yaml:"fields,omitempty"`
		MaxRemoveFraction float64           `yaml:"max_remove_fraction"`
		Timeout           string            `yaml:"timeout"`
	}
	syncs := make([]syncOut, 0, len(s.Syncs))
	for _, sc := range s.Syncs {
		if err := s.WriteModel(sc); err != nil {
			return err
		}
		syncs = append(syncs, syncOut{
			Name: sc.Name, Warehouse: "bench", Model: sc.Model, Schedule: sc.Schedule,
			ListID: sc.ListID, ListName: sc.ListName, Mode: sc.Mode, Fields: sc.Fields,
			// The API-economy case removes whole audiences on purpose.
			MaxRemoveFraction: 1, Timeout: "2h",
		})
	}
	cfg := map[string]any{
		"state":      map[string]string{"driver": s.StateDriver, "dsn": s.StateDSN},
		"warehouses": map[string]any{"bench": map[string]string{"type": "postgres", "dsn": s.WarehouseDSN}},
		"marketo": map[string]any{
			"endpoint":        s.MarketoURL,
			"client_id":       emuClientID,
			"client_secret":   emuClientSecret,
			"folder":          emuFolder,
			"calls_per_20s":   s.CallsPer20s,
			"max_concurrency": s.MaxConcurrency,
			"daily_quota":     s.DailyQuota,
		},
		"syncs": syncs,
	}
	if s.Listen != "" {
		cfg["worker"] = map[string]any{"listen": s.Listen}
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("writing config: %w", err)
	}
	if err := os.WriteFile(s.ConfigPath(), b, 0o600); err != nil {
		return fmt.Errorf("writing config: %w", err)
	}
	return nil
}

// WriteModel writes one sync's model file.
func (s *Setup) WriteModel(sc SyncConf) error {
	p := filepath.Join(s.Dir, sc.Model)
	if err := os.WriteFile(p, []byte(sc.SQL+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing model %s: %w", sc.Model, err)
	}
	return nil
}

// SetModel replaces the SQL of the named sync's model file.
func (s *Setup) SetModel(name, sql string) error {
	i := slices.IndexFunc(s.Syncs, func(sc SyncConf) bool { return sc.Name == name })
	if i < 0 {
		return fmt.Errorf("setting model: no sync %q", name)
	}
	s.Syncs[i].SQL = sql
	return s.WriteModel(s.Syncs[i])
}

// PlanJSON is the part of `listsync plan --json` the harness reads.
type PlanJSON struct {
	Adds         int64 `json:"adds"`
	Removes      int64 `json:"removes"`
	FieldUpdates int64 `json:"field_updates"`
	Invalid      int64 `json:"invalid"`
}

// ParsePlan reads the counts of `listsync plan --json`.
func ParsePlan(out []byte) (PlanJSON, error) {
	var p PlanJSON
	if err := json.Unmarshal(out, &p); err != nil {
		return p, fmt.Errorf("parsing plan JSON: %w (output starts %q)", err, head(out, 200))
	}
	return p, nil
}

// RunJSON is the part of one run record of `listsync run --json` the harness
// reads. Names follow the state.Run fields in snake case; both spellings are
// accepted so that the harness does not break on a naming choice.
type RunJSON map[string]any

// ParseRuns reads the run records printed by `listsync run --json`: one JSON
// array, one object, or one object per line.
func ParseRuns(out []byte) ([]RunJSON, error) {
	out = []byte(strings.TrimSpace(string(out)))
	if len(out) == 0 {
		return nil, nil
	}
	var arr []RunJSON
	if err := json.Unmarshal(out, &arr); err == nil {
		return arr, nil
	}
	var runs []RunJSON
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("parsing run JSON: %w (output starts %q)", err, head(out, 200))
		}
		switch t := v.(type) {
		case map[string]any:
			if inner, ok := t["runs"].([]any); ok {
				for _, r := range inner {
					if m, ok := r.(map[string]any); ok {
						runs = append(runs, m)
					}
				}
				continue
			}
			runs = append(runs, t)
		case []any:
			for _, r := range t {
				if m, ok := r.(map[string]any); ok {
					runs = append(runs, m)
				}
			}
		}
	}
	return runs, nil
}

// Int returns the first of keys present as a number.
func (r RunJSON) Int(keys ...string) (int64, bool) {
	for _, k := range keys {
		if v, ok := r[k].(float64); ok {
			return int64(v), true
		}
	}
	return 0, false
}

// Str returns the first of keys present as a string.
func (r RunJSON) Str(keys ...string) string {
	for _, k := range keys {
		if v, ok := r[k].(string); ok {
			return v
		}
	}
	return ""
}

func head(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
