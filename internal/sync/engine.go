package sync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/state"
	"github.com/listsync/listsync/internal/warehouse"
)

// Marketo is what the engine needs of Marketo; *marketo.Client satisfies it.
type Marketo interface {
	ResolveList(ctx context.Context, ref marketo.ListRef) (marketo.List, error)
	AddToList(ctx context.Context, p marketo.AddParams, commit marketo.CommitFunc) error
	RemoveFromList(ctx context.Context, p marketo.RemoveParams, commit marketo.CommitFunc) error
	ListMembers(ctx context.Context, p marketo.MembersParams, fn func(ctx context.Context, page []marketo.Member) error) error
}

var _ Marketo = (*marketo.Client)(nil)

// Defaults of [EngineConfig].
const (
	// SortMemoryDefault bounds the memory of the model's external sort.
	SortMemoryDefault = 32 << 20
	// ChunkSizeDefault is the most rows handed to one AddToList or
	// RemoveFromList call; the client splits them further into API calls
	// (bulk imports of up to 10 MB, removals of 300).
	ChunkSizeDefault = 100_000
	// CommitTimeoutDefault bounds each commit of a confirmed batch to the
	// state store, which runs even when the run's context has ended.
	CommitTimeoutDefault = 30 * time.Second
	// MaxRemoveFractionDefault is the default [Spec.MaxRemoveFraction].
	MaxRemoveFractionDefault = 0.5
	// LookupFieldDefault is the default [Spec.LookupField].
	LookupFieldDefault = "email"
)

// EngineConfig configures an [Engine].
type EngineConfig struct {
	// Store keeps the ledger. Required.
	Store state.Store
	// Marketo changes the lists. Required.
	Marketo Marketo
	// Logger receives a line per run and debug detail (zap.NewNop() when
	// nil).
	Logger *zap.Logger
	// Now is the clock (time.Now when nil); it stamps runs and decides when
	// rejected rows are due for a retry.
	Now func() time.Time
	// TempDir holds each run's temporary files (sorted runs of the model,
	// the diff); "" means the system's temporary directory.
	TempDir string
	// SortMemory bounds, in bytes, the model rows held in memory while
	// sorting (SortMemoryDefault when 0).
	SortMemory int
	// ChunkSize is the most rows per AddToList or RemoveFromList call
	// (ChunkSizeDefault when 0).
	ChunkSize int
	// CommitTimeout bounds each commit to the state store
	// (CommitTimeoutDefault when 0).
	CommitTimeout time.Duration
	// Backoff spaces out the retries of rejected rows
	// (state.BackoffDefault when zero).
	Backoff state.Backoff
}

// Engine runs syncs. It is safe for concurrent use; runs of one sync are
// serialised by the state store's lock.
type Engine struct {
	cfg    EngineConfig
	store  state.Store
	mkto   Marketo
	logger *zap.Logger
	now    func() time.Time
}

// NewEngine validates cfg and returns an Engine.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if cfg.Store == nil {
		return nil, errors.New("creating sync engine: no state store")
	}
	if cfg.Marketo == nil {
		return nil, errors.New("creating sync engine: no Marketo client")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.SortMemory = cmp.Or(cfg.SortMemory, SortMemoryDefault)
	cfg.ChunkSize = cmp.Or(cfg.ChunkSize, ChunkSizeDefault)
	cfg.CommitTimeout = cmp.Or(cfg.CommitTimeout, CommitTimeoutDefault)
	cfg.Backoff = cfg.Backoff.WithDefaults()
	if cfg.SortMemory < 0 || cfg.ChunkSize < 0 || cfg.CommitTimeout < 0 {
		return nil, errors.New("creating sync engine: SortMemory, ChunkSize and CommitTimeout must not be negative")
	}
	return &Engine{cfg: cfg, store: cfg.Store, mkto: cfg.Marketo, logger: cfg.Logger, now: cfg.Now}, nil
}

// Mode says whether a sync removes members the model no longer returns.
type Mode string

const (
	// ModeMirror makes the list equal to the model: adds and removes.
	ModeMirror Mode = "mirror"
	// ModeAddOnly only adds (and updates fields); it never removes.
	ModeAddOnly Mode = "add_only"
)

