package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/warehouse"
)

// TestConnectionsAreReadOnly checks the guarantee behind CheckModel: even a
// statement that reached the database through the warehouse's own
// connections could not write.
func TestConnectionsAreReadOnly(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "w.db")
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = db.ExecContext(t.Context(), "CREATE TABLE t (x INTEGER)")
	require.NoError(t, err)
	require.NoError(t, db.Close())

	w, err := New(t.Context(), Config{Path: path})
	require.NoError(t, err)
	defer w.Close()
	for _, stmt := range []string{
		"INSERT INTO t VALUES (1)",
		"CREATE TABLE u (y INTEGER)",
		"PRAGMA query_only = 0; INSERT INTO t VALUES (1)",
	} {
		_, err = w.db.ExecContext(t.Context(), stmt)
		err = interpretError(t.Context(), &warehouse.QueryParams{SQL: stmt, Model: "models/w.sql"}, err)
		require.ErrorIs(t, err, warehouse.ErrInvalidModel, stmt)
		require.ErrorContains(t, err, "models are read-only")
	}
}
