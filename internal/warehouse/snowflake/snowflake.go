package snowflake

import (
	"context"
	"crypto/rsa"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	sf "github.com/snowflakedb/gosnowflake"
	"go.uber.org/zap"

	"github.com/listsync/listsync/internal/warehouse"
)

// Defaults for the optional Config fields.
const (
	// LoginTimeoutDefault bounds a login, retries included.
	LoginTimeoutDefault = 60 * time.Second
	// MaxOpenConnsDefault is the number of Snowflake sessions one Warehouse
	// keeps at most, which bounds the models it runs at once.
	MaxOpenConnsDefault = 4
	// ConnMaxIdleTimeDefault closes sessions idle this long, well before
	// Snowflake expires an idle session's tokens (four hours).
	ConnMaxIdleTimeDefault = 30 * time.Minute
	// ApplicationDefault is the client application name Snowflake records
	// for every session, visible in its login and query history.
	ApplicationDefault = "listsync"
)

// name is how errors name this backend.
const name = "snowflake"

// Config configures a Snowflake warehouse. Account, User and one of
// Password, PrivateKeyPath or PrivateKeyPEM are required.
type Config struct {
	// Account is the account identifier, e.g. "myorg-myaccount" or the
	// legacy "xy12345.eu-west-1".
	Account string
	// User is the login name.
	User string
	// Password authenticates the user with a password. Leave it empty for
	// key-pair authentication.
	Password string
	// PrivateKeyPath is a PEM file holding the user's RSA private key for
	// key-pair authentication: PKCS#8, unencrypted ("PRIVATE KEY") or
	// encrypted with a passphrase ("ENCRYPTED PRIVATE KEY", as
	// `openssl pkcs8 -topk8 -v2 aes-256-cbc` or `-v2 des3` writes it), or
	// unencrypted PKCS#1 ("RSA PRIVATE KEY").
	PrivateKeyPath string
	// PrivateKeyPEM is the same key given as the file's contents, for
	// deployments that hand secrets over in memory.
	PrivateKeyPEM []byte
	// PrivateKeyPassphrase decrypts an encrypted private key.
	PrivateKeyPassphrase string
	// Role is the role the sessions use; empty means the user's default
	// role. It should be a role that may only read (see the package
	// documentation).
	Role string
	// Warehouse is the virtual warehouse that runs the models; empty means
	// the user's default warehouse.
	Warehouse string
	// Database and Schema set the session's current database and schema,
	// against which unqualified names in models resolve.
	Database, Schema string
	// Host overrides the host name, which is otherwise derived from Account
	// (<account>.snowflakecomputing.com), e.g. for a private link
	// ("<account>.privatelink.snowflakecomputing.com").
	Host string
	// Port overrides the port (default 443).
	Port int
	// Protocol overrides the protocol: "https" (default) or "http" (tests
	// only).
	Protocol string
	// LoginTimeout bounds a login, retries included. Zero means
	// LoginTimeoutDefault.
	LoginTimeout time.Duration
	// StatementTimeout, when positive, is set as the sessions'
	// STATEMENT_TIMEOUT_IN_SECONDS (rounded up to whole seconds): a bound
	// Snowflake enforces on its own, which still holds if listsync dies
	// while a model runs. Per-query timeouts come from QueryParams.Timeout.
	StatementTimeout time.Duration
	// MaxOpenConns bounds the Snowflake sessions kept open. Zero means
	// MaxOpenConnsDefault.
	MaxOpenConns int
	// Logger receives debug logs. Nil means zap.NewNop().
	Logger *zap.Logger
}

// Warehouse runs models on Snowflake through gosnowflake and database/sql.
// It is safe for concurrent use.
type Warehouse struct {
	db     *sql.DB
	logger *zap.Logger

	closeOnce sync.Once
	closeErr  error
}

var _ warehouse.Warehouse = (*Warehouse)(nil)

