package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	stdsync "sync"
	"time"

	"go.uber.org/zap"

	"github.com/listsync/listsync/internal/config"
	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/state"
	statepg "github.com/listsync/listsync/internal/state/postgres"
	statesqlite "github.com/listsync/listsync/internal/state/sqlite"
	listsync "github.com/listsync/listsync/internal/sync"
	"github.com/listsync/listsync/internal/warehouse"
	"github.com/listsync/listsync/internal/warehouse/bigquerywh"
	whpg "github.com/listsync/listsync/internal/warehouse/postgres"
	"github.com/listsync/listsync/internal/warehouse/snowflake"
	whsqlite "github.com/listsync/listsync/internal/warehouse/sqlite"
)

// This file is the only place that maps the config onto the packages' own
// option structs; none of them imports internal/config.

// openStore opens the configured state store.
func openStore(ctx context.Context, cfg *config.Config, log *zap.Logger) (state.Store, error) {
	switch cfg.State.Driver {
	case config.DriverSQLite:
		st, err := statesqlite.Open(ctx, statesqlite.Config{Path: cfg.Path(cfg.State.DSN.Reveal()), Logger: log.Named("state")})
		if err != nil {
			return nil, fmt.Errorf("opening the state store: %w", err)
		}
		return st, nil
	case config.DriverPostgres:
		st, err := statepg.Open(ctx, statepg.Config{DSN: cfg.State.DSN.Reveal(), Logger: log.Named("state")})
		if err != nil {
			return nil, fmt.Errorf("opening the state store: %w", err)
		}
		return st, nil
	default:
		return nil, fmt.Errorf("opening the state store: unknown driver %q", cfg.State.Driver)
	}
}

