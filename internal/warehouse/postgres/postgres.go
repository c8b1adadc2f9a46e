// Package postgres runs listsync models against PostgreSQL through a pgx v5
// connection pool.
//
// Every model runs in its own READ ONLY transaction, which is the real
// guarantee that a model cannot write (warehouse.CheckModel only catches
// mistakes early), with SET LOCAL statement_timeout from
// QueryParams.Timeout. Rows stream from the wire as Next is called; nothing
// is buffered beyond pgx's read buffer. Cancelling the context sends
// Postgres a cancel request, so a canceled model stops on the server too.
package postgres

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/listsync/listsync/internal/warehouse"
)

// Name is the warehouse name errors carry.
const Name = "postgres"

// Defaults for Config's zero values.
const (
	// MaxConnsDefault is the pool size when Config.MaxConns is zero.
	MaxConnsDefault = 4
	// ConnectTimeoutDefault bounds one connection attempt when the DSN
	// sets no connect_timeout.
	ConnectTimeoutDefault = 15 * time.Second
)

const (
	// readBufferSize is the size of a connection's read buffer.
	readBufferSize = 64 << 10
	// timeoutGrace is how much longer than QueryParams.Timeout the client
	// waits before cancelling, so that the server's statement_timeout,
	// with its clearer message, normally fires first.
	timeoutGrace = time.Second
	// cancelDeadline is how long after a cancel request the client waits
	// for the server before giving up on the connection.
	cancelDeadline = 3 * time.Second
	// cleanupTimeout bounds the ROLLBACK that ends each model's
	// transaction.
	cleanupTimeout = 5 * time.Second
)

// Config configures a Warehouse.
type Config struct {
	// DSN is a libpq connection string or URL, e.g.
	// "postgres://user:pass@host:5432/db?sslmode=require". It is never
	// included in errors or logs.
	DSN string
	// MaxConns bounds the pool; MaxConnsDefault when zero.
	MaxConns int32
	// Logger receives debug lines about each model run; zap.NewNop()
	// when nil.
	Logger *zap.Logger
}

// Warehouse runs models against one Postgres database. It is safe for
// concurrent use.
type Warehouse struct {
	pool   *pgxpool.Pool
	logger *zap.Logger
}

var _ warehouse.Warehouse = (*Warehouse)(nil)

// New returns a Warehouse for cfg. It checks the DSN but does not connect:
// connections are made when queries need them, so a warehouse that is down
// at startup does not stop listsync from starting. Call Ping to check the
// connection and credentials.
func New(ctx context.Context, cfg Config) (*Warehouse, error) {
	if strings.TrimSpace(cfg.DSN) == "" {
		return nil, warehouse.NewError(warehouse.ErrConnect, Name, nil, "no DSN is configured", nil)
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		// The parse error quotes the DSN, redacted only on a best-effort
		// basis, so it is not passed on.
		return nil, warehouse.NewError(warehouse.ErrConnect, Name, nil,
			"the DSN cannot be parsed; check its syntax (it is not shown because it may hold a password)", nil)
	}
	pc.MaxConns = cfg.MaxConns
	if pc.MaxConns <= 0 {
		pc.MaxConns = MaxConnsDefault
	}
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = ConnectTimeoutDefault
	}
	if _, ok := pc.ConnConfig.RuntimeParams["application_name"]; !ok {
		pc.ConnConfig.RuntimeParams["application_name"] = "listsync"
	}
	pc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec
	pc.ConnConfig.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		return pgproto3.NewFrontend(bufio.NewReaderSize(r, readBufferSize), w)
	}
	pc.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: cancelDeadline}
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, interpretError(ctx, nil, err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Warehouse{pool: pool, logger: logger.Named("postgres")}, nil
}

// Ping checks that Postgres can be reached with the configured credentials.
func (w *Warehouse) Ping(ctx context.Context) error {
	if err := w.pool.Ping(ctx); err != nil {
		return interpretError(ctx, nil, err)
	}
	return nil
}

