package snowflake_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	sf "github.com/snowflakedb/gosnowflake"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/listsync/listsync/internal/warehouse"
	"github.com/listsync/listsync/internal/warehouse/snowflake"
	"github.com/listsync/listsync/internal/warehouse/snowflake/snowflaketest"
)

func TestMain(m *testing.M) {
	// At its first login gosnowflake probes cloud metadata servers
	// (169.254.169.254, metadata.google.internal) to report the platform it
	// runs on. Tests talk to the loopback fake only.
	if err := os.Setenv("SNOWFLAKE_DISABLE_PLATFORM_DETECTION", "true"); err != nil {
		panic(err)
	}
	// Expected-error tests make gosnowflake log at error level to stderr.
	_ = sf.GetLogger().SetLogLevel("fatal")
	goleak.VerifyTestMain(m)
}

// newWarehouse returns a Warehouse logged in to srv with srv's password,
// after edit (if any) has changed its Config.
func newWarehouse(t *testing.T, srv *snowflaketest.Server, edit func(*snowflake.Config)) *snowflake.Warehouse {
	t.Helper()
	cfg := snowflake.Config{
		Account:  srv.Account,
		User:     srv.User,
		Password: srv.Password,
		Host:     srv.Host,
		Port:     srv.Port,
		Protocol: "http",
		Logger:   zaptest.NewLogger(t),
	}
	if edit != nil {
		edit(&cfg)
	}
	w, err := snowflake.New(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, w.Close()) })
	return w
}

// readAll reads every row of a query, copying the values.
func readAll(t *testing.T, w warehouse.Warehouse, p *warehouse.QueryParams) ([]string, [][]any, error) {
	t.Helper()
	rows, err := w.Query(t.Context(), p)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		out = append(out, append([]any(nil), rows.Values()...))
	}
	return rows.Columns(), out, rows.Err()
}

var (
	pst  = time.FixedZone("PST", -8*3600)
	when = time.Date(2024, 2, 29, 13, 14, 15, 123456789, pst)
)

// typedResult has one column of each type listsync reads, every seventh row
// NULL throughout.
func typedResult(n int) snowflaketest.Result {
	return snowflaketest.Result{
		Columns: []snowflaketest.Column{
			{Name: "EMAIL", Type: snowflaketest.Text, NotNull: true},
			{Name: "ID", Type: snowflaketest.Fixed, Precision: 38},
			{Name: "SCORE", Type: snowflaketest.Real},
			{Name: "PRICE", Type: snowflaketest.Fixed, Precision: 10, Scale: 2},
			{Name: "ACTIVE", Type: snowflaketest.Boolean},
			{Name: "BORN", Type: snowflaketest.Date},
			{Name: "SEEN_NTZ", Type: snowflaketest.TimestampNTZ},
			{Name: "SEEN_LTZ", Type: snowflaketest.TimestampLTZ, Scale: 3},
			{Name: "SEEN_TZ", Type: snowflaketest.TimestampTZ},
			{Name: "NOTE", Type: snowflaketest.Text},
		},
		NumRows: n,
		Row: func(i int, row []any) {
			row[0] = fmt.Sprintf("user%d@example.com", i)
			if i%7 == 3 {
				return
			}
			row[1] = int64(i) * 1_000_003 // grows past int32 within a result
			row[2] = float64(i) / 4
			row[3] = float64(i%1000) + 0.25
			row[4] = i%2 == 0
			row[5] = when.AddDate(0, 0, i%365)
			row[6] = when.Add(time.Duration(i) * time.Second)
			row[7] = when.Add(time.Duration(i) * time.Millisecond)
			row[8] = when.Add(time.Duration(i) * time.Microsecond)
			row[9] = "héllo, ☃"
		},
	}
}