// openWarehouse connects to the named warehouse.
func openWarehouse(ctx context.Context, cfg *config.Config, name string, log *zap.Logger) (warehouse.Warehouse, error) {
	w, ok := cfg.Warehouses[name]
	if !ok {
		return nil, fmt.Errorf("no warehouse named %q", name)
	}
	log = log.Named("warehouse").With(zap.String("warehouse", name))
	var (
		wh  warehouse.Warehouse
		err error
	)
	switch w.Type {
	case config.TypePostgres:
		wh, err = whpg.New(ctx, whpg.Config{DSN: w.DSN.Reveal(), Logger: log})
	case config.TypeSQLite:
		wh, err = whsqlite.New(ctx, whsqlite.Config{Path: cfg.Path(w.DSN.Reveal()), Logger: log})
	case config.TypeSnowflake:
		sc := snowflake.Config{
			Account: w.Account, User: w.User, Password: w.Password.Reveal(),
			PrivateKeyPath: cfg.Path(w.PrivateKeyPath), Role: w.Role, Warehouse: w.Warehouse,
			Database: w.Database, Schema: w.Schema, Host: w.Host, Port: w.Port, Protocol: w.Protocol,
			StatementTimeout: w.QueryTimeout, Logger: log,
		}
		if !w.PrivateKey.IsZero() {
			sc.PrivateKeyPEM = []byte(w.PrivateKey.Reveal())
		}
		wh, err = snowflake.New(ctx, sc)
	case config.TypeBigQuery:
		wh, err = bigquerywh.New(ctx, bigquerywh.Config{
			Project: w.Project, Location: w.Location, CredentialsFile: cfg.Path(w.CredentialsFile),
			Endpoint: w.Endpoint, Logger: log,
		})
	default:
		return nil, fmt.Errorf("warehouse %q: unknown type %q", name, w.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("opening warehouse %q: %w", name, err)
	}
	return wh, nil
}

// marketoOptions are what a command adds to the config's Marketo settings.
type marketoOptions struct {
	onCall     func(endpoint, code string)
	httpClient *http.Client
	// store, when set, keeps the instance's bulk-import rate across
	// processes: the client starts from the rate kept there and records
	// each one it measures.
	store state.Store
}

// importRateMaxAge is how long a kept import rate times the first import of
// a new process. A rate is measured again only when a status read finds an
// import still running, which a good rate (or one too slow) never lets
// happen; past this age a process starts without it, measures the rate
// afresh (one status read more) and keeps the new one.
const importRateMaxAge = 7 * 24 * time.Hour

// keepRateTimeout bounds the recording of a measured import rate, which
// runs while the import's AddToList call waits.
const keepRateTimeout = 5 * time.Second

// newMarketo builds the one Marketo client every sync shares, so that they
// share its token, its pacing and its daily quota.
func (e *env) newMarketo(ctx context.Context, cfg *config.Config, log *zap.Logger, o marketoOptions) (*marketo.Client, error) {
	m := cfg.Marketo
	mc := marketo.Config{
		Endpoint:       m.Endpoint,
		ClientID:       m.ClientID,
		ClientSecret:   m.ClientSecret.Reveal(),
		CallsPer20s:    m.CallsPer20s,
		MaxConcurrency: m.MaxConcurrency,
		DailyQuota:     m.DailyQuota,
		HTTPClient:     o.httpClient,
		Logger:         log,
		Now:            e.now,
		OnCall:         o.onCall,
		TempDir:        e.tempDir,
	}
	// An endpoint InstanceOf refuses is reported by NewClient below.
	if instance, err := marketo.InstanceOf(m.Endpoint); err == nil && o.store != nil {
		mc.ImportRate = e.keptImportRate(ctx, o.store, instance, log)
		mc.OnImportRate = e.keepImportRate(o.store, instance, log)
	}
	if e.tuneMarketo != nil {
		e.tuneMarketo(&mc)
	}
	c, err := marketo.NewClient(mc)
	if err != nil {
		return nil, fmt.Errorf("configuring the Marketo client: %w", err)
	}
	return c, nil
}

// keptImportRate returns the instance's import rate kept in the store, or 0
// when there is none, it is older than importRateMaxAge, or it cannot be
// read (a warning: the first import then measures the rate again).
func (e *env) keptImportRate(ctx context.Context, st state.Store, instance string, log *zap.Logger) float64 {
	r, ok, err := st.ImportRate(ctx, instance)
	switch {
	case err != nil:
		log.Warn("reading the Marketo import rate from the state store; the first import measures it again",
			zap.String("instance", instance), zap.Error(err))
		return 0
	case !ok:
		return 0
	case e.now().Sub(r.MeasuredAt) > importRateMaxAge:
		log.Debug("the kept Marketo import rate is too old to use; the first import measures it again",
			zap.String("instance", instance), zap.Time("measured_at", r.MeasuredAt))
		return 0
	}
	log.Debug("starting from the kept Marketo import rate", zap.String("instance", instance),
		zap.Float64("rows_per_sec", r.RowsPerSec), zap.Time("measured_at", r.MeasuredAt))
	return r.RowsPerSec
}

// keepImportRate returns the client's OnImportRate: it records each
// measured rate in the store. A failure is a warning; the import goes on.
func (e *env) keepImportRate(st state.Store, instance string, log *zap.Logger) func(context.Context, float64) {
	return func(ctx context.Context, rowsPerSec float64) {
		ctx, cancel := context.WithTimeout(ctx, keepRateTimeout)
		defer cancel()
		err := st.SetImportRate(ctx, instance, state.ImportRate{RowsPerSec: rowsPerSec, MeasuredAt: e.now()})
		if err != nil && ctx.Err() == nil {
			log.Warn("recording the Marketo import rate in the state store", zap.String("instance", instance), zap.Error(err))
		}
	}
}

// app holds what a command opened; Close releases all of it.
type app struct {
	cfg     *config.Config
	models  fs.FS
	log     *zap.Logger
	store   state.Store
	marketo *marketo.Client
	engine  *listsync.Engine

	mu         stdsync.Mutex
	warehouses map[string]warehouse.Warehouse
}

type appOptions struct {
	withEngine bool
	onCall     func(endpoint, code string)
	httpClient *http.Client
}

// openApp opens the state store and, when asked, the Marketo client and the
// engine. Warehouses open on first use.
func (e *env) openApp(ctx context.Context, l *loaded, log *zap.Logger, o appOptions) (*app, error) {
	a := &app{cfg: l.cfg, models: l.root.FS(), log: log, warehouses: map[string]warehouse.Warehouse{}}
	st, err := openStore(ctx, l.cfg, log)
	if err != nil {
		return nil, err
	}
	a.store = st
	if !o.withEngine {
		return a, nil
	}
	a.marketo, err = e.newMarketo(ctx, l.cfg, log, marketoOptions{onCall: o.onCall, httpClient: o.httpClient, store: st})
	if err != nil {
		_ = a.Close()
		return nil, err
	}
	a.engine, err = listsync.NewEngine(listsync.EngineConfig{
		Store:   st,
		Marketo: a.marketo,
		Logger:  log,
		Now:     e.now,
		TempDir: e.tempDir,
	})
	if err != nil {
		_ = a.Close()
		return nil, fmt.Errorf("starting the engine: %w", err)
	}
	return a, nil
}

// warehouse returns the named warehouse, connecting on first use.
func (a *app) warehouse(ctx context.Context, name string) (warehouse.Warehouse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if w, ok := a.warehouses[name]; ok {
		return w, nil
	}
	w, err := openWarehouse(ctx, a.cfg, name, a.log)
	if err != nil {
		return nil, err
	}
	a.warehouses[name] = w
	return w, nil
}

// spec builds the engine's Spec of s, reading its model now, so that an
// edited model is picked up by the next run without a restart.
func (a *app) spec(ctx context.Context, s *config.Sync) (listsync.Spec, error) {
	p, err := a.cfg.ModelPath(s, a.models)
	if err != nil {
		return listsync.Spec{}, fmt.Errorf("sync %q: %w", s.Name, err)
	}
	sql, err := fs.ReadFile(a.models, p)
	if err != nil {
		return listsync.Spec{}, fmt.Errorf("reading model %s: %w", s.Model, err)
	}
	wh, err := a.warehouse(ctx, s.Warehouse)
	if err != nil {
		return listsync.Spec{}, err
	}
	mode := listsync.ModeMirror
	if s.Mode == config.ModeAddOnly {
		mode = listsync.ModeAddOnly
	}
	return listsync.Spec{
		Name:              s.Name,
		Warehouse:         wh,
		Model:             s.Model,
		SQL:               string(sql),
		List:              listRef(a.cfg, s),
		LookupField:       s.LookupField,
		Mode:              mode,
		Fields:            s.Fields,
		MaxRemoveFraction: s.MaxRemoveFraction,
		Timeout:           s.Timeout,
	}, nil
}

func listRef(cfg *config.Config, s *config.Sync) marketo.ListRef {
	if s.ListID != 0 {
		return marketo.ListRef{ID: s.ListID}
	}
	return marketo.ListRef{Name: s.ListName, Folder: cfg.Marketo.Folder}
}

// describeList renders a sync's list for people.
func describeList(cfg *config.Config, s *config.Sync) string {
	if s.ListID != 0 {
		return fmt.Sprintf("list %d", s.ListID)
	}
	return fmt.Sprintf("%q in folder %q", s.ListName, cfg.Marketo.Folder)
}

// Close releases the warehouses and the state store.
func (a *app) Close() error {
	if a == nil {
		return nil
	}
	var errs []error
	a.mu.Lock()
	for name, w := range a.warehouses {
		if err := w.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing warehouse %q: %w", name, err))
		}
	}
	a.warehouses = map[string]warehouse.Warehouse{}
	a.mu.Unlock()
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the state store: %w", err))
		}
	}
	return errors.Join(errs...)
}
