package worker_test

import (
	"cmp"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/listsync/listsync/internal/state"
	"github.com/listsync/listsync/internal/worker"
)

// chromium returns the path of Debian's chromium. The test is skipped
// when it is absent, except under CI=true, where it fails: CI must install
// it (.ci/run does).
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is required in CI (apt-get install chromium) but was not found")
	}
	t.Skip("chromium not installed; skipping the browser check of the status page")
	return ""
}

func runChromium(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir(),
	}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "chromium: %s", stderr.String())
	return string(out)
}

// TestStatusPageInChromium renders the status page in a real browser and
// checks what a person would see: the syncs with their schedule and next
// run, the recent runs with their counts, errors shown as text (never as
// markup), and no script.
func TestStatusPageInChromium(t *testing.T) {
	t.Parallel()
	bin := chromium(t)
	st := sqliteStore(t)
	ctx := t.Context()

	ok, err := st.StartRun(ctx, state.Run{Sync: "trial_users", Trigger: state.TriggerSchedule, StartedAt: time.Now().Add(-time.Minute)})
	require.NoError(t, err)
	ok.Status, ok.EndedAt = state.RunSucceeded, time.Now().Add(-50*time.Second)
	ok.RowsRead, ok.AddsPlanned, ok.AddsConfirmed, ok.RemovesPlanned, ok.RemovesConfirmed, ok.Rejected, ok.APICalls = 1200, 40, 39, 7, 7, 1, 12
	require.NoError(t, st.FinishRun(ctx, ok))
	bad, err := st.StartRun(ctx, state.Run{Sync: "churn_risk", Trigger: state.TriggerManual, StartedAt: time.Now().Add(-30 * time.Second)})
	require.NoError(t, err)
	bad.Status, bad.EndedAt = state.RunFailed, time.Now().Add(-29*time.Second)
	bad.Error = `querying model: <script>alert("x")</script> relation "app.users" does not exist`
	require.NoError(t, st.FinishRun(ctx, bad))

	addr := make(chan net.Addr, 1)
	w, err := worker.New(worker.Config{
		Store: st, Listen: "127.0.0.1:0", OnListen: func(a net.Addr) { addr <- a }, Logger: zaptest.NewLogger(t),
		Version: "test",
		Jobs: []worker.Job{
			{Name: "trial_users", Schedule: "*/15 * * * *", Describe: "analytics → list 1234 (mirror)", Run: recordingRun(st, "trial_users", func(context.Context) error { return nil })},
			{Name: "churn_risk", Schedule: "CRON_TZ=Europe/Berlin 0 7 * * 1-5", Describe: `analytics → "Churn risk" (mirror)`, Run: recordingRun(st, "churn_risk", func(context.Context) error { return nil })},
		},
	})
	require.NoError(t, err)
	stop := startWorker(t, w)
	url := "http://" + (<-addr).String() + "/"

	dom := runChromium(t, bin, "--dump-dom", url)
	for _, want := range []string{
		`<table id="syncs">`, `data-sync="trial_users"`, `data-sync="churn_risk"`,
		"*/15 * * * *", "CRON_TZ=Europe/Berlin 0 7 * * 1-5", "analytics → list 1234 (mirror)",
		`<table id="runs">`, `data-run="1"`, `data-run="2"`, "succeeded", "failed",
		">1200<", ">39<", "/40", ">7<", ">12<",
		`&lt;script&gt;alert("x")&lt;/script&gt; relation "app.users" does not exist`,
		"from now", // next runs are in the future
		`id="state">ready<`,
	} {
		require.Contains(t, dom, want)
	}
	require.NotContains(t, dom, "<script")

	shot := filepath.Join(cmp.Or(os.Getenv("LISTSYNC_SCREENSHOT_DIR"), t.TempDir()), "status.png")
	runChromium(t, bin, "--window-size=1280,900", "--screenshot="+shot, url)
	fi, err := os.Stat(shot)
	require.NoError(t, err)
	require.Greater(t, fi.Size(), int64(5000), "the screenshot is suspiciously small")
	stop()
}