// Close closes the pool. Rows still open must be closed first: Close waits
// for their connections. It is idempotent.
func (w *Warehouse) Close() error {
	w.pool.Close()
	return nil
}

// Query runs p's model in a READ ONLY transaction and streams its rows. The
// model is refused before anything is sent when it is not a single
// read-only query.
func (w *Warehouse) Query(ctx context.Context, p *warehouse.QueryParams) (warehouse.Rows, error) {
	if err := warehouse.CheckParams(Name, warehouse.DialectPostgres, p); err != nil {
		return nil, err
	}
	var (
		qctx   context.Context
		cancel context.CancelFunc
	)
	if p.Timeout > 0 {
		qctx, cancel = context.WithTimeout(ctx, p.Timeout+timeoutGrace)
	} else {
		qctx, cancel = context.WithCancel(ctx)
	}
	conn, err := w.pool.Acquire(qctx)
	if err != nil {
		err = interpretError(qctx, p, err)
		cancel()
		return nil, err
	}
	r := &rows{ctx: qctx, cancel: cancel, p: p, conn: conn, logger: w.logger, start: time.Now()}
	begin := "BEGIN READ ONLY"
	if p.Timeout > 0 {
		ms := max(p.Timeout.Milliseconds(), 1)
		begin += "; SET LOCAL statement_timeout = " + strconv.FormatInt(ms, 10)
	}
	if _, err := conn.Exec(qctx, begin); err != nil {
		err = interpretError(qctx, p, err)
		r.release()
		return nil, err
	}
	pr, err := conn.Query(qctx, p.SQL)
	if err != nil {
		err = interpretError(qctx, p, err)
		r.release()
		return nil, err
	}
	if err := pr.Err(); err != nil {
		pr.Close()
		err = interpretError(qctx, p, err)
		r.release()
		return nil, err
	}
	fields := pr.FieldDescriptions()
	r.rows = pr
	cols := make([]string, len(fields))
	for i, f := range fields {
		cols[i] = f.Name
	}
	r.cols = cols
	r.decode, r.text = decoders(conn.Conn().TypeMap(), fields)
	s := warehouse.NewStream(qctx, cols, r)
	// Wait for the first row, so that errors raised before the query
	// produces any (a timeout, a division by zero) come from Query.
	if err := s.Peek(); err != nil {
		return nil, err
	}
	return s, nil
}

// rows is the warehouse.Cursor of one model's result. It owns its
// connection until the result ends or is closed.
type rows struct {
	ctx    context.Context
	cancel context.CancelFunc
	p      *warehouse.QueryParams
	conn   *pgxpool.Conn
	rows   pgx.Rows
	logger *zap.Logger
	start  time.Time

	cols   []string
	decode []decodeFunc
	// text marks the columns whose values are their wire bytes as a string.
	text []bool
}

// Read implements warehouse.Cursor.
func (r *rows) Read(vals []any) (bool, error) {
	if !r.rows.Next() {
		return false, r.rows.Err()
	}
	raw := r.rows.RawValues()
	for i, src := range raw {
		if src == nil {
			vals[i] = nil
			continue
		}
		v, err := r.decode[i](src)
		if err != nil {
			return false, warehouse.NewError(warehouse.ErrSQL, Name, r.p, "column "+strconv.Quote(r.cols[i])+": "+err.Error(), err)
		}
		vals[i] = v
	}
	return true, nil
}

// TextColumns implements warehouse.TextCursor.
func (r *rows) TextColumns() []bool { return r.text }

// ReadRaw implements warehouse.TextCursor: text columns are left as the
// wire's bytes, which pgx keeps until the next row.
func (r *rows) ReadRaw(vals []any, raw [][]byte) (bool, error) {
	if !r.rows.Next() {
		return false, r.rows.Err()
	}
	for i, src := range r.rows.RawValues() {
		if r.text[i] {
			raw[i] = src
			continue
		}
		raw[i] = nil
		if src == nil {
			vals[i] = nil
			continue
		}
		v, err := r.decode[i](src)
		if err != nil {
			return false, warehouse.NewError(warehouse.ErrSQL, Name, r.p, "column "+strconv.Quote(r.cols[i])+": "+err.Error(), err)
		}
		vals[i] = v
	}
	return true, nil
}

