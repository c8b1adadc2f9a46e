package config_test

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/listsync/listsync/internal/config"
)

// FuzzLoad feeds arbitrary documents to Load and Validate: they may fail,
// never panic.
func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte(minimal))
	f.Add([]byte(base))
	f.Add([]byte("a: &a [*a]"))
	f.Add([]byte("x: &x {a: 1}\nsyncs: [{<<: *x}]"))
	f.Add([]byte("marketo: {client_secret: ${S}}\nsyncs: [{name: a, list_id: ${S}}]"))
	f.Add([]byte("syncs:\n- schedule: CRON_TZ=UTC\n"))
	fsys := fstest.MapFS{"models/a.sql": {Data: []byte("select 1")}}
	const secret = "Zq9-secret-value-Zq9"
	lookup := func(string) (string, bool) { return secret, true }
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Load(bytes.NewReader(data), config.Options{LookupEnv: lookup})
		if err != nil {
			return
		}
		if strings.Contains(fmt.Sprintf("%+v %#v", cfg, cfg), secret) && !bytes.Contains(data, []byte("${")) {
			t.Fatalf("a secret leaked into the config's rendering")
		}
		if err := cfg.Validate(fsys); err != nil {
			_ = err.Error()
		}
	})
}

// FuzzParseSchedule checks that no schedule text panics the parser (cron's
// own parser does on "CRON_TZ=X" alone) and that a parsed schedule moves
// forward.
func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"*/15 * * * *", "@hourly", "@every 10m", "CRON_TZ=Europe/Berlin 0 7 * * 1-5", "CRON_TZ=UTC", "TZ=", "1-70/0 * * * *", "@every 0s", "* * * * ?", "5-2 * * * *"} {
		f.Add(s)
	}
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := config.ParseSchedule(spec)
		if err != nil {
			return
		}
		if next := s.Next(from); !next.IsZero() && !next.After(from) {
			t.Fatalf("%q: next %s is not after %s", spec, next, from)
		}
	})
}