// wantTyped is what listsync should read for row i of typedResult.
func wantTyped(i int) []any {
	row := []any{fmt.Sprintf("user%d@example.com", i), nil, nil, nil, nil, nil, nil, nil, nil, nil}
	if i%7 == 3 {
		return row
	}
	ntz := when.Add(time.Duration(i) * time.Second)
	d := when.AddDate(0, 0, i%365).UTC()
	row[1] = int64(i) * 1_000_003
	row[2] = float64(i) / 4
	row[3] = float64(i%1000) + 0.25
	row[4] = i%2 == 0
	row[5] = time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC)
	// NTZ keeps the wall clock, read as UTC. Times keep microseconds.
	row[6] = time.Date(ntz.Year(), ntz.Month(), ntz.Day(), ntz.Hour(), ntz.Minute(), ntz.Second(), ntz.Nanosecond(), time.UTC).Truncate(time.Microsecond)
	row[7] = when.Add(time.Duration(i) * time.Millisecond).UTC().Truncate(time.Millisecond)
	row[8] = when.Add(time.Duration(i) * time.Microsecond).UTC().Truncate(time.Microsecond)
	row[9] = "héllo, ☃"
	return row
}

func TestQueryMultiChunkTypesAndNulls(t *testing.T) {
	t.Parallel()
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			t.Parallel()
			srv := snowflaketest.NewServer(t, snowflaketest.Config{FirstChunkRows: 500, ChunkRows: 2000, Gzip: gz})
			const n = 12_500
			srv.Register("SELECT * FROM people", typedResult(n))
			w := newWarehouse(t, srv, nil)

			cols, rows, err := readAll(t, w, &warehouse.QueryParams{SQL: "SELECT * FROM people;", Model: "models/people.sql"})
			require.NoError(t, err)
			require.Equal(t, []string{"EMAIL", "ID", "SCORE", "PRICE", "ACTIVE", "BORN", "SEEN_NTZ", "SEEN_LTZ", "SEEN_TZ", "NOTE"}, cols)
			require.Len(t, rows, n)
			for i, row := range rows {
				if want := wantTyped(i); !reflect.DeepEqual(want, row) {
					require.Equal(t, want, row, "row %d", i)
				}
				for c, v := range row {
					if tv, ok := v.(time.Time); ok {
						require.Equal(t, time.UTC, tv.Location(), "row %d column %s", i, cols[c])
					}
				}
			}
			st := srv.Stats()
			require.EqualValues(t, 6, st.ChunkRequests, "12,000 rows after the first 500, in chunks of 2,000")
			require.Greater(t, st.MaxConcurrentChunks, int64(0))
		})
	}
}

func TestQueryEmptyResult(t *testing.T) {
	t.Parallel()
	srv := snowflaketest.NewServer(t, snowflaketest.Config{})
	srv.Register("SELECT email FROM nobody", snowflaketest.Rows(
		[]snowflaketest.Column{{Name: "EMAIL", Type: snowflaketest.Text}}, nil))
	w := newWarehouse(t, srv, nil)
	cols, rows, err := readAll(t, w, &warehouse.QueryParams{SQL: "SELECT email FROM nobody"})
	require.NoError(t, err)
	require.Equal(t, []string{"EMAIL"}, cols)
	require.Empty(t, rows)
}

func TestQueryNumbers(t *testing.T) {
	t.Parallel()
	srv := snowflaketest.NewServer(t, snowflaketest.Config{})
	srv.Register("SELECT n", snowflaketest.Rows(
		[]snowflaketest.Column{
			{Name: "SMALL", Type: snowflaketest.Fixed, Precision: 3},
			{Name: "BIG", Type: snowflaketest.Fixed, Precision: 38},
			{Name: "WHOLE_DECIMAL", Type: snowflaketest.Fixed, Precision: 10, Scale: 2},
			{Name: "FRACTION", Type: snowflaketest.Fixed, Precision: 10, Scale: 4},
		},
		[][]any{
			{int64(-128), int64(9_223_372_036_854_775_807), float64(12), -0.0001},
			{int64(127), int64(-9_223_372_036_854_775_808), float64(-3), 123456.789},
		}))
	w := newWarehouse(t, srv, nil)
	_, rows, err := readAll(t, w, &warehouse.QueryParams{SQL: "SELECT n"})
	require.NoError(t, err)
	require.Equal(t, [][]any{
		{int64(-128), int64(9_223_372_036_854_775_807), int64(12), -0.0001},
		{int64(127), int64(-9_223_372_036_854_775_808), int64(-3), 123456.789},
	}, rows)
}