// New checks cfg, loads the private key if one is configured, and returns a
// Warehouse. It does not contact Snowflake: the first query (or Ping) logs
// in. ctx is reserved for setup that may block.
func New(ctx context.Context, cfg Config) (*Warehouse, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("creating snowflake warehouse: %w", err)
	}
	sfc, err := driverConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("configuring snowflake: %w", err)
	}
	db := sql.OpenDB(sf.NewConnector(sf.SnowflakeDriver{}, *sfc))
	maxOpen := cfg.MaxOpenConns
	if maxOpen <= 0 {
		maxOpen = MaxOpenConnsDefault
	}
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxOpen)
	db.SetConnMaxIdleTime(ConnMaxIdleTimeDefault)
	logger := cfg.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Warehouse{db: db, logger: logger.Named("snowflake")}, nil
}

// driverConfig validates cfg and turns it into gosnowflake's Config. Its
// errors never contain the password or the key.
func driverConfig(cfg Config) (*sf.Config, error) {
	var problems []string
	if strings.TrimSpace(cfg.Account) == "" {
		problems = append(problems, "account is required")
	}
	if strings.TrimSpace(cfg.User) == "" {
		problems = append(problems, "user is required")
	}
	keyGiven := cfg.PrivateKeyPath != "" || len(cfg.PrivateKeyPEM) > 0
	switch {
	case cfg.Password == "" && !keyGiven:
		problems = append(problems, "a password or a private key (private key path) is required")
	case cfg.Password != "" && keyGiven:
		problems = append(problems, "give either a password or a private key, not both")
	case cfg.PrivateKeyPath != "" && len(cfg.PrivateKeyPEM) > 0:
		problems = append(problems, "give the private key either as a path or as PEM text, not both")
	case cfg.PrivateKeyPassphrase != "" && !keyGiven:
		problems = append(problems, "a private key passphrase was given without a private key")
	}
	switch strings.ToLower(cfg.Protocol) {
	case "", "https", "http":
	default:
		problems = append(problems, fmt.Sprintf("protocol %q is not https or http", cfg.Protocol))
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		problems = append(problems, fmt.Sprintf("port %d is out of range", cfg.Port))
	}
	if cfg.LoginTimeout < 0 || cfg.StatementTimeout < 0 {
		problems = append(problems, "timeouts must not be negative")
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}

	loginTimeout := cfg.LoginTimeout
	if loginTimeout == 0 {
		loginTimeout = LoginTimeoutDefault
	}
	params := map[string]*string{
		// Arrow is the driver's default and what the tests' fake speaks;
		// asking for it explicitly keeps an account- or user-level
		// GO_QUERY_RESULT_FORMAT=JSON from switching production to a
		// decoder the tests do not exercise.
		"GO_QUERY_RESULT_FORMAT": ptr("ARROW"),
	}
	if cfg.StatementTimeout > 0 {
		secs := int64((cfg.StatementTimeout + time.Second - 1) / time.Second)
		params["STATEMENT_TIMEOUT_IN_SECONDS"] = ptr(strconv.FormatInt(secs, 10))
	}
	sfc := &sf.Config{
		Account:   cfg.Account,
		User:      cfg.User,
		Role:      cfg.Role,
		Warehouse: cfg.Warehouse,
		Database:  cfg.Database,
		Schema:    cfg.Schema,
		Host:      cfg.Host,
		Port:      cfg.Port,
		Protocol:  strings.ToLower(cfg.Protocol),
		//lint:ignore SA1019 LoginTimeout is still how gosnowflake bounds a login; its replacement is not published yet.
		LoginTimeout: loginTimeout,
		Application:  ApplicationDefault,
		Params:       params,
	}
	if keyGiven {
		var key *rsa.PrivateKey
		var err error
		if cfg.PrivateKeyPath != "" {
			key, err = loadPrivateKeyFile(cfg.PrivateKeyPath, cfg.PrivateKeyPassphrase)
		} else {
			key, err = parsePrivateKey(cfg.PrivateKeyPEM, cfg.PrivateKeyPassphrase, "the private key PEM")
		}
		if err != nil {
			return nil, err
		}
		sfc.Authenticator = sf.AuthTypeJwt
		sfc.PrivateKey = key
	} else {
		sfc.Authenticator = sf.AuthTypeSnowflake
		sfc.Password = cfg.Password
	}
	return sfc, nil
}

func ptr[T any](v T) *T { return &v }