// Spec describes one sync.
type Spec struct {
	// Name identifies the sync in the state store, logs and messages.
	Name string
	// Warehouse runs the model.
	Warehouse warehouse.Warehouse
	// Model is the model's path, for messages.
	Model string
	// SQL is the model's text.
	SQL string
	// List is the static list the sync writes to.
	List marketo.ListRef
	// LookupField is the Marketo field that identifies a lead and the model
	// column holding it (LookupFieldDefault when empty).
	LookupField string
	// Mode is ModeMirror (when empty) or ModeAddOnly.
	Mode Mode
	// Fields maps Marketo lead fields to the model columns that fill them.
	Fields map[string]string
	// MaxRemoveFraction is the largest share of the list's members a run
	// may remove without RunOptions.AllowRemovals (MaxRemoveFractionDefault
	// when 0).
	MaxRemoveFraction float64
	// Timeout bounds a whole run (no bound when 0).
	Timeout time.Duration
}

func (s Spec) withDefaults() Spec {
	s.LookupField = cmp.Or(strings.TrimSpace(s.LookupField), LookupFieldDefault)
	s.Mode = cmp.Or(s.Mode, ModeMirror)
	if s.MaxRemoveFraction == 0 {
		s.MaxRemoveFraction = MaxRemoveFractionDefault
	}
	return s
}

// Validate reports what is wrong with the spec, after defaults.
func (s Spec) Validate() error {
	s = s.withDefaults()
	var errs []error
	if strings.TrimSpace(s.Name) == "" {
		errs = append(errs, errors.New("the sync has no name"))
	}
	if s.Warehouse == nil {
		errs = append(errs, errors.New("no warehouse"))
	}
	if strings.TrimSpace(s.SQL) == "" {
		errs = append(errs, fmt.Errorf("model %s is empty", cmp.Or(s.Model, "(unnamed)")))
	}
	switch {
	case s.List.ID < 0:
		errs = append(errs, fmt.Errorf("list id %d is negative", s.List.ID))
	case s.List.ID > 0 && s.List.Name != "":
		errs = append(errs, errors.New("both a list id and a list name are set; set one"))
	case s.List.ID == 0 && strings.TrimSpace(s.List.Name) == "":
		errs = append(errs, errors.New("neither a list id nor a list name is set"))
	}
	if s.Mode != ModeMirror && s.Mode != ModeAddOnly {
		errs = append(errs, fmt.Errorf("mode %q is not %q or %q", s.Mode, ModeMirror, ModeAddOnly))
	}
	if s.MaxRemoveFraction < 0 || s.MaxRemoveFraction > 1 {
		errs = append(errs, fmt.Errorf("max_remove_fraction %v is not between 0 and 1", s.MaxRemoveFraction))
	}
	for f, col := range s.Fields {
		if strings.TrimSpace(f) == "" || strings.TrimSpace(col) == "" {
			errs = append(errs, fmt.Errorf("field mapping %q: %q has an empty side", f, col))
		}
		if strings.EqualFold(f, s.LookupField) {
			errs = append(errs, fmt.Errorf("field %q is the lookup field; it is sent as the key and cannot be mapped", f))
		}
	}
	if s.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s is negative", s.Timeout))
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid sync %q: %w", s.Name, errors.Join(errs...))
	}
	return nil
}

// listRef describes the configured list for the binding and messages.
func listRef(r marketo.ListRef) string {
	if r.ID > 0 {
		return "id " + strconv.FormatInt(r.ID, 10)
	}
	if r.Folder != "" {
		return fmt.Sprintf("%q in folder %q", r.Name, r.Folder)
	}
	return strconv.Quote(r.Name)
}

// RunOptions are the choices of one run.
type RunOptions struct {
	// Trigger is state.TriggerSchedule or state.TriggerManual (the default).
	Trigger string
	// FullResync reads the list's membership from Marketo into the ledger
	// before diffing.
	FullResync bool
	// AllowRemovals lets the run pass the removal guards (an empty model,
	// more removes than the spec's MaxRemoveFraction).
	AllowRemovals bool
	// Progress, when set, is told how the run goes: at the start of each
	// phase, at most once per ProgressInterval within one (every few
	// thousand model rows, every page of a resync, every committed batch),
	// and once at the end with PhaseDone and the run record's counts. Calls
	// are never concurrent and come from the run's goroutines, which wait
	// for them: Progress must return quickly.
	Progress func(Progress)
	// ProgressInterval spaces out Progress's calls within a phase
	// (ProgressIntervalDefault when 0).
	ProgressInterval time.Duration
}

// ErrGuard is matched by a [*GuardError].
var ErrGuard = errors.New("removal guard")