func TestQuerySQLErrors(t *testing.T) {
	t.Parallel()
	srv := snowflaketest.NewServer(t, snowflaketest.Config{})
	srv.RegisterError("SELECT email\nFROMM people", snowflaketest.SyntaxError(2, 0, "FROMM"))
	srv.RegisterError("SELECT email FROM missing", snowflaketest.ObjectNotFound("Object", "MISSING"))
	srv.RegisterError("SELECT email FROM secret", snowflaketest.InsufficientPrivileges("SECRET"))
	srv.RegisterError("SELECT email FROM slow", snowflaketest.StatementTimeout(60))
	w := newWarehouse(t, srv, nil)

	tests := []struct {
		sql          string
		kind         error
		line, column int
		contains     []string
	}{
		{sql: "SELECT email\nFROMM people", kind: warehouse.ErrSQL, line: 2, column: 1,
			contains: []string{"syntax error line 2 at position 0 unexpected 'FROMM'", "001003", "SQLSTATE 42000", "models/m.sql"}},
		{sql: "SELECT email FROM missing", kind: warehouse.ErrSQL,
			contains: []string{"Object 'MISSING' does not exist or not authorized", "002003", "query ID"}},
		{sql: "SELECT email FROM secret", kind: warehouse.ErrPermission,
			contains: []string{"Insufficient privileges", "003001"}},
		{sql: "SELECT email FROM slow", kind: warehouse.ErrTimeout,
			contains: []string{"timeout of 60 second(s)", "000630"}},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			t.Parallel()
			_, err := w.Query(t.Context(), &warehouse.QueryParams{SQL: tt.sql, Model: "models/m.sql"})
			require.ErrorIs(t, err, tt.kind)
			var we *warehouse.Error
			require.ErrorAs(t, err, &we)
			require.Equal(t, tt.line, we.Line)
			require.Equal(t, tt.column, we.Column)
			var se *sf.SnowflakeError
			require.ErrorAs(t, err, &se, "the driver's error stays reachable")
			for _, s := range tt.contains {
				require.Contains(t, err.Error(), s)
			}
		})
	}
}

func TestQueryRefusesNonQueries(t *testing.T) {
	t.Parallel()
	srv := snowflaketest.NewServer(t, snowflaketest.Config{})
	w := newWarehouse(t, srv, nil)
	for _, sql := range []string{
		"DELETE FROM people",
		"SELECT 1; DROP TABLE people",
		"CREATE TABLE x AS SELECT 1",
		"",
	} {
		_, err := w.Query(t.Context(), &warehouse.QueryParams{SQL: sql, Model: "models/bad.sql"})
		require.ErrorIs(t, err, warehouse.ErrInvalidModel, "%q", sql)
		require.Contains(t, err.Error(), "models/bad.sql")
	}
	require.Empty(t, srv.Queries(), "nothing reaches Snowflake")
	require.Empty(t, srv.Logins())
}

