package cli

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	_ "modernc.org/sqlite" // the demo writes its warehouse file with it

	"github.com/listsync/listsync/internal/config"
	"github.com/listsync/listsync/internal/marketo/emulator"
	"github.com/listsync/listsync/internal/state"
	listsync "github.com/listsync/listsync/internal/sync"
)

const demoHelp = `
Runs the main job end to end on embedded sample data, with no services and
nothing leaving this machine: it seeds a SQLite warehouse with sample people
in a temporary directory, starts the Marketo emulator in this process on a
loopback port, and uses a SQLite state store. It shows the plan, runs the
sync, changes the data, runs again, and prints what happened on the way;
then it checks that the Marketo list equals the model and exits 0.

The demo goes through the same config loading, wiring and engine as
'listsync run'. --keep leaves its directory (config, models, warehouse and
state) behind to explore with the other commands.`

//go:embed demo/listsync.yaml demo/models/trial_users.sql
var demoFS embed.FS

// demoPerson is a row of the demo warehouse's people table.
type demoPerson struct {
	email, first, last, company, plan string
	optedOut                          bool
}

// demoPeople: trial users, paying customers, and the dirty rows real
// warehouses hold (a missing email, a malformed one, the same person twice
// in different case, padding).
var demoPeople = []demoPerson{
	{"ada@example.com", "Ada", "Lovelace", "Analytical Engines", "trial", false},
	{"grace@example.com", "Grace", "Hopper", "US Navy", "trial", false},
	{"alan@example.com", "Alan", "Turing", "Bletchley Park", "trial", false},
	{"edsger@example.com", "Edsger", "Dijkstra", "Mathematisch Centrum", "trial", false},
	{"barbara@example.com", "Barbara", "Liskov", "MIT", "trial", false},
	{"ken@example.com", "Ken", "Thompson", "Bell Labs", "trial", false},
	{"DENNIS@EXAMPLE.COM", "Dennis", "Ritchie", "Bell Labs", "trial", false},
	{"dennis@example.com", "Dennis", "Ritchie", "Bell Labs", "trial", false},
	{"  margaret@example.com ", "Margaret", "Hamilton", "MIT", "trial", false},
	{"katherine@example.com", "Katherine", "Johnson", "NASA", "trial", false},
	{"john@example.com", "John", "Backus", "IBM", "trial", true},
	{"", "No", "Email", "Unknown", "trial", false},
	{"not-an-email", "Bad", "Address", "Unknown", "trial", false},
	{"linus@example.com", "Linus", "Torvalds", "Transmeta", "paid", false},
	{"guido@example.com", "Guido", "van Rossum", "CWI", "paid", false},
	{"bjarne@example.com", "Bjarne", "Stroustrup", "Bell Labs", "paid", false},
	{"frances@example.com", "Frances", "Allen", "IBM", "paid", false},
	{"donald@example.com", "Donald", "Knuth", "Stanford", "free", false},
}

func cmdDemo(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	keep := fs.Bool("keep", false, "keep the demo's directory (config, models, warehouse, state) instead of deleting it")
	logLevel := fs.String("log-level", "", "log `level` on stderr: debug, info, warn or error (default warn)")
	pos, err := e.parse("demo", fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("demo takes no arguments")
	}
	log, err := e.newLogger(&commonFlags{logLevel: *logLevel, logFormat: "auto"}, zapcore.WarnLevel, false)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	dir, err := os.MkdirTemp(e.tempDir, "listsync-demo-*")
	if err != nil {
		return fmt.Errorf("creating the demo directory: %w", err)
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	d := &demo{e: e, w: e.stdout, dir: dir}
	if err := d.run(ctx, log); err != nil {
		return err
	}
	if *keep {
		fmt.Fprintf(e.stdout, "\nThe demo's files are in %s (the emulator has stopped, so 'run' there will fail; 'history' and 'plan' work).\n", dir)
	}
	return nil
}

type demo struct {
	e    *env
	w    io.Writer
	dir  string
	step int
}

func (d *demo) say(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.w, "\n%d. %s\n", d.step, fmt.Sprintf(format, args...))
}

func (d *demo) detail(format string, args ...any) {
	fmt.Fprintf(d.w, "   %s\n", fmt.Sprintf(format, args...))
}

