package cli_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// database/sql's connection opener lives until its DB is closed;
		// the SQLite state store closes it at the end of each command, but
		// the goroutine may still be winding down when goleak looks.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
	)
}
