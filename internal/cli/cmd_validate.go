package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/listsync/listsync/internal/config"
	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/warehouse"
)

const validateHelp = `
Checks the config file without touching the network: strict keys, ${VAR}
references, cron expressions, model files (inside the models directory),
warehouse references and settings, list settings and the Marketo budget.
Every problem is reported with its line.

With --connect it also opens the state store, runs a trivial query on every
warehouse, and reaches Marketo: it checks the credentials and that every list
named by list_id exists. (Lists named by list_name are found, or created in
marketo.folder, by their first run.)`

const connectTimeout = 30 * time.Second

type validateFlags struct {
	*commonFlags
	connect bool
}

func newValidateFlags(fs *flag.FlagSet) *validateFlags {
	f := &validateFlags{commonFlags: newCommonFlags(fs)}
	fs.BoolVar(&f.connect, "connect", false, "also reach the state store, every warehouse and Marketo")
	return f
}

func cmdValidate(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	f := newValidateFlags(fs)
	pos, err := e.parse("validate", fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("validate takes no arguments")
	}
	l, err := e.loadConfig(f.config)
	if err != nil {
		return err
	}
	defer l.Close()
	cfg := l.cfg
	w := e.stdout
	fmt.Fprintf(w, "%s is valid: %d syncs, %d warehouses, %s state store.\n", l.path, len(cfg.Syncs), len(cfg.Warehouses), cfg.State.Driver)
	now := e.now()
	for i := range cfg.Syncs {
		s := &cfg.Syncs[i]
		sched := "manual only"
		if s.Schedule != "" {
			next := ""
			if sc, err := config.ParseSchedule(s.Schedule); err == nil {
				next = ", next " + fmtTime(sc.Next(now))
			}
			sched = fmt.Sprintf("%q%s", s.Schedule, next)
		}
		fmt.Fprintf(w, "  %s: %s on %s → %s (%s), %s\n", s.Name, s.Model, s.Warehouse, describeList(cfg, s), s.Mode, sched)
	}
	if !f.connect {
		return nil
	}

	log, err := e.newLogger(f.commonFlags, zapcore.WarnLevel, false)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	failed := 0
	check := func(what string, fn func(ctx context.Context) (string, error)) {
		cctx, cancel := context.WithTimeout(ctx, connectTimeout)
		defer cancel()
		detail, err := fn(cctx)
		if err != nil {
			failed++
			fmt.Fprintf(w, "  FAILED %s: %v\n", what, err)
			return
		}
		fmt.Fprintf(w, "  ok     %s%s\n", what, detail)
	}
	fmt.Fprintln(w, "Connecting:")
	var a *app
	check(fmt.Sprintf("state store (%s)", cfg.State.Driver), func(ctx context.Context) (string, error) {
		var err error
		a, err = e.openApp(ctx, l, log, appOptions{})
		if err != nil {
			return "", err
		}
		_, err = a.store.ListRuns(ctx, "", 1)
		return "", err
	})
	if a == nil {
		a = &app{cfg: cfg, models: l.root.FS(), log: log, warehouses: map[string]warehouse.Warehouse{}}
	}
	defer a.Close()
	for _, name := range sortedNames(cfg.Warehouses) {
		check(fmt.Sprintf("warehouse %s (%s)", name, cfg.Warehouses[name].Type), func(ctx context.Context) (string, error) {
			wh, err := a.warehouse(ctx, name)
			if err != nil {
				return "", err
			}
			return "", wh.Ping(ctx)
		})
	}
	client, err := newMarketo(cfg, log, nil, e.now, nil, e.tempDir)
	if err != nil {
		failed++
		fmt.Fprintf(w, "  FAILED marketo: %v\n", err)
	} else {
		for i := range cfg.Syncs {
			s := &cfg.Syncs[i]
			if s.ListID == 0 {
				continue
			}
			check(fmt.Sprintf("marketo list %d (sync %s)", s.ListID, s.Name), func(ctx context.Context) (string, error) {
				list, err := client.ResolveList(ctx, marketo.ListRef{ID: s.ListID})
				if errors.Is(err, marketo.ErrListNotFound) {
					return "", fmt.Errorf("list %d does not exist in Marketo (check the sync's list_id)", s.ListID)
				}
				if err != nil {
					return "", err
				}
				return fmt.Sprintf(": %q", list.Name), nil
			})
		}
	}
	if failed > 0 {
		fmt.Fprintf(e.stderr, "listsync validate: %d connection checks failed\n", failed)
		return errReported
	}
	return nil
}
