package worker_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// database/sql's connection opener for the SQLite store lives until
		// its DB is closed, which each test does; pgx's pool health checker
		// likewise. These are the background goroutines of libraries whose
		// Close the tests call, listed so that goleak does not flag them
		// while they wind down.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
	)
}
