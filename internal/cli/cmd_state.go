package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/listsync/listsync/internal/config"
	"github.com/listsync/listsync/internal/state"
)

const historyHelp = `
Shows the most recent runs, newest first, of one sync or of all of them:
status, rows read, adds, removes and field updates (confirmed of planned),
rejected rows and the Marketo API calls each run spent.`

const rejectsHelp = `
Lists the rows of a sync that Marketo refused, with Marketo's code and
reason, how often they were tried and when they will be tried again
(rejected rows are retried with a growing delay).`

const resetHelp = `
Forgets what listsync knows of a sync's list: its confirmed members, its
rejects and its list binding (the run history is kept). Nothing changes in
Marketo. The next run starts with a full resync: it reads the list's real
membership from Marketo, then pushes the difference.`

type historyFlags struct {
	*commonFlags
	limit int
	json  bool
}

func newHistoryFlags(fs *flag.FlagSet) *historyFlags {
	f := &historyFlags{commonFlags: newCommonFlags(fs)}
	fs.IntVar(&f.limit, "limit", 20, "show at most `N` runs")
	fs.BoolVar(&f.json, "json", false, "print the runs as JSON")
	return f
}

type rejectsFlags struct {
	*commonFlags
	limit int
	json  bool
}

func newRejectsFlags(fs *flag.FlagSet) *rejectsFlags {
	f := &rejectsFlags{commonFlags: newCommonFlags(fs)}
	fs.IntVar(&f.limit, "limit", 0, "show at most `N` rows (0: all)")
	fs.BoolVar(&f.json, "json", false, "print the rows as JSON")
	return f
}

// withStore loads the config and opens the state store for fn.
func (e *env) withStore(ctx context.Context, cf *commonFlags, fn func(l *loaded, a *app) error) error {
	return e.withApp(ctx, cf, appOptions{}, nil, fn)
}

// withApp loads the config, calls pick (when not nil) to choose the syncs
// from it before anything is opened, so that a wrong sync name fails before
// the state store or a warehouse is touched, then opens the app with opts for
// fn and closes it once fn returns.
func (e *env) withApp(ctx context.Context, cf *commonFlags, opts appOptions, pick func(cfg *config.Config) error,
	fn func(l *loaded, a *app) error) error {
	l, err := e.loadConfig(cf.config)
	if err != nil {
		return err
	}
	defer l.Close()
	if pick != nil {
		if err := pick(l.cfg); err != nil {
			return err
		}
	}
	log, err := e.newLogger(cf, zapcore.WarnLevel, false)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	a, err := e.openApp(ctx, l, log, opts)
	if err != nil {
		return err
	}
	defer a.Close()
	return fn(l, a)
}

func cmdHistory(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	f := newHistoryFlags(fs)
	pos, err := e.parse("history", fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("name at most one sync")
	}
	if f.limit < 1 {
		return usagef("--limit must be at least 1")
	}
	return e.withStore(ctx, f.commonFlags, func(l *loaded, a *app) error {
		name := ""
		if len(pos) == 1 {
			s, err := oneSync(l.cfg, pos)
			if err != nil {
				return err
			}
			name = s.Name
		}
		runs, err := a.store.ListRuns(ctx, name, f.limit)
		if err != nil {
			return fmt.Errorf("reading run history: %w", err)
		}
		if f.json {
			out := make([]runJSON, 0, len(runs))
			for _, r := range runs {
				out = append(out, toRunJSON(r))
			}
			return writeJSON(e.stdout, out)
		}
		if len(runs) == 0 {
			fmt.Fprintln(e.stdout, "No runs yet.")
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN\tSYNC\tTRIGGER\tSTATUS\tSTARTED\tTOOK\tROWS\tINVALID\tADDED\tREMOVED\tUPDATED\tREJECTED\tCALLS\tERROR")
		for _, r := range runs {
			if r.Status == state.RunSkipped {
				// A skipped tick ran nothing: no duration, no counts.
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t%s\n",
					r.ID, r.Sync, r.Trigger, r.Status, fmtTime(r.StartedAt), truncate(r.Error, 80))
				continue
			}
			took := "-"
			if !r.EndedAt.IsZero() {
				took = r.EndedAt.Sub(r.StartedAt).Round(100 * time.Millisecond).String()
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d/%d\t%d/%d\t%d/%d\t%d\t%d\t%s\n",
				r.ID, r.Sync, r.Trigger, r.Status, fmtTime(r.StartedAt), took, r.RowsRead, r.Invalid,
				r.AddsConfirmed, r.AddsPlanned, r.RemovesConfirmed, r.RemovesPlanned, r.UpdatesConfirmed, r.UpdatesPlanned,
				r.Rejected, r.APICalls, truncate(r.Error, 80))
		}
		return tw.Flush()
	})
}

func cmdRejects(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("rejects", flag.ContinueOnError)
	f := newRejectsFlags(fs)
	pos, err := e.parse("rejects", fs, args)
	if err != nil {
		return err
	}
	if f.limit < 0 {
		return usagef("--limit must not be negative")
	}
	return e.withStore(ctx, f.commonFlags, func(l *loaded, a *app) error {
		s, err := oneSync(l.cfg, pos)
		if err != nil {
			return err
		}
		rejects, err := a.store.ListRejects(ctx, s.Name, f.limit)
		if err != nil {
			return fmt.Errorf("reading rejects: %w", err)
		}
		if f.json {
			out := make([]rejectJSON, 0, len(rejects))
			for _, r := range rejects {
				out = append(out, toRejectJSON(r))
			}
			return writeJSON(e.stdout, out)
		}
		if len(rejects) == 0 {
			fmt.Fprintf(e.stdout, "%s: no rejected rows.\n", s.Name)
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tOP\tCODE\tREASON\tATTEMPTS\tLAST TRIED\tNEXT TRY")
		for _, r := range rejects {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Key, r.Op, r.Code, truncate(r.Reason, 60), r.Attempts,
				fmtTime(r.LastAttemptAt), fmtTime(r.NextAttemptAt))
		}
		return tw.Flush()
	})
}

func cmdReset(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("reset", flag.ContinueOnError)
	f := newCommonFlags(fs)
	pos, err := e.parse("reset", fs, args)
	if err != nil {
		return err
	}
	return e.withStore(ctx, f, func(l *loaded, a *app) error {
		s, err := oneSync(l.cfg, pos)
		if err != nil {
			return err
		}
		members, err := a.store.CountMembers(ctx, s.Name)
		if err != nil {
			return fmt.Errorf("counting members: %w", err)
		}
		// A reset under a running sync would race its commits: take the
		// sync's lock for the duration.
		lease, err := a.store.Lock(ctx, s.Name)
		if err != nil {
			if errors.Is(err, state.ErrLocked) {
				return fmt.Errorf("sync %q is running (another process holds its lock); try again when it has finished", s.Name)
			}
			return fmt.Errorf("locking sync %q: %w", s.Name, err)
		}
		defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
		if err := a.store.Reset(ctx, s.Name); err != nil {
			return fmt.Errorf("resetting sync %q: %w", s.Name, err)
		}
		fmt.Fprintf(e.stdout, "%s: forgot %d confirmed members, the rejects and the list binding (the run history is kept).\n", s.Name, members)
		fmt.Fprintf(e.stdout, "Nothing changed in Marketo. The next run of %s reads the list's membership from Marketo, then pushes the difference.\n", s.Name)
		return nil
	})
}