// GuardError stops a run before it changes Marketo, because it would remove
// all of the list's members (an empty model) or more than the spec allows.
type GuardError struct {
	Sync string
	// Empty reports an empty model (no valid rows) against a list with
	// members.
	Empty bool
	// Members is the list's size as the ledger knows it.
	Members int64
	// Adds, Updates and Removes are what the run would have done.
	Adds, Updates, Removes int64
	// MaxRemoveFraction is the sync's limit.
	MaxRemoveFraction float64
}

// Error says what the run would have done and how to allow it.
func (e *GuardError) Error() string {
	if e.Empty {
		return fmt.Sprintf("sync %q stopped before changing Marketo: the model returned no valid rows while the list has %d members, "+
			"so this run would remove %d of them (and add %d); if that is intended, run it with --allow-removals",
			e.Sync, e.Members, e.Removes, e.Adds)
	}
	return fmt.Sprintf("sync %q stopped before changing Marketo: this run would remove %d of the list's %d members (%.1f%%), "+
		"more than max_remove_fraction %g allows (it would also add %d and update %d); if that is intended, "+
		"run it with --allow-removals or raise max_remove_fraction",
		e.Sync, e.Removes, e.Members, 100*float64(e.Removes)/float64(max(e.Members, 1)), e.MaxRemoveFraction, e.Adds, e.Updates)
}

// Unwrap returns ErrGuard.
func (e *GuardError) Unwrap() error { return ErrGuard }

// guard returns the guard a diff trips, or nil. Only mirror mode removes.
func guard(spec Spec, st diffStats) *GuardError {
	if spec.Mode != ModeMirror || st.Members == 0 || st.Removes == 0 {
		return nil
	}
	g := &GuardError{Sync: spec.Name, Members: st.Members, Adds: st.Adds, Updates: st.Updates, Removes: st.Removes,
		MaxRemoveFraction: spec.MaxRemoveFraction}
	if st.ModelKeys == 0 {
		g.Empty = true
		return g
	}
	if float64(st.Removes) > spec.MaxRemoveFraction*float64(st.Members) {
		return g
	}
	return nil
}

// Plan is what a run would do now: the pipeline up to the diff, computed
// without touching Marketo or writing to the state store.
type Plan struct {
	Sync string
	// Binding is the list the ledger belongs to; Bound is false before the
	// first run (or after a reset). When it is false, or Binding.NeedsResync
	// is set, the next run starts with a full resync and its diff may differ
	// from this one.
	Binding state.Binding
	Bound   bool

	RowsRead       int64
	Invalid        int64
	InvalidSamples []string
	Duplicates     int64

	// Members is the ledger's size.
	Members int64
	// Adds, Updates and Removes are the rows a run would send; Deferred
	// the rejected rows whose retry is not due yet.
	Adds, Updates, Removes, Deferred int64
	// Samples of each, in key order; DeferredSamples read "add key" or
	// "remove key".
	AddSamples, UpdateSamples, RemoveSamples, DeferredSamples []string

	// Guard is the guard a run would stop at (without --allow-removals),
	// or nil.
	Guard *GuardError
}

// staged is a model staged for the diff.
type staged struct {
	cols  columnPlan
	rule  keyRule
	rows  *stagedRows
	stats modelStats
}

// stage runs the model and stages its valid rows for the diff.
// onRows, when not nil, is told the rows read so far every few thousand
// rows.
func (e *Engine) stage(ctx context.Context, spec Spec, dir string, onRows func(int64)) (*staged, error) {
	rows, err := spec.Warehouse.Query(ctx, &warehouse.QueryParams{SQL: spec.SQL, Model: spec.Model, Timeout: spec.Timeout})
	if err != nil {
		return nil, fmt.Errorf("running model %s: %w", spec.Model, err)
	}
	defer rows.Close()
	cols, err := planColumns(spec.Model, rows.Columns(), spec.LookupField, spec.Fields)
	if err != nil {
		return nil, err
	}
	sr, err := newStagedRows(dir, e.cfg.SortMemory)
	if err != nil {
		return nil, fmt.Errorf("reading model %s: %w", spec.Model, err)
	}
	st := &staged{cols: cols, rule: newKeyRule(spec.LookupField), rows: sr}
	st.stats, err = stageModelProgress(ctx, rows, cols, st.rule, sr, onRows)
	if err != nil {
		sr.cleanup()
		return nil, fmt.Errorf("reading model %s: %w", spec.Model, err)
	}
	if err := rows.Close(); err != nil {
		sr.cleanup()
		return nil, fmt.Errorf("reading model %s: %w", spec.Model, err)
	}
	return st, nil
}

