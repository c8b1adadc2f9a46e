package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/cli"
)

// TestDemo runs `listsync demo` as a fresh clone would: no services, no
// config. It must exit 0 after checking that the list equals the model,
// and leave nothing behind.
func TestDemo(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := cli.Run(t.Context(), []string{"demo"}, &stdout, &stderr, cli.WithTempDir(tmp), cli.WithTerminal(false))
	require.Equal(t, cli.ExitOK, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	out := stdout.String()
	for _, want := range []string{
		"Seeded a SQLite warehouse with 18 people",
		"Started the Marketo emulator at http://127.0.0.1:",
		"listsync plan trial_users",
		"2 invalid",
		"would add 9",
		"trial_users: succeeded",
		"full resync",
		"plan: add 1 (hedy@example.com), remove 1 (alan@example.com), update fields of 1 (ada@example.com)",
		"added 1 of 1, removed 1 of 1, updated 1 of 1",
		`ada's company in Marketo: "Babbage & Co"`,
		"The list equals the model (9 members) and the state agrees.",
		"0 rate-limit rejections",
	} {
		require.Contains(t, out, want)
	}
	require.Empty(t, stderr.String(), "the demo is quiet on stderr unless something is wrong")
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Empty(t, entries, "the demo must clean up after itself")
}

func TestDemoKeep(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := cli.Run(t.Context(), []string{"demo", "--keep"}, &stdout, &stderr, cli.WithTempDir(tmp), cli.WithTerminal(false))
	require.Equal(t, cli.ExitOK, code, stderr.String())
	dirs, err := filepath.Glob(filepath.Join(tmp, "listsync-demo-*"))
	require.NoError(t, err)
	require.Len(t, dirs, 1)
	cfg := filepath.Join(dirs[0], "listsync.yaml")
	require.FileExists(t, cfg)
	// The kept directory works with the other commands.
	stdout.Reset()
	code = cli.Run(t.Context(), []string{"history", "--config", cfg, "--json"}, &stdout, &stderr, cli.WithTerminal(false),
		cli.WithLookupEnv(func(k string) (string, bool) { return "http://127.0.0.1:1", true }))
	require.Equal(t, cli.ExitOK, code, stderr.String())
	require.Contains(t, stdout.String(), `"sync": "trial_users"`)
}
