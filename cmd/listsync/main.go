// Command listsync keeps Marketo static lists in step with SQL models in a
// data warehouse. Run `listsync --help`, or `listsync demo` to see it work
// with no services at all.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	// Schedules may name any IANA zone (CRON_TZ=Europe/Berlin) and the
	// release image has no zoneinfo: embed it.
	_ "time/tzdata"

	"github.com/listsync/listsync/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr,
		cli.WithLookupEnv(os.LookupEnv), cli.WithTempDir(os.TempDir()))
	stop()
	os.Exit(code)
}
