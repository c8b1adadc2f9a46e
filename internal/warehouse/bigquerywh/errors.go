package bigquerywh

import (
	"context"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/bigquery"
	"golang.org/x/oauth2"
	"google.golang.org/api/googleapi"

	"github.com/listsync/listsync/internal/warehouse"
)

// reasonKinds maps BigQuery's error reasons
// (https://cloud.google.com/bigquery/docs/error-messages) onto the seam's
// errors. Reasons not listed fall back on the HTTP status (see kindOf).
var reasonKinds = map[string]error{
	"invalidQuery":             warehouse.ErrSQL,
	"invalid":                  warehouse.ErrSQL,
	"notFound":                 warehouse.ErrSQL, // a dataset or table the model names
	"resourcesExceeded":        warehouse.ErrSQL,
	"responseTooLarge":         warehouse.ErrSQL,
	"billingTierLimitExceeded": warehouse.ErrSQL,
	"notImplemented":           warehouse.ErrSQL,
	"accessDenied":             warehouse.ErrPermission,
	"billingNotEnabled":        warehouse.ErrPermission,
	"blocked":                  warehouse.ErrPermission,
	"quotaExceeded":            warehouse.ErrPermission,
	"rateLimitExceeded":        warehouse.ErrPermission,
	"authError":                warehouse.ErrAuth,
	"required":                 warehouse.ErrAuth, // "Login Required"
	"unauthorized":             warehouse.ErrAuth,
	"timeout":                  warehouse.ErrTimeout,
	"backendError":             warehouse.ErrConnect,
	"internalError":            warehouse.ErrConnect,
	"jobBackendError":          warehouse.ErrConnect,
	"jobInternalError":         warehouse.ErrConnect,
	"tableUnavailable":         warehouse.ErrConnect,
}

// positionRE finds the "[line:column]" BigQuery appends to messages about a
// place in the query, as in "Unrecognized name: emial at [3:8]".
var positionRE = regexp.MustCompile(`\[(\d+):(\d+)\]`)

// mapError maps an error of the client, for a query of p (nil for Ping)
// that ran under ctx, onto the seam's errors.
func mapError(ctx context.Context, p *warehouse.QueryParams, err error) error {
	c := classify(err)
	if ctxErr := warehouse.ContextError(ctx, Name, p); ctxErr != nil {
		// The client retries refused connections and failed token
		// fetches until the deadline; then the cause, not the deadline,
		// is what the user has to fix.
		cause := c.kind == warehouse.ErrAuth || (c.kind == warehouse.ErrConnect && isDialError(err))
		if !cause || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return ctxErr
		}
	}
	e := warehouse.NewError(c.kind, Name, p, c.msg, err)
	if c.pos != nil {
		e.AtLine(c.pos[0], c.pos[1])
	}
	return e
}

// classification is what classify finds out about an error.
type classification struct {
	kind error  // the seam's sentinel
	msg  string // the message to show
	pos  []int  // [line, column] when BigQuery reported them
}

// classify works out the seam error kind of err and what to tell the user.
func classify(err error) classification {
	var gerr *googleapi.Error
	var berr *bigquery.Error
	var aerr *auth.Error
	var rerr *oauth2.RetrieveError
	switch {
	case errors.As(err, &aerr), errors.As(err, &rerr):
		return classification{warehouse.ErrAuth, "getting an access token: " + err.Error(), nil}
	case errors.As(err, &gerr):
		reason := ""
		if len(gerr.Errors) > 0 {
			reason = gerr.Errors[0].Reason
		}
		msg := gerr.Message
		if msg == "" && len(gerr.Errors) > 0 {
			msg = gerr.Errors[0].Message
		}
		if msg == "" {
			msg = gerr.Error()
		}
		return classification{kindOf(gerr.Code, reason, msg), msg, position(msg)}
	case errors.As(err, &berr):
		return classification{kindOf(0, berr.Reason, berr.Message), berr.Message, position(berr.Message)}
	}
	// Network failures and anything unrecognised, such as a
	// response the client could not decode: the exchange with BigQuery
	// failed.
	return classification{warehouse.ErrConnect, err.Error(), nil}
}

// kindOf picks the kind for an API error by reason, then by HTTP status.
func kindOf(code int, reason, msg string) error {
	if code == http.StatusUnauthorized {
		return warehouse.ErrAuth
	}
	if reason == "stopped" {
		// A canceled job; BigQuery cancels those that exceed their job
		// timeout with this reason.
		if strings.Contains(strings.ToLower(msg), "timed out") || strings.Contains(strings.ToLower(msg), "timeout") {
			return warehouse.ErrTimeout
		}
		return warehouse.ErrSQL
	}
	if k, ok := reasonKinds[reason]; ok {
		return k
	}
	switch {
	case code == http.StatusForbidden:
		return warehouse.ErrPermission
	case code == http.StatusProxyAuthRequired, code >= 500:
		return warehouse.ErrConnect
	case code == http.StatusRequestTimeout:
		return warehouse.ErrTimeout
	}
	return warehouse.ErrSQL
}

// position returns the last [line, column] in msg, or nil.
func position(msg string) []int {
	all := positionRE.FindAllStringSubmatch(msg, -1)
	if len(all) == 0 {
		return nil
	}
	m := all[len(all)-1]
	line, err1 := strconv.Atoi(m[1])
	col, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil || line <= 0 || col <= 0 {
		return nil
	}
	return []int{line, col}
}

// isDialError reports whether err is a failure to open a connection.
func isDialError(err error) bool {
	var oerr *net.OpError
	var derr *net.DNSError
	return (errors.As(err, &oerr) && oerr.Op == "dial") || errors.As(err, &derr) ||
		errors.Is(err, syscall.ECONNREFUSED)
}