// diffStaged merge-joins the staged model with the ledger's digest.
func (e *Engine) diffStaged(ctx context.Context, spec Spec, dir string, st *staged, out diffSink) (diffStats, error) {
	sorted, err := st.rows.sorter.finish()
	if err != nil {
		return diffStats{}, err
	}
	var it entryIter = sorted
	if m, ok := sorted.(*entryMerge); ok {
		it = readAhead(m) // merge the spilled runs beside the join
	}
	defer it.close()
	name := spec.Name
	// The rejects are staged first, so that the diff holds one store
	// cursor at a time: several syncs diffing at once could otherwise each
	// hold one connection of a bounded pool and wait for a second.
	rej, err := stageRejects(ctx, e.store, name, dir, e.cfg.SortMemory)
	if err != nil {
		return diffStats{}, err
	}
	defer rej.cleanup()
	rit, err := rej.sorter.finish()
	if err != nil {
		return diffStats{}, err
	}
	defer rit.close()
	ds, err := diff(ctx, diffInput{model: it, modelRows: st.rows.arena.f, rejects: rit, rejectRows: rej.arena.f},
		func(fn func(*state.DigestEntry) error) error { return e.store.ScanDigest(ctx, name, fn) },
		diffParams{mirror: spec.Mode == ModeMirror, hasFields: len(spec.Fields) > 0, fieldNames: st.cols.fieldNames,
			now: e.now()},
		out)
	if err != nil {
		return ds, fmt.Errorf("diffing the model with the ledger: %w", err)
	}
	return ds, nil
}

// Plan computes what a run of spec would do now. It reads the model and the
// ledger, and touches neither Marketo nor the state.
func (e *Engine) Plan(ctx context.Context, spec Spec) (*Plan, error) {
	spec = spec.withDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if spec.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, spec.Timeout)
		defer cancel()
	}
	dir, err := os.MkdirTemp(e.cfg.TempDir, "listsync-plan-*")
	if err != nil {
		return nil, fmt.Errorf("planning sync %q: creating temporary directory: %w", spec.Name, err)
	}
	defer os.RemoveAll(dir)

	p := &Plan{Sync: spec.Name}
	p.Binding, p.Bound, err = e.store.Binding(ctx, spec.Name)
	if err != nil {
		return nil, fmt.Errorf("planning sync %q: %w", spec.Name, err)
	}
	st, err := e.stage(ctx, spec, dir, nil)
	if err != nil {
		return nil, fmt.Errorf("planning sync %q: %w", spec.Name, err)
	}
	defer st.rows.cleanup()
	out := &diffOutput{}
	ds, err := e.diffStaged(ctx, spec, dir, st, out)
	if err != nil {
		return nil, fmt.Errorf("planning sync %q: %w", spec.Name, err)
	}
	p.RowsRead, p.Invalid, p.InvalidSamples = st.stats.RowsRead, st.stats.Invalid, st.stats.InvalidSamples
	p.Duplicates = ds.Duplicates
	p.Members = ds.Members
	p.Adds, p.Updates, p.Removes, p.Deferred = ds.Adds, ds.Updates, ds.Removes, ds.Deferred
	p.AddSamples, p.UpdateSamples, p.RemoveSamples, p.DeferredSamples = out.addSamples, out.updateSamples, out.removeSamples, out.deferredSamples
	p.Guard = guard(spec, ds)
	return p, nil
}

// stageRejects stages the sync's rejects for the diff: key, op and the
// time of the next attempt per row, sorted by fingerprint.
func stageRejects(ctx context.Context, store state.Store, syncName, dir string, memory int) (*stagedRows, error) {
	a, err := newArena(dir, "rejects-*.bin")
	if err != nil {
		return nil, fmt.Errorf("staging rejects: %w", err)
	}
	sr := &stagedRows{arena: a, sorter: newEntrySorter(dir, memory)}
	err = store.ScanRejects(ctx, syncName, func(r state.Reject) error {
		off, err := a.add(r.Key, string(r.Op), strconv.FormatInt(r.NextAttemptAt.UnixMicro(), 10))
		if err != nil {
			return err
		}
		e := entry{off: off}
		e.hi, e.lo = entryFP(state.Fingerprint(r.Key))
		return sr.sorter.add(e)
	})
	if err == nil {
		err = a.flush()
	}
	if err != nil {
		sr.cleanup()
		return nil, fmt.Errorf("staging rejects: %w", err)
	}
	return sr, nil
}
