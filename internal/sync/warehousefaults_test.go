package sync_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/pgtest"
	"github.com/listsync/listsync/internal/state"
	listsync "github.com/listsync/listsync/internal/sync"
	"github.com/listsync/listsync/internal/warehouse"
	whpg "github.com/listsync/listsync/internal/warehouse/postgres"
)

// ledgerSnapshot is everything a run could change in the state store
// besides its own record.
type ledgerSnapshot struct {
	Members []state.Member
	Rejects []state.Reject
	Binding state.Binding
}

func (e *env) snapshot(syncName string) ledgerSnapshot {
	e.t.Helper()
	var s ledgerSnapshot
	require.NoError(e.t, e.store.ScanMembers(e.ctx, syncName, func(m state.Member) error {
		s.Members = append(s.Members, m)
		return nil
	}))
	var err error
	s.Rejects, err = e.store.ListRejects(e.ctx, syncName, 0)
	require.NoError(e.t, err)
	s.Binding, _, err = e.store.Binding(e.ctx, syncName)
	require.NoError(e.t, err)
	return s
}

// terminatingWH is a Postgres warehouse whose model's connection is
// terminated by another session (pg_terminate_backend, as an operator or a
// failover would) once the engine has read some rows of it.
type terminatingWH struct {
	warehouse.Warehouse
	t      *testing.T
	dsn    string
	marker string // in the model's SQL, to find its backend
	at     int
}

func (w *terminatingWH) Query(ctx context.Context, p *warehouse.QueryParams) (warehouse.Rows, error) {
	rows, err := w.Warehouse.Query(ctx, p)
	if err != nil {
		return nil, err
	}
	return &terminatingRows{Rows: rows, w: w, ctx: ctx}, nil
}

type terminatingRows struct {
	warehouse.Rows
	w   *terminatingWH
	ctx context.Context
	n   int
}