func TestLoginErrors(t *testing.T) {
	t.Parallel()
	srv := snowflaketest.NewServer(t, snowflaketest.Config{Roles: []string{"LISTSYNC_READER"}})
	srv.Register("SELECT 1 AS one", snowflaketest.Rows([]snowflaketest.Column{{Name: "ONE", Type: snowflaketest.Fixed}}, [][]any{{int64(1)}}))

	tests := []struct {
		name     string
		edit     func(*snowflake.Config)
		kind     error
		contains string
	}{
		{"wrong password", func(c *snowflake.Config) { c.Password = "hunter2-wrong" }, warehouse.ErrAuth, "Incorrect username or password was specified"},
		{"wrong user", func(c *snowflake.Config) { c.User = "mallory" }, warehouse.ErrAuth, "390100"},
		{"role not granted", func(c *snowflake.Config) { c.Role = "accountadmin" }, warehouse.ErrPermission, "Role 'ACCOUNTADMIN' specified in the connect string does not exist or not authorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWarehouse(t, srv, tt.edit)
			_, err := w.Query(t.Context(), &warehouse.QueryParams{SQL: "SELECT 1 AS one"})
			require.ErrorIs(t, err, tt.kind)
			require.Contains(t, err.Error(), tt.contains)
			require.NotContains(t, err.Error(), "hunter2")
			require.ErrorIs(t, w.Ping(t.Context()), tt.kind)
		})
	}
}

func TestKeyPairAuth(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	srv := snowflaketest.NewServer(t, snowflaketest.Config{PublicKey: &key.PublicKey})
	srv.Register("SELECT email FROM people", snowflaketest.Rows(
		[]snowflaketest.Column{{Name: "EMAIL", Type: snowflaketest.Text}}, [][]any{{"a@x.com"}}))
	dir := t.TempDir()

	good := writeKey(t, dir, "good.p8", key)
	w := newWarehouse(t, srv, func(c *snowflake.Config) { c.Password, c.PrivateKeyPath = "", good })
	_, rows, err := readAll(t, w, &warehouse.QueryParams{SQL: "SELECT email FROM people"})
	require.NoError(t, err)
	require.Equal(t, [][]any{{"a@x.com"}}, rows)
	logins := srv.Logins()
	require.Equal(t, "SNOWFLAKE_JWT", logins[len(logins)-1].Authenticator)

	pemBytes, err := os.ReadFile(good)
	require.NoError(t, err)
	w = newWarehouse(t, srv, func(c *snowflake.Config) { c.Password, c.PrivateKeyPEM = "", pemBytes })
	require.NoError(t, w.Ping(t.Context()))

	bad := writeKey(t, dir, "other.p8", other)
	w = newWarehouse(t, srv, func(c *snowflake.Config) { c.Password, c.PrivateKeyPath = "", bad })
	err = w.Ping(t.Context())
	require.ErrorIs(t, err, warehouse.ErrAuth)
	require.Contains(t, err.Error(), "JWT token is invalid")
}

func writeKey(t *testing.T, dir, name string, key *rsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	return path
}

func TestSessionSettingsReachSnowflake(t *testing.T) {
	t.Parallel()
	srv := snowflaketest.NewServer(t, snowflaketest.Config{})
	srv.Register("SELECT email FROM people", snowflaketest.Rows(
		[]snowflaketest.Column{{Name: "EMAIL", Type: snowflaketest.Text}}, [][]any{{"a@x.com"}}))
	w := newWarehouse(t, srv, func(c *snowflake.Config) {
		c.Role, c.Warehouse, c.Database, c.Schema = "listsync_reader", "transforming", "analytics", "marts"
		c.StatementTimeout = 1500 * time.Millisecond
	})
	_, _, err := readAll(t, w, &warehouse.QueryParams{SQL: "SELECT email FROM people", Model: "models/people.sql"})
	require.NoError(t, err)

	logins := srv.Logins()
	require.Len(t, logins, 1)
	l := logins[0]
	require.Equal(t, "listsync_reader", l.Role)
	require.Equal(t, "transforming", l.Warehouse)
	require.Equal(t, "analytics", l.Database)
	require.Equal(t, "marts", l.Schema)
	require.Equal(t, "listsync", l.Application)
	require.Equal(t, "ARROW", l.SessionParameters["GO_QUERY_RESULT_FORMAT"], "production asks for the format the fake serves")
	require.Equal(t, "2", l.SessionParameters["STATEMENT_TIMEOUT_IN_SECONDS"])

	queries := srv.Queries()
	require.Len(t, queries, 1)
	require.Equal(t, "listsync:models/people.sql", queries[0].Parameters["QUERY_TAG"])
	require.EqualValues(t, 1, queries[0].Parameters["MULTI_STATEMENT_COUNT"])
}

