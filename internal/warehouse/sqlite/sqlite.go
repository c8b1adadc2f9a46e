// Package sqlite runs listsync models against an SQLite database file
// through modernc.org/sqlite (pure Go, no cgo). It is the embedded warehouse
// for local development and for `listsync demo`.
//
// The file is opened read-only (mode=ro and PRAGMA query_only), which is the
// real guarantee that a model cannot write. SQLite's types are dynamic;
// values are normalised by their storage class (INTEGER to int64, REAL to
// float64, TEXT and BLOB to string, NULL to nil) and, for columns of a table
// with a declared type, by that type: integers in BOOLEAN or BOOL columns
// become bool, and text in DATE, DATETIME or TIMESTAMP columns that parses
// as a time (the formats of SQLite's date functions, with an optional
// offset) becomes time.Time in UTC.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	stdsync "sync"
	"time"

	"go.uber.org/zap"
	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/listsync/listsync/internal/warehouse"
)

// Name is the warehouse name errors carry.
const Name = "sqlite"

// Defaults for Config's zero values.
const (
	// MaxConnsDefault is the number of connections when Config.MaxConns is
	// zero.
	MaxConnsDefault = 4
	// BusyTimeoutDefault is how long a query waits for a writer's lock
	// when Config.BusyTimeout is zero.
	BusyTimeoutDefault = 5 * time.Second
)

// MemoryPath is the Path of an empty in-memory database, private to each
// connection: models can compute values but there are no tables to read.
const MemoryPath = ":memory:"

// Config configures a Warehouse.
type Config struct {
	// Path is the database file, which must exist, or MemoryPath.
	Path string
	// MaxConns bounds the open connections; MaxConnsDefault when zero.
	MaxConns int
	// BusyTimeout bounds the wait for another process's write lock;
	// BusyTimeoutDefault when zero.
	BusyTimeout time.Duration
	// Logger receives debug lines about each model run; zap.NewNop()
	// when nil.
	Logger *zap.Logger
}

// Warehouse runs models against one SQLite database. It is safe for
// concurrent use.
type Warehouse struct {
	db        *sql.DB
	path      string
	logger    *zap.Logger
	closeOnce stdsync.Once
	closeErr  error
}

var _ warehouse.Warehouse = (*Warehouse)(nil)

// New opens the database at cfg.Path read-only. The file must exist; it is
// not created. New does not read the file: Ping checks that it is a
// database.
func New(_ context.Context, cfg Config) (*Warehouse, error) {
	if cfg.Path == "" {
		return nil, warehouse.NewError(warehouse.ErrConnect, Name, nil, "no database path is configured", nil)
	}
	busy := cfg.BusyTimeout
	if busy <= 0 {
		busy = BusyTimeoutDefault
	}
	params := "_pragma=query_only(1)&_pragma=busy_timeout(" + strconv.FormatInt(busy.Milliseconds(), 10) + ")"
	var dsn string
	if cfg.Path == MemoryPath {
		dsn = "file::memory:?mode=memory&" + params
	} else {
		fi, err := os.Stat(cfg.Path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, warehouse.NewError(warehouse.ErrConnect, Name, nil,
				fmt.Sprintf("the database file %s does not exist", cfg.Path), err)
		case err != nil:
			return nil, warehouse.NewError(warehouse.ErrConnect, Name, nil, err.Error(), err)
		case fi.IsDir():
			return nil, warehouse.NewError(warehouse.ErrConnect, Name, nil,
				fmt.Sprintf("%s is a directory, not a database file", cfg.Path), nil)
		}
		dsn = "file:" + escapeURIPath(cfg.Path) + "?mode=ro&" + params
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, warehouse.NewError(warehouse.ErrConnect, Name, nil, err.Error(), err)
	}
	maxConns := cfg.MaxConns
	if maxConns <= 0 {
		maxConns = MaxConnsDefault
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	logger := cfg.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Warehouse{db: db, path: cfg.Path, logger: logger.Named("sqlite")}, nil
}

// escapeURIPath escapes the characters that end or escape the path of an
// SQLite URI filename.
func escapeURIPath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}

// Path returns the database file the warehouse reads.
func (w *Warehouse) Path() string { return w.path }

// Ping checks that the file can be opened and is an SQLite database.
func (w *Warehouse) Ping(ctx context.Context) error {
	var n int64
	if err := w.db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
		return interpretError(ctx, nil, err)
	}
	return nil
}

// Close closes the database's connections. Rows still open must be closed
// first. It is idempotent.
func (w *Warehouse) Close() error {
	w.closeOnce.Do(func() { w.closeErr = w.db.Close() })
	return w.closeErr
}