// MapError implements warehouse.Cursor. A connection lost in the middle of
// the rows says so, and after how many: the driver's own words ("unexpected
// EOF") do not.
func (r *rows) MapError(err error, n int64) error {
	err = interpretError(r.ctx, r.p, err)
	var we *warehouse.Error
	if errors.As(err, &we) && we.Kind == warehouse.ErrConnect && n > 0 {
		we.Message = "the connection was lost after " + strconv.FormatInt(n, 10) + " rows: " + we.Message
	}
	return err
}

// Release implements warehouse.Cursor: it stops the query if it is still
// running, ends the transaction and returns the connection to the pool.
func (r *rows) Release(complete bool, n int64, err error) {
	if !complete {
		// Still streaming: cancelling the context makes pgx send
		// Postgres a cancel request, so that closing the rows does not
		// read the rest of the result first.
		r.cancel()
	}
	r.rows.Close()
	r.release()
	r.logger.Debug("model finished",
		zap.String("model", r.p.Model), zap.Int64("rows", n),
		zap.Duration("elapsed", time.Since(r.start)), zap.Error(err))
}

// release ends the transaction and returns the connection, which the pool
// destroys if it is not idle afterwards.
func (r *rows) release() {
	conn := r.conn.Conn()
	if !conn.IsClosed() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), cleanupTimeout)
		_, _ = conn.Exec(ctx, "ROLLBACK")
		cancel()
	}
	r.conn.Release()
	r.cancel()
}

// interpretError maps an error from pgx onto warehouse's errors. p may be
// nil (Ping, New).
func interpretError(ctx context.Context, p *warehouse.QueryParams, err error) error {
	if err == nil {
		return nil
	}
	if e := warehouse.ContextError(ctx, Name, p); e != nil {
		return e
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		kind := kindOf(pgErr)
		msg := pgErr.Message
		if pgErr.Detail != "" {
			msg += " (detail: " + pgErr.Detail + ")"
		}
		if pgErr.Hint != "" {
			msg += " (hint: " + pgErr.Hint + ")"
		}
		if kind == warehouse.ErrInvalidModel {
			msg = "models are read-only: " + msg
		}
		e := warehouse.NewError(kind, Name, p, msg, err)
		if p != nil && pgErr.Position > 0 {
			e.AtPosition(p.SQL, int(pgErr.Position))
		}
		return e
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case err.Error() == "closed pool":
		return warehouse.NewError(warehouse.ErrConnect, Name, p, "the warehouse is closed", err)
	case errors.As(err, &connectErr), errors.As(err, &netErr), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, pgconn.ErrConnClosed):
		return warehouse.NewError(warehouse.ErrConnect, Name, p, err.Error(), err)
	case pgconn.Timeout(err):
		return warehouse.NewError(warehouse.ErrTimeout, Name, p, err.Error(), err)
	default:
		return warehouse.NewError(warehouse.ErrConnect, Name, p, err.Error(), err)
	}
}

// kindOf maps a SQLSTATE onto warehouse's kinds of failure.
func kindOf(e *pgconn.PgError) error {
	code := e.Code
	switch {
	case code == "42501": // insufficient_privilege
		return warehouse.ErrPermission
	case code == "25006": // read_only_sql_transaction
		return warehouse.ErrInvalidModel
	case code == "57014": // query_canceled
		if strings.Contains(e.Message, "timeout") {
			return warehouse.ErrTimeout
		}
		return warehouse.ErrSQL
	case strings.HasPrefix(code, "28"): // invalid_authorization_specification, invalid_password
		return warehouse.ErrAuth
	case strings.HasPrefix(code, "08"), // connection_exception
		code == "3D000",                                   // invalid_catalog_name: the database does not exist
		code == "57P01", code == "57P02", code == "57P03", // shutdown, crash, cannot connect now
		code == "53300": // too_many_connections
		return warehouse.ErrConnect
	default:
		return warehouse.ErrSQL
	}
}