func TestCancelMidway(t *testing.T) {
	t.Parallel()
	srv := snowflaketest.NewServer(t, snowflaketest.Config{FirstChunkRows: 100, ChunkRows: 1000})
	srv.Register("SELECT * FROM people", typedResult(200_000))
	w := newWarehouse(t, srv, nil)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rows, err := w.Query(ctx, &warehouse.QueryParams{SQL: "SELECT * FROM people"})
	require.NoError(t, err)
	n := 0
	for rows.Next() {
		n++
		if n == 1500 {
			cancel()
		}
	}
	require.ErrorIs(t, rows.Err(), context.Canceled)
	require.NotErrorIs(t, rows.Err(), warehouse.ErrTimeout)
	require.Less(t, n, 200_000)
	require.NoError(t, rows.Close())
	require.NoError(t, rows.Close(), "Close is idempotent")
	require.Less(t, srv.Stats().ChunkRequests, int64(199), "downloads stop")

	// The warehouse is still usable.
	srv.Register("SELECT * FROM few", typedResult(3000))
	_, got, err := readAll(t, w, &warehouse.QueryParams{SQL: "SELECT * FROM few", Timeout: time.Minute})
	require.NoError(t, err)
	require.Len(t, got, 3000)
}

func TestCloseEarly(t *testing.T) {
	t.Parallel()
	srv := snowflaketest.NewServer(t, snowflaketest.Config{FirstChunkRows: 100, ChunkRows: 1000})
	srv.Register("SELECT * FROM people", typedResult(100_000))
	w := newWarehouse(t, srv, func(c *snowflake.Config) { c.MaxOpenConns = 1 })
	for range 3 {
		rows, err := w.Query(t.Context(), &warehouse.QueryParams{SQL: "SELECT * FROM people"})
		require.NoError(t, err)
		require.True(t, rows.Next())
		require.NoError(t, rows.Close())
		require.False(t, rows.Next())
		require.NoError(t, rows.Err())
	}
	require.Len(t, srv.Logins(), 1, "closing rows returns the session to the pool")
}

