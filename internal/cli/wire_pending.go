package cli

import (
	"context"
	"errors"
	"flag"

	"go.uber.org/zap"

	"github.com/listsync/listsync/internal/warehouse"
)

// This file holds what waits on internal/warehouse/sqlite, which is being
// built in parallel; it goes away when that package lands.

func openSQLiteWarehouse(context.Context, string, *zap.Logger) (warehouse.Warehouse, error) {
	return nil, errors.New("sqlite warehouses are not available in this build yet")
}

const demoHelp = `
Runs a sync end to end on embedded sample data with no services: a SQLite
warehouse, the Marketo emulator in process and a SQLite state store.`

func cmdDemo(_ context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	if _, err := e.parse("demo", fs, args); err != nil {
		return err
	}
	return errors.New("the demo needs the sqlite warehouse, which is not available in this build yet")
}
