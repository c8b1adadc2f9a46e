package pgtest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/listsync/listsync/internal/pgtest"
)

func TestDSNGivesPrivateSchema(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE t (x int)"); err != nil {
		t.Fatalf("creating table: %v", err)
	}
	var schema string
	if err := conn.QueryRow(ctx, "SELECT table_schema FROM information_schema.tables WHERE table_name = 't' AND table_schema = current_schema()").Scan(&schema); err != nil {
		t.Fatalf("finding table: %v", err)
	}
	if !strings.HasPrefix(schema, "lstest_") {
		t.Fatalf("table created in schema %q, want a private lstest_ schema", schema)
	}
}