// Query runs p's model and streams its rows. The model is refused before it
// runs when it is not a single read-only query.
func (w *Warehouse) Query(ctx context.Context, p *warehouse.QueryParams) (warehouse.Rows, error) {
	if err := warehouse.CheckParams(Name, warehouse.DialectSQLite, p); err != nil {
		return nil, err
	}
	var (
		qctx   context.Context
		cancel context.CancelFunc
	)
	if p.Timeout > 0 {
		qctx, cancel = context.WithTimeout(ctx, p.Timeout)
	} else {
		qctx, cancel = context.WithCancel(ctx)
	}
	rs, err := w.db.QueryContext(qctx, p.SQL)
	if err != nil {
		err = interpretError(qctx, p, err)
		cancel()
		return nil, err
	}
	types, err := rs.ColumnTypes()
	if err != nil {
		err = interpretError(qctx, p, err)
		_ = rs.Close()
		cancel()
		return nil, err
	}
	r := &rows{
		ctx: qctx, cancel: cancel, p: p, rs: rs, logger: w.logger, start: time.Now(),
		kinds: make([]declKind, len(types)), dest: make([]any, len(types)),
	}
	cols := make([]string, len(types))
	for i, ct := range types {
		cols[i] = ct.Name()
		r.kinds[i] = kindOfDecl(ct.DatabaseTypeName())
	}
	r.cols = cols
	st := warehouse.NewStream(qctx, cols, r)
	vals := st.Values()
	for i := range vals {
		r.dest[i] = &vals[i]
	}
	// Wait for the first row, so that errors raised before the query
	// produces any come from Query.
	if err := st.Peek(); err != nil {
		return nil, err
	}
	return st, nil
}

// declKind is what a column's declared type says about its values.
type declKind uint8

const (
	declOther declKind = iota
	declBool
	declTime
)

func kindOfDecl(decl string) declKind {
	switch strings.ToUpper(decl) {
	case "BOOLEAN", "BOOL":
		return declBool
	case "DATE", "DATETIME", "TIMESTAMP":
		return declTime
	default:
		return declOther
	}
}

// rows is the warehouse.Cursor of one model's result.
type rows struct {
	ctx    context.Context
	cancel context.CancelFunc
	p      *warehouse.QueryParams
	rs     *sql.Rows
	logger *zap.Logger
	start  time.Time

	cols  []string
	kinds []declKind
	// dest points at the values of the warehouse.Stream, for Scan.
	dest []any
}

// Read implements warehouse.Cursor.
func (r *rows) Read(vals []any) (bool, error) {
	if !r.rs.Next() {
		return false, r.rs.Err()
	}
	if err := r.rs.Scan(r.dest...); err != nil {
		return false, err
	}
	for i, v := range vals {
		switch x := v.(type) {
		case nil, string, float64:
		case int64:
			if r.kinds[i] == declBool {
				vals[i] = x != 0
			}
		case time.Time:
			vals[i] = x.UTC()
		case []byte:
			vals[i] = string(x)
		default:
			n, err := warehouse.Normalize(v)
			if err != nil {
				return false, warehouse.NewError(warehouse.ErrSQL, Name, r.p, "column "+strconv.Quote(r.cols[i])+": "+err.Error(), err)
			}
			vals[i] = n
		}
	}
	return true, nil
}

// MapError implements warehouse.Cursor.
func (r *rows) MapError(err error, _ int64) error {
	return interpretError(r.ctx, r.p, err)
}

// Release implements warehouse.Cursor: it interrupts the query if it is
// still running and releases its connection.
func (r *rows) Release(_ bool, n int64, err error) {
	r.cancel()
	_ = r.rs.Close()
	r.logger.Debug("model finished",
		zap.String("model", r.p.Model), zap.Int64("rows", n),
		zap.Duration("elapsed", time.Since(r.start)), zap.Error(err))
}

// interpretError maps an error from database/sql or modernc.org/sqlite onto
// warehouse's errors. p may be nil (Ping).
func interpretError(ctx context.Context, p *warehouse.QueryParams, err error) error {
	if err == nil {
		return nil
	}
	if e := warehouse.ContextError(ctx, Name, p); e != nil {
		return e
	}
	var se *sqlitedrv.Error
	if errors.As(err, &se) {
		msg := sqliteMessage(se)
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_READONLY:
			return warehouse.NewError(warehouse.ErrInvalidModel, Name, p, "models are read-only: "+msg, err)
		case sqlite3.SQLITE_AUTH, sqlite3.SQLITE_PERM:
			return warehouse.NewError(warehouse.ErrPermission, Name, p, msg, err)
		case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT:
			return warehouse.NewError(warehouse.ErrConnect, Name, p, msg, err)
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return warehouse.NewError(warehouse.ErrTimeout, Name, p, msg+" (another process holds a lock on the database)", err)
		default:
			return warehouse.NewError(warehouse.ErrSQL, Name, p, msg, err)
		}
	}
	if errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), "database is closed") {
		return warehouse.NewError(warehouse.ErrConnect, Name, p, "the warehouse is closed", err)
	}
	return warehouse.NewError(warehouse.ErrSQL, Name, p, err.Error(), err)
}

// sqliteMessage returns SQLite's own message without the generic text of
// its result code and the code itself: "no such table: users" rather than
// "SQL logic error: no such table: users (1)".
func sqliteMessage(se *sqlitedrv.Error) string {
	msg := se.Error()
	if i := strings.LastIndex(msg, " ("); i > 0 && strings.HasSuffix(msg, ")") {
		if _, err := strconv.Atoi(msg[i+2 : len(msg)-1]); err == nil {
			msg = msg[:i]
		}
	}
	if se.Code()&0xff == sqlite3.SQLITE_ERROR {
		msg = strings.TrimPrefix(msg, "SQL logic error: ")
	}
	return msg
}