func (d *demo) run(ctx context.Context, log *zap.Logger) error {
	fmt.Fprintln(d.w, "listsync demo: a SQLite warehouse, the Marketo emulator and a SQLite state store, all in this process.")

	// The warehouse.
	db, err := d.seedWarehouse(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	trial := 0
	for _, p := range demoPeople {
		if p.plan == "trial" {
			trial++
		}
	}
	d.say("Seeded a SQLite warehouse with %d people in table people; %d are on a trial (one opted out, and four rows are dirty: a duplicate in upper case, padding, an empty and a malformed email).", len(demoPeople), trial)

	// Marketo.
	secretBytes := make([]byte, 16)
	_, _ = rand.Read(secretBytes)
	secret := hex.EncodeToString(secretBytes)
	em := emulator.New(emulator.Config{ClientID: "demo", ClientSecret: secret, Now: d.e.now})
	defer em.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("starting the Marketo emulator: %w", err)
	}
	srv := &http.Server{Handler: em, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-served
	}()
	folder := em.CreateFolder("Audiences")
	listID := em.CreateStaticList("Trial users", folder)
	ids := em.UpsertLeads([]map[string]string{
		{"email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace"},
		{"email": "grace@example.com", "firstName": "Grace", "lastName": "Hopper"},
		{"email": "linus@example.com", "firstName": "Linus", "lastName": "Torvalds"},
	})
	em.AddListMembers(listID, ids...)
	endpoint := "http://" + ln.Addr().String()
	d.say("Started the Marketo emulator at %s. Folder \"Audiences\" holds the static list \"Trial users\" (id %d), which someone filled by hand: ada, grace, and linus (who is a paying customer now).", endpoint, listID)

	// The config, through the same loader and checks as listsync.yaml.
	l, err := d.writeConfig(endpoint, secret)
	if err != nil {
		return err
	}
	defer l.Close()
	model, err := fs.ReadFile(demoFS, "demo/models/trial_users.sql")
	if err != nil {
		return err
	}
	d.say("The sync trial_users mirrors the model models/trial_users.sql onto that list (mode mirror, fields firstName, lastName, company):")
	for _, line := range strings.Split(strings.TrimSpace(string(model)), "\n") {
		d.detail("  %s", line)
	}

	a, err := d.e.openApp(ctx, l, log, appOptions{withEngine: true})
	if err != nil {
		return err
	}
	defer a.Close()
	s, _ := l.cfg.Sync("trial_users")

	// Plan, run, change, run.
	spec, err := a.spec(ctx, s)
	if err != nil {
		return err
	}
	plan, err := a.engine.Plan(ctx, spec)
	if err != nil {
		return fmt.Errorf("planning: %w", err)
	}
	d.say("listsync plan trial_users (the dry run: touches neither Marketo nor the state):")
	d.detail("%d rows read, %d invalid (%s), %d duplicate", plan.RowsRead, plan.Invalid, strings.Join(plan.InvalidSamples, "; "), plan.Duplicates)
	d.detail("would add %d: %s", plan.Adds, strings.Join(plan.AddSamples, ", "))
	d.detail("the ledger is empty, so the first run reads the list's real members from Marketo first and sends only the difference")

	run1, err := d.runOnce(ctx, a, s)
	if err != nil {
		return err
	}
	d.say("listsync run trial_users:")
	d.detail("%s", summary(run1))
	if run1.FullResync {
		d.detail("The first run read the list's members from Marketo into the state first (full resync): of the %d people the plan would add, %d were already on the list and were not added again (their fields were re-sent, since listsync had not recorded them), and %d member not in the model was removed.",
			plan.Adds, plan.Adds-run1.AddsConfirmed, run1.RemovesConfirmed)
	}
	d.detail("Marketo's list now: %s", strings.Join(d.members(em, listID), ", "))

	if _, err := db.ExecContext(ctx, `UPDATE people SET plan = 'paid' WHERE email = 'alan@example.com'`); err != nil {
		return fmt.Errorf("changing the demo data: %w", err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE people SET company = 'Babbage & Co' WHERE email = 'ada@example.com'`); err != nil {
		return fmt.Errorf("changing the demo data: %w", err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO people (email, first_name, last_name, company, plan, opted_out, signed_up_at) VALUES ('hedy@example.com', 'Hedy', 'Lamarr', 'MGM', 'trial', 0, ?)`, d.e.now().UTC().Format(time.RFC3339)); err != nil {
		return fmt.Errorf("changing the demo data: %w", err)
	}
	d.say("The data changes: alan upgrades to a paid plan (leaves the trial), hedy signs up for a trial, ada's company changes.")

	spec, err = a.spec(ctx, s)
	if err != nil {
		return err
	}
	plan, err = a.engine.Plan(ctx, spec)
	if err != nil {
		return fmt.Errorf("planning: %w", err)
	}
	d.detail("plan: add %d (%s), remove %d (%s), update fields of %d (%s)", plan.Adds, strings.Join(plan.AddSamples, ", "),
		plan.Removes, strings.Join(plan.RemoveSamples, ", "), plan.Updates, strings.Join(plan.UpdateSamples, ", "))

	run2, err := d.runOnce(ctx, a, s)
	if err != nil {
		return err
	}
	d.say("listsync run trial_users, again: only the difference is sent.")
	d.detail("%s", summary(run2))
	d.detail("Marketo's list now: %s", strings.Join(d.members(em, listID), ", "))
	if ada := em.LeadsByEmail("ada@example.com"); len(ada) == 1 {
		d.detail("ada's company in Marketo: %q", ada[0].Fields["company"])
	}

	// The proof: the list equals the model, and the state agrees.
	want, err := d.modelEmails(ctx, db)
	if err != nil {
		return err
	}
	got := d.members(em, listID)
	var ledger []string
	if err := a.store.ScanMembers(ctx, s.Name, func(m state.Member) error {
		ledger = append(ledger, m.Key)
		return nil
	}); err != nil {
		return fmt.Errorf("reading the ledger: %w", err)
	}
	if !slices.Equal(want, got) || !slices.Equal(want, ledger) {
		return fmt.Errorf("the demo did not converge: model %v, Marketo %v, state %v", want, got, ledger)
	}
	st := em.Stats()
	d.say("listsync history:")
	runs, err := a.store.ListRuns(ctx, s.Name, 10)
	if err != nil {
		return fmt.Errorf("reading the history: %w", err)
	}
	tw := tabwriter.NewWriter(d.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "   RUN\tSTATUS\tROWS\tINVALID\tADDED\tREMOVED\tUPDATED\tAPI CALLS")
	for _, r := range runs {
		fmt.Fprintf(tw, "   %d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", r.ID, r.Status, r.RowsRead, r.Invalid, r.AddsConfirmed, r.RemovesConfirmed, r.UpdatesConfirmed, r.APICalls)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(d.w, "\nThe list equals the model (%d members) and the state agrees. Marketo saw %d API calls, %d rate-limit rejections.\n",
		len(want), st.CallsTotal, st.Rejected["606"]+st.Rejected["615"])
	fmt.Fprintln(d.w, "Next: copy config.example.yaml to listsync.yaml and run 'listsync validate --connect', or 'docker compose up' for the worker with Postgres.")
	return nil
}

func (d *demo) runOnce(ctx context.Context, a *app, s *config.Sync) (state.Run, error) {
	spec, err := a.spec(ctx, s)
	if err != nil {
		return state.Run{}, err
	}
	run, err := a.engine.Run(ctx, spec, listsync.RunOptions{Trigger: state.TriggerManual})
	if err != nil {
		return run, fmt.Errorf("running the demo sync: %w", err)
	}
	return run, nil
}

// seedWarehouse creates warehouse.db with the people table.
func (d *demo) seedWarehouse(ctx context.Context) (*sql.DB, error) {
	db, err := sql.Open("sqlite", filepath.Join(d.dir, "warehouse.db"))
	if err != nil {
		return nil, fmt.Errorf("creating the demo warehouse: %w", err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE people (
		email TEXT, first_name TEXT, last_name TEXT, company TEXT,
		plan TEXT NOT NULL, opted_out INTEGER NOT NULL, signed_up_at TEXT NOT NULL)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("creating the demo warehouse: %w", err)
	}
	start := d.e.now().UTC().Add(-30 * 24 * time.Hour)
	for i, p := range demoPeople {
		var email any = p.email
		if p.email == "" {
			email = nil
		}
		opted := 0
		if p.optedOut {
			opted = 1
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO people VALUES (?, ?, ?, ?, ?, ?, ?)`, email, p.first, p.last, p.company, p.plan, opted,
			start.Add(time.Duration(i)*time.Hour).Format(time.RFC3339)); err != nil {
			db.Close()
			return nil, fmt.Errorf("seeding the demo warehouse: %w", err)
		}
	}
	return db, nil
}

// writeConfig writes the embedded config and model into the demo
// directory and loads them as `listsync run` would.
func (d *demo) writeConfig(endpoint, secret string) (*loaded, error) {
	if err := os.MkdirAll(filepath.Join(d.dir, "models"), 0o755); err != nil {
		return nil, fmt.Errorf("writing the demo config: %w", err)
	}
	for _, name := range []string{"listsync.yaml", "models/trial_users.sql"} {
		data, err := fs.ReadFile(demoFS, "demo/"+name)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(d.dir, name), data, 0o644); err != nil {
			return nil, fmt.Errorf("writing the demo config: %w", err)
		}
	}
	env := &env{stdout: d.e.stdout, stderr: d.e.stderr, now: d.e.now, lookup: func(name string) (string, bool) {
		switch name {
		case "DEMO_MARKETO_ENDPOINT":
			return endpoint, true
		case "DEMO_MARKETO_SECRET":
			return secret, true
		}
		return "", false
	}}
	l, err := env.loadConfig(filepath.Join(d.dir, "listsync.yaml"))
	if err != nil {
		var ce *configError
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("the demo's embedded config is broken: %w", ce.err)
		}
		return nil, err
	}
	return l, nil
}

// members returns the emails on the list, sorted.
func (d *demo) members(em *emulator.Emulator, listID int64) []string {
	var out []string
	for _, l := range em.ListMembers(listID) {
		out = append(out, strings.ToLower(l.Email))
	}
	slices.Sort(out)
	return out
}

// modelEmails returns the normalised valid emails the model returns.
func (d *demo) modelEmails(ctx context.Context, db *sql.DB) ([]string, error) {
	model, err := fs.ReadFile(demoFS, "demo/models/trial_users.sql")
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, string(model))
	if err != nil {
		return nil, fmt.Errorf("running the demo model: %w", err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	var out []string
	for rows.Next() {
		var email sql.NullString
		var first, last, company sql.NullString
		if err := rows.Scan(&email, &first, &last, &company); err != nil {
			return nil, err
		}
		k := strings.ToLower(strings.TrimSpace(email.String))
		if !strings.Contains(k, "@") || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, k)
	}
	slices.Sort(out)
	return out, rows.Err()
}