func TestTimeoutAbortsRunningQuery(t *testing.T) {
	t.Parallel()
	srv := snowflaketest.NewServer(t, snowflaketest.Config{})
	res := typedResult(10)
	res.Delay = time.Minute
	srv.Register("SELECT * FROM huge", res)
	w := newWarehouse(t, srv, nil)

	start := time.Now()
	_, err := w.Query(t.Context(), &warehouse.QueryParams{SQL: "SELECT * FROM huge", Model: "models/huge.sql", Timeout: 300 * time.Millisecond})
	require.ErrorIs(t, err, warehouse.ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Contains(t, err.Error(), "models/huge.sql")
	require.Less(t, time.Since(start), 20*time.Second)
	require.EqualValues(t, 1, srv.Stats().Aborts, "Snowflake is told to stop the query")
}

func TestSlowQueryPolled(t *testing.T) {
	t.Parallel()
	srv := snowflaketest.NewServer(t, snowflaketest.Config{})
	res := typedResult(3000)
	res.Delay = 700 * time.Millisecond
	srv.Register("SELECT * FROM slowish", res)
	w := newWarehouse(t, srv, nil)
	_, rows, err := readAll(t, w, &warehouse.QueryParams{SQL: "SELECT * FROM slowish", Timeout: time.Minute})
	require.NoError(t, err)
	require.Len(t, rows, 3000)
}

func TestConnectError(t *testing.T) {
	t.Parallel()
	srv := snowflaketest.NewServer(t, snowflaketest.Config{})
	w := newWarehouse(t, srv, func(c *snowflake.Config) {
		c.Port = closedPort(t)
		c.LoginTimeout = time.Second
	})
	err := w.Ping(t.Context())
	require.ErrorIs(t, err, warehouse.ErrConnect)
	require.Contains(t, err.Error(), "connection refused")
}

func TestCloseLogsOut(t *testing.T) {
	t.Parallel()
	srv := snowflaketest.NewServer(t, snowflaketest.Config{})
	cfg := snowflake.Config{Account: srv.Account, User: srv.User, Password: srv.Password, Host: srv.Host, Port: srv.Port, Protocol: "http"}
	w, err := snowflake.New(t.Context(), cfg)
	require.NoError(t, err)
	require.NoError(t, w.Ping(t.Context()))
	require.EqualValues(t, 1, srv.Stats().OpenSessions)
	require.NoError(t, w.Close())
	require.NoError(t, w.Close())
	require.EqualValues(t, 0, srv.Stats().OpenSessions)
	require.EqualValues(t, 1, srv.Stats().ClosedSessions)
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // size is irrelevant to parsing
	require.NoError(t, err)
	dir := t.TempDir()
	keyPath := writeKey(t, dir, "k.p8", key)
	encPath := filepath.Join(dir, "enc.p8")
	require.NoError(t, os.WriteFile(encPath, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("opaque")}), 0o600))
	garbagePath := filepath.Join(dir, "garbage.p8")
	require.NoError(t, os.WriteFile(garbagePath, []byte("not a key at all, SECRETSTUFF"), 0o600))
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})

	base := snowflake.Config{Account: "acct", User: "u"}
	tests := []struct {
		name        string
		edit        func(*snowflake.Config)
		errContains string
	}{
		{"password", func(c *snowflake.Config) { c.Password = "p" }, ""},
		{"key file", func(c *snowflake.Config) { c.PrivateKeyPath = keyPath }, ""},
		{"pkcs1 pem", func(c *snowflake.Config) { c.PrivateKeyPEM = pkcs1 }, ""},
		{"no account", func(c *snowflake.Config) { c.Account, c.Password = "", "p" }, "account is required"},
		{"no user", func(c *snowflake.Config) { c.User, c.Password = "", "p" }, "user is required"},
		{"no secret", func(*snowflake.Config) {}, "a password or a private key"},
		{"both", func(c *snowflake.Config) { c.Password, c.PrivateKeyPath = "SECRETSTUFF", keyPath }, "not both"},
		{"bad protocol", func(c *snowflake.Config) { c.Password, c.Protocol = "p", "ftp" }, `protocol "ftp"`},
		{"bad port", func(c *snowflake.Config) { c.Password, c.Port = "p", 70000 }, "port 70000"},
		{"missing key file", func(c *snowflake.Config) { c.PrivateKeyPath = filepath.Join(dir, "nope.p8") }, "nope.p8"},
		{"encrypted key without passphrase", func(c *snowflake.Config) { c.PrivateKeyPath = encPath }, "no passphrase was given"},
		{"passphrase without key", func(c *snowflake.Config) { c.Password, c.PrivateKeyPassphrase = "p", "SECRETSTUFF" }, "without a private key"},
		{"garbage key", func(c *snowflake.Config) { c.PrivateKeyPath = garbagePath }, "no PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := base
			tt.edit(&cfg)
			w, err := snowflake.New(t.Context(), cfg)
			if tt.errContains == "" {
				require.NoError(t, err)
				require.NoError(t, w.Close())
				return
			}
			require.ErrorContains(t, err, tt.errContains)
			require.NotContains(t, err.Error(), "SECRETSTUFF")
		})
	}
}

// closedPort returns a local port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

