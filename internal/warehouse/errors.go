package warehouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// The kinds of failure every backend maps its driver's errors onto. Test for
// them with errors.Is; the *Error that carries them holds the details.
var (
	// ErrConnect means the warehouse could not be reached, or the
	// connection was lost: check the host, port, network and that the
	// warehouse is running.
	ErrConnect = errors.New("cannot connect")
	// ErrAuth means the warehouse refused the credentials: check the user,
	// password, key or credentials file.
	ErrAuth = errors.New("authentication failed")
	// ErrSQL means the warehouse rejected or failed to run the model's SQL:
	// fix the model. The *Error carries the warehouse's own message and,
	// when the warehouse reports it, the position.
	ErrSQL = errors.New("SQL error")
	// ErrTimeout means the query ran longer than its timeout
	// (QueryParams.Timeout or the deadline of its context).
	ErrTimeout = errors.New("timed out")
	// ErrPermission means the credentials are valid but lack a privilege
	// the model needs, such as SELECT on a table.
	ErrPermission = errors.New("permission denied")
	// ErrInvalidModel means the model is not a single read-only query. It is
	// reported before the model reaches the warehouse where listsync can
	// tell, and mapped from the warehouse's refusal to write otherwise.
	ErrInvalidModel = errors.New("invalid model")
)

// Error describes a failed query or connection. Kind is one of this
// package's sentinels, so errors.Is(err, ErrSQL) and the like work on it;
// Err, the driver's error, is reachable through Unwrap.
//
// Its Error method reads like
//
//	postgres: SQL error in models/x.sql at line 3, column 8: syntax error at or near "FORM"
type Error struct {
	// Kind is ErrConnect, ErrAuth, ErrSQL, ErrTimeout, ErrPermission or
	// ErrInvalidModel.
	Kind error
	// Warehouse names the backend that failed ("postgres", "sqlite", …).
	Warehouse string
	// Model names the model being run, when there is one.
	Model string
	// Message is the warehouse's own description of the problem, or
	// listsync's for problems it finds itself.
	Message string
	// Position is the 1-based character (not byte) offset in the SQL the
	// problem was reported at; 0 when unknown.
	Position int
	// Line and Column locate the problem in the SQL, both 1-based; 0 when
	// unknown. AtPosition derives them from Position.
	Line, Column int
	// Err is the driver's error, if any.
	Err error
}

// Error returns the message described in the type's documentation.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Warehouse != "" {
		b.WriteString(e.Warehouse)
		b.WriteString(": ")
	}
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
	} else {
		b.WriteString("error")
	}
	if e.Model != "" {
		if e.Kind == ErrSQL || e.Kind == ErrInvalidModel {
			b.WriteString(" in ")
		} else {
			b.WriteString(" running ")
		}
		b.WriteString(e.Model)
	}
	switch {
	case e.Line > 0 && e.Column > 0:
		fmt.Fprintf(&b, " at line %d, column %d", e.Line, e.Column)
	case e.Line > 0:
		fmt.Fprintf(&b, " at line %d", e.Line)
	case e.Position > 0:
		fmt.Fprintf(&b, " at character %d", e.Position)
	}
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	}
	return b.String()
}

// Is reports whether target is e's Kind, so that errors.Is(err, ErrSQL)
// holds for an *Error of kind ErrSQL.
func (e *Error) Is(target error) bool { return e.Kind != nil && target == e.Kind }

// Unwrap returns the driver's error.
func (e *Error) Unwrap() error { return e.Err }

// NewError returns an *Error of the given kind for a query of p (which may
// be nil when there is no query, as in Ping) on the named warehouse.
// Message is the warehouse's own message; when it is empty, Error falls back
// to err's text.
func NewError(kind error, warehouseName string, p *QueryParams, message string, err error) *Error {
	e := &Error{Kind: kind, Warehouse: warehouseName, Message: message, Err: err}
	if p != nil {
		e.Model = p.Model
	}
	return e
}

// AtPosition records the 1-based character offset pos in sql at which the
// problem was reported and derives Line and Column from it. A pos outside
// sql leaves Line and Column unset. It returns e.
func (e *Error) AtPosition(sql string, pos int) *Error {
	if pos <= 0 {
		return e
	}
	e.Position = pos
	e.Line, e.Column = LineColumn(sql, pos)
	return e
}

// AtLine records a line and column reported by the warehouse itself. It
// returns e.
func (e *Error) AtLine(line, column int) *Error {
	e.Line, e.Column = line, column
	return e
}

// LineColumn converts a 1-based character offset in sql into a 1-based line
// and column, counting characters (runes), not bytes, as warehouses do. It
// returns 0, 0 when pos is not within sql (pos may point one past the end,
// where "unexpected end of input" errors are reported).
func LineColumn(sql string, pos int) (line, column int) {
	if pos <= 0 {
		return 0, 0
	}
	line, column = 1, 1
	n := 1
	for _, r := range sql {
		if n == pos {
			return line, column
		}
		n++
		if r == '\n' {
			line++
			column = 1
		} else {
			column++
		}
	}
	if n == pos {
		return line, column
	}
	return 0, 0
}

// ContextError maps the state of ctx, the context a query ran under, onto
// this package's errors, for backends to call first when their driver
// returns an error. It returns nil when ctx is not done, so that the driver's
// error should be interpreted instead. A canceled ctx gives an error that
// satisfies errors.Is(err, context.Canceled) (cancellation is not a failure
// to report); a deadline gives an *Error of kind ErrTimeout that also
// satisfies errors.Is(err, context.DeadlineExceeded).
func ContextError(ctx context.Context, warehouseName string, p *QueryParams) error {
	err := ctx.Err()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		msg := "the query did not finish before its deadline"
		if p != nil && p.Timeout > 0 {
			msg = "the query did not finish within its timeout of " + p.Timeout.Round(time.Millisecond).String()
		}
		return NewError(ErrTimeout, warehouseName, p, msg, err)
	default:
		if p != nil && p.Model != "" {
			return fmt.Errorf("%s: running %s: %w", warehouseName, p.Model, err)
		}
		return fmt.Errorf("%s: %w", warehouseName, err)
	}
}

// CheckParams checks p before it is sent to the named warehouse: that it is
// present, that its timeout is not negative and that its SQL is a single
// read-only query in dialect d (see Dialect.CheckModel). The error is an
// *Error of kind ErrInvalidModel naming the warehouse and the model.
func CheckParams(warehouseName string, d Dialect, p *QueryParams) error {
	if p == nil {
		return NewError(ErrInvalidModel, warehouseName, nil, "no query parameters were given", nil)
	}
	if p.Timeout < 0 {
		return NewError(ErrInvalidModel, warehouseName, p, fmt.Sprintf("the timeout %s is negative", p.Timeout), nil)
	}
	if !utf8.ValidString(p.SQL) {
		return NewError(ErrInvalidModel, warehouseName, p, "the model is not valid UTF-8 text", nil)
	}
	if err := d.CheckModel(p.SQL); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Warehouse = warehouseName
			e.Model = p.Model
			return e
		}
		return NewError(ErrInvalidModel, warehouseName, p, err.Error(), err)
	}
	return nil
}
