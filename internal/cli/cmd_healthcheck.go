package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

const healthcheckHelp = `
Fetches URL and exits 0 when it answers 2xx, 1 otherwise: a health check
for containers whose image has no curl (docker-compose.yml uses it on the
worker's /readyz and the emulator).`

func cmdHealthcheck(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 3*time.Second, "give up after `duration`")
	pos, err := e.parse("healthcheck", fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("give exactly one URL")
	}
	u, err := url.Parse(pos[0])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("%q is not an http(s) URL", pos[0])
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return usagef("%v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("checking %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("checking %s: %s", u.Redacted(), resp.Status)
	}
	fmt.Fprintf(e.stdout, "%s: %s\n", u.Redacted(), resp.Status)
	return nil
}
