package snowflake

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	sf "github.com/snowflakedb/gosnowflake"
	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/warehouse"
)

func TestMapError(t *testing.T) {
	t.Parallel()
	p := &warehouse.QueryParams{SQL: "SELECT 1", Model: "models/m.sql"}
	sfErr := func(n int, state, msg string) error {
		return &sf.SnowflakeError{Number: n, SQLState: state, Message: msg, QueryID: "01b-q"}
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name     string
		err      error
		kind     error
		contains string
	}{
		{"syntax", sfErr(1003, "42000", "SQL compilation error:\nsyntax error line 1 at position 7 unexpected 'FROM'."), warehouse.ErrSQL, "SQL compilation error: syntax error line 1 at position 7"},
		{"missing object", sfErr(2003, "42S02", "SQL compilation error:\nObject 'X' does not exist or not authorized."), warehouse.ErrSQL, "Snowflake error 002003, SQLSTATE 42S02, query ID 01b-q"},
		{"invalid identifier", sfErr(904, "42000", "SQL compilation error: error line 1 at position 7\ninvalid identifier 'FOO'"), warehouse.ErrSQL, "invalid identifier"},
		{"numeric value", sfErr(100038, "22018", "Numeric value 'abc' is not recognized"), warehouse.ErrSQL, "Numeric value"},
		{"statement count", sfErr(8, "0A000", "Actual statement count 2 did not match the desired statement count 1."), warehouse.ErrInvalidModel, "statement count"},
		{"wrong password", sfErr(390100, "08004", "Incorrect username or password was specified."), warehouse.ErrAuth, "Incorrect username"},
		{"bad jwt", sfErr(390144, "08004", "JWT token is invalid."), warehouse.ErrAuth, "JWT"},
		{"user locked", sfErr(390102, "08004", "User temporarily locked."), warehouse.ErrAuth, "locked"},
		{"account url", &sf.SnowflakeError{Number: sf.ErrCodeFailedToConnect, SQLState: "08001", Message: "failed to connect to db. verify account name is correct. HTTP: %v, URL: %v", MessageArgs: []any{403, "https://x"}}, warehouse.ErrAuth, "HTTP: 403"},
		{"role", sfErr(390189, "08004", "Role 'X' specified in the connect string does not exist or not authorized."), warehouse.ErrPermission, "granted to the user"},
		{"connect object", sfErr(390201, "08004", "The requested database does not exist or not authorized."), warehouse.ErrPermission, "database"},
		{"no warehouse", sfErr(606, "57P03", "No active warehouse selected in the current session."), warehouse.ErrPermission, "grant the role USAGE"},
		{"privileges", sfErr(3001, "42501", "SQL access control error:\nInsufficient privileges to operate on table 'T'"), warehouse.ErrPermission, "Insufficient privileges"},
		{"privileges by state", sfErr(3041, "42501", "SQL access control error"), warehouse.ErrPermission, "access control"},
		{"statement timeout", sfErr(630, "57014", "Statement reached its statement or warehouse timeout of 10 second(s) and was canceled."), warehouse.ErrTimeout, "timeout of 10"},
		{"chunk download", &sf.SnowflakeError{Number: sf.ErrFailedToGetChunk, Message: "failed to get a chunk of result sets. idx: %v", MessageArgs: []any{3}}, warehouse.ErrConnect, "idx: 3"},
		{"service unavailable", &sf.SnowflakeError{Number: sf.ErrCodeServiceUnavailable, Message: "unavailable"}, warehouse.ErrConnect, "unavailable"},
		{"connection refused", fmt.Errorf("posting: %w", refused), warehouse.ErrConnect, "connection refused"},
		{"dns", &net.DNSError{Err: "no such host", Name: "acct.snowflakecomputing.com", IsNotFound: true}, warehouse.ErrConnect, "no such host"},
		{"login deadline", fmt.Errorf("logging in: %w", context.DeadlineExceeded), warehouse.ErrTimeout, "did not answer in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := mapError(t.Context(), p, tt.err)
			require.ErrorIs(t, err, tt.kind)
			require.ErrorContains(t, err, tt.contains)
			require.ErrorContains(t, err, "models/m.sql")
			require.ErrorIs(t, err, tt.err, "the driver's error stays reachable")
			require.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestMapErrorPosition(t *testing.T) {
	t.Parallel()
	err := mapError(t.Context(), &warehouse.QueryParams{SQL: "x"},
		&sf.SnowflakeError{Number: 1003, SQLState: "42000", Message: "SQL compilation error:\nsyntax error line 3 at position 12 unexpected 'FORM'."})
	var we *warehouse.Error
	require.ErrorAs(t, err, &we)
	require.Equal(t, 3, we.Line)
	require.Equal(t, 13, we.Column, "Snowflake's position is 0-based")
}

func TestMapErrorContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := mapError(ctx, &warehouse.QueryParams{SQL: "x"}, errors.New("driver noise"))
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, warehouse.ErrTimeout)
}

func FuzzParsePrivateKey(f *testing.F) {
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"))
	f.Add([]byte("garbage"))
	for _, name := range []string{"rsa_key.p8", "rsa_key_des3.p8", "rsa_key_aes256.p8", "rsa_key_pbes1.p8"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(f, err)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := parsePrivateKey(data, "listsync-test", "the fuzz input")
		if err == nil {
			require.NotNil(t, key)
			return
		}
		require.Contains(t, err.Error(), "the fuzz input")
	})
}