func TestQueryWideNumbers(t *testing.T) {
	t.Parallel()
	srv := snowflaketest.NewServer(t, snowflaketest.Config{})
	// Values beyond 64 bits make Snowflake send the chunk's column as a
	// 128-bit decimal.
	srv.Register("SELECT wide", snowflaketest.Rows(
		[]snowflaketest.Column{
			{Name: "BIG", Type: snowflaketest.Fixed, Precision: 38},
			{Name: "BIG_DECIMAL", Type: snowflaketest.Fixed, Precision: 38, Scale: 2},
		},
		[][]any{
			{"123456789012345678901234", "12345678901234567890.50"},
			{int64(42), "7.00"},
			{nil, nil},
		}))
	w := newWarehouse(t, srv, nil)
	_, rows, err := readAll(t, w, &warehouse.QueryParams{SQL: "SELECT wide"})
	require.NoError(t, err)
	require.Equal(t, [][]any{
		{1.2345678901234568e23, 1.2345678901234567e19},
		{int64(42), int64(7)},
		{nil, nil},
	}, rows)
}

func TestSessionTokenRenewal(t *testing.T) {
	t.Parallel()
	srv := snowflaketest.NewServer(t, snowflaketest.Config{FirstChunkRows: 10, ChunkRows: 100})
	srv.Register("SELECT * FROM people", typedResult(1000))
	w := newWarehouse(t, srv, func(c *snowflake.Config) { c.MaxOpenConns = 1 })
	for range 2 {
		_, rows, err := readAll(t, w, &warehouse.QueryParams{SQL: "SELECT * FROM people"})
		require.NoError(t, err)
		require.Len(t, rows, 1000)
		// An hour passes: the session token expires, the master token
		// renews it without a new login.
		srv.ExpireSessionTokens()
	}
	require.Len(t, srv.Logins(), 1)
	require.EqualValues(t, 1, srv.Stats().TokenRenewals)
}

func TestKeyPairAuthEncryptedKey(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("testdata", "rsa_key.p8"))
	require.NoError(t, err)
	block, _ := pem.Decode(data)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	srv := snowflaketest.NewServer(t, snowflaketest.Config{PublicKey: &key.(*rsa.PrivateKey).PublicKey})
	for _, file := range []string{"rsa_key_des3.p8", "rsa_key_aes256.p8"} {
		w := newWarehouse(t, srv, func(c *snowflake.Config) {
			c.Password = ""
			c.PrivateKeyPath = filepath.Join("testdata", file)
			c.PrivateKeyPassphrase = "listsync-test"
		})
		require.NoError(t, w.Ping(t.Context()), file)
	}
	_, err = snowflake.New(t.Context(), snowflake.Config{
		Account: "a", User: "u",
		PrivateKeyPath:       filepath.Join("testdata", "rsa_key_aes256.p8"),
		PrivateKeyPassphrase: "not-the-passphrase",
	})
	require.ErrorContains(t, err, "passphrase is wrong")
	require.NotContains(t, err.Error(), "not-the-passphrase")
}

func TestChunkDownloadFailure(t *testing.T) {
	t.Parallel()
	srv := snowflaketest.NewServer(t, snowflaketest.Config{FirstChunkRows: 100, ChunkRows: 100})
	srv.Register("SELECT * FROM people", typedResult(5000))
	w := newWarehouse(t, srv, nil)
	rows, err := w.Query(t.Context(), &warehouse.QueryParams{SQL: "SELECT * FROM people", Model: "models/people.sql"})
	require.NoError(t, err)
	defer rows.Close()
	require.True(t, rows.Next())
	// The reader stalls for hours; the chunk URLs expire meanwhile.
	srv.ExpireChunkURLs()
	n := 1
	for rows.Next() {
		n++
	}
	require.Less(t, n, 5000)
	require.ErrorIs(t, rows.Err(), warehouse.ErrConnect)
	require.ErrorContains(t, rows.Err(), "failed to get a chunk")
	require.ErrorContains(t, rows.Err(), "models/people.sql")
}
