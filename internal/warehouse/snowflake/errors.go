package snowflake

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	sf "github.com/snowflakedb/gosnowflake"

	"github.com/listsync/listsync/internal/warehouse"
)

// Snowflake's error numbers that listsync tells apart. Server codes are
// documented with Snowflake's messages; driver codes are gosnowflake's
// ErrCode… constants.
const (
	codeStatementCount        = 8      // "Actual statement count 2 did not match the desired statement count 1."
	codeNoWarehouse           = 606    // "No active warehouse selected in the current session."
	codeStatementTimeout      = 630    // "Statement reached its statement or warehouse timeout of N second(s) …"
	codeAccessControl         = 3001   // "SQL access control error: Insufficient privileges to operate on …"
	codeIncorrectCredentials  = 390100 // "Incorrect username or password was specified."
	codeJWTInvalid            = 390144 // "JWT token is invalid."
	codeRoleNotAuthorized     = 390189 // "Role 'X' specified in the connect string does not exist or not authorized."
	codeConnectObjectNotFound = 390201 // "The requested database|schema|warehouse does not exist or not authorized."
)

// positionRE finds where Snowflake places a compilation error:
// "syntax error line 3 at position 7 unexpected 'FORM'." Snowflake's
// position is the 0-based character offset within the line.
var positionRE = regexp.MustCompile(`\bline (\d+) at position (\d+)\b`)

// mapError turns an error from database/sql or gosnowflake into the seam's
// errors. ctx is the context the call ran under; p is nil outside a query.
func mapError(ctx context.Context, p *warehouse.QueryParams, err error) error {
	if cerr := warehouse.ContextError(ctx, name, p); cerr != nil {
		return cerr
	}
	var se *sf.SnowflakeError
	if errors.As(err, &se) {
		return snowflakeError(p, se, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// A driver-internal deadline, such as the login timeout.
		return warehouse.NewError(warehouse.ErrTimeout, name, p, "Snowflake did not answer in time: "+err.Error(), err)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return warehouse.NewError(warehouse.ErrTimeout, name, p, "Snowflake did not answer in time: "+err.Error(), err)
		}
		return warehouse.NewError(warehouse.ErrConnect, name, p, err.Error(), err)
	}
	if p != nil && p.Model != "" {
		return fmt.Errorf("%s: running %s: %w", name, p.Model, err)
	}
	return fmt.Errorf("%s: %w", name, err)
}

func snowflakeError(p *warehouse.QueryParams, se *sf.SnowflakeError, err error) error {
	msg := se.Message
	if len(se.MessageArgs) > 0 {
		msg = fmt.Sprintf(se.Message, se.MessageArgs...)
	}
	msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", " ")), " ")
	kind := classify(se)
	switch se.Number {
	case codeNoWarehouse:
		msg += " Set the warehouse in listsync's configuration and grant the role USAGE on it."
	case codeRoleNotAuthorized:
		msg += " Check the role in listsync's configuration and that it is granted to the user."
	case sf.ErrNonArrowResponseInArrowBatches:
		msg += " Snowflake answered in JSON although the session asked for Arrow (GO_QUERY_RESULT_FORMAT=ARROW); check for a parameter forcing JSON results."
	}
	detail := fmt.Sprintf("Snowflake error %06d", se.Number)
	if se.SQLState != "" {
		detail += ", SQLSTATE " + se.SQLState
	}
	if se.QueryID != "" {
		detail += ", query ID " + se.QueryID
	}
	e := warehouse.NewError(kind, name, p, msg+" ("+detail+")", err)
	if kind == warehouse.ErrSQL {
		if m := positionRE.FindStringSubmatch(se.Message); m != nil {
			line, _ := strconv.Atoi(m[1])
			pos, _ := strconv.Atoi(m[2])
			e.AtLine(line, pos+1)
		}
	}
	return e
}

// classify picks the seam error for a Snowflake error number.
func classify(se *sf.SnowflakeError) error {
	n := se.Number
	switch n {
	case codeIncorrectCredentials, codeJWTInvalid,
		sf.ErrCodeEmptyAccountCode, sf.ErrCodeEmptyUsernameCode, sf.ErrCodeEmptyPasswordCode,
		sf.ErrCodePrivateKeyParseError, sf.ErrCodeFailedToConnect, sf.ErrFailedToAuth,
		sf.ErrFailedToRenewSession, sf.ErrSessionGone:
		return warehouse.ErrAuth
	case codeRoleNotAuthorized, codeConnectObjectNotFound, codeNoWarehouse, codeAccessControl:
		return warehouse.ErrPermission
	case codeStatementTimeout:
		return warehouse.ErrTimeout
	case codeStatementCount:
		return warehouse.ErrInvalidModel
	case sf.ErrCodeServiceUnavailable, sf.ErrFailedToPostQuery, sf.ErrFailedToGetChunk,
		sf.ErrCodeFailedToParseHost, sf.ErrCodeFailedToParsePort, sf.ErrFailedToCloseSession,
		sf.ErrFailedToHeartbeat, sf.ErrFailedToParseResponse:
		return warehouse.ErrConnect
	}
	switch {
	case se.SQLState == "42501":
		return warehouse.ErrPermission
	case n >= 390000 && n < 400000:
		// The 39xxxx range is Snowflake's authentication and session
		// service: locked or disabled users, expired tokens, MFA.
		return warehouse.ErrAuth
	case n >= 260000 && n < 280000:
		// gosnowflake's own errors are about reaching Snowflake and
		// reading its answers.
		return warehouse.ErrConnect
	}
	return warehouse.ErrSQL
}
