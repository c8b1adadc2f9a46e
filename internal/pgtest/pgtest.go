// Package pgtest gives tests a private schema in a real Postgres server.
//
// The server is the one named by $TEST_DATABASE_URL, by default the
// machine's own at 127.0.0.1:5432 (user postgres, trust auth). When it cannot
// be reached the test is skipped on a developer's machine, and fails when
// $CI is "true", so that CI never passes without having talked to Postgres.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// URLDefault is the server used when $TEST_DATABASE_URL is not set.
const URLDefault = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// BaseURL returns the server's URL, failing or skipping t as the package
// documentation says when the server is not reachable.
func BaseURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		base = URLDefault
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pgtest: Postgres is required in CI but unreachable at %s: %v", redact(base), err)
		}
		t.Skipf("pgtest: Postgres unreachable at %s (set TEST_DATABASE_URL): %v", redact(base), err)
	}
	_ = conn.Close(ctx)
	return base
}

// DSN creates a fresh schema, returns a connection string whose search_path
// is that schema, and drops the schema when the test ends.
func DSN(t testing.TB) string {
	t.Helper()
	base := BaseURL(t)
	schema := "lstest_" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: connecting: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("pgtest: creating schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("pgtest: connecting for cleanup: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("pgtest: dropping schema %s: %v", schema, err)
		}
	})
	return WithSearchPath(t, base, schema)
}

// WithSearchPath returns base with its search_path set to schema.
func WithSearchPath(t testing.TB, base, schema string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("pgtest: parsing %s: %v", redact(base), err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