func (r *terminatingRows) Next() bool {
	r.n++
	if r.n == r.w.at {
		conn, err := pgx.Connect(r.ctx, r.w.dsn)
		require.NoError(r.w.t, err)
		defer conn.Close(context.WithoutCancel(r.ctx))
		var killed int
		require.NoError(r.w.t, conn.QueryRow(r.ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid() AND pg_terminate_backend(pid)`, r.w.marker).Scan(&killed))
		require.Equal(r.w.t, 1, killed, "the model's backend was terminated")
	}
	return r.Rows.Next()
}

func randomHex(t *testing.T) string {
	b := make([]byte, 6)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// TestWarehouseFaultsChangeNothing: a warehouse that refuses connections,
// refuses the credentials, rejects the model's SQL, runs past the sync's
// timeout, or loses the connection in the middle of streaming a large model
// fails the run with a message naming the problem and the model. Marketo
// receives no call at all (the model runs before the list is touched), the
// ledger is unchanged, the run record says failed with the error, and the
// next run with a healthy warehouse converges.
func TestWarehouseFaultsChangeNothing(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-warehouse-pa55"
	for _, tc := range []struct {
		name string
		// fault returns the failing spec.
		fault func(t *testing.T, e *env, good listsync.Spec) listsync.Spec
		kind  error
		msg   []string
	}{
		{
			name: "connection refused",
			fault: func(t *testing.T, e *env, s listsync.Spec) listsync.Spec {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				port := l.Addr().(*net.TCPAddr).Port
				require.NoError(t, l.Close()) // nothing listens there now
				wh, err := whpg.New(e.ctx, whpg.Config{DSN: fmt.Sprintf(
					"postgres://listsync:%s@127.0.0.1:%d/warehouse?sslmode=disable&connect_timeout=5", secret, port)})
				require.NoError(t, err, "New does not connect")
				t.Cleanup(func() { _ = wh.Close() })
				s.Warehouse = wh
				return s
			},
			kind: warehouse.ErrConnect,
			msg:  []string{"postgres: cannot connect running models/trial_users.sql", "refused"},
		},
		{
			name: "authentication failure",
			fault: func(t *testing.T, e *env, s listsync.Spec) listsync.Spec {
				u, err := url.Parse(pgtest.BaseURL(t))
				require.NoError(t, err)
				// A role that does not exist fails under trust and password
				// authentication alike.
				u.User = url.UserPassword("listsync_no_such_role", secret)
				wh, err := whpg.New(e.ctx, whpg.Config{DSN: u.String()})
				require.NoError(t, err)
				t.Cleanup(func() { _ = wh.Close() })
				s.Warehouse = wh
				return s
			},
			kind: warehouse.ErrAuth,
			msg:  []string{"postgres: authentication failed running models/trial_users.sql", "listsync_no_such_role"},
		},
		{
			name: "syntax error",
			fault: func(t *testing.T, e *env, s listsync.Spec) listsync.Spec {
				s.SQL = "SELECT email,\n       first_name\n  FORM people"
				return s
			},
			kind: warehouse.ErrSQL,
			msg:  []string{"postgres: SQL error in models/trial_users.sql at line 3, column", `syntax error at or near "people"`},
		},
		{
			name: "model times out",
			fault: func(t *testing.T, e *env, s listsync.Spec) listsync.Spec {
				s.SQL = "SELECT email, first_name FROM people, (SELECT pg_sleep(30)) AS slow"
				s.Timeout = 500 * time.Millisecond
				return s
			},
			kind: warehouse.ErrTimeout,
			msg:  []string{"postgres: timed out running models/trial_users.sql"},
		},
		{
			name: "connection dropped midway",
			fault: func(t *testing.T, e *env, s listsync.Spec) listsync.Spec {
				marker := "dropped_" + randomHex(t)
				s.SQL = "SELECT 'p' || g || '@example.com' AS email, '" + marker + "' AS first_name " +
					"FROM generate_series(1, 5000000) AS g"
				s.Warehouse = &terminatingWH{Warehouse: e.wh, t: t, dsn: pgtest.DSN(t), marker: marker, at: 20_000}
				return s
			},
			kind: warehouse.ErrConnect,
			msg:  []string{"postgres: cannot connect running models/trial_users.sql: the connection was lost after ", " rows"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{})
			list := e.em.CreateStaticList("L", e.em.CreateFolder("F"))
			good := e.spec(marketo.ListRef{ID: list})
			good.Fields = map[string]string{"firstName": "first_name"}
			model := seq("w", 1000)
			e.setModel(emails(model...)...)
			e.run(good, listsync.RunOptions{})
			// A reject in the ledger, and a model that would now add, remove
			// and update, so that a run that went on would change things.
			require.NoError(t, e.store.ApplyBatch(e.ctx, good.Name, state.Batch{At: e.clock.Now(),
				Rejected: []state.Rejection{{Key: "bad@example.com", Op: state.OpAdd, Code: "1006", Reason: "Field not found"}}}))
			next := append(seq("w", 900), seq("x", 100)...)
			rows := emails(next...)
			rows[0].firstName = "Renamed"
			e.setModel(rows...)
			before := e.snapshot(good.Name)
			onList := e.listEmails(list)
			e.em.ResetStats()

			run, err := e.engine.Run(e.ctx, tc.fault(t, e, good), listsync.RunOptions{AllowRemovals: true})
			require.Error(t, err)
			t.Logf("%s: %v", tc.name, err)
			require.ErrorIs(t, err, tc.kind)
			for _, m := range tc.msg {
				require.ErrorContains(t, err, m)
			}
			require.NotContains(t, err.Error(), secret, "the password is not in the error")
			require.Equal(t, state.RunFailed, run.Status)
			require.Equal(t, err.Error(), run.Error)

			st := e.em.Stats()
			require.Zero(t, st.CallsTotal, "Marketo received no call: %v", st.Endpoints)
			require.Equal(t, onList, e.listEmails(list), "the list is unchanged")
			require.Equal(t, before, e.snapshot(good.Name), "the ledger is unchanged")
			runs, err := e.store.ListRuns(e.ctx, good.Name, 1)
			require.NoError(t, err)
			require.Equal(t, state.RunFailed, runs[0].Status)
			require.Equal(t, run.Error, runs[0].Error, "the stored record carries the error")
			require.Zero(t, runs[0].AddsConfirmed+runs[0].RemovesConfirmed+runs[0].UpdatesConfirmed)

			// The warehouse recovers: the next run converges.
			run = e.run(good, listsync.RunOptions{})
			require.EqualValues(t, 100, run.AddsConfirmed, strconv.Quote(run.Error))
			require.EqualValues(t, 100, run.RemovesConfirmed)
			require.EqualValues(t, 1, run.UpdatesConfirmed)
			e.requireConverged(good.Name, list, next...)
		})
	}
}
