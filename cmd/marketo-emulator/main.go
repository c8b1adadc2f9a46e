// Command marketo-emulator serves an in-memory Marketo instance (package
// internal/marketo/emulator) for local development, demos and
// docker-compose: the identity, REST and bulk APIs listsync uses, with
// Marketo's limits and optional faults. Run it with --help for its flags.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
