package snowflaketest

import (
	"fmt"
	"time"
)

// Type is a Snowflake column type as it appears in a query response's
// rowtype.
type Type string

// The column types the fake can serve.
const (
	// Fixed is NUMBER(p,s). Values are int64, int, float64 (rounded to the
	// scale) or decimal text such as "123456789012345678901234.5" for values
	// beyond those types. Snowflake sends the unscaled integers, in 8 to 64
	// bits, or as a 128-bit decimal when one does not fit in 64.
	Fixed Type = "fixed"
	// Real is FLOAT/DOUBLE. Values are float64.
	Real Type = "real"
	// Text is VARCHAR. Values are string.
	Text Type = "text"
	// Boolean is BOOLEAN. Values are bool.
	Boolean Type = "boolean"
	// Date is DATE. Values are time.Time; only the date in UTC is sent.
	Date Type = "date"
	// TimestampNTZ is TIMESTAMP_NTZ(Scale). Values are time.Time; their wall
	// clock is sent, without a time zone.
	TimestampNTZ Type = "timestamp_ntz"
	// TimestampLTZ is TIMESTAMP_LTZ(Scale). Values are time.Time; the
	// instant is sent.
	TimestampLTZ Type = "timestamp_ltz"
	// TimestampTZ is TIMESTAMP_TZ(Scale). Values are time.Time; the instant
	// and its offset are sent.
	TimestampTZ Type = "timestamp_tz"
)

// Column describes one column of a registered result.
type Column struct {
	// Name is the column name as Snowflake reports it (usually upper case).
	Name string
	// Type is the Snowflake type.
	Type Type
	// Precision is the NUMBER precision; 0 means 38 for Fixed.
	Precision int
	// Scale is the NUMBER scale, or the fractional-seconds precision of a
	// timestamp (0-9; 0 means 9 for timestamps).
	Scale int
	// NotNull marks the column as not nullable in the rowtype.
	NotNull bool
}

func (c Column) precision() int {
	if c.Type == Fixed && c.Precision == 0 {
		return 38
	}
	return c.Precision
}

func (c Column) scale() int {
	switch c.Type {
	case TimestampNTZ, TimestampLTZ, TimestampTZ:
		if c.Scale == 0 {
			return 9
		}
	}
	return c.Scale
}

// Result is a result set the fake serves for one SQL text.
type Result struct {
	// Columns are the result's columns, in order.
	Columns []Column
	// NumRows is the number of rows.
	NumRows int
	// Row fills row (len(Columns) values, all nil on entry) with the values
	// of row i. It is called concurrently, possibly more than once for the
	// same row, and must be deterministic. Values must suit their column's
	// Type (see the Type constants); nil is NULL.
	Row func(i int, row []any)
	// Delay makes the query "run" this long: the query request is answered
	// with "query in progress" and the driver polls for the result.
	Delay time.Duration
}

// Rows returns a Result serving the given rows.
func Rows(cols []Column, rows [][]any) Result {
	return Result{
		Columns: cols,
		NumRows: len(rows),
		Row: func(i int, row []any) {
			copy(row, rows[i])
		},
	}
}

// Error is a query failure the fake answers with, in Snowflake's shape.
type Error struct {
	// Code is Snowflake's six-digit error code, e.g. "002003".
	Code string
	// SQLState is the SQLSTATE, e.g. "42S02".
	SQLState string
	// Message is Snowflake's message.
	Message string
}

// ObjectNotFound returns the error Snowflake answers when a query names an
// object that does not exist or that the role may not see.
func ObjectNotFound(kind, name string) Error {
	return Error{
		Code:     "002003",
		SQLState: "42S02",
		Message:  fmt.Sprintf("SQL compilation error:\n%s '%s' does not exist or not authorized.", kind, name),
	}
}

// SyntaxError returns the error Snowflake answers for a syntax error at the
// given line and position near the unexpected token.
func SyntaxError(line, pos int, unexpected string) Error {
	return Error{
		Code:     "001003",
		SQLState: "42000",
		Message:  fmt.Sprintf("SQL compilation error:\nsyntax error line %d at position %d unexpected '%s'.", line, pos, unexpected),
	}
}

// InsufficientPrivileges returns the error Snowflake answers when the role
// lacks a privilege on an object.
func InsufficientPrivileges(object string) Error {
	return Error{
		Code:     "003001",
		SQLState: "42501",
		Message:  fmt.Sprintf("SQL access control error:\nInsufficient privileges to operate on table '%s'", object),
	}
}

// StatementTimeout returns the error Snowflake answers when a statement runs
// past STATEMENT_TIMEOUT_IN_SECONDS.
func StatementTimeout(seconds int) Error {
	return Error{
		Code:     "000630",
		SQLState: "57014",
		Message:  fmt.Sprintf("Statement reached its statement or warehouse timeout of %d second(s) and was canceled.", seconds),
	}
}