// Query runs p.SQL on Snowflake and streams its rows. The model is checked
// first (a single read-only query, by Snowflake's lexical rules); it then
// runs with QUERY_TAG "listsync:<model>" and MULTI_STATEMENT_COUNT 1, so
// that Snowflake itself refuses a second statement, under a deadline of
// p.Timeout that covers reading the rows too.
func (w *Warehouse) Query(ctx context.Context, p *warehouse.QueryParams) (warehouse.Rows, error) {
	if err := warehouse.CheckParams(name, warehouse.DialectSnowflake, p); err != nil {
		return nil, err
	}
	var qctx context.Context
	var cancel context.CancelFunc
	if p.Timeout > 0 {
		qctx, cancel = context.WithTimeout(ctx, p.Timeout)
	} else {
		qctx, cancel = context.WithCancel(ctx)
	}
	r, err := w.query(qctx, cancel, p)
	if err != nil {
		cancel()
		return nil, err
	}
	return r, nil
}

func (w *Warehouse) query(ctx context.Context, cancel context.CancelFunc, p *warehouse.QueryParams) (*rows, error) {
	ctx, err := sf.WithMultiStatement(ctx, 1)
	if err != nil {
		return nil, fmt.Errorf("setting the statement count: %w", err)
	}
	ctx = sf.WithQueryTag(ctx, queryTag(p.Model))
	// Read the result as Arrow batches, chunk by chunk, instead of through
	// database/sql's Rows: gosnowflake's row reader downloads and decodes up
	// to ten chunks ahead of the reader (a process-wide setting), which can
	// hold most of a large result in memory. Timestamps come as
	// microseconds, which spans every date Snowflake stores (nanoseconds
	// overflow after 2262); NUMBER comes unconverted, so that rows applies
	// the scale itself.
	ctx = sf.WithArrowBatches(ctx)
	ctx = sf.WithHigherPrecision(ctx)
	ctx = sf.WithArrowBatchesTimestampOption(ctx, sf.UseMicrosecondTimestamp)

	start := time.Now()
	conn, err := w.db.Conn(ctx) // logs in when no idle session is left
	if err != nil {
		return nil, mapError(ctx, p, err)
	}
	var drows driver.Rows
	// The driver connection is used beyond Raw's callback, by the rows:
	// that is safe because conn stays checked out of the pool, unused by
	// anything else, until the rows close it.
	err = conn.Raw(func(dc any) error {
		q, ok := dc.(driver.QueryerContext)
		if !ok {
			return fmt.Errorf("gosnowflake connection %T cannot run queries", dc)
		}
		var err error
		drows, err = q.QueryContext(ctx, p.SQL, nil)
		return err
	})
	if err != nil {
		_ = conn.Close()
		return nil, mapError(ctx, p, err)
	}
	sfRows, ok := drows.(sf.SnowflakeRows)
	if !ok {
		_ = drows.Close()
		_ = conn.Close()
		return nil, fmt.Errorf("gosnowflake returned rows of type %T, not SnowflakeRows", drows)
	}
	batches, err := sfRows.GetArrowBatches()
	if err != nil {
		_ = drows.Close()
		_ = conn.Close()
		return nil, mapError(ctx, p, err)
	}
	w.logger.Debug("query started",
		zap.String("model", p.Model),
		zap.String("query_id", sfRows.GetQueryID()),
		zap.Int("chunks", len(batches)),
		zap.Duration("elapsed", time.Since(start)))
	return newRows(ctx, cancel, p, conn, drows, batches), nil
}

// queryTag labels listsync's queries in Snowflake's query history. Snowflake
// limits tags to 2000 characters.
func queryTag(model string) string {
	tag := "listsync"
	if model != "" {
		tag += ":" + model
	}
	if len(tag) > 2000 {
		tag = strings.ToValidUTF8(tag[:2000], "")
	}
	return tag
}

// Ping logs in (if no session is open) and runs SELECT 1.
func (w *Warehouse) Ping(ctx context.Context) error {
	if err := w.db.PingContext(ctx); err != nil {
		return mapError(ctx, nil, err)
	}
	return nil
}

// Close logs out every session and releases the connection pool. It is
// idempotent.
func (w *Warehouse) Close() error {
	w.closeOnce.Do(func() {
		if err := w.db.Close(); err != nil {
			w.closeErr = fmt.Errorf("closing snowflake sessions: %w", err)
		}
	})
	return w.closeErr
}
