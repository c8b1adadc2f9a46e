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
warehouse, and reaches Marketo without changing anything there: it checks the
endpoint and the credentials (an access token, which costs no API call), that
every list named by list_id exists, and that every list named by list_name
exists or can be created by its first run (marketo.folder exists).`

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
	client, err := e.newMarketo(ctx, cfg, log, marketoOptions{})
	if err != nil {
		failed++
		fmt.Fprintf(w, "  FAILED marketo: %v\n", err)
	} else {
		reached := false
		check(fmt.Sprintf("marketo credentials (%s)", cfg.Marketo.Endpoint), func(ctx context.Context) (string, error) {
			err := client.Ping(ctx)
			reached = err == nil
			return "", err
		})
		if reached {
			for i := range cfg.Syncs {
				s := &cfg.Syncs[i]
				check(fmt.Sprintf("marketo %s (sync %s)", listLabel(s), s.Name), func(ctx context.Context) (string, error) {
					return findList(ctx, client, cfg, s)
				})
			}
		} else if len(cfg.Syncs) > 0 {
			fmt.Fprintf(w, "  skip   marketo lists: not checked without a connection to Marketo\n")
		}
	}
	if failed > 0 {
		fmt.Fprintf(e.stderr, "listsync validate: %d connection checks failed\n", failed)
		return errReported
	}
	return nil
}

// listLabel names a sync's list in a check's line.
func listLabel(s *config.Sync) string {
	if s.ListID != 0 {
		return fmt.Sprintf("list %d", s.ListID)
	}
	return fmt.Sprintf("list %q", s.ListName)
}

// findList checks, read-only, that a sync's list exists, or that its first
// run can create it, and returns the detail of the check's line.
func findList(ctx context.Context, client *marketo.Client, cfg *config.Config, s *config.Sync) (string, error) {
	list, ok, err := client.FindList(ctx, listRef(cfg, s))
	switch {
	case s.ListID != 0 && err == nil && !ok:
		return "", fmt.Errorf("list %d does not exist in Marketo (check the sync's list_id)", s.ListID)
	case errors.Is(err, marketo.ErrFolderNotFound):
		return "", fmt.Errorf("the list does not exist yet, and folder %q, where its first run would create it, does not exist in Marketo: create the folder in Marketo (Lead Database > Group Lists) or set marketo.folder to an existing folder", cfg.Marketo.Folder)
	case err != nil:
		return "", err
	case !ok:
		return fmt.Sprintf(": will be created in folder %q (id %d) by its first run", cfg.Marketo.Folder, list.FolderID), nil
	case s.ListID != 0:
		return fmt.Sprintf(": %q", list.Name), nil
	}
	return fmt.Sprintf(": exists, id %d", list.ID), nil
}
